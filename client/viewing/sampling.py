"""Reading a stored raster under a Deep Zoom tile: the right pyramid level, nearest pixels.

A raster covers the slide (or, for a correction mask, one patch) at its own resolution; a
Deep Zoom tile shows a level-0 box at its own scale. :func:`sample_raster` picks the coarsest
raster level still at least as fine as the tile, reads only the chunks under the box and maps
every tile pixel centre to the raster pixel below it (nearest: label values stay labels).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pathloop.client.store import OpenRaster


class TileBox(Protocol):
    """The level-0 box a tile shows and its pixel size (a ``DeepZoomTile`` is one)."""

    @property
    def x(self) -> float: ...
    @property
    def y(self) -> float: ...
    @property
    def width(self) -> float: ...
    @property
    def height(self) -> float: ...
    @property
    def out_width(self) -> int: ...
    @property
    def out_height(self) -> int: ...


def sample_raster(raster: OpenRaster, box: TileBox, *, slide_mpp: float,
                  origin: tuple[float, float] = (0.0, 0.0), fill: Any = 0) -> NDArray[Any]:
    """The raster's values under ``box``, ``(out_height, out_width[, C])``.

    Parameters
    ----------
    raster:
        An open raster; its level 0 is at ``raster.record.mpp`` µm/px.
    box:
        The level-0 box and the output size.
    slide_mpp:
        The slide's level-0 µm/px (level-0 px per raster px = raster mpp / slide mpp).
    origin:
        Level-0 ``(x, y)`` of the raster's top-left pixel (a patch's corner; 0 for a whole
        slide).
    fill:
        Value of output pixels that fall outside the raster.
    """
    scale0 = raster.record.mpp / slide_mpp  # level-0 px per raster level-0 px
    per_output = max(box.width / box.out_width, box.height / box.out_height)
    level = 0
    for k in range(1, len(raster.levels)):
        if scale0 * 2**k <= per_output * 1.001:
            level = k
    array = raster.levels[level]
    step = scale0 * 2**level  # level-0 px per pixel of the chosen level
    rows = _source_index(box.y - origin[1], box.height, box.out_height, step)
    cols = _source_index(box.x - origin[0], box.width, box.out_width, step)
    height, width = array.shape[:2]
    inside_rows = (rows >= 0) & (rows < height)
    inside_cols = (cols >= 0) & (cols < width)
    out = np.full((box.out_height, box.out_width, *array.shape[2:]), fill, dtype=array.dtype)
    if not inside_rows.any() or not inside_cols.any():
        return out
    r0, r1 = int(rows[inside_rows].min()), int(rows[inside_rows].max()) + 1
    c0, c1 = int(cols[inside_cols].min()), int(cols[inside_cols].max()) + 1
    block = np.asarray(array[r0:r1, c0:c1])
    picked = block[np.ix_(rows[inside_rows] - r0, cols[inside_cols] - c0)]
    out[np.ix_(np.flatnonzero(inside_rows), np.flatnonzero(inside_cols))] = picked
    return out


def _source_index(start: float, length: float, n: int, step: float) -> NDArray[np.intp]:
    """Source pixel under each of ``n`` output pixel centres spanning ``[start, start+length)``."""
    centres = start + (np.arange(n) + 0.5) * (length / n)
    return np.floor(centres / step).astype(np.intp)


def intersects(box: TileBox, x: float, y: float, width: float, height: float) -> bool:
    """Whether ``box`` overlaps the level-0 rectangle ``(x, y, width, height)``."""
    return not (x >= box.x + box.width or box.x >= x + width
                or y >= box.y + box.height or box.y >= y + height)

