"""States, scores, order and noise truth of AI²Seg's inspection, on hand-made label arrays."""

from __future__ import annotations

import numpy as np
import pytest

from pathloop.client.errors import InputError
from pathloop.client.quality import (
    ImageInspection,
    NoisyAnnotation,
    assign_states,
    inspect_image,
    noise_truth,
    order_images,
    overall_score,
    score_instances,
)


def _case() -> tuple[np.ndarray, np.ndarray]:
    """Annotation: 1 (6×6) matched by prediction 5 (5×6, IoU 5/6), 2 (5×5) that nothing
    predicts; prediction: 7 (4×4) that nobody annotated."""
    annotation = np.zeros((20, 20), np.int32)
    annotation[2:8, 2:8] = 1
    annotation[10:15, 10:15] = 2
    prediction = np.zeros_like(annotation)
    prediction[3:8, 2:8] = 5
    prediction[15:19, 0:4] = 7
    return annotation, prediction


def test_states_are_odd_additional_missing_numbered_in_that_order() -> None:
    annotation, prediction = _case()
    states = assign_states(annotation, prediction)
    assert [(s.number, s.state, s.annotation_id, s.prediction_id) for s in states] == [
        (1, "odd", 1, 5), (2, "additional", 2, None), (3, "missing", None, 7)]
    assert states[0].iou == pytest.approx(5 / 6)
    assert [s.iou for s in states[1:]] == [0.0, 0.0]
    assert [s.area for s in states] == [36, 25, 16]
    assert [s.bbox for s in states] == [(2, 2, 6, 6), (10, 10, 5, 5), (0, 15, 4, 4)]
    assert [s.certainty for s in states] == [1.0, 1.0, 1.0]  # no members


def test_alpha_gamma_zero_is_one_minus_iou() -> None:
    states = assign_states(*_case())
    scores = score_instances(states, alpha=0.0, gamma=0.0)
    assert scores.tolist() == pytest.approx([1 / 6, 1.0, 1.0])


@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_gamma_scales_unmatched_instances_by_size_against_the_largest(gamma: float) -> None:
    states = assign_states(*_case())
    scores = score_instances(states, alpha=0.0, gamma=gamma)
    # A = 25 (the additional instance), the missing one has 16 px; odd ones are untouched.
    assert scores.tolist() == pytest.approx([1 / 6, 1.0, (1 - gamma) + gamma * 16 / 25])


def test_certainty_comes_from_the_members_and_alpha_weights_by_it() -> None:
    annotation, prediction = _case()
    # One member that equals the annotation: prediction 5 overlaps it with IoU 5/6, 7 not at
    # all; annotation 2 is fully there (so the members do not confirm "nothing is there").
    states = assign_states(annotation, prediction, [annotation])
    assert [s.certainty for s in states] == pytest.approx([5 / 6, 0.0, 0.0])
    # Two members (the prediction, an empty one): means of 1 and 0.
    halves = assign_states(annotation, prediction, [prediction, np.zeros_like(prediction)])
    assert [s.certainty for s in halves] == pytest.approx([0.5, 1.0, 0.5])
    assert score_instances(states, alpha=1.0, gamma=0.0).tolist() == pytest.approx(
        [1 / 6 * 5 / 6, 0.0, 0.0])
    assert score_instances(states, alpha=0.5, gamma=0.0).tolist() == pytest.approx(
        [1 / 6 * (0.5 + 0.5 * 5 / 6), 0.5, 0.5])


def test_scores_stay_in_the_unit_interval_and_bad_parameters_are_refused() -> None:
    states = assign_states(*_case())
    for alpha in (0.0, 0.3, 1.0):
        for gamma in (0.0, 0.7, 1.0):
            scores = score_instances(states, alpha=alpha, gamma=gamma)
            assert ((scores >= 0) & (scores <= 1)).all()
    with pytest.raises(InputError, match=r"alpha = 1\.5"):
        score_instances(states, alpha=1.5, gamma=0.0)
    with pytest.raises(InputError, match=r"gamma = -0\.1"):
        score_instances(states, alpha=0.0, gamma=-0.1)


def test_a_member_of_another_size_is_refused() -> None:
    annotation, prediction = _case()
    with pytest.raises(InputError, match="ensemble member 1"):
        assign_states(annotation, prediction, [np.zeros((5, 5), np.int32)])


def test_overall_is_the_mean_and_images_are_ordered_by_it_then_by_name() -> None:
    annotation, prediction = _case()
    image = inspect_image("b", annotation, prediction, alpha=0.0, gamma=0.0)
    assert image.overall == pytest.approx((1 / 6 + 1 + 1) / 3)
    perfect = inspect_image("a", annotation, annotation)
    empty = inspect_image("c", np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32))
    assert perfect.overall == 0.0 and empty.overall == 0.0 and empty.states == ()
    tie = ImageInspection("a2", (), np.zeros(0), image.overall)
    assert [i.name for i in order_images([perfect, empty, tie, image])] == [
        "a2", "b", "a", "c"]
    assert overall_score([]) == 0.0


def test_noise_truth_follows_the_noisy_ids_and_the_affected_clean_ones() -> None:
    clean = np.zeros((30, 30), np.int32)
    clean[2:8, 2:8] = 1
    clean[12:18, 2:8] = 2
    clean[22:28, 2:8] = 3
    clean[12:18, 12:18] = 4
    noisy_labels = clean.copy()
    noisy_labels[1:9, 1:9] = np.where(clean[1:9, 1:9] == 0, 1, noisy_labels[1:9, 1:9])
    noisy_labels[clean == 3] = 0  # 1 oversized, 3 forgotten
    noisy = NoisyAnnotation(noisy_labels, "mixed", 0.5, 0, frozenset({1}), frozenset({1, 3}))
    prediction = clean.copy()
    prediction[prediction > 0] += 10  # 11, 12, 13 where the clean instances are
    prediction[22:28, 20:26] = 19  # a spurious prediction: no clean instance under it
    prediction[12:18, 16:18] = 24  # the clean, unaffected 4 predicted in two: 14 and 24
    states = assign_states(noisy.labels, prediction)
    assert [(s.state, s.annotation_id, s.prediction_id) for s in states] == [
        ("odd", 1, 11), ("odd", 2, 12), ("odd", 4, 14), ("missing", None, 13),
        ("missing", None, 19), ("missing", None, 24)]
    expected = [True, False, False, True, False, False]
    assert noise_truth(states, noisy, clean, prediction).tolist() == expected
    assert noise_truth(states, noisy, clean).tolist() == expected  # by bounding box
