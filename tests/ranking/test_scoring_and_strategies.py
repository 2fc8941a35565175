"""Patch scores from a raster, patch specs, and the two ranking strategies (no slides)."""

from __future__ import annotations

import numpy as np
import pytest

import pathloop.client.ranking as ranking
from pathloop.client.errors import RegionError
from pathloop.client.ranking import (
    PatchCandidate,
    PatchSpec,
    RandomForegroundStrategy,
    RankingStrategy,
    UncertaintyStrategy,
    drop_corrected,
    score_boxes,
)
from pathloop.client.store import PatchBox
from pathloop.client.tiling import TileSpec


def _box(x: int, y: int, side: int) -> TileSpec:
    return TileSpec(0, 0, x, y, side, side)


def test_scores_map_level0_boxes_onto_raster_pixels() -> None:
    # Raster at 2 µm/px over a slide at 0.5 µm/px: 4 level-0 pixels per raster pixel.
    values = np.arange(100 * 80, dtype=np.float32).reshape(100, 80).astype(np.float16)
    scores = score_boxes(values, 2.0, [_box(0, 0, 40), _box(40, 0, 40), _box(0, 40, 40)],
                         base_mpp=0.5)
    as64 = values.astype(np.float64)
    for (total, mean), block in zip(scores, (as64[0:10, 0:10], as64[0:10, 10:20],
                                             as64[10:20, 0:10]), strict=True):
        assert total == pytest.approx(block.sum()) and mean == pytest.approx(block.mean())


def test_adjacent_patches_share_no_pixel_and_tile_the_raster() -> None:
    values = np.random.default_rng(0).random((37, 53)).astype(np.float32)
    # 0.499 / 1.3: a non-integer scale; boxes of 30 level-0 px cover 120 × 150.
    boxes = [_box(x, y, 30) for y in range(0, 120, 30) for x in range(0, 180, 30)]
    scores = score_boxes(values, 1.3, boxes, base_mpp=0.499)
    assert scores[:, 0].sum() == pytest.approx(float(values.astype(np.float64).sum()))


def test_pixels_past_the_raster_are_not_counted() -> None:
    values = np.ones((10, 10), np.float16)
    scores = score_boxes(values, 1.0, [_box(5, 5, 10), _box(20, 20, 5), _box(-5, 0, 10)],
                         base_mpp=1.0)
    assert scores.tolist() == [[25.0, 1.0], [0.0, 0.0], [50.0, 1.0]]
    with pytest.raises(ValueError):
        score_boxes(np.ones((2, 2, 2)), 1.0, [], base_mpp=1.0)


def test_nan_counts_as_zero() -> None:
    values = np.ones((4, 4), np.float32)
    values[0, 0] = np.nan
    assert score_boxes(values, 1.0, [_box(0, 0, 4)], base_mpp=1.0).tolist() == [[15.0, 15 / 16]]


def test_patch_spec_defaults_are_the_papers() -> None:
    spec = PatchSpec()
    assert (spec.size, spec.mpp, spec.step, spec.max_background_fraction) == (1024, 1.0, 1024,
                                                                               0.7)
    assert spec.filter_size == 256  # 1024 µm at 4 µm/px
    assert spec.params()["patch_size"] == 1024
    for bad in (dict(size=0), dict(mpp=0.0), dict(stride=-1), dict(min_tissue_fraction=2.0)):
        with pytest.raises(RegionError):
            PatchSpec(**bad)


def _candidates() -> list[PatchCandidate]:
    # Mean and sum disagree: a small very uncertain patch against a big fairly uncertain one.
    rows = [(0, 0, 0.2, 10.0), (100, 0, 0.9, 9.0), (200, 0, 0.5, 50.0), (0, 100, 0.9, 9.0),
            (100, 100, 0.1, 1.0)]
    return [PatchCandidate(x=x, y=y, width=100, height=100, mpp=1.0, score_mean=mean,
                           score_sum=total, tissue_fraction=1.0, background_fraction=0.0,
                           slide_id=1) for x, y, mean, total in rows]


def test_uncertainty_strategy_orders_by_mean_or_sum_with_deterministic_ties() -> None:
    rng = np.random.default_rng(0)
    by_mean = UncertaintyStrategy().select(_candidates(), 3, rng)
    assert [(p.x, p.y) for p in by_mean] == [(100, 0), (0, 100), (200, 0)]  # tie: upper first
    by_sum = UncertaintyStrategy(by="sum").select(_candidates(), 2, rng)
    assert [p.score_sum for p in by_sum] == [50.0, 10.0]
    assert UncertaintyStrategy().name == "uncertainty-mean"
    assert UncertaintyStrategy(by="sum").name == "uncertainty-sum"
    assert len(UncertaintyStrategy().select(_candidates(), 99, rng)) == 5
    assert UncertaintyStrategy().select(_candidates(), 0, rng) == []


def test_random_strategy_is_deterministic_by_seed_and_draws_without_replacement() -> None:
    candidates = [PatchCandidate(x=i, y=0, width=1, height=1, mpp=1.0, score_sum=0.0,
                                 score_mean=0.0, tissue_fraction=1.0, background_fraction=0.0)
                  for i in range(50)]
    strategy = RandomForegroundStrategy()
    first = strategy.select(candidates, 10, np.random.default_rng(7))
    again = strategy.select(candidates, 10, np.random.default_rng(7))
    other = strategy.select(candidates, 10, np.random.default_rng(8))
    assert first == again and first != other
    assert len({p.x for p in first}) == 10
    assert len(strategy.select(candidates, 80, np.random.default_rng(0))) == 50
    assert strategy.name == "random-foreground"


def test_a_candidate_is_dropped_only_when_a_box_of_its_slide_covers_more_than_half() -> None:
    def patch(x: int, slide_id: int | None = 1) -> PatchCandidate:
        return PatchCandidate(x=x, y=0, width=10, height=10, mpp=1.0, score_sum=1.0,
                              score_mean=1.0, tissue_fraction=1.0, background_fraction=0.0,
                              slide_id=slide_id)

    candidates = [patch(0), patch(10), patch(20), patch(0, slide_id=2), patch(0, None)]
    # Covers x 5..16: half of the first patch (kept), 6 of 10 columns of the second.
    wide = PatchBox(slide_id=1, x=5, y=0, width=11, height=10, mpp=0.5)
    assert drop_corrected(candidates, [wide]) == [candidates[0], *candidates[2:]]
    # A box bigger than the patch, at another µm/px: 50 of the third's 100 px stay, 60 drop.
    corner = PatchBox(slide_id=1, x=20, y=-100, width=100, height=105, mpp=2.0)
    assert drop_corrected(candidates, [corner]) == candidates
    taller = PatchBox(slide_id=1, x=20, y=-100, width=100, height=106, mpp=2.0)
    assert drop_corrected(candidates, [taller]) == [*candidates[:2], *candidates[3:]]
    # Two boxes each covering half do not add up: each box is weighed on its own.
    halves = [PatchBox(1, 0, 0, 5, 10, 1.0), PatchBox(1, 5, 0, 5, 10, 1.0)]
    assert drop_corrected(candidates, halves) == candidates
    # The same box on slide 2 drops only slide 2's patch; nothing drops a slide-less one.
    exact = PatchBox(slide_id=2, x=0, y=0, width=10, height=10, mpp=1.0)
    assert drop_corrected(candidates, [exact]) == [*candidates[:3], candidates[4]]
    assert drop_corrected(candidates, ()) == candidates


def test_strategies_satisfy_the_protocol() -> None:
    strategies: list[RankingStrategy] = [UncertaintyStrategy(), RandomForegroundStrategy()]
    assert [s.name for s in strategies] == ["uncertainty-mean", "random-foreground"]


def test_public_surface() -> None:
    assert ranking.__all__ == sorted(ranking.__all__)
    assert all(hasattr(ranking, name) for name in ranking.__all__)
