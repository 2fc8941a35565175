"""Ranking a slide's (or a whole site's) patches into the pathologist's worklist.

:func:`score_slide` cuts a slide into foreground patches and scores each from its
uncertainty raster; :func:`rank_slide` lets a strategy pick the top ``k`` and records them
(with the model version that produced the raster) via ``store.add_ranking``;
:func:`rank_site` pools every slide of a site and keeps the site's top ``k``, as the UGA paper
ranked per centre. Patches already corrected (``exclude``, e.g. the boxes of
``store.latest_corrections(site_id)``) are dropped before the strategy picks
(:func:`drop_corrected`), so a pathologist is never sent a patch twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.inference import MapKind
from pathloop.client.ranking.patches import (
    PROGRESS_EVERY,
    PatchCandidate,
    PatchCounts,
    PatchSpec,
    Progress,
    foreground_patches,
)
from pathloop.client.ranking.scoring import score_boxes
from pathloop.client.ranking.strategies import RankingStrategy, UncertaintyStrategy
from pathloop.client.store import PatchBox, RankingRecord, RasterRecord, RasterStore, Store
from pathloop.client.tiling import TissueMask, compute_tissue_mask
from pathloop.client.wsi import Slide

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredSlide:
    """A slide's foreground patches with their scores.

    Attributes
    ----------
    slide_id:
        The slide's record id.
    raster:
        The raster the scores were read from.
    candidates:
        Foreground patches not already corrected, in grid order, each with ``slide_id`` set.
    counts:
        How many patches the grid had and each filter dropped.
    """

    slide_id: int
    raster: RasterRecord
    candidates: list[PatchCandidate]
    counts: PatchCounts


@dataclass(frozen=True)
class SiteSlide:
    """One slide of a site to rank: its record id and the open slide.

    Attributes
    ----------
    slide_id:
        The slide's record id.
    slide:
        The open slide (read for the black/white rule).
    tissue:
        Its tissue mask; ``None`` computes one.
    uncertainty:
        The raster to score with; ``None`` takes the slide's latest raster of the kind asked.
    """

    slide_id: int
    slide: Slide
    tissue: TissueMask | None = None
    uncertainty: RasterRecord | None = None


@dataclass(frozen=True)
class SlideRanking:
    """A slide's ranking as stored, the patches chosen (best first) and all candidates."""

    ranking: RankingRecord
    selected: list[PatchCandidate]
    scored: ScoredSlide


@dataclass(frozen=True)
class SiteRanking:
    """A site's ranking: one stored ranking per slide, and the site-wide order.

    Attributes
    ----------
    rankings:
        Slide id → its ranking (holding the slide's share of the site's top ``k``; possibly
        no patch).
    selected:
        The site's top ``k`` patches, best first, across slides.
    n_candidates:
        Patches the site's slides had to rank in all (foreground, not corrected).
    counts:
        Slide id → how many patches its grid had and each filter dropped.
    """

    rankings: dict[int, RankingRecord]
    selected: list[PatchCandidate]
    n_candidates: int
    counts: dict[int, PatchCounts]


def score_slide(rasters: RasterStore, slide_id: int, slide: Slide, *,
                spec: PatchSpec = PatchSpec(), tissue: TissueMask | None = None,
                uncertainty: RasterRecord | None = None,
                kind: str = MapKind.UNCERTAINTY,
                exclude: Sequence[PatchBox] = (),
                progress: Progress | None = None) -> ScoredSlide:
    """Cut a slide into foreground patches and score each from an uncertainty raster.

    Parameters
    ----------
    rasters:
        The store's rasters (``store.rasters``).
    slide_id:
        The slide's record id.
    slide:
        The open slide.
    spec:
        Patch size, resolution (default 1024 px at 1 µm/px) and filters.
    tissue:
        The slide's tissue mask; ``None`` computes one from a thumbnail.
    uncertainty:
        An ``(H, W)`` raster of this slide; ``None`` takes its latest raster of ``kind``.
    kind:
        Which per-pixel map scores patches when ``uncertainty`` is not given
        (``"uncertainty"``, ``"entropy"``, ``"mutual-information"``…).
    exclude:
        Already corrected patches (level-0 boxes; boxes of other slides are ignored): a
        patch more than half covered by one is dropped (see :func:`drop_corrected`) and
        counted in ``counts.corrected``.
    progress:
        Called with ``(done, total)`` every few dozen patches: first as the patches on
        tissue are read (``total`` = those), then as the foreground ones are scored
        (``total`` grows by them); it may raise to stop.

    Raises
    ------
    RecordNotFoundError
        The slide has no raster of ``kind`` (predict it first).
    ValueError
        ``uncertainty`` belongs to another slide or is not ``(H, W)``.
    """
    record = uncertainty or rasters.latest(slide_id, str(kind))
    if record is None:
        raise RecordNotFoundError(f"slide {slide_id} has no {kind} raster: predict it first")
    if record.slide_id != slide_id or len(record.shape) != 2:
        raise ValueError(f"raster {record.id} ({record.kind} {record.shape} of slide "
                         f"{record.slide_id}) cannot score slide {slide_id}")
    mask = tissue if tissue is not None else compute_tissue_mask(slide)
    kept, counts = foreground_patches(slide, mask, spec, progress=progress)
    values = rasters.open_raster(record).levels[0]
    read = counts.grid - counts.off_tissue

    def on_scored(done: int) -> None:
        if progress is not None:
            progress(read + done, read + len(kept))

    scores = score_boxes(values, record.mpp, [patch.spec for patch in kept],
                         base_mpp=slide.metadata.mpp, progress=on_scored,
                         every=PROGRESS_EVERY)
    candidates = [
        PatchCandidate(x=p.spec.x, y=p.spec.y, width=p.spec.width, height=p.spec.height,
                       mpp=spec.mpp, score_sum=float(total), score_mean=float(mean),
                       tissue_fraction=p.tissue_fraction,
                       background_fraction=p.background_fraction, slide_id=slide_id)
        for p, (total, mean) in zip(kept, scores, strict=True)
    ]
    to_rank = drop_corrected(candidates, exclude)
    counts = replace(counts, kept=len(to_rank), corrected=len(candidates) - len(to_rank))
    logger.info("slide %d: %d of %d patches to rank (%d off tissue, %d black/white, "
                "%d corrected)", slide_id, counts.kept, counts.grid, counts.off_tissue,
                counts.background, counts.corrected)
    return ScoredSlide(slide_id, record, to_rank, counts)


def drop_corrected(candidates: Sequence[PatchCandidate],
                   exclude: Sequence[PatchBox]) -> list[PatchCandidate]:
    """The candidates that no already corrected patch of their slide mostly covers.

    A candidate is dropped when a single box of ``exclude`` with the candidate's
    ``slide_id`` covers more than half of the candidate's own area. Boxes are compared in
    level-0 pixels, whatever their µm/px, so a correction made on a patch of another size or
    grid still hides the candidates it mostly covers.

    Parameters
    ----------
    candidates:
        Patches to filter; one without a ``slide_id`` is never dropped.
    exclude:
        Corrected patches, e.g. ``[c.patch for c in store.latest_corrections(site_id)]``.

    Returns
    -------
    list of PatchCandidate
        The candidates kept, in their order.
    """
    by_slide: defaultdict[int, list[PatchBox]] = defaultdict(list)
    for box in exclude:
        by_slide[box.slide_id].append(box)
    return [patch for patch in candidates
            if patch.slide_id is None
            or not any(_mostly_covers(box, patch) for box in by_slide.get(patch.slide_id, ()))]


def _mostly_covers(box: PatchBox, patch: PatchCandidate) -> bool:
    """Whether ``box`` covers more than half of ``patch``'s area (exact integer test)."""
    width = min(box.x + box.width, patch.x + patch.width) - max(box.x, patch.x)
    height = min(box.y + box.height, patch.y + patch.height) - max(box.y, patch.y)
    return width > 0 and height > 0 and 2 * width * height > patch.width * patch.height


def rank_slide(store: Store, slide_id: int, slide: Slide, *,
               strategy: RankingStrategy = UncertaintyStrategy(), k: int = 5,
               spec: PatchSpec = PatchSpec(), tissue: TissueMask | None = None,
               uncertainty: RasterRecord | None = None, kind: str = MapKind.UNCERTAINTY,
               seed: int = 0, model_version_id: int | None = None,
               actor: str = "system", exclude: Sequence[PatchBox] = (),
               progress: Progress | None = None) -> SlideRanking:
    """Rank one slide's foreground patches and store the top ``k`` as worklist entries.

    Parameters are those of :func:`score_slide`, plus:

    strategy:
        Picks and orders the patches (default: highest mean uncertainty, as in UGA).
    k:
        How many patches go to the worklist.
    seed:
        Seeds the strategy's random generator (the random baseline).
    model_version_id:
        Recorded with the ranking; ``None`` takes the scoring raster's model version.
    actor:
        Recorded in the audit log.
    progress:
        As in :func:`score_slide`, and called once more right before the ranking is
        stored, so a callback that raises to cancel stops the work before it stores
        anything.

    Returns
    -------
    SlideRanking
        The stored ranking (entries best first, ``pending``), the chosen patches and all
        scored candidates.
    """
    scored = score_slide(store.rasters, slide_id, slide, spec=spec, tissue=tissue,
                         uncertainty=uncertainty, kind=kind, exclude=exclude,
                         progress=progress)
    selected = strategy.select(scored.candidates, k, np.random.default_rng(seed))
    params = _params(strategy, k, spec, seed, scored) | {"scope": "slide"}
    if progress is not None:
        steps = scored.counts.grid - scored.counts.off_tissue + scored.counts.foreground
        progress(steps, steps)  # the last moment a cancel leaves the worklist as it was
    ranking = store.add_ranking(
        slide_id, strategy=strategy.name, patches=[patch.entry() for patch in selected],
        model_version_id=_model_version(model_version_id, scored), params=params, actor=actor)
    return SlideRanking(ranking, selected, scored)


def rank_site(store: Store, slides: Iterable[SiteSlide], *,
              strategy: RankingStrategy = UncertaintyStrategy(), k: int = 5,
              spec: PatchSpec = PatchSpec(), kind: str = MapKind.UNCERTAINTY, seed: int = 0,
              model_version_id: int | None = None, actor: str = "system",
              exclude: Sequence[PatchBox] = ()) -> SiteRanking:
    """Rank the patches of all a site's slides together and store the site's top ``k``.

    Each slide is scored as it comes, so ``slides`` may be a generator that opens one slide
    at a time (only the scored candidates are kept). The strategy then picks ``k`` patches
    among all candidates of the site; every slide gets a stored ranking holding its share
    (possibly none), with ``params["site_ranks"]`` giving each entry's rank in the site.

    Parameters are those of :func:`rank_slide`; ``k`` counts patches per site, and
    ``exclude`` may hold the corrected patches of any of the site's slides (each slide is
    filtered by its own).

    Returns
    -------
    SiteRanking
        The stored rankings by slide id and the site's top ``k`` patches, best first.
    """
    scored = [score_slide(store.rasters, item.slide_id, item.slide, spec=spec,
                          tissue=item.tissue, uncertainty=item.uncertainty, kind=kind,
                          exclude=exclude)
              for item in slides]
    pooled = [patch for slide in scored for patch in slide.candidates]
    selected = strategy.select(pooled, k, np.random.default_rng(seed))
    rankings: dict[int, RankingRecord] = {}
    for slide in scored:
        ranks = [rank for rank, patch in enumerate(selected, start=1)
                 if patch.slide_id == slide.slide_id]
        params = _params(strategy, k, spec, seed, slide) | {
            "scope": "site", "site_ranks": ranks, "site_slides": [s.slide_id for s in scored],
            "site_candidates": len(pooled)}
        rankings[slide.slide_id] = store.add_ranking(
            slide.slide_id, strategy=strategy.name,
            patches=[selected[rank - 1].entry() for rank in ranks],
            model_version_id=_model_version(model_version_id, slide), params=params,
            actor=actor)
    return SiteRanking(rankings, selected, len(pooled),
                       {slide.slide_id: slide.counts for slide in scored})


def _params(strategy: RankingStrategy, k: int, spec: PatchSpec, seed: int,
            scored: ScoredSlide) -> dict[str, Any]:
    counts = scored.counts
    return {"k": k, "seed": seed, "strategy": strategy.name, **spec.params(),
            "raster_id": scored.raster.id, "raster_kind": scored.raster.kind,
            "patches_grid": counts.grid, "patches_off_tissue": counts.off_tissue,
            "patches_background": counts.background, "patches_foreground": counts.foreground,
            "patches_corrected": counts.corrected, "patches_candidates": counts.kept}


def _model_version(given: int | None, scored: ScoredSlide) -> int | None:
    return given if given is not None else scored.raster.model_version_id


__all__ = ["ScoredSlide", "SiteRanking", "SiteSlide", "SlideRanking", "drop_corrected",
           "rank_site", "rank_slide", "score_slide"]
