"""Multiscale pyramids of rasters: level shapes and 2× downsampling, block by block.

Arrays are ``(H, W)`` or ``(H, W, C)`` (rows, columns, channels). Level k+1 halves level k's
height and width, rounding up, so a level-k pixel covers ``2**k`` level-0 pixels per side
(the last row and column may reach past the edge). Label masks are downsampled by ``mode``
(the most frequent of the 2×2 values, ties to the top-left one) or ``nearest`` (the top-left
value); float maps by ``mean`` (over the pixels that exist at the edges).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pathloop.client.store.records import Downsample

MIN_LEVEL_SIZE = 256
"""The pyramid stops at the first level whose longest side is below this many pixels."""


class _Array(Protocol):
    """What :func:`build_level` needs of a source and destination array (zarr or numpy)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> Any: ...

    def __setitem__(self, key: Any, value: Any) -> None: ...


def level_shapes(shape: tuple[int, ...], min_size: int = MIN_LEVEL_SIZE) -> list[tuple[int, ...]]:
    """Shapes of every pyramid level, level 0 (``shape``) first.

    Parameters
    ----------
    shape:
        ``(H, W)`` or ``(H, W, C)`` of level 0.
    min_size:
        Levels are added until the longest side of the last one is below ``min_size``.
    """
    shapes = [tuple(shape)]
    while max(shapes[-1][:2]) >= min_size:
        height, width = shapes[-1][:2]
        shapes.append(((height + 1) // 2, (width + 1) // 2, *shape[2:]))
    return shapes


def downsample2(block: NDArray[Any], method: Downsample) -> NDArray[Any]:
    """Halve a block's height and width (rounding up), keeping its dtype.

    Parameters
    ----------
    block:
        ``(h, w)`` or ``(h, w, C)`` array; channels are downsampled independently.
    method:
        ``"mean"`` (integers are rounded), ``"mode"`` or ``"nearest"``.

    Returns
    -------
    numpy.ndarray
        ``(ceil(h/2), ceil(w/2)[, C])``, same dtype as ``block``.
    """
    if method == "nearest":
        return block[0::2, 0::2].copy()
    height, width = block.shape[:2]
    pad = [(0, height % 2), (0, width % 2)] + [(0, 0)] * (block.ndim - 2)
    if method == "mode":
        full = np.pad(block, pad, mode="edge")
        candidates = np.stack(
            [full[0::2, 0::2], full[0::2, 1::2], full[1::2, 0::2], full[1::2, 1::2]]
        )
        counts = (candidates[:, None] == candidates[None, :]).sum(axis=1)
        best = counts.argmax(axis=0)[None]
        out: NDArray[Any] = np.take_along_axis(candidates, best, axis=0)[0]
        return out
    if method == "mean":
        # Sums of four values of at most 16 bits are exact in float32 (and halving is exact
        # in binary), so narrow rasters average in float32; wider ones in float64.
        work: type[np.floating[Any]] = np.float32 if block.dtype.itemsize <= 2 else np.float64
        values: NDArray[np.floating[Any]] = block.astype(work)
        odd = bool(height % 2 or width % 2)
        if odd:
            values = np.pad(values, pad)
        sums = values[0::2, 0::2] + values[0::2, 1::2]
        sums += values[1::2, 0::2]
        sums += values[1::2, 1::2]
        if odd:
            valid = np.pad(np.ones((height, width), work), pad[:2])
            counts = valid[0::2, 0::2] + valid[0::2, 1::2] + valid[1::2, 0::2] \
                + valid[1::2, 1::2]
            means = sums / counts.reshape(counts.shape + (1,) * (block.ndim - 2))
        else:
            means = sums * work(0.25)
        if np.issubdtype(block.dtype, np.integer) or block.dtype == np.bool_:
            means = np.rint(means)
        return means.astype(block.dtype)
    raise ValueError(f"unknown downsampling method {method!r}")


def build_level(source: _Array, target: _Array, method: Downsample, block: int) -> None:
    """Fill ``target`` with ``source`` downsampled 2×, one ``block``-sized tile at a time.

    Memory stays bounded by one ``2 * block`` square of ``source`` whatever its size.

    Parameters
    ----------
    source, target:
        Arrays of shapes ``(H, W[, C])`` and ``(ceil(H/2), ceil(W/2)[, C])``.
    block:
        Edge of the target tiles written, best a multiple of the target's chunk edge.
    """
    height, width = target.shape[:2]
    for y in range(0, height, block):
        for x in range(0, width, block):
            region = source[2 * y : 2 * (y + block), 2 * x : 2 * (x + block)]
            target[y : y + block, x : x + block] = downsample2(np.asarray(region), method)


def multiscales(
    name: str, mpp: float, shape: tuple[int, ...], n_levels: int, method: Downsample
) -> dict[str, Any]:
    """OME-NGFF-like ``multiscales`` entry of a pyramid (NGFF 0.5 wants channels first; here an
    ``(H, W, C)`` raster keeps its channel axis ``c`` last).

    Parameters
    ----------
    mpp:
        Level-0 resolution in µm/px; level k's scale is ``mpp * 2**k`` on ``y`` and ``x``.
    shape:
        Level-0 shape ``(H, W)`` or ``(H, W, C)``.
    """
    space = {"type": "space", "unit": "micrometer"}
    axes: list[dict[str, Any]] = [{"name": "y", **space}, {"name": "x", **space}]
    if len(shape) == 3:
        axes.append({"name": "c", "type": "channel"})
    datasets = [
        {
            "path": str(level),
            "coordinateTransformations": [
                {"type": "scale", "scale": [mpp * 2**level] * 2 + [1.0] * (len(axes) - 2)}
            ],
        }
        for level in range(n_levels)
    ]
    return {"name": name, "axes": axes, "datasets": datasets, "type": method}
