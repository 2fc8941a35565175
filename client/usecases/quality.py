"""AI²Seg inspections at the site: run one on an image set or a slide's annotated regions,
then review it (:mod:`pathloop.client.usecases.inspection_review`, re-exported here).

A run reads each item's annotation (an image's instance labels, or the nucleus instances
inside a slide region), predicts instances with the instance model and its test-time
augmentations, assigns every instance a state (odd, additional, missing) and stores the
findings with both label arrays as rasters, all in one transaction
(:meth:`~pathloop.client.store.Store.add_inspection`): an error or a cancel before the end
stores nothing. Label arrays are ``(H, W)`` int32, 0 = background, instance ids > 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import InputError
from pathloop.client.quality.inspection import assign_states, overall_score, score_instances
from pathloop.client.store import (
    InspectionItemInput,
    InspectionRecord,
    InspectionSource,
    SlideRecord,
    Store,
)
from pathloop.client.usecases.inspection_review import (
    DECISIONS,
    Decision,
    ScoredInstance,
    ScoredItem,
    decide,
    item_labels,
    item_view,
    rescore,
    scored_item,
)


@dataclass(frozen=True)
class InspectionCase:
    """One item to inspect: a box of a stored slide with its annotation and prediction.

    Attributes
    ----------
    name:
        The image's file name or the region's name.
    box:
        ``(x, y, width, height)`` in level-0 pixels of the slide.
    annotation, prediction:
        ``(height, width)`` int32 instance labels over the box at the slide's µm/px.
    members:
        The test-time-augmented (and per-fold) predictions, de-augmented, same shape: the
        instances' certainty comes from their agreement (none: certainty 1).
    """

    slide: SlideRecord
    name: str
    box: tuple[int, int, int, int]
    annotation: NDArray[np.int32]
    prediction: NDArray[np.int32]
    members: tuple[NDArray[np.int32], ...] = ()


def record_inspection(store: Store, cases: Sequence[InspectionCase], *, name: str,
                      source: InspectionSource, author: str, alpha: float = 0.0,
                      gamma: float = 0.0, params: Mapping[str, Any] | None = None,
                      model_version_id: int | None = None) -> InspectionRecord:
    """Assign states, score at α and γ, and store the run with every item at once.

    Raises
    ------
    InputError
        α or γ outside [0, 1], no case, or a case whose arrays do not fit its box.
    """
    if not (0.0 <= alpha <= 1.0 and 0.0 <= gamma <= 1.0):
        raise InputError(f"alpha and gamma must lie in [0, 1], got {alpha}, {gamma}")
    if not cases:
        raise InputError(f"inspection {name!r} has nothing to inspect")
    items = []
    for case in cases:
        _check_case(case)
        states = assign_states(case.annotation, case.prediction, case.members)
        scores = score_instances(states, alpha=alpha, gamma=gamma) if states \
            else np.zeros(0, dtype=np.float64)
        items.append(InspectionItemInput(
            name=case.name, slide_id=case.slide.id, box=case.box,
            mpp=(case.slide.mpp_x + case.slide.mpp_y) / 2,
            annotation=case.annotation.astype(np.int32, copy=False),
            prediction=case.prediction.astype(np.int32, copy=False),
            overall=overall_score(scores), instances=states))
    return store.add_inspection(name=name, source=source, author=author,
                                params=dict(params or {}), alpha=alpha, gamma=gamma,
                                items=items, model_version_id=model_version_id)


def _check_case(case: InspectionCase) -> None:
    x, y, width, height = case.box
    slide = case.slide
    if width <= 0 or height <= 0 or x < 0 or y < 0 or x + width > slide.width \
            or y + height > slide.height:
        raise InputError(f"{case.name}: box {case.box} is not inside slide {slide.id} "
                         f"({slide.width}×{slide.height} px)")
    for what, labels in (("annotation", case.annotation), ("prediction", case.prediction),
                         *(("a TTA member", m) for m in case.members)):
        if labels.shape != (height, width):
            raise InputError(f"{case.name}: {what} is {labels.shape[1]}×{labels.shape[0]} "
                             f"px but the box is {width}×{height} px")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
            raise InputError(f"{case.name}: {what} must hold non-negative integer "
                             f"instance ids, got {labels.dtype}")


__all__ = [
    "DECISIONS",
    "Decision",
    "InspectionCase",
    "ScoredInstance",
    "ScoredItem",
    "decide",
    "item_labels",
    "item_view",
    "record_inspection",
    "rescore",
    "scored_item",
]
