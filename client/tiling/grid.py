"""Tile grids over a slide at a resolution in µm/px."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import RegionError
from pathloop.client.tiling.tissue import TissueMask


@dataclass(frozen=True)
class TileSpec:
    """One tile of a grid.

    Attributes
    ----------
    col, row:
        Position in the grid.
    x, y, width, height:
        The tile's box in level-0 pixels.
    """

    col: int
    row: int
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class TileGrid:
    """A regular grid of square tiles over a slide.

    Attributes
    ----------
    slide_width, slide_height:
        Level-0 size of the slide in pixels.
    base_mpp:
        Level-0 resolution in µm/px.
    mpp:
        Tile resolution in µm/px.
    tile_size:
        Tile edge in pixels at ``mpp``.
    stride:
        Step between tile origins in pixels at ``mpp``.
    flush:
        Pull the last column and row back so they end at the slide's edge (they then
        overlap their neighbours more): every tile lies inside the slide when the slide is
        at least a tile wide. Otherwise the grid covers the slide and the last column and
        row may reach past its edge (read as white, then usually dropped by the background
        rule).
    """

    slide_width: int
    slide_height: int
    base_mpp: float
    mpp: float
    tile_size: int
    stride: int
    flush: bool = False

    def __post_init__(self) -> None:
        if self.tile_size <= 0 or self.stride <= 0:
            raise RegionError(f"tile size and stride must be positive, got {self.tile_size} "
                              f"and {self.stride}")
        if self.mpp <= 0 or self.base_mpp <= 0:
            raise RegionError(f"resolutions must be positive, got {self.mpp} µm/px")

    @property
    def factor(self) -> float:
        """Level-0 pixels per tile pixel."""
        return self.mpp / self.base_mpp

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid."""
        return (self._count(self.slide_height), self._count(self.slide_width))

    def __len__(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def _count(self, extent: int) -> int:
        size_at_mpp = extent / self.factor
        if size_at_mpp <= self.tile_size:
            return 1
        return math.ceil((size_at_mpp - self.tile_size) / self.stride) + 1

    def _origins(self, indices: NDArray[np.int64], extent: int) -> NDArray[np.int64]:
        """Tile origins in pixels at ``mpp`` for grid indices along an axis of ``extent``."""
        origins = indices * self.stride
        if self.flush:
            last = math.floor(extent / self.factor) - self.tile_size
            if last >= 0:
                origins = np.minimum(origins, last)
        return origins

    def tile(self, col: int, row: int) -> TileSpec:
        """The tile at ``(col, row)``."""
        side = round(self.tile_size * self.factor)
        x = int(self._origins(np.array([col]), self.slide_width)[0])
        y = int(self._origins(np.array([row]), self.slide_height)[0])
        return TileSpec(col, row, round(x * self.factor), round(y * self.factor), side, side)

    def __iter__(self) -> Iterator[TileSpec]:
        rows, cols = self.shape
        for row in range(rows):
            for col in range(cols):
                yield self.tile(col, row)

    def tissue_fractions(self, tissue: TissueMask) -> NDArray[np.float32]:
        """``(rows, cols)`` float32: the fraction of each tile lying on tissue.

        Computed for all tiles at once from a summed-area table of the mask.
        """
        mask = tissue.mask
        # int64 sums: exact for any mask, 8 bytes a mask pixel (the mask is capped in size).
        table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
        np.cumsum(mask, axis=0, dtype=np.int64, out=table[1:, 1:])
        np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
        rows, cols = self.shape
        scale = tissue.scale
        side = self.tile_size * self.factor
        origins_x = self._origins(np.arange(cols), self.slide_width) * self.factor
        origins_y = self._origins(np.arange(rows), self.slide_height) * self.factor
        x0 = np.clip((origins_x / scale).astype(np.int64), 0, mask.shape[1])
        y0 = np.clip((origins_y / scale).astype(np.int64), 0, mask.shape[0])
        x1 = np.clip(np.ceil((origins_x + side) / scale).astype(np.int64), 0, mask.shape[1])
        y1 = np.clip(np.ceil((origins_y + side) / scale).astype(np.int64), 0, mask.shape[0])
        x1 = np.maximum(x1, np.minimum(x0 + 1, mask.shape[1]))
        y1 = np.maximum(y1, np.minimum(y0 + 1, mask.shape[0]))
        total = (table[np.ix_(y1, x1)] - table[np.ix_(y0, x1)]
                 - table[np.ix_(y1, x0)] + table[np.ix_(y0, x0)]).astype(np.float64)
        # The part of a tile beyond the slide's edge counts as background.
        area = max(side / scale, 1.0) ** 2
        return (total / area).clip(0, 1).astype(np.float32)
