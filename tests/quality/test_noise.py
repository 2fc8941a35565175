"""Noise simulation: each type changes exactly round(β·n) instances, the way Fig. 1 shows."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from pathloop.client.errors import InputError
from pathloop.client.quality import NOISE_TYPES, affected_count, simulate_noise
from pathloop.client.quality.noise import JITTER_MARGIN

BETAS = (0.1, 0.25, 0.5)


def disc_grid(n: int = 10, radius: int = 6, step: int = 20) -> NDArray[np.int32]:
    """``n × n`` discs of ``radius`` px on a ``step`` px grid, ids 1..n² (row by row)."""
    labels = np.zeros((n * step, n * step), np.int32)
    rows, cols = np.mgrid[: n * step, : n * step]
    for k in range(n * n):
        cy, cx = (k // n) * step + step // 2, (k % n) * step + step // 2
        labels[(rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2] = k + 1
    return labels


discs = disc_grid()
N = 100


def changed_ids(clean: NDArray[np.int32], noisy: NDArray[np.int32]) -> set[int]:
    """Clean ids whose pixel set is not identical in the noisy array."""
    return {i for i in range(1, N + 1)
            if not np.array_equal(clean == i, noisy == i)}


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("kind", [k for k in NOISE_TYPES if k not in ("merged", "jitter")])
def test_each_per_instance_type_changes_exactly_round_beta_n(kind: str, beta: float) -> None:
    noisy = simulate_noise(discs, kind, beta, seed=3)
    k = affected_count(beta, N)
    assert len(noisy.affected_clean) == k
    assert changed_ids(discs, noisy.labels) == set(noisy.affected_clean)
    # Instances the noise did not touch keep every pixel.
    untouched = ~np.isin(discs, list(noisy.affected_clean)) & (discs > 0)
    assert np.array_equal(noisy.labels[untouched], discs[untouched])


@pytest.mark.parametrize("beta", BETAS)
def test_oversized_grows_around_the_clean_instance_into_background_only(beta: float) -> None:
    noisy = simulate_noise(discs, "oversized", beta, seed=1)
    assert noisy.noisy_labels == noisy.affected_clean
    for i in noisy.affected_clean:
        before, after = discs == i, noisy.labels == i
        assert after[before].all() and after.sum() > before.sum()
        assert (discs[after & ~before] == 0).all()
        # 2–4 px: within a 4-px dilation, and at least the 1-px ring grew.
        assert ndimage.distance_transform_edt(~before)[after].max() <= 4
        assert (ndimage.binary_dilation(before) <= after).all()


@pytest.mark.parametrize("beta", BETAS)
def test_undersized_shrinks_inside_the_clean_instance_and_never_vanishes(beta: float) -> None:
    noisy = simulate_noise(discs, "undersized", beta, seed=1)
    for i in noisy.affected_clean:
        before, after = discs == i, noisy.labels == i
        assert after.any() and before[after].all() and after.sum() < before.sum()
        assert not (ndimage.binary_erosion(before, iterations=1) & ~before).any()
        assert (after <= ndimage.binary_erosion(before)).all()  # at least 1 px gone all round


def test_undersized_never_vanishes_small_instances() -> None:
    small = disc_grid(radius=2)
    noisy = simulate_noise(small, "undersized", 1.0, seed=0)
    assert len(noisy.affected_clean) == N
    assert set(np.unique(noisy.labels)) == set(range(N + 1))


def test_contour_keeps_a_two_pixel_ring_and_clears_the_interior() -> None:
    noisy = simulate_noise(discs, "contour", 0.5, seed=2)
    for i in noisy.affected_clean:
        before, after = discs == i, noisy.labels == i
        interior = ndimage.binary_erosion(before, iterations=2)
        assert not after[interior].any()
        assert np.array_equal(after, before & ~interior)
        assert np.array_equal(ndimage.binary_fill_holes(after), before)


@pytest.mark.parametrize("beta", BETAS)
def test_merged_joins_nearest_neighbours_into_one_id(beta: float) -> None:
    noisy = simulate_noise(discs, "merged", beta, seed=4)
    k = affected_count(beta, N)
    assert len(noisy.affected_clean) == k
    assert len(noisy.noisy_labels) == k // 2
    assert changed_ids(discs, noisy.labels) == set(noisy.affected_clean)
    grouped = 0
    for merged in noisy.noisy_labels:
        region = noisy.labels == merged
        members = set(np.unique(discs[region])) - {0}
        assert merged in members and len(members) in (2, 3)
        grouped += len(members)
        for other in members - {merged}:
            assert not (noisy.labels == other).any()
        for member in members:  # every clean pixel of the group is in the merged instance
            assert region[discs == member].all()
        assert ndimage.label(region)[1] == 1  # one connected instance: the gap is filled
        # nearest neighbours on a 20-px grid: centroids no more than a diagonal step apart
        centres = np.array([np.argwhere(discs == m).mean(axis=0) for m in members])
        assert np.linalg.norm(centres - centres.mean(axis=0), axis=1).max() < 20 * 1.5
    assert grouped == k


def test_merged_with_one_instance_to_affect_makes_a_pair() -> None:
    noisy = simulate_noise(discs, "merged", 0.01, seed=0)
    assert len(noisy.affected_clean) == 2 and len(noisy.noisy_labels) == 1


@pytest.mark.parametrize("beta", BETAS)
def test_split_cuts_one_instance_into_two_ids(beta: float) -> None:
    noisy = simulate_noise(discs, "split", beta, seed=5)
    k = affected_count(beta, N)
    new_ids = set(np.unique(noisy.labels)) - set(range(N + 1))
    assert len(new_ids) == k
    assert noisy.noisy_labels == noisy.affected_clean | new_ids
    for i in noisy.affected_clean:
        before = discs == i
        halves = set(np.unique(noisy.labels[before])) - {0}
        assert len(halves) == 2 and i in halves
        # together exactly the clean instance; neither half empty
        union = np.isin(noisy.labels, list(halves))
        assert np.array_equal(union, before)


@pytest.mark.parametrize("beta", BETAS)
def test_jitter_adds_round_beta_n_small_instances_away_from_the_others(beta: float) -> None:
    noisy = simulate_noise(discs, "jitter", beta, seed=6)
    k = affected_count(beta, N)
    assert noisy.affected_clean == frozenset()
    assert len(noisy.noisy_labels) == k
    assert np.array_equal(np.where(np.isin(noisy.labels, list(noisy.noisy_labels)), 0,
                                   noisy.labels), discs)
    others = noisy.labels > 0
    for j in noisy.noisy_labels:
        speck = noisy.labels == j
        assert 5 <= speck.sum() <= 49  # a disc of radius 2–4 px
        clearance = ndimage.distance_transform_edt(~(others & ~speck))
        assert clearance[speck].min() > JITTER_MARGIN


@pytest.mark.parametrize("beta", BETAS)
def test_holes_remove_an_interior_set_and_keep_the_outline(beta: float) -> None:
    noisy = simulate_noise(discs, "holes", beta, seed=7)
    for i in noisy.affected_clean:
        before, after = discs == i, noisy.labels == i
        assert before[after].all() and after.sum() < before.sum()
        assert np.array_equal(ndimage.binary_fill_holes(after), before)  # enclosed: a hole
        outline = before & ~ndimage.binary_erosion(before, iterations=2)
        assert after[outline].all()


@pytest.mark.parametrize("beta", BETAS)
def test_approximation_replaces_the_outline_by_a_coarse_polygon(beta: float) -> None:
    noisy = simulate_noise(discs, "approximation", beta, seed=8)
    for i in noisy.affected_clean:
        before, after = discs == i, noisy.labels == i
        iou = (before & after).sum() / (before | after).sum()
        assert 0.5 <= iou < 1.0
        # a polygon: convex here (the disc's simplified outline) and inside the disc's hull
        assert np.array_equal(ndimage.binary_fill_holes(after), after)
        assert ndimage.label(after)[1] == 1


@pytest.mark.parametrize("beta", BETAS)
def test_forgotten_removes_the_instances(beta: float) -> None:
    noisy = simulate_noise(discs, "forgotten", beta, seed=9)
    present = set(np.unique(noisy.labels)) - {0}
    assert present == set(range(1, N + 1)) - noisy.affected_clean
    assert noisy.noisy_labels == frozenset()


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_same_seed_same_noise_other_seed_other_noise(kind: str) -> None:
    first = simulate_noise(discs, kind, 0.25, seed=11)
    again = simulate_noise(discs, kind, 0.25, seed=11)
    other = simulate_noise(discs, kind, 0.25, seed=12)
    assert np.array_equal(first.labels, again.labels)
    assert first.noisy_labels == again.noisy_labels
    assert first.affected_clean == again.affected_clean
    assert not np.array_equal(first.labels, other.labels)


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_beta_zero_changes_nothing_and_the_input_is_left_alone(kind: str) -> None:
    clean = discs.copy()
    noisy = simulate_noise(clean, kind, 0.0, seed=0)
    assert np.array_equal(noisy.labels, discs)
    assert noisy.noisy_labels == noisy.affected_clean == frozenset()
    simulate_noise(clean, kind, 0.5, seed=0)
    assert np.array_equal(clean, discs)


def test_instances_too_small_for_a_type_are_skipped() -> None:
    labels = discs.copy()
    labels[labels > 50] = 0
    labels[0:3, 100:103] = 200  # 9 px: too small for a hole
    noisy = simulate_noise(labels, "holes", 1.0, seed=0)
    assert 200 not in noisy.affected_clean
    assert len(noisy.affected_clean) == 50


@pytest.mark.parametrize(("kind", "beta", "words"), [
    ("blurred", 0.1, "noise type 'blurred'"), ("split", 1.5, "beta = 1.5")])
def test_bad_kind_or_beta_is_refused_by_name(kind: str, beta: float, words: str) -> None:
    with pytest.raises(InputError, match=words):
        simulate_noise(discs, kind, beta, seed=0)


@pytest.mark.parametrize("beta", [0.5, 1.0])
@pytest.mark.parametrize("kind", ["oversized", "approximation", "merged"])
def test_growing_types_never_take_another_instances_pixels(kind: str, beta: float) -> None:
    packed = disc_grid(radius=6, step=13)  # neighbours 1 px apart
    noisy = simulate_noise(packed, kind, beta, seed=0)
    for i in set(range(1, N + 1)) - noisy.affected_clean:  # untouched: every pixel kept
        assert (noisy.labels[packed == i] == i).all()
    if kind != "merged":  # no clean pixel changes hands
        assert not ((noisy.labels > 0) & (packed > 0) & (noisy.labels != packed)).any()


def test_approximation_of_a_ring_leaves_the_instance_inside_it_alone() -> None:
    rows, cols = np.mgrid[:40, :40]
    distance = np.hypot(rows - 20, cols - 20)
    labels = np.where((distance <= 12) & (distance > 6), 1, 0).astype(np.int32)
    labels[distance <= 4] = 2
    noisy = next(n for seed in range(50)
                 if (n := simulate_noise(labels, "approximation", 0.5, seed=seed)
                     ).affected_clean == {1})
    assert (noisy.labels[labels == 2] == 2).all()
    assert (noisy.labels == 1).sum() != (labels == 1).sum()
