"""Patch scores: the sum and mean of a per-pixel uncertainty raster over each patch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pathloop.client.tiling import TileSpec


class Raster2D(Protocol):
    """What scoring reads: a 2-D array-like (a zarr level or a numpy array)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, key: Any) -> Any: ...


def score_boxes(values: Raster2D, raster_mpp: float, boxes: Sequence[TileSpec], *,
                base_mpp: float, progress: Callable[[int], None] | None = None,
                every: int = 64) -> NDArray[np.float64]:
    """Sum and mean of a raster over level-0 boxes.

    Parameters
    ----------
    values:
        ``(H, W)`` per-pixel scores (e.g. the float16 UGA uncertainty), level 0 of a raster
        covering the slide at ``raster_mpp``. NaN counts as 0.
    raster_mpp:
        Resolution of ``values`` in µm/px.
    boxes:
        Patches with ``x``, ``y``, ``width``, ``height`` in level-0 pixels.
    base_mpp:
        Level-0 resolution of the slide in µm/px.
    progress:
        Called with the number of boxes scored every ``every`` boxes and after the last;
        it may raise to stop.

    Returns
    -------
    ndarray
        ``(len(boxes), 2)`` float64: the sum over the raster pixels a box covers, and their
        mean. A box edge at level-0 ``e`` maps to raster pixel ``round(e * base_mpp /
        raster_mpp)``, so adjacent boxes share no pixel; pixels past the raster's edge are
        not counted (a box wholly outside scores 0).
    """
    if len(values.shape) != 2:
        raise ValueError(f"scores are read from an (H, W) raster, got shape {values.shape}")
    height, width = values.shape
    scale = base_mpp / raster_mpp
    out = np.zeros((len(boxes), 2), dtype=np.float64)
    for index, box in enumerate(boxes):
        if progress is not None and index % every == 0:
            progress(index)
        y0, y1 = _span(box.y, box.height, scale, height)
        x0, x1 = _span(box.x, box.width, scale, width)
        if y1 <= y0 or x1 <= x0:
            continue
        block = np.asarray(values[y0:y1, x0:x1])
        total = float(np.nansum(block, dtype=np.float64))
        out[index] = (total, total / block.size)
    if progress is not None:
        progress(len(boxes))
    return out


def _span(start: int, extent: int, scale: float, limit: int) -> tuple[int, int]:
    """Raster pixels ``[first, end)`` under level-0 pixels ``[start, start + extent)``."""
    first = min(max(round(start * scale), 0), limit)
    end = min(max(round((start + extent) * scale), 0), limit)
    return first, end


__all__ = ["Raster2D", "score_boxes"]
