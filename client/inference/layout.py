"""Where the overlapping inference tiles of a slide lie, and which pixels are tissue.

The prediction rasters cover the whole slide at the model's resolution ``mpp`` (µm/px). They
are cut into square *cores* of ``tile_size - overlap`` raster pixels on a regular grid; each
core is predicted from a tile of ``tile_size`` pixels that extends ``overlap // 2`` pixels
beyond it on the top and left (and the rest of ``overlap`` on the bottom and right), and only
the core is written. Every raster pixel is therefore written exactly once, by a tile that saw
at least ``overlap // 2`` pixels of context around it, so a network whose receptive field
fits in that margin leaves no seams. Context beyond the slide's edge reads as white glass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import RegionError
from pathloop.client.tiling import TileGrid, TissueMask
from pathloop.client.wsi import Slide


@dataclass(frozen=True)
class InferenceBlock:
    """One core of the inference grid and the tile read to predict it.

    Attributes
    ----------
    row, col:
        Position in the grid of cores.
    y, x:
        Top-left corner of the core in raster pixels (at the layout's ``mpp``).
    height, width:
        Size of the core in raster pixels, clipped to the raster (smaller on the last row
        and column).
    read_x, read_y:
        Top-left corner of the tile to read, in level-0 pixels of the slide (may be
        negative: the slide reads outside itself as white).
    """

    row: int
    col: int
    y: int
    x: int
    height: int
    width: int
    read_x: int
    read_y: int


@dataclass(frozen=True)
class InferenceLayout:
    """The grid of overlapping tiles over one slide at one resolution.

    Attributes
    ----------
    slide_width, slide_height:
        Level-0 size of the slide in pixels.
    base_mpp:
        Level-0 resolution of the slide in µm/px.
    mpp:
        Resolution of the tiles and of the rasters in µm/px.
    raster_height, raster_width:
        Size of the whole slide at ``mpp`` (as :meth:`Slide.size_at` gives it).
    tile_size:
        Edge of the tiles given to the model, in pixels at ``mpp``.
    overlap:
        Pixels (at ``mpp``) by which neighbouring tiles overlap; ``tile_size - overlap`` is
        the core written from each tile.
    """

    slide_width: int
    slide_height: int
    base_mpp: float
    mpp: float
    raster_height: int
    raster_width: int
    tile_size: int
    overlap: int

    def __post_init__(self) -> None:
        if self.overlap < 0 or self.tile_size <= self.overlap:
            raise RegionError(f"inference tiles of {self.tile_size} px cannot overlap by "
                              f"{self.overlap} px (need 0 <= overlap < tile size)")

    @classmethod
    def for_slide(cls, slide: Slide, *, mpp: float, tile_size: int,
                  overlap: int) -> InferenceLayout:
        """The layout of ``slide`` at ``mpp`` µm/px with tiles of ``tile_size`` pixels."""
        meta = slide.metadata
        width, height = slide.size_at(mpp)
        return cls(meta.width, meta.height, meta.mpp, float(mpp), height, width,
                   int(tile_size), int(overlap))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the rasters in pixels at :attr:`mpp`."""
        return (self.raster_height, self.raster_width)

    @property
    def core(self) -> int:
        """Edge of the part of each tile that is written, in pixels at :attr:`mpp`."""
        return self.tile_size - self.overlap

    @property
    def margin(self) -> int:
        """Context pixels on the top and left of each core (at least on every side but 1)."""
        return self.overlap // 2

    @property
    def factor(self) -> float:
        """Level-0 pixels per raster pixel."""
        return self.mpp / self.base_mpp

    def grid(self) -> TileGrid:
        """The grid of cores as a :class:`TileGrid` (level-0 boxes, tissue fractions)."""
        return TileGrid(self.slide_width, self.slide_height, self.base_mpp, self.mpp,
                        self.core, self.core)

    def blocks(self, tissue: TissueMask) -> list[InferenceBlock]:
        """The cores that touch tissue, row by row, with the tiles to read for them."""
        fractions = self.grid().tissue_fractions(tissue)
        rows, cols = np.nonzero(fractions > 0)
        out = []
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            y, x = row * self.core, col * self.core
            if y >= self.raster_height or x >= self.raster_width:
                continue  # the grid rounds the slide's extent up; the raster rounds it
            out.append(InferenceBlock(
                row=row, col=col, y=y, x=x,
                height=min(self.core, self.raster_height - y),
                width=min(self.core, self.raster_width - x),
                read_x=round((x - self.margin) * self.factor),
                read_y=round((y - self.margin) * self.factor),
            ))
        return out

    def tissue_window(self, tissue: TissueMask, block: InferenceBlock) -> NDArray[np.bool_]:
        """``(block.height, block.width)`` bool: which pixels of a core lie on ``tissue``.

        A raster pixel takes the value of the tissue-mask pixel under its centre.
        """
        ratio = self.mpp / tissue.mpp
        rows = _centres(block.y, block.height, ratio, tissue.mask.shape[0])
        cols = _centres(block.x, block.width, ratio, tissue.mask.shape[1])
        return tissue.mask[np.ix_(rows, cols)]

    def check_tissue(self, tissue: TissueMask) -> None:
        """Refuse a tissue mask computed on another slide (another level-0 resolution)."""
        if not math.isclose(tissue.base_mpp, self.base_mpp, rel_tol=1e-3):
            raise RegionError(f"the tissue mask was made for a slide at {tissue.base_mpp} µm/px, "
                              f"this slide is at {self.base_mpp} µm/px")


def _centres(start: int, count: int, ratio: float, limit: int) -> NDArray[np.intp]:
    """Mask indices under the centres of raster pixels ``start … start + count - 1``."""
    positions = (np.arange(start, start + count, dtype=np.float64) + 0.5) * ratio
    return np.clip(positions.astype(np.intp), 0, limit - 1)


__all__ = ["InferenceBlock", "InferenceLayout"]
