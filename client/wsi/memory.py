"""An in-memory slide: the small fake behind :class:`~pathloop.client.wsi.reader.Slide`.

Tests and synthetic examples use it to exercise tiling and ranking without files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pathloop.client.wsi.metadata import SlideMetadata
from pathloop.client.wsi.reader import RGBImage, Slide, resize


class InMemorySource:
    """Pyramid levels held as arrays; level ``k`` is level 0 subsampled by ``2**k``."""

    def __init__(self, level0: RGBImage, levels: int) -> None:
        self.levels = [level0[:: 2**k, :: 2**k] for k in range(levels)]

    def read_level(self, level: int, x: int, y: int, width: int, height: int,
                   size: tuple[int, int] | None = None) -> RGBImage:
        data = self.levels[level]
        ds = 2**level
        lx, ly = int(x // ds), int(y // ds)
        out = np.full((height, width, 3), 255, dtype=np.uint8)
        src = data[max(ly, 0): ly + height, max(lx, 0): lx + width]
        oy, ox = max(-ly, 0), max(-lx, 0)
        out[oy: oy + src.shape[0], ox: ox + src.shape[1]] = src[: height - oy, : width - ox]
        return out if size is None else resize(out, *size)

    def associated_image(self, name: str) -> RGBImage:
        raise KeyError(name)

    def close(self) -> None:
        """Nothing to release."""


def in_memory_slide(level0: RGBImage, *, mpp: float | None, levels: int = 1,
                    name: str = "memory") -> Slide:
    """Wrap a ``(height, width, 3)`` uint8 RGB array as a slide with ``levels`` 2× levels."""
    source = InMemorySource(np.ascontiguousarray(level0, dtype=np.uint8), levels)
    dims = tuple((int(a.shape[1]), int(a.shape[0])) for a in source.levels)
    metadata = SlideMetadata(
        path=Path(name),
        backend="memory",
        vendor="memory",
        level_dimensions=dims,
        level_downsamples=tuple(float(2**k) for k in range(levels)),
        mpp_x=mpp,
        mpp_y=mpp,
        mpp_source="slide" if mpp is not None else None,
        objective_power=None,
    )
    return Slide(metadata, source)
