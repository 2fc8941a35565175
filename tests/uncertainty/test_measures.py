"""The UGA uncertainty, predictive entropy and mutual information on hand-made arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pathloop.client.uncertainty as uncertainty
from pathloop.client.uncertainty import (
    EPS,
    fold_mean,
    mutual_information,
    predictive_entropy,
    uga_uncertainty,
    uncertainty_maps,
)


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return (shifted / shifted.sum(axis=axis, keepdims=True)).astype(np.float32)


def _random_folds(shape: tuple[int, ...], seed: int = 0, spread: float = 2.0) -> np.ndarray:
    """``(K, C, ...)`` softmax probabilities of random logits."""
    return _softmax(np.random.default_rng(seed).normal(0, spread, shape), axis=1)


def _reference(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three measures written the plain float64 way (the authors' formulas)."""
    p = probs.astype(np.float64)
    mean = p.mean(axis=0)
    u = -(mean[None] * np.log(p + EPS)).sum(axis=1).mean(axis=0)
    h = -(mean * np.log(mean + EPS)).sum(axis=0)
    mi = h - (-(p * np.log(p + EPS)).sum(axis=1)).mean(axis=0)
    return u, h, mi


def test_measures_match_the_plain_formulas() -> None:
    probs = _random_folds((5, 3, 7, 9))
    u, h, mi = _reference(probs)
    maps = uncertainty_maps(probs)
    np.testing.assert_allclose(maps.uga, u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.entropy, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.mutual_information, mi, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps.mean, probs.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(uga_uncertainty(probs), maps.uga)
    np.testing.assert_array_equal(predictive_entropy(probs), maps.entropy)
    np.testing.assert_array_equal(mutual_information(probs), maps.mutual_information)


def test_uga_is_entropy_plus_mean_kl_divergence() -> None:
    probs = _random_folds((4, 2, 50), seed=3).astype(np.float64)
    mean = probs.mean(axis=0)
    kl = (mean[None] * (np.log(mean[None] + EPS) - np.log(probs + EPS))).sum(axis=1).mean(0)
    np.testing.assert_allclose(uga_uncertainty(probs), predictive_entropy(probs) + kl,
                               rtol=1e-5, atol=1e-6)


def test_identical_folds_give_the_entropy_of_the_mean_and_no_mutual_information() -> None:
    one = _random_folds((1, 4, 16, 16), seed=1)
    probs = np.repeat(one, 5, axis=0)
    maps = uncertainty_maps(probs)
    entropy = -(one[0] * np.log(one[0] + EPS)).sum(axis=0)
    np.testing.assert_allclose(maps.uga, entropy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.entropy, entropy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.mutual_information, 0.0, atol=1e-5)


def test_disagreeing_folds_are_more_uncertain_than_agreeing_ones_with_the_same_mean() -> None:
    # Same mean (0.5, 0.5) everywhere: agreeing folds say 0.5, disagreeing ones 0.9 / 0.1.
    agree = np.full((4, 2, 3), 0.5, np.float32)
    disagree = np.empty((4, 2, 3), np.float32)
    disagree[:, 0] = np.array([0.9, 0.1, 0.9, 0.1])[:, None]
    disagree[:, 1] = 1 - disagree[:, 0]
    calm, torn = uncertainty_maps(agree), uncertainty_maps(disagree)
    np.testing.assert_allclose(calm.entropy, torn.entropy, rtol=1e-6)
    assert np.all(torn.uga > calm.uga + 0.3)
    assert np.all(torn.mutual_information > 0.3)
    np.testing.assert_allclose(calm.uga, math.log(2), rtol=1e-5)


def test_more_disagreement_means_more_uncertainty() -> None:
    values = []
    for gap in (0.0, 0.2, 0.4, 0.49):
        probs = np.empty((2, 2), np.float32)
        probs[:, 0] = (0.5 + gap, 0.5 - gap)
        probs[:, 1] = 1 - probs[:, 0]
        values.append(float(uga_uncertainty(probs)))
    assert values == sorted(values) and values[0] < values[-1]


def test_confident_agreeing_folds_are_certain() -> None:
    labels = np.random.default_rng(2).integers(0, 3, (8, 8))
    one_hot = np.moveaxis(np.eye(3, dtype=np.float32)[labels], -1, 0)  # (C, H, W)
    probs = np.repeat(one_hot[None], 5, axis=0)
    maps = uncertainty_maps(probs)
    for values in (maps.uga, maps.entropy, maps.mutual_information):
        assert float(np.abs(values).max()) < 1e-6


def test_one_hot_folds_that_disagree_are_bounded_by_minus_log_eps() -> None:
    probs = np.zeros((2, 2, 1), np.float32)
    probs[0, 0] = probs[1, 1] = 1.0
    maps = uncertainty_maps(probs)
    assert float(maps.uga[0]) == pytest.approx(0.5 * -math.log(EPS), rel=1e-4)
    assert float(maps.entropy[0]) == pytest.approx(math.log(2), rel=1e-5)
    assert float(maps.mutual_information[0]) == pytest.approx(math.log(2), rel=1e-5)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_bounds_hold_on_random_folds(n_classes: int) -> None:
    probs = _random_folds((5, n_classes, 64, 64), seed=n_classes, spread=4.0)
    maps = uncertainty_maps(probs)
    tolerance = 1e-5
    assert float(maps.entropy.min()) >= 0.0
    assert float(maps.entropy.max()) <= math.log(n_classes) + tolerance
    assert float(maps.mutual_information.min()) >= 0.0
    assert np.all(maps.mutual_information <= maps.entropy + tolerance)
    assert np.all(maps.uga >= maps.entropy - tolerance)
    assert float(maps.uga.max()) <= -math.log(EPS) + tolerance


@pytest.mark.parametrize("spatial", [(), (7,), (3, 4), (2, 3, 4)])
def test_shapes_and_dtypes(spatial: tuple[int, ...]) -> None:
    probs = _random_folds((3, 2, *spatial)).astype(np.float16)
    maps = uncertainty_maps(probs)
    assert maps.mean.shape == (2, *spatial) and maps.mean.dtype == np.float32
    for values in (maps.uga, maps.entropy, maps.mutual_information, uga_uncertainty(probs),
                   predictive_entropy(probs), mutual_information(probs)):
        assert values.shape == spatial
        assert values.dtype == np.float32


def test_input_is_not_modified_and_float64_works() -> None:
    probs = _random_folds((5, 2, 10)).astype(np.float64)
    before = probs.copy()
    uncertainty_maps(probs)
    fold_mean(probs)
    np.testing.assert_array_equal(probs, before)
    assert fold_mean(probs).dtype == np.float32


def test_a_fold_axis_view_works_without_copying_the_input() -> None:
    # Inference hands (K, B, C, H, W) per tile: probs[:, b] is a strided view.
    batch = _random_folds((5, 3, 2, 8, 8))  # softmax over axis 1 = B here; re-normalise on C
    batch = (batch / batch.sum(axis=2, keepdims=True)).astype(np.float32)
    view = batch[:, 1]
    np.testing.assert_allclose(uga_uncertainty(view),
                               uga_uncertainty(np.ascontiguousarray(view)), rtol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros(3, np.float32), np.zeros((0, 2, 3), np.float32),
                                 np.zeros((2, 0, 3), np.float32), np.zeros((2, 2), np.int64)])
def test_bad_arrays_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        uncertainty_maps(bad)


def test_public_surface() -> None:
    assert uncertainty.__all__ == sorted(uncertainty.__all__)
    assert all(hasattr(uncertainty, name) for name in uncertainty.__all__)
