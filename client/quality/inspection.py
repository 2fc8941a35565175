"""AI²Seg's inspection (Algorithm 1): instance states, scores and the order of images.

An annotation and a model's prediction of one image (``(H, W)`` integer label arrays of the
same size, 0 = background) are matched one-to-one by IoU (:func:`match_instances`). Each
instance of either then has a state:

- **odd**: an annotated and a predicted instance overlap (matched; IoU in (0, 1]);
- **additional**: an annotated instance no prediction matches (IoU = 0);
- **missing**: a predicted instance no annotation matches (IoU = 0).

Scores (:func:`score_instances`), our reading of the paper's Section III-B:

- The mismatch is ``m = 1 − IoU``: 0 for a perfect match, 1 for an unmatched instance.
- γ ∈ [0, 1] (size) scales the IoU = 0 mismatches by the instance's area relative to ``A``,
  the largest area among the image's IoU = 0 instances: ``m = (1 − γ) + γ · area / A``. At
  γ = 0 every unmatched instance counts 1 (a speck the model did not see weighs as much as a
  forgotten nucleus); at γ = 1 the largest unmatched one counts 1 and the others by their
  size. (The paper speaks of scaling by the largest of all instances at γ = 0 and of the
  unmatched ones at γ = 1; a γ = 0 that scales nothing makes α = γ = 0 its naive setting.)
- α ∈ [0, 1] (uncertainty) weights the mismatch by the prediction's certainty ``c``:
  ``score = m · (1 − α + α · c)``. At α = 0 certainty plays no part; at α = 1 a mismatch
  with a prediction the model is unsure of counts for nothing, so the review starts with
  confident disagreements.

At α = γ = 0 the score is 1 − IoU: the paper's naive setting (its AUC column). The
certainty of a predicted instance is the mean, over the ensemble's members (the TTA and fold
predictions, de-augmented), of its best IoU with an instance of that member; of an
additional (annotation-only) instance it is 1 − the mean of the annotated instance's best
IoU there, i.e. how sure the members are that nothing is there. Without members it is 1.
An image's overall score is the mean of its instances' scores; images are reviewed in
descending order of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import InputError
from pathloop.client.quality.labels import (
    as_labels,
    box_xywh,
    instance_boxes,
    same_shape,
)
from pathloop.client.quality.matching import match_instances, overlaps
from pathloop.client.quality.noise import NoisyAnnotation

STATES = ("odd", "additional", "missing")


@dataclass(frozen=True)
class InstanceState:
    """One instance of an image's inspection.

    Attributes
    ----------
    number:
        1..n within the image, in a stable order: odd, additional, missing; each by id (the
        annotation's, for missing the prediction's).
    state:
        One of :data:`STATES`.
    annotation_id, prediction_id:
        The instance's id in the annotation and in the prediction (``None`` where absent).
    iou:
        IoU of the pair (odd); 0 for additional and missing.
    area:
        px: the annotated instance's (odd, additional), the predicted one's (missing).
    certainty:
        In [0, 1], see the module docstring; 1 without members.
    bbox:
        ``(x, y, w, h)`` px around both instances.
    """

    number: int
    state: str
    annotation_id: int | None
    prediction_id: int | None
    iou: float
    area: int
    certainty: float
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class ImageInspection:
    """An image's states, their scores (aligned, ``(n,)`` float64) and the overall score."""

    name: str
    states: tuple[InstanceState, ...]
    scores: NDArray[np.float64]
    overall: float


def assign_states(annotation: NDArray, prediction: NDArray,
                  members: Sequence[NDArray] = ()) -> tuple[InstanceState, ...]:
    """Every instance of the annotation and of the prediction with its state.

    Parameters
    ----------
    annotation, prediction:
        ``(H, W)`` integer label arrays of one image, the same size.
    members:
        The ensemble's members' ``(H, W)`` label arrays (TTA and folds, de-augmented), for
        the certainties; none gives certainty 1 everywhere.

    Raises
    ------
    InputError
        An array is not a label array or the sizes differ.
    """
    annotation = as_labels(annotation, "annotation")
    prediction = as_labels(prediction, "prediction")
    same_shape(annotation, prediction, "annotation", "prediction")
    for n, member in enumerate(members, start=1):
        same_shape(prediction, np.asarray(member), "prediction", f"ensemble member {n}")
    matching = match_instances(annotation, prediction)
    table = overlaps(annotation, prediction)
    boxes_a, boxes_p = instance_boxes(annotation), instance_boxes(prediction)
    sure_p = _mean_best_iou(prediction, members)
    sure_a = _mean_best_iou(annotation, members)
    states: list[InstanceState] = []
    for a_id, p_id, iou in sorted(matching.pairs):
        states.append(InstanceState(len(states) + 1, "odd", a_id, p_id, iou,
                                    table.a_area[a_id], sure_p.get(p_id, 1.0),
                                    _union_box(boxes_a[a_id], boxes_p[p_id])))
    for a_id in matching.unmatched_a:
        states.append(InstanceState(len(states) + 1, "additional", a_id, None, 0.0,
                                    table.a_area[a_id], 1.0 - sure_a.get(a_id, 0.0),
                                    box_xywh(boxes_a[a_id])))
    for p_id in matching.unmatched_b:
        states.append(InstanceState(len(states) + 1, "missing", None, p_id, 0.0,
                                    table.b_area[p_id], sure_p.get(p_id, 1.0),
                                    box_xywh(boxes_p[p_id])))
    return tuple(states)


def score_instances(states: Sequence[InstanceState], *, alpha: float,
                    gamma: float) -> NDArray[np.float64]:
    """Each instance's score in [0, 1], aligned with ``states`` (module docstring).

    Raises
    ------
    InputError
        α or γ outside [0, 1].
    """
    for name, value in (("alpha", alpha), ("gamma", gamma)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{name} = {value!r}: expected a number in [0, 1]")
    iou = np.array([s.iou for s in states], np.float64)
    area = np.array([s.area for s in states], np.float64)
    certainty = np.array([s.certainty for s in states], np.float64)
    unmatched = np.array([s.state != "odd" for s in states], bool)
    mismatch = 1.0 - iou
    if unmatched.any():
        largest = area[unmatched].max()
        mismatch[unmatched] = (1.0 - gamma) + gamma * area[unmatched] / largest
    return np.clip(mismatch * (1.0 - alpha + alpha * certainty), 0.0, 1.0)


def overall_score(scores: Iterable[float]) -> float:
    """The mean of an image's instance scores; 0.0 for an image without instances."""
    values = np.fromiter(scores, np.float64)
    return float(values.mean()) if values.size else 0.0


def inspect_image(name: str, annotation: NDArray, prediction: NDArray,
                  members: Sequence[NDArray] = (), *, alpha: float = 0.0,
                  gamma: float = 0.0) -> ImageInspection:
    """States, scores and overall score of one image (see :func:`assign_states`)."""
    states = assign_states(annotation, prediction, members)
    scores = score_instances(states, alpha=alpha, gamma=gamma)
    return ImageInspection(name, states, scores, overall_score(scores))


def order_images(inspections: Iterable[ImageInspection]) -> list[ImageInspection]:
    """Most suspect first: overall score descending, then name ascending."""
    return sorted(inspections, key=lambda image: (-image.overall, image.name))


def noise_truth(states: Sequence[InstanceState], noisy: NoisyAnnotation, clean: NDArray,
                prediction: NDArray | None = None) -> NDArray[np.bool_]:
    """Which states show simulated noise, aligned with ``states`` (the evaluation's truth).

    Odd and additional: the annotated instance is in ``noisy.noisy_labels``. Missing: the
    clean instance that overlaps the predicted one most is in ``noisy.affected_clean`` (a
    forgotten or merged-away nucleus the model found); none overlapping: not noise.

    ``prediction`` (the ``(H, W)`` label array the states came from) gives the predicted
    instance's pixels; without it the instance's bounding box stands in for them.
    """
    clean = as_labels(clean, "clean annotation")
    same_shape(clean, noisy.labels, "clean annotation", "noisy annotation")
    predicted: dict[int, int] = {}
    if prediction is not None:
        prediction = as_labels(prediction, "prediction")
        same_shape(clean, prediction, "clean annotation", "prediction")
        table = overlaps(prediction, clean)
        best = np.lexsort((table.b_ids, -table.intersections, table.a_ids))
        for p_id, c_id in zip(table.a_ids[best].tolist(), table.b_ids[best].tolist(),
                              strict=True):
            predicted.setdefault(p_id, c_id)
    truth = np.zeros(len(states), bool)
    for n, state in enumerate(states):
        if state.state != "missing":
            truth[n] = state.annotation_id in noisy.noisy_labels
            continue
        if prediction is not None:
            source = predicted.get(state.prediction_id or 0)
        else:
            source = _most_in_box(clean, state.bbox)
        truth[n] = source is not None and source in noisy.affected_clean
    return truth


def _mean_best_iou(labels: NDArray[np.int32], members: Sequence[NDArray]) -> dict[int, float]:
    """Per instance of ``labels``: the mean over members of its best IoU in that member."""
    if not members:
        return {}
    total: dict[int, float] = {}
    for member in members:
        table = overlaps(labels, member)
        best: dict[int, float] = {}
        for i, iou in zip(table.a_ids.tolist(), table.iou().tolist(), strict=True):
            best[i] = max(best.get(i, 0.0), iou)
        for i in table.a_area:
            total[i] = total.get(i, 0.0) + best.get(i, 0.0)
    return {i: value / len(members) for i, value in total.items()}


def _union_box(a: tuple[slice, slice], b: tuple[slice, slice]) -> tuple[int, int, int, int]:
    top, left = min(a[0].start, b[0].start), min(a[1].start, b[1].start)
    bottom, right = max(a[0].stop, b[0].stop), max(a[1].stop, b[1].stop)
    return (left, top, right - left, bottom - top)


def _most_in_box(clean: NDArray[np.int32], bbox: tuple[int, int, int, int]) -> int | None:
    x, y, w, h = bbox
    ids, counts = np.unique(clean[y:y + h, x:x + w], return_counts=True)
    counts = counts[ids > 0]
    ids = ids[ids > 0]
    return int(ids[np.argmax(counts)]) if ids.size else None


__all__ = ["STATES", "ImageInspection", "InstanceState", "assign_states", "inspect_image",
           "noise_truth", "order_images", "overall_score", "score_instances"]
