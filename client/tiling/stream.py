"""Streaming tissue tiles out of a slide, one tile in memory at a time."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from pathloop.client.tiling.grid import TileGrid, TileSpec
from pathloop.client.tiling.tissue import TissueMask
from pathloop.client.wsi import RGBImage, Slide

# The UGA rule: a pixel is white when all channels are at least WHITE, black when none
# exceeds BLACK; a tile with more than 70% such pixels is background.
WHITE = 220
BLACK = 30


@dataclass(frozen=True)
class Tile:
    """A tile read from a slide.

    Attributes
    ----------
    spec:
        Where it lies (level-0 box, grid position).
    pixels:
        ``(tile_size, tile_size, 3)`` uint8 RGB at the grid's µm/px.
    tissue_fraction:
        Fraction of the tile on the tissue mask.
    background_fraction:
        Fraction of its pixels that are black or white.
    """

    spec: TileSpec
    pixels: RGBImage
    tissue_fraction: float
    background_fraction: float


def background_fraction(pixels: RGBImage) -> float:
    """Fraction of pixels of a ``(h, w, 3)`` uint8 RGB image that are black or white."""
    # Element-wise min/max of the three channel planes: ~20× faster than .min(axis=2).
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    low = np.minimum(np.minimum(red, green), blue)
    high = np.maximum(np.maximum(red, green), blue)
    background = (low >= WHITE) | (high <= BLACK)
    return float(np.count_nonzero(background)) / background.size


def candidate_tiles(grid: TileGrid, tissue: TissueMask,
                    min_tissue_fraction: float) -> list[tuple[TileSpec, float]]:
    """Tiles whose tissue fraction reaches ``min_tissue_fraction`` with it, row by row."""
    fractions = grid.tissue_fractions(tissue)
    rows, cols = np.nonzero(fractions >= min_tissue_fraction)
    return [(grid.tile(col, row), float(fractions[row, col]))
            for row, col in zip(rows.tolist(), cols.tolist(), strict=True)]


def iter_tissue_tiles(slide: Slide, grid: TileGrid, tissue: TissueMask, *,
                      min_tissue_fraction: float = 0.25,
                      max_background_fraction: float = 0.7,
                      workers: int = 2,
                      progress: Callable[[int, int], None] | None = None) -> Iterator[Tile]:
    """Read the tissue tiles of ``slide`` in grid order.

    A tile is read when at least ``min_tissue_fraction`` of it lies on ``tissue``, and yielded
    when no more than ``max_background_fraction`` of its pixels are black or white.
    ``workers`` threads decode tiles ahead of the consumer (OpenSlide releases the GIL while
    decoding); at most ``4 × workers`` tiles are in flight, so memory does not grow with the
    slide. ``progress`` is called with ``(read, candidates)`` after every read.
    """
    candidates = candidate_tiles(grid, tissue, min_tissue_fraction)

    def read(item: tuple[TileSpec, float]) -> Tile:
        spec, fraction = item
        pixels = slide.read_region(spec.x, spec.y, grid.tile_size, grid.tile_size, grid.mpp)
        return Tile(spec, pixels, fraction, background_fraction(pixels))

    if workers <= 1:
        tiles: Iterator[Tile] = map(read, candidates)
    else:
        tiles = _prefetch(read, candidates, workers)
    try:
        for done, tile in enumerate(tiles, start=1):
            if progress is not None:
                progress(done, len(candidates))  # may raise, e.g. to cancel
            if tile.background_fraction <= max_background_fraction:
                yield tile
    finally:
        # Wait for the reads in flight before the caller may close the slide under them.
        close = getattr(tiles, "close", None)
        if close is not None:
            close()


def _prefetch(read: Callable[[tuple[TileSpec, float]], Tile],
              items: list[tuple[TileSpec, float]], workers: int) -> Iterator[Tile]:
    """``map(read, items)`` in order, with a bounded window of reads running in threads."""
    window = 4 * workers
    pending: deque[Future[Tile]] = deque()
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tile-read")
    try:
        for item in items:
            pending.append(executor.submit(read, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
