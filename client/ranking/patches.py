"""Candidate patches of a slide: a grid at a resolution, filtered to foreground tissue.

The UGA paper scores patches of 1024 × 1024 px at 1 µm/px (1024 µm a side) and excludes
those with more than 70% black or white pixels. Here a patch must also lie inside the slide
(the grid's last row and column end at the slide's edge) and mostly on the tissue mask (at
least ``min_tissue_fraction`` of it), so a pathologist is never shown glass or the void past
the slide's edge. The black/white rule is
applied to the slide's own pixels, read at a low resolution (``filter_mpp``), never to a
prediction raster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pathloop.client.errors import RegionError
from pathloop.client.tiling import TileGrid, TileSpec, TissueMask, background_fraction
from pathloop.client.wsi import Slide

PROGRESS_EVERY = 64
"""Patches read or scored between two calls of a progress callback."""

Progress = Callable[[int, int], None]
"""Called with ``(done, total)`` as patches are read and scored; it may raise to stop the
work (a cancelled job), which then stores nothing."""


@dataclass(frozen=True)
class PatchSpec:
    """How a slide is cut into candidate patches and which are kept.

    Attributes
    ----------
    size:
        Patch edge in pixels at ``mpp`` (the paper: 1024).
    mpp:
        Resolution in µm/px the patch is defined, shown and corrected at (the paper: 1.0).
    stride:
        Step between patch origins in pixels at ``mpp``; ``None`` for ``size`` (no overlap).
    min_tissue_fraction:
        A patch is kept when at least this fraction of it lies on the tissue mask.
    max_background_fraction:
        A patch is dropped when more than this fraction of its pixels are black or white
        (the UGA rule: 0.7).
    filter_mpp:
        Resolution in µm/px the slide's pixels are read at for the black/white rule.
    """

    size: int = 1024
    mpp: float = 1.0
    stride: int | None = None
    min_tissue_fraction: float = 0.5
    max_background_fraction: float = 0.7
    filter_mpp: float = 4.0

    def __post_init__(self) -> None:
        if self.size <= 0 or (self.stride is not None and self.stride <= 0):
            raise RegionError(f"patch size and stride must be positive, got {self.size} and "
                              f"{self.stride}")
        if not self.mpp > 0 or not self.filter_mpp > 0:
            raise RegionError(f"patch resolutions must be positive µm/px, got {self.mpp} and "
                              f"{self.filter_mpp}")
        for name in ("min_tissue_fraction", "max_background_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise RegionError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    @property
    def step(self) -> int:
        """Stride in pixels at ``mpp``."""
        return self.stride or self.size

    @property
    def filter_size(self) -> int:
        """Patch edge in pixels at ``filter_mpp``."""
        return max(1, round(self.size * self.mpp / self.filter_mpp))

    def grid(self, slide: Slide) -> TileGrid:
        """The patch grid over ``slide``, its last row and column flush with the slide's edge."""
        meta = slide.metadata
        return TileGrid(meta.width, meta.height, meta.mpp, self.mpp, self.size, self.step,
                        flush=True)

    def params(self) -> dict[str, Any]:
        """The spec as JSON-compatible ranking parameters."""
        return {f"patch_{key}": value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class PatchCandidate:
    """A foreground patch of a slide and its uncertainty score.

    Attributes
    ----------
    x, y, width, height:
        The patch's box in level-0 pixels.
    mpp:
        Resolution in µm/px the patch is shown and corrected at.
    score_sum, score_mean:
        Sum and mean of the uncertainty over the patch's raster pixels (sum at the
        raster's µm/px; pixels past the slide's edge are not counted).
    tissue_fraction:
        Fraction of the patch on the tissue mask.
    background_fraction:
        Fraction of its pixels (at ``filter_mpp``) that are black or white.
    slide_id:
        The slide's record id, when known (needed to rank across a site).
    """

    x: int
    y: int
    width: int
    height: int
    mpp: float
    score_sum: float
    score_mean: float
    tissue_fraction: float
    background_fraction: float
    slide_id: int | None = None

    def entry(self) -> dict[str, int | float]:
        """The fields a worklist entry stores (``store.add_ranking``'s patches)."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height,
                "mpp": self.mpp, "score_sum": self.score_sum, "score_mean": self.score_mean}


@dataclass(frozen=True)
class ForegroundPatch:
    """A patch that passed both filters, before scoring.

    Attributes
    ----------
    spec:
        Its grid position and level-0 box.
    tissue_fraction, background_fraction:
        As in :class:`PatchCandidate`.
    """

    spec: TileSpec
    tissue_fraction: float
    background_fraction: float


@dataclass(frozen=True)
class PatchCounts:
    """How many patches each filter dropped.

    ``grid == off_tissue + background + corrected + kept``.

    Attributes
    ----------
    grid:
        Patches in the whole grid.
    off_tissue:
        Dropped: less than ``min_tissue_fraction`` on the tissue mask.
    background:
        Dropped: more than ``max_background_fraction`` black or white pixels.
    kept:
        Patches left to rank: on foreground and not already corrected.
    corrected:
        Dropped: foreground patches more than half covered by an already corrected patch
        of the slide (0 when no corrections were given).
    """

    grid: int
    off_tissue: int
    background: int
    kept: int
    corrected: int = 0

    @property
    def foreground(self) -> int:
        """Patches that passed the tissue and black/white filters (corrected or not)."""
        return self.kept + self.corrected


def foreground_patches(slide: Slide, tissue: TissueMask, spec: PatchSpec, *,
                       progress: Progress | None = None
                       ) -> tuple[list[ForegroundPatch], PatchCounts]:
    """The patches of ``slide`` that lie on tissue and are not mostly black or white.

    Parameters
    ----------
    slide:
        The open slide; patches on the tissue mask are read at ``spec.filter_mpp``.
    tissue:
        The slide's tissue mask.
    spec:
        Patch size, resolution and filter thresholds.
    progress:
        Called with ``(patches read, patches on the tissue mask)`` every
        :data:`PROGRESS_EVERY` reads and after the last.

    Returns
    -------
    tuple of (list of ForegroundPatch, PatchCounts)
        The kept patches in grid order (row by row), and what each filter dropped.
    """
    grid = spec.grid(slide)
    fractions = grid.tissue_fractions(tissue)
    rows, cols = np.nonzero(fractions >= spec.min_tissue_fraction)
    kept: list[ForegroundPatch] = []
    side = spec.filter_size
    for index, (row, col) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        if progress is not None and index % PROGRESS_EVERY == 0:
            progress(index, len(rows))
        box = grid.tile(col, row)
        pixels = slide.read_region(box.x, box.y, side, side, spec.filter_mpp)
        background = background_fraction(pixels)
        if background <= spec.max_background_fraction:
            kept.append(ForegroundPatch(box, float(fractions[row, col]), background))
    if progress is not None:
        progress(len(rows), len(rows))
    counts = PatchCounts(grid=len(grid), off_tissue=len(grid) - len(rows),
                         background=len(rows) - len(kept), kept=len(kept))
    return kept, counts


__all__ = ["ForegroundPatch", "PatchCandidate", "PatchCounts", "PatchSpec",
           "foreground_patches"]
