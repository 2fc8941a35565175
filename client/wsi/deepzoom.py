"""Deep Zoom pyramids over a slide: OpenSlide's ``DeepZoomGenerator`` geometry and tiles.

A Deep Zoom (DZ) pyramid halves the slide, rounding up, until it is 1×1 px; its levels are
numbered from that 1×1 level (0) to the level-0 resolution (``level_count - 1``), so DZ level
``k`` has ``2 ** (level_count - 1 - k)`` level-0 px per px. Each level is cut into
``tile_size`` tiles (the last column and row narrower) that carry ``overlap`` extra px on each
interior edge. :class:`DeepZoomGrid` is exactly ``openslide.deepzoom.DeepZoomGenerator``'s
geometry with ``limit_bounds=False``; :func:`read_deepzoom_tile` reads a tile's pixels the
way ``DeepZoomGenerator.get_tile`` does, through :class:`~pathloop.client.wsi.reader.Slide`
(so from any backend, tiffslide and the in-memory fake included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from io import BytesIO
from xml.etree.ElementTree import Element, ElementTree, SubElement

import numpy as np
from PIL import Image

from pathloop.client.errors import RegionError, TileOutOfRangeError
from pathloop.client.wsi.reader import RGBImage, Slide

_DZI_NAMESPACE = "http://schemas.microsoft.com/deepzoom/2008"


@dataclass(frozen=True)
class DeepZoomTile:
    """One tile of a Deep Zoom pyramid and the slide region it shows.

    Attributes
    ----------
    level, col, row:
        DZ level (0 is the 1×1 px level) and the tile's column and row in it.
    x, y:
        Level-0 px of the top-left corner of the region the tile shows, overlap included.
    width, height:
        Level-0 size of that region. The last column and row of a coarse level are clipped
        to the slide: the DZ level's size rounds up, and the tile stretches the slide's edge
        over its pixels, as ``DeepZoomGenerator`` does.
    out_width, out_height:
        The tile's size in px (``get_tile_dimensions``).
    """

    level: int
    col: int
    row: int
    x: float
    y: float
    width: float
    height: float
    out_width: int
    out_height: int


class DeepZoomGrid:
    """Geometry of a Deep Zoom pyramid over a slide of ``width × height`` level-0 px.

    Exactly ``openslide.deepzoom.DeepZoomGenerator``'s with ``limit_bounds=False``. The grid
    knows nothing of slide files; :func:`read_deepzoom_tile` reads its tiles from a slide.

    Parameters
    ----------
    width, height:
        Level-0 size of the slide in px.
    tile_size:
        Edge of a tile in px, overlap excluded (254 + 2 × 1 makes 256 px interior tiles).
    overlap:
        Extra px on each interior edge of a tile.

    Attributes
    ----------
    level_count:
        Number of DZ levels; the last one is at level-0 resolution.
    level_dimensions:
        ``(width, height)`` in px of every DZ level, smallest first.
    level_tiles:
        ``(columns, rows)`` of tiles of every DZ level, smallest first.
    """

    def __init__(self, width: int, height: int, tile_size: int = 254, overlap: int = 1) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"a slide has at least 1×1 px, got {width}×{height}")
        if tile_size < 1 or overlap < 0:
            raise ValueError(f"tile_size must be ≥ 1 and overlap ≥ 0, "
                             f"got {tile_size} and {overlap}")
        self.width = width
        self.height = height
        self.tile_size = tile_size
        self.overlap = overlap
        size = (width, height)
        sizes = [size]
        while size[0] > 1 or size[1] > 1:
            size = (max(1, math.ceil(size[0] / 2)), max(1, math.ceil(size[1] / 2)))
            sizes.append(size)
        self.level_dimensions: tuple[tuple[int, int], ...] = tuple(reversed(sizes))
        self.level_tiles: tuple[tuple[int, int], ...] = tuple(
            (math.ceil(w / tile_size), math.ceil(h / tile_size))
            for w, h in self.level_dimensions
        )
        self.level_count: int = len(self.level_dimensions)

    def __repr__(self) -> str:
        return (f"DeepZoomGrid({self.width}, {self.height}, tile_size={self.tile_size}, "
                f"overlap={self.overlap})")

    @property
    def tile_count(self) -> int:
        """Number of tiles over all DZ levels."""
        return sum(cols * rows for cols, rows in self.level_tiles)

    def downsample(self, level: int) -> float:
        """Level-0 px per px of DZ ``level``: ``2 ** (level_count - 1 - level)``."""
        self._check_level(level)
        return float(2 ** (self.level_count - 1 - level))

    def tile(self, level: int, col: int, row: int) -> DeepZoomTile:
        """The tile at ``col``, ``row`` of DZ ``level`` and the level-0 region it shows.

        Raises
        ------
        TileOutOfRangeError
            When the level, column or row lies outside the pyramid.
        """
        self._check_level(level)
        cols, rows = self.level_tiles[level]
        if not (0 <= col < cols and 0 <= row < rows):
            raise TileOutOfRangeError(
                f"deep-zoom tile {level}/{col}_{row} is outside the pyramid: level {level} "
                f"has columns 0..{cols - 1} and rows 0..{rows - 1}")
        level_w, level_h = self.level_dimensions[level]
        x0, out_w = self._span(col, cols, level_w)
        y0, out_h = self._span(row, rows, level_h)
        ds = self.downsample(level)
        x, y = ds * x0, ds * y0
        return DeepZoomTile(level=level, col=col, row=row, x=x, y=y,
                            width=min(ds * out_w, self.width - x),
                            height=min(ds * out_h, self.height - y),
                            out_width=out_w, out_height=out_h)

    def level_region(self, tile: DeepZoomTile, level_downsample: float,
                     level_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """What to read for ``tile`` from a slide level, as ``DeepZoomGenerator`` reads it.

        Parameters
        ----------
        tile:
            A tile of this grid.
        level_downsample:
            Downsample of the slide level to read (at most the DZ level's).
        level_size:
            ``(width, height)`` of that slide level in its px.

        Returns
        -------
        tuple
            ``(x, y, width, height)``: top-left in level-0 px (rounded down), size in the
            slide level's px (rounded up, clipped to the level), the arguments of
            ``OpenSlide.read_region`` that ``get_tile_coordinates`` gives.
        """
        # The same float operations, in the same order, as DeepZoomGenerator._get_tile_info,
        # so that the rounding agrees to the pixel.
        ds = self.downsample(tile.level)
        per_dz = ds / level_downsample  # slide-level px per DZ px
        region = []
        for start, out, limit in ((tile.x, tile.out_width, level_size[0]),
                                  (tile.y, tile.out_height, level_size[1])):
            level_start = per_dz * int(start / ds)
            region.append((int(level_downsample * level_start),
                           int(min(math.ceil(per_dz * out), limit - math.ceil(level_start)))))
        (x, width), (y, height) = region
        return x, y, width, height

    def dzi_xml(self, format: str = "jpeg") -> str:
        """The ``.dzi`` descriptor of the pyramid (as ``DeepZoomGenerator.get_dzi``).

        Parameters
        ----------
        format:
            Tile image format named in it: ``"jpeg"`` or ``"png"``.
        """
        image = Element("Image", TileSize=str(self.tile_size), Overlap=str(self.overlap),
                        Format=format, xmlns=_DZI_NAMESPACE)
        SubElement(image, "Size", Width=str(self.width), Height=str(self.height))
        buffer = BytesIO()
        ElementTree(element=image).write(buffer, encoding="UTF-8")
        return buffer.getvalue().decode("UTF-8")

    def _check_level(self, level: int) -> None:
        if not 0 <= level < self.level_count:
            raise TileOutOfRangeError(
                f"deep-zoom level {level} is outside the pyramid: levels are "
                f"0..{self.level_count - 1}")

    def _span(self, index: int, count: int, limit: int) -> tuple[int, int]:
        """Start and length in DZ px of tile ``index`` of ``count`` along one axis."""
        before = self.overlap if index != 0 else 0
        after = self.overlap if index != count - 1 else 0
        start = self.tile_size * index
        return start - before, min(self.tile_size, limit - start) + before + after


def read_deepzoom_tile(slide: Slide, grid: DeepZoomGrid, level: int, col: int,
                       row: int) -> RGBImage:
    """Read one Deep Zoom tile's pixels, as ``DeepZoomGenerator.get_tile`` makes them.

    The region is read from the coarsest slide level whose downsample does not exceed the DZ
    level's (:meth:`Slide.best_level`, with its 1% slack for vendors' 4.016-style
    downsamples, so a level OpenSlide would skip by a hair is used) and resized to the
    tile's size with a Lanczos filter.

    Parameters
    ----------
    slide:
        The open slide; ``grid`` must have its level-0 size.
    grid:
        The pyramid's geometry.
    level, col, row:
        The tile's DZ level, column and row.

    Returns
    -------
    ndarray
        ``(out_height, out_width, 3)`` uint8 RGB at ``grid.downsample(level)`` level-0 px
        per px (µm/px: that times the slide's); outside the slide is white.

    Raises
    ------
    TileOutOfRangeError
        When the tile lies outside the pyramid.
    RegionError
        When ``grid`` was made for a slide of another size.
    """
    meta = slide.metadata
    if (meta.width, meta.height) != (grid.width, grid.height):
        raise RegionError(f"{meta.path}: a deep-zoom grid over {grid.width}×{grid.height} px "
                          f"does not fit this {meta.width}×{meta.height} px slide")
    tile = grid.tile(level, col, row)
    slide_level = slide.best_level(grid.downsample(level))
    x, y, width, height = grid.level_region(tile, meta.level_downsamples[slide_level],
                                            meta.level_dimensions[slide_level])
    pixels = slide.read_level_region(slide_level, x, y, width, height)
    size = (tile.out_width, tile.out_height)
    if (width, height) == size:
        return pixels
    # reducing_gap: a box reduce first, then Lanczos over the last ≤ 2×, as Image.thumbnail
    # (which DeepZoomGenerator calls) does.
    resized = Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.uint8)


def read_deepzoom_level(slide: Slide, grid: DeepZoomGrid, level: int) -> RGBImage:
    """One whole Deep Zoom level in one read: ``(height, width, 3)`` of its dimensions.

    Read from the coarsest slide level whose downsample does not exceed the DZ level's and
    Lanczos-resized at one scale (the level's dimensions over the slide's), as
    :func:`read_deepzoom_tile` does tile by tile. Meant for the small levels a viewer
    shows first; memory is the slide level's region, so keep ``level`` small.
    """
    grid.tile(level, 0, 0)  # the level exists
    meta = slide.metadata
    slide_level = slide.best_level(grid.downsample(level))
    level_width, level_height = meta.level_dimensions[slide_level]
    pixels = slide.read_level_region(slide_level, 0, 0, level_width, level_height)
    size = grid.level_dimensions[level]
    if (level_width, level_height) == size:
        return pixels
    resized = Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.uint8)


__all__ = ["DeepZoomGrid", "DeepZoomTile", "read_deepzoom_level", "read_deepzoom_tile"]
