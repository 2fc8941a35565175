"""Ranking on the real CMU slide: background never ranks, the black/white rule, the store,
corrected patches are not ranked again."""

from __future__ import annotations

import numpy as np
import pytest
from support.records import add_open_slide, save_uncertainty

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.ranking import (
    PatchSpec,
    RandomForegroundStrategy,
    SiteSlide,
    UncertaintyStrategy,
    rank_site,
    rank_slide,
    score_slide,
)
from pathloop.client.store import PatchBox, Store
from pathloop.client.tiling import TissueMask, background_fraction
from pathloop.client.wsi import Slide, in_memory_slide

pytestmark = pytest.mark.realdata

# 256 µm patches at 1 µm/px: ~513 level-0 px of CMU (0.499 µm/px), a 5 × 6 grid.
SPEC = PatchSpec(size=256, mpp=1.0)
RASTER_MPP = 2.0


def _tempting_raster(slide: Slide, tissue: TissueMask) -> np.ndarray:
    """Uncertainty high everywhere, and highest on glass: background must still never rank."""
    width, height = slide.size_at(RASTER_MPP)
    rows = ((np.arange(height) + 0.5) * RASTER_MPP / tissue.mpp).astype(int)
    cols = ((np.arange(width) + 0.5) * RASTER_MPP / tissue.mpp).astype(int)
    on_tissue = tissue.mask[np.ix_(rows.clip(0, tissue.mask.shape[0] - 1),
                                   cols.clip(0, tissue.mask.shape[1] - 1))]
    rng = np.random.default_rng(0)
    return np.where(on_tissue, 1.0 + rng.random((height, width)), 5.0)


def test_the_background_of_the_cmu_slide_never_ranks(store: Store, cmu: Slide,
                                                     cmu_tissue: TissueMask) -> None:
    record = add_open_slide(store, "cmu", cmu)
    version = store.add_model_version(name="fake", kind="uga-ensemble")
    raster = save_uncertainty(store, record.id, _tempting_raster(cmu, cmu_tissue), RASTER_MPP,
                              model_version_id=version.id)
    result = rank_slide(store, record.id, cmu, k=1000, spec=SPEC, tissue=cmu_tissue)
    grid = SPEC.grid(cmu)
    fractions = grid.tissue_fractions(cmu_tissue)
    background = {(t.x, t.y) for t in grid if fractions[t.row, t.col] == 0}
    assert len(background) >= 5, "the CMU slide has glass-only patches"
    ranked = store.ranked_patches(result.ranking.id)
    assert 5 <= len(ranked) == result.scored.counts.kept < len(grid)
    assert not {(p.x, p.y) for p in ranked} & background
    meta = cmu.metadata
    for patch in ranked:
        assert patch.x >= 0 and patch.x + patch.width <= meta.width  # inside the slide
        assert patch.y >= 0 and patch.y + patch.height <= meta.height
        assert cmu_tissue.covered_fraction(patch.x, patch.y, patch.width,
                                           patch.height) >= SPEC.min_tissue_fraction
        pixels = cmu.read_region(patch.x, patch.y, SPEC.filter_size, SPEC.filter_size,
                                 SPEC.filter_mpp)
        assert background_fraction(pixels) <= 0.7
        assert patch.mpp == 1.0 and patch.status == "pending"
    means = [p.score_mean for p in ranked]
    assert means == sorted(means, reverse=True)
    assert means[0] < 5.0  # the glass values never reached the worklist
    # The stored ranking says what ranked it and how.
    assert result.ranking.strategy == "uncertainty-mean"
    assert result.ranking.model_version_id == version.id
    assert result.ranking.params["raster_id"] == raster.id
    assert result.ranking.params["patches_grid"] == len(grid)
    assert store.latest_ranking(record.id) == result.ranking


def test_top_k_are_the_highest_scores_in_order(store: Store, cmu: Slide,
                                               cmu_tissue: TissueMask) -> None:
    record = add_open_slide(store, "cmu", cmu)
    save_uncertainty(store, record.id, _tempting_raster(cmu, cmu_tissue), RASTER_MPP)
    everything = score_slide(store.rasters, record.id, cmu, spec=SPEC, tissue=cmu_tissue)
    for by in ("mean", "sum"):
        result = rank_slide(store, record.id, cmu, k=4, spec=SPEC, tissue=cmu_tissue,
                            strategy=UncertaintyStrategy(by=by))
        ranked = store.ranked_patches(result.ranking.id)
        field = "score_mean" if by == "mean" else "score_sum"
        best = sorted((getattr(c, field) for c in everything.candidates), reverse=True)[:4]
        assert [getattr(p, field) for p in ranked] == pytest.approx(best)
        assert [p.rank for p in ranked] == [1, 2, 3, 4]
        assert result.ranking.model_version_id is None


def test_a_patch_painted_white_is_excluded_by_the_black_and_white_rule(
        store: Store, cmu: Slide, cmu_tissue: TissueMask) -> None:
    meta = cmu.metadata
    image = cmu.read_region(0, 0, meta.width, meta.height, meta.mpp)
    grid = SPEC.grid(cmu)
    fractions = grid.tissue_fractions(cmu_tissue)
    row, col = np.unravel_index(np.argmax(fractions), fractions.shape)
    target = grid.tile(int(col), int(row))
    assert fractions[row, col] > 0.9
    # Make that patch the most uncertain of the slide.
    values = _tempting_raster(cmu, cmu_tissue)
    scale = meta.mpp / RASTER_MPP
    y0, x0 = round(target.y * scale), round(target.x * scale)
    y1, x1 = round((target.y + target.height) * scale), round((target.x + target.width) * scale)
    values[y0:y1, x0:x1] = 10.0

    def top(paint_rows: float, name: str) -> tuple[int, int]:
        painted = image.copy()
        height = round(target.height * paint_rows)
        painted[target.y:target.y + height, target.x:target.x + target.width] = 255
        slide = in_memory_slide(painted, mpp=meta.mpp, name=name)
        record = add_open_slide(store, name, slide)
        save_uncertainty(store, record.id, values, RASTER_MPP)
        result = rank_slide(store, record.id, slide, k=3, spec=SPEC, tissue=cmu_tissue)
        first = store.ranked_patches(result.ranking.id)[0]
        return (first.x, first.y)

    assert top(0.0, "intact") == (target.x, target.y)
    assert top(0.6, "sixty-percent-white") == (target.x, target.y)  # ≤ 70%: kept
    assert top(0.8, "eighty-percent-white") != (target.x, target.y)  # > 70%: dropped


def test_random_strategy_is_deterministic_by_seed_and_only_picks_foreground(
        store: Store, cmu: Slide, cmu_tissue: TissueMask) -> None:
    record = add_open_slide(store, "cmu", cmu)
    save_uncertainty(store, record.id, _tempting_raster(cmu, cmu_tissue), RASTER_MPP)
    foreground = {(c.x, c.y) for c in
                  score_slide(store.rasters, record.id, cmu, spec=SPEC,
                              tissue=cmu_tissue).candidates}

    def draw(seed: int) -> list[tuple[int, int]]:
        result = rank_slide(store, record.id, cmu, k=5, spec=SPEC, tissue=cmu_tissue,
                            strategy=RandomForegroundStrategy(), seed=seed)
        assert result.ranking.strategy == "random-foreground"
        assert result.ranking.params["seed"] == seed
        return [(p.x, p.y) for p in store.ranked_patches(result.ranking.id)]

    first, again, other = draw(1), draw(1), draw(2)
    assert first == again and first != other
    assert len(set(first)) == 5 and set(first + other) <= foreground


def test_a_site_is_ranked_as_a_whole(store: Store, cmu: Slide,
                                     cmu_tissue: TissueMask) -> None:
    calm = add_open_slide(store, "calm", cmu)
    torn = add_open_slide(store, "torn", cmu)
    values = _tempting_raster(cmu, cmu_tissue)
    save_uncertainty(store, calm.id, values * 0.1, RASTER_MPP)
    save_uncertainty(store, torn.id, values, RASTER_MPP)
    site = rank_site(store, [SiteSlide(calm.id, cmu, cmu_tissue),
                             SiteSlide(torn.id, cmu, cmu_tissue)], k=6, spec=SPEC)
    assert len(site.selected) == 6 and {p.slide_id for p in site.selected} == {torn.id}
    assert site.n_candidates == 2 * site.counts[calm.id].kept
    assert site.rankings[calm.id].n_patches == 0
    torn_ranking = site.rankings[torn.id]
    assert torn_ranking.params["site_ranks"] == [1, 2, 3, 4, 5, 6]
    assert torn_ranking.params["scope"] == "site"
    stored = store.ranked_patches(torn_ranking.id)
    assert [(p.x, p.y) for p in stored] == [(p.x, p.y) for p in site.selected]
    # With the calm slide alone, its own best patches make the (site's) top k.
    alone = rank_site(store, [SiteSlide(calm.id, cmu, cmu_tissue)], k=2, spec=SPEC)
    assert {p.slide_id for p in alone.selected} == {calm.id}


def test_a_corrected_patch_is_not_ranked_again(store: Store, cmu: Slide,
                                                 cmu_tissue: TissueMask) -> None:
    record = add_open_slide(store, "cmu", cmu)
    save_uncertainty(store, record.id, _tempting_raster(cmu, cmu_tissue), RASTER_MPP)
    first = rank_slide(store, record.id, cmu, k=3, spec=SPEC, tissue=cmu_tissue)
    top = store.ranked_patches(first.ranking.id)[0]
    store.save_correction(top.id, data={"features": []}, author="dr-a")
    exclude = [c.patch for c in store.latest_corrections("site-a")]
    assert exclude == [PatchBox(record.id, top.x, top.y, top.width, top.height, top.mpp)]
    again = rank_slide(store, record.id, cmu, k=3, spec=SPEC, tissue=cmu_tissue,
                       exclude=exclude)
    boxes = [(p.x, p.y, p.width, p.height) for p in store.ranked_patches(again.ranking.id)]
    assert len(boxes) == 3 and (top.x, top.y, top.width, top.height) not in boxes
    # The rest of the order is untouched: the old second and third now lead.
    assert boxes[:2] == [(p.x, p.y, p.width, p.height) for p in first.selected[1:]]
    counts = again.scored.counts
    assert counts.corrected == 1 and counts.kept == first.scored.counts.kept - 1
    assert counts.foreground == first.scored.counts.kept
    assert again.ranking.params["patches_corrected"] == 1
    assert again.ranking.params["patches_candidates"] == counts.kept
    assert first.ranking.params["patches_corrected"] == 0


def test_a_correction_covering_half_a_patch_or_less_leaves_it_in(
        store: Store, cmu: Slide, cmu_tissue: TissueMask) -> None:
    record = add_open_slide(store, "cmu", cmu)
    save_uncertainty(store, record.id, _tempting_raster(cmu, cmu_tissue), RASTER_MPP)
    top = score_slide(store.rasters, record.id, cmu, spec=SPEC, tissue=cmu_tissue)
    best = UncertaintyStrategy().select(top.candidates, 1, np.random.default_rng(0))[0]
    side = best.width
    assert side == best.height == 513  # odd: no box covers exactly half

    def rank_with(*boxes: PatchBox) -> tuple[tuple[int, int], int]:
        result = rank_slide(store, record.id, cmu, k=1, spec=SPEC, tissue=cmu_tissue,
                            exclude=boxes)
        return (result.selected[0].x, result.selected[0].y), result.scored.counts.corrected

    def box(dx: int, dy: int, slide_id: int = record.id) -> PatchBox:
        return PatchBox(slide_id, best.x + dx, best.y + dy, side, side, 1.0)

    # Shifted diagonally by just over half: a quarter of the best patch (and under half of
    # each neighbour) is covered, so nothing is dropped.
    assert rank_with(box(side // 2 + 1, side // 2 + 1)) == ((best.x, best.y), 0)
    # Shifted sideways by 257 of 513 px: 256 columns, under half, stay covered (it is the
    # right-hand neighbour, covered by more than half, that is dropped if on foreground).
    assert rank_with(box(side // 2 + 1, 0))[0] == (best.x, best.y)
    # Shifted by 256 px: 257 columns, just over half: dropped.
    assert rank_with(box(side // 2, 0)) == (rank_with(box(0, 0))[0], 1)
    assert rank_with(box(side // 2, 0))[0] != (best.x, best.y)
    # The same box on another slide leaves this one alone.
    assert rank_with(box(0, 0, slide_id=record.id + 1)) == ((best.x, best.y), 0)


def test_a_site_ranking_drops_a_slide_s_corrected_patch_only_on_that_slide(
        store: Store, cmu: Slide, cmu_tissue: TissueMask) -> None:
    calm = add_open_slide(store, "calm", cmu)
    torn = add_open_slide(store, "torn", cmu)
    values = _tempting_raster(cmu, cmu_tissue)
    for record in (calm, torn):  # the same scores: the same boxes lead on both slides
        save_uncertainty(store, record.id, values, RASTER_MPP)
    slides = [SiteSlide(calm.id, cmu, cmu_tissue), SiteSlide(torn.id, cmu, cmu_tissue)]
    first = rank_site(store, slides, k=2, spec=SPEC)
    top = first.selected[0]
    assert [(p.slide_id, p.x, p.y) for p in first.selected] == [
        (calm.id, top.x, top.y), (torn.id, top.x, top.y)]
    corrected = PatchBox(torn.id, top.x, top.y, top.width, top.height, top.mpp)
    site = rank_site(store, slides, k=2, spec=SPEC, exclude=[corrected])
    chosen = [(p.slide_id, p.x, p.y) for p in site.selected]
    assert (torn.id, top.x, top.y) not in chosen and chosen[0] == (calm.id, top.x, top.y)
    assert site.counts[torn.id].corrected == 1 and site.counts[calm.id].corrected == 0
    assert site.n_candidates == first.n_candidates - 1
    assert site.rankings[torn.id].params["patches_corrected"] == 1
    assert site.rankings[calm.id].params["patches_corrected"] == 0
    stored = {(p.x, p.y) for p in store.ranked_patches(site.rankings[torn.id].id)}
    assert (top.x, top.y) not in stored


def test_a_slide_without_an_uncertainty_raster_is_refused(store: Store, cmu: Slide,
                                                          cmu_tissue: TissueMask) -> None:
    record = add_open_slide(store, "cmu", cmu)
    with pytest.raises(RecordNotFoundError, match="predict it first"):
        rank_slide(store, record.id, cmu, spec=SPEC, tissue=cmu_tissue)
    other = add_open_slide(store, "other", cmu)
    foreign = save_uncertainty(store, other.id, np.zeros((10, 10)), RASTER_MPP)
    with pytest.raises(ValueError, match="cannot score"):
        rank_slide(store, record.id, cmu, spec=SPEC, tissue=cmu_tissue, uncertainty=foreign)


def test_the_default_patch_is_1024_um(store: Store, cmu: Slide,
                                      cmu_tissue: TissueMask) -> None:
    record = add_open_slide(store, "cmu", cmu)
    save_uncertainty(store, record.id, _tempting_raster(cmu, cmu_tissue), RASTER_MPP)
    result = rank_slide(store, record.id, cmu, k=10, tissue=cmu_tissue)
    side = round(1024 / cmu.metadata.mpp)  # level-0 pixels of 1024 µm
    for patch in store.ranked_patches(result.ranking.id):
        assert (patch.width, patch.height, patch.mpp) == (side, side, 1.0)
