"""Lower pyramid levels built while level 0 streams past, in bounded memory.

Level ``l`` is level 0 box-downsampled by ``4**l`` (each level 4x smaller than the one above),
down to the first level whose longer side is under ``SMALLEST_LEVEL`` px. Every level-0 tile
is reduced to a (T/4, T/4) block as soon as it is rendered and dropped into a one-tile-row
buffer of level 1; a full level-1 tile row is encoded to JPEG, spilled to a temporary file,
reduced again into level 2's row buffer, and so on. Memory is one tile row per level (about
15 MB for level 1 of an 80,000 px slide) plus the smallest level, which doubles as the
thumbnail; the encoded tiles wait on disk until their TIFF page is written after level 0.

Tiles whose every source tile was bare glass are, by construction, the level's glass tile:
they are never encoded again but reuse one pre-encoded JPEG.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

SMALLEST_LEVEL = 1024  # px: the pyramid stops at the first level smaller than this
FACTOR = 4  # linear downsample between consecutive levels

Encoder = Callable[[NDArray[np.uint8]], bytes]


def level_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """``(width, height)`` of every level, level 0 first (each ``//4`` of the one above)."""
    sizes = [(width, height)]
    while max(sizes[-1]) >= SMALLEST_LEVEL and min(sizes[-1]) >= FACTOR:
        w, h = sizes[-1]
        sizes.append((w // FACTOR, h // FACTOR))
    return sizes


def reduce(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Box-downsample (h, w, 3) uint8 by 4 in each direction; (h/4, w/4, 3) uint8, rounded.

    Pillow's ``Image.reduce`` is the exact rounded 4x4 mean, an order of magnitude faster than
    a numpy reshape-and-sum.
    """
    return np.asarray(Image.fromarray(pixels).reduce(FACTOR))


class _Level:
    """The row buffer, glass tile and spilled JPEG tiles of one level below level 0."""

    def __init__(self, size: tuple[int, int], tile: int, glass: NDArray[np.uint8],
                 encode: Encoder, spill_dir: Path) -> None:
        self.width, self.height = size
        self.tile = tile
        self.columns = -(-self.width // tile)
        self.rows = -(-self.height // tile)
        self.glass = glass
        self.glass_jpeg = encode(glass)
        self._encode = encode
        self.buffer = np.tile(glass, (1, self.columns, 1))  # (T, columns*T, 3)
        self.bare = np.ones(self.columns, dtype=bool)  # tile of the current row is all glass
        self.filled = 0  # source tile rows received for the current row
        self.row = 0  # index of the current row
        self._spill: BinaryIO = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115
        self._index: list[tuple[int, int]] = []  # (offset, length); length 0 = glass

    def emit_row(self) -> None:
        """Encode the current row's tiles to the spill file."""
        t = self.tile
        for column in range(self.columns):
            if self.bare[column]:
                self._index.append((0, 0))
                continue
            data = self._encode(np.ascontiguousarray(self.buffer[:, column * t:(column + 1) * t]))
            self._index.append((self._spill.tell(), len(data)))
            self._spill.write(data)

    def reset_row(self) -> None:
        self.buffer[:] = np.tile(self.glass, (1, self.columns, 1))
        self.bare[:] = True
        self.filled = 0
        self.row += 1

    def tiles(self) -> Iterator[bytes]:
        """Every encoded tile of the level, row-major, as its TIFF page wants them."""
        self._spill.flush()
        for offset, length in self._index:
            if length == 0:
                yield self.glass_jpeg
            else:
                self._spill.seek(offset)
                yield self._spill.read(length)

    def close(self) -> None:
        self._spill.close()


class PyramidBuilder:
    """Collects level-0 tiles, row-major, and builds every lower level from them.

    Parameters
    ----------
    sizes : ``(width, height)`` of every level, from :func:`level_sizes`.
    tile : tile side T in px (a multiple of 64).
    glass : (T, T, 3) uint8, the level-0 tile of bare glass (periodic within the tile).
    encode : turns a (T, T, 3) uint8 tile into its JPEG bytes.
    spill_dir : folder for the temporary files holding encoded lower-level tiles.
    """

    def __init__(self, sizes: list[tuple[int, int]], tile: int, glass: NDArray[np.uint8],
                 encode: Encoder, spill_dir: Path) -> None:
        self.sizes = sizes
        self.tile = tile
        self.columns0 = -(-sizes[0][0] // tile)
        self.rows0 = -(-sizes[0][1] // tile)
        self._levels: list[_Level] = []
        level_glass = glass
        for size in sizes[1:]:
            block = reduce(level_glass)
            level_glass = np.tile(block, (FACTOR, FACTOR, 1))
            self._levels.append(_Level(size, tile, level_glass, encode, spill_dir))
        w, h = sizes[-1]
        self.smallest = np.empty((h, w, 3), dtype=np.uint8)
        """(h, w, 3) uint8: the smallest level, filled as rows complete (the thumbnail)."""
        self._glass = glass
        self.glass_block = reduce(glass)
        """(T/4, T/4, 3) uint8: a glass level-0 tile reduced, for :meth:`add_tile`."""

    def add_tile(self, column: int, row: int, pixels: NDArray[np.uint8] | None,
                 reduced: NDArray[np.uint8], bare: bool) -> None:
        """Take level-0 tile ``(column, row)``; tiles must come row-major.

        ``pixels`` is the (T, T, 3) tile, needed only when level 0 is the smallest level;
        ``reduced`` is :func:`reduce` of it; ``bare`` says it is the glass tile.
        """
        t = self.tile
        if not self._levels:
            self._into_smallest(row, column * t, self._glass if pixels is None else pixels)
        else:
            level = self._levels[0]
            q = t // FACTOR
            x = column * q
            if x < level.buffer.shape[1]:
                y = level.filled * q
                width = min(q, level.buffer.shape[1] - x)
                level.buffer[y : y + q, x : x + width] = reduced[:, :width]
                if not bare:
                    level.bare[x // t] = False
        if column == self.columns0 - 1:
            self._row_done(0, last=row == self.rows0 - 1)

    def _row_done(self, depth: int, last: bool) -> None:
        """A tile row of level ``depth`` is complete: feed it to level ``depth + 1``."""
        if depth >= len(self._levels):
            return
        level = self._levels[depth]
        level.filled += 1
        if level.filled < FACTOR and not last:
            return
        if level.row < level.rows:
            level.emit_row()
            if depth == len(self._levels) - 1:
                self._into_smallest(level.row, 0, level.buffer)
            else:
                self._feed(level, self._levels[depth + 1])
            self._row_done(depth + 1, last=last or level.row == level.rows - 1)
        level.reset_row()

    def _feed(self, source: _Level, target: _Level) -> None:
        """Reduce ``source``'s current row into ``target``'s row buffer."""
        q = self.tile // FACTOR
        reduced = reduce(source.buffer)
        width = min(reduced.shape[1], target.buffer.shape[1])
        y = target.filled * q
        target.buffer[y : y + q, :width] = reduced[:, :width]
        for column in np.flatnonzero(~source.bare):
            if column // FACTOR < target.columns:
                target.bare[column // FACTOR] = False

    def _into_smallest(self, row: int, x: int, pixels: NDArray[np.uint8]) -> None:
        h, w, _ = self.smallest.shape
        y = row * self.tile
        if y >= h or x >= w:
            return
        rows, cols = min(pixels.shape[0], h - y), min(pixels.shape[1], w - x)
        self.smallest[y : y + rows, x : x + cols] = pixels[:rows, :cols]

    def level_tiles(self, level: int) -> Iterator[bytes]:
        """Encoded tiles of ``level`` (>= 1), row-major; call after all level-0 tiles."""
        return self._levels[level - 1].tiles()

    def close(self) -> None:
        for level in self._levels:
            level.close()
