"""Reading slide regions at a resolution in µm/px.

Callers never pick a pyramid level: they ask for a region at a resolution and
:class:`Slide` picks the best level (the coarsest one at least as fine as asked), reads it
and resamples. A backend only has to implement :class:`LevelSource`, which reads one level.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import TracebackType
from typing import Protocol, Self

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pathloop.client.errors import RegionError
from pathloop.client.wsi.metadata import SlideMetadata

RGBImage = NDArray[np.uint8]
"""An ``(height, width, 3)`` uint8 RGB image."""

# A level whose downsample exceeds the asked one by at most this much still counts as fine
# enough (vendors store e.g. 4.016 for a nominal 4× level).
_LEVEL_TOLERANCE = 0.01
# Reads needing more than this many level pixels (squared) go block by block, so memory
# stays bounded whatever the output size or the level's resolution.
_BLOCK = 2048


class LevelSource(Protocol):
    """One backend's access to the pyramid levels of an open slide."""

    def read_level(self, level: int, x: int, y: int, width: int, height: int,
                   size: tuple[int, int] | None = None) -> RGBImage:
        """Read ``width × height`` level pixels from ``level``; ``(x, y)`` in level-0 px.

        Returns ``(height, width, 3)`` uint8 RGB, or, given ``size = (w, h)``, the read
        resampled by :func:`resize_image` to ``(h, w, 3)`` (a backend holding the pixels as
        an image resamples before converting them). Areas outside the slide are white.
        """
        ...

    def associated_image(self, name: str) -> RGBImage:
        """An associated image (label, macro, …) as RGB."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


class Slide:
    """An open slide: metadata plus region reads at a resolution in µm/px.

    Use :func:`pathloop.client.wsi.open_slide` to get one; close it (or use ``with``).
    """

    def __init__(self, metadata: SlideMetadata, source: LevelSource) -> None:
        self.metadata = metadata
        self._source = source

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the slide file."""
        self._source.close()

    def best_level(self, downsample: float) -> int:
        """The coarsest level whose downsample does not exceed ``downsample`` (1% slack)."""
        best = 0
        for level, level_ds in enumerate(self.metadata.level_downsamples):
            if level_ds <= downsample * (1 + _LEVEL_TOLERANCE):
                best = level
        return best

    def size_at(self, mpp: float) -> tuple[int, int]:
        """``(width, height)`` in pixels of the whole slide at ``mpp`` µm/px."""
        factor = self._downsample_for(mpp)
        return (
            max(1, round(self.metadata.width / factor)),
            max(1, round(self.metadata.height / factor)),
        )

    def read_region(self, x: int, y: int, width: int, height: int, mpp: float) -> RGBImage:
        """Read a region at a resolution.

        Parameters
        ----------
        x, y:
            Top-left corner in level-0 pixels.
        width, height:
            Output size in pixels at ``mpp``.
        mpp:
            Output resolution in µm/px.

        Returns
        -------
        ndarray
            ``(height, width, 3)`` uint8 RGB; areas outside the slide are white.
        """
        if width <= 0 or height <= 0:
            raise RegionError(f"{self.metadata.path}: region size must be positive, "
                              f"got {width}×{height}")
        factor = self._downsample_for(mpp)
        # Level pixels read per output pixel, per axis: bounds what one block decodes.
        scale = factor / self.metadata.level_downsamples[self.best_level(factor)]
        if width * height * scale * scale <= _BLOCK * _BLOCK:
            return self._read_block(x, y, width, height, factor)
        out = np.empty((height, width, 3), dtype=np.uint8)
        for by, bx, bh, bw in _blocks(height, width, max(1, int(_BLOCK / scale))):
            out[by:by + bh, bx:bx + bw] = self._read_block(
                x + round(bx * factor), y + round(by * factor), bw, bh, factor
            )
        return out

    def read_level_region(self, level: int, x: int, y: int, width: int,
                          height: int) -> RGBImage:
        """Read ``(height, width, 3)`` uint8 RGB from one pyramid level, as stored.

        For this package only (Deep Zoom tiles reproduce OpenSlide's level reads); everyone
        else reads at a resolution with :meth:`read_region`. ``(x, y)`` is in level-0 px,
        ``width`` and ``height`` in the level's px; areas outside the slide are white.
        """
        if not 0 <= level < self.metadata.level_count:
            raise RegionError(f"{self.metadata.path}: no level {level} "
                              f"(has 0..{self.metadata.level_count - 1})")
        if width <= 0 or height <= 0:
            raise RegionError(f"{self.metadata.path}: region size must be positive, "
                              f"got {width}×{height}")
        return self._source.read_level(level, x, y, width, height)

    def thumbnail(self, mpp: float) -> RGBImage:
        """The whole slide at ``mpp`` µm/px, ``(height, width, 3)`` uint8, read block by block."""
        width, height = self.size_at(mpp)
        return self.read_region(0, 0, width, height, mpp)

    def associated_image(self, name: str) -> RGBImage:
        """A label/macro/thumbnail image stored in the file, ``(h, w, 3)`` uint8 RGB."""
        if name not in self.metadata.associated_images:
            raise RegionError(f"{self.metadata.path}: no associated image {name!r} "
                              f"(has: {', '.join(self.metadata.associated_images) or 'none'})")
        return self._source.associated_image(name)

    def _downsample_for(self, mpp: float) -> float:
        if not math.isfinite(mpp) or mpp <= 0:
            raise RegionError(f"{self.metadata.path}: resolution must be a positive µm/px, "
                              f"got {mpp}")
        return mpp / self.metadata.mpp

    def _read_block(self, x: int, y: int, width: int, height: int, factor: float) -> RGBImage:
        level = self.best_level(factor)
        scale = factor / self.metadata.level_downsamples[level]  # ≥ 1: the level is finer
        level_w = max(1, round(width * scale))
        level_h = max(1, round(height * scale))
        if (level_w, level_h) == (width, height):
            # Resampling would move no edge by half a pixel or more: the level is the answer.
            return self._source.read_level(level, x, y, level_w, level_h)
        return self._source.read_level(level, x, y, level_w, level_h, size=(width, height))


def resize_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """The resampling every read uses: box filter down (an exact ``reduce`` for a whole
    factor), bilinear up."""
    shrinking = width < image.width or height < image.height
    ratio_x, ratio_y = image.width / width, image.height / height
    if shrinking and ratio_x.is_integer() and ratio_x == ratio_y:
        return image.reduce(int(ratio_x))
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return image.resize((width, height), method)


def resize(pixels: RGBImage, width: int, height: int) -> RGBImage:
    """:func:`resize_image` for ``(h, w, 3)`` uint8 RGB, to ``(height, width, 3)``."""
    return np.asarray(resize_image(Image.fromarray(pixels), width, height), dtype=np.uint8)


def _blocks(height: int, width: int, block: int) -> Iterator[tuple[int, int, int, int]]:
    """``(y, x, h, w)`` of the blocks covering a ``height × width`` output."""
    for by in range(0, height, block):
        for bx in range(0, width, block):
            yield by, bx, min(block, height - by), min(block, width - bx)
