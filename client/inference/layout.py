"""Where a slide's inference windows lie, how the work is cut, and which pixels are tissue.

The prediction rasters cover the whole slide at the model's resolution ``mpp`` (µm/px). The
fold networks see windows of their training patch on a lattice anchored at the raster's
origin (:mod:`pathloop.client.inference.windows`). To keep memory flat in the slide's size
the raster is processed in vertical *stripes* of :attr:`InferenceLayout.stripe` columns, and
each stripe top to bottom in *bands* of :attr:`InferenceLayout.band` rows: only one band's
blended logits (plus one patch of rows below it) are ever held. Windows that straddle two
stripes are predicted for both; windows never straddle bands (their rows are carried to the
next band). Stripes and bands only decide the order of work: ``phase`` moves their
boundaries and leaves the maps unchanged, which the tests check.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import RegionError
from pathloop.client.inference.windows import step_pixels, window_origins
from pathloop.client.store.rasters import CHUNK
from pathloop.client.tiling import TissueMask
from pathloop.client.wsi import Slide

MIN_STRIPE = 4096
"""Narrowest stripe in raster pixels; stripes are also at least 8 patches wide, so the
windows predicted twice at stripe edges cost at most ``1 / 16`` more passes (``1 / 64`` for
128-px patches). Rasters up to this wide are one stripe: no window is predicted twice."""


@dataclass(frozen=True)
class Region:
    """A rectangle of the rasters: top-left ``(y, x)`` and size, in raster pixels."""

    y: int
    x: int
    height: int
    width: int


@dataclass(frozen=True)
class InferenceLayout:
    """The window lattice and the order of work over one slide at one resolution.

    Attributes
    ----------
    slide_width, slide_height:
        Level-0 size of the slide in pixels.
    base_mpp:
        Level-0 resolution of the slide in µm/px.
    mpp:
        Resolution of the windows and of the rasters in µm/px.
    raster_height, raster_width:
        Size of the whole slide at ``mpp`` (as :meth:`Slide.size_at` gives it).
    patch:
        ``(rows, columns)`` of a window: the networks' training patch.
    step:
        ``(rows, columns)`` between neighbouring window origins.
    band:
        Rows finished and written at a time within a stripe.
    stripe:
        Columns of a stripe.
    phase:
        Offset of the first band and stripe boundary (work order only; the maps do not
        depend on it).
    """

    slide_width: int
    slide_height: int
    base_mpp: float
    mpp: float
    raster_height: int
    raster_width: int
    patch: tuple[int, int]
    step: tuple[int, int]
    band: int
    stripe: int
    phase: int = 0

    def __post_init__(self) -> None:
        if min(self.patch) < 1 or min(self.step) < 1 or any(
                s > p for s, p in zip(self.step, self.patch, strict=True)):
            raise RegionError(f"windows of {self.patch} px cannot step by {self.step} px "
                              f"(need 1 <= step <= patch)")
        if self.band < 1 or self.stripe < 1:
            raise RegionError(f"bands of {self.band} rows and stripes of {self.stripe} columns "
                              f"must be positive")

    @classmethod
    def for_slide(cls, slide: Slide, *, mpp: float, patch: tuple[int, int],
                  step: float = 0.5, band: int = CHUNK, stripe: int | None = None,
                  phase: int = 0) -> InferenceLayout:
        """The layout of ``slide`` at ``mpp`` µm/px for windows of ``patch`` pixels.

        ``step`` is a fraction of the patch; ``stripe`` defaults to the larger of
        :data:`MIN_STRIPE` and 8 patches, rounded up to whole raster chunks.
        """
        meta = slide.metadata
        width, height = slide.size_at(mpp)
        rows, cols = int(patch[0]), int(patch[1])
        if stripe is None:
            stripe = max(MIN_STRIPE, 8 * cols)
            stripe = math.ceil(stripe / CHUNK) * CHUNK
        return cls(meta.width, meta.height, meta.mpp, float(mpp), height, width,
                   (rows, cols), (step_pixels(rows, step), step_pixels(cols, step)),
                   int(band), int(stripe), int(phase))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the rasters in pixels at :attr:`mpp`."""
        return (self.raster_height, self.raster_width)

    @property
    def factor(self) -> float:
        """Level-0 pixels per raster pixel."""
        return self.mpp / self.base_mpp

    def stripes(self) -> list[tuple[int, int]]:
        """Column ranges ``[x0, x1)`` of the stripes, left to right, inside the raster."""
        return _ranges(self.raster_width, self.stripe, self.phase)

    def window_rows(self) -> NDArray[np.int64]:
        """Row origins of every window that meets the raster, top to bottom."""
        return window_origins(0, self.raster_height, self.patch[0], self.step[0])

    def window_cols(self, x0: int, x1: int) -> NDArray[np.int64]:
        """Column origins of the windows that meet columns ``[x0, x1)``."""
        return window_origins(x0, x1, self.patch[1], self.step[1])

    def first_band(self) -> int:
        """Top row of the first band: on the band grid, at or above every window."""
        top = min(0, int(self.window_rows()[0])) if self.raster_height else 0
        offset = self.phase % self.band
        return offset - self.band * math.ceil((offset - top) / self.band)

    def on_tissue(self, lookup: TissueLookup, rows: NDArray[np.int64],
                  cols: NDArray[np.int64]) -> NDArray[np.bool_]:
        """``(len(rows), len(cols))`` bool: which windows hold any tissue."""
        return lookup.any_in(rows, cols, self.patch)

    def tissue_window(self, tissue: TissueMask, region: Region) -> NDArray[np.bool_]:
        """``(region.height, region.width)`` bool: which pixels of a region lie on tissue.

        A raster pixel takes the value of the tissue-mask pixel under its centre.
        """
        ratio = self.mpp / tissue.mpp
        rows = _centres(region.y, region.height, ratio, tissue.mask.shape[0])
        cols = _centres(region.x, region.width, ratio, tissue.mask.shape[1])
        return tissue.mask[np.ix_(rows, cols)]

    def check_tissue(self, tissue: TissueMask) -> None:
        """Refuse a tissue mask computed on another slide (another level-0 resolution)."""
        if not math.isclose(tissue.base_mpp, self.base_mpp, rel_tol=1e-3):
            raise RegionError(f"the tissue mask was made for a slide at {tissue.base_mpp} µm/px, "
                              f"this slide is at {self.base_mpp} µm/px")


class TissueLookup:
    """Whether rectangles of raster pixels hold tissue, by a summed-area table of the mask.

    A raster pixel counts as tissue when the mask pixel under its centre is (as
    :meth:`InferenceLayout.tissue_window`), so a window is predicted exactly when some pixel
    of it will be kept.
    """

    def __init__(self, tissue: TissueMask, mpp: float) -> None:
        self._ratio = mpp / tissue.mpp
        mask = tissue.mask.astype(np.int64)
        self._table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
        self._table[1:, 1:] = mask.cumsum(0).cumsum(1)
        self._shape = mask.shape

    def any_in(self, rows: NDArray[np.int64], cols: NDArray[np.int64],
               size: tuple[int, int]) -> NDArray[np.bool_]:
        """``(len(rows), len(cols))``: does ``[r, r + size[0]) × [c, c + size[1])`` hold tissue."""
        r0, r1 = self._span(rows, size[0], 0)
        c0, c1 = self._span(cols, size[1], 1)
        t = self._table
        counts = (t[np.ix_(r1, c1)] - t[np.ix_(r0, c1)] - t[np.ix_(r1, c0)]
                  + t[np.ix_(r0, c0)])
        return counts > 0

    def _span(self, starts: NDArray[np.int64], size: int, axis: int
              ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Mask index ranges ``[lo, hi)`` under the centres of each window's pixels."""
        limit = self._shape[axis]
        first = np.floor((starts + 0.5) * self._ratio).astype(np.intp)
        last = np.floor((starts + size - 0.5) * self._ratio).astype(np.intp)
        lo = np.clip(first, 0, limit)
        hi = np.clip(last + 1, 0, limit)
        return lo, np.maximum(hi, lo)


def _ranges(size: int, width: int, phase: int) -> list[tuple[int, int]]:
    """``[a, b)`` pieces of ``[0, size)`` cut at ``phase + k * width``."""
    cuts = sorted({0, size} | {c for c in range(phase % width, size, width) if 0 < c < size})
    return list(itertools.pairwise(cuts))


def _centres(start: int, count: int, ratio: float, limit: int) -> NDArray[np.intp]:
    """Mask indices under the centres of raster pixels ``start … start + count - 1``."""
    positions = (np.arange(start, start + count, dtype=np.float64) + 0.5) * ratio
    return np.clip(positions.astype(np.intp), 0, limit - 1)


__all__ = ["MIN_STRIPE", "InferenceLayout", "Region", "TissueLookup"]
