"""Reviewing an AI²Seg inspection: items by score at any α and γ, their views, decisions.

Scores are never stored for one weighting only: each instance's state, IoU, area and
certainty are, and :func:`rescore` recomputes every score for the α (uncertainty weighting)
and γ (size scaling) asked, so a pathologist can move them live.

A decision on an item or on one of its instances (keep the annotation, accept the
prediction, re-annotate) is a correction version of the item's box (see
:mod:`pathloop.client.store.corrections`) whose data say which inspection, item and instance
it is about, with the resulting instance label mask as its raster:

- keep-annotation: the item's annotation (one instance: the annotation restored where the
  instance is);
- accept-prediction: the prediction (one instance: the annotated instance replaced by the
  predicted one);
- re-annotate: no mask, a request that someone annotates it again.

A per-instance decision applies to the mask of the item's latest decision, so decisions on
several instances add up. Label masks are ``(H, W)`` int32 over the item's box at its µm/px.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import ConflictError, InputError
from pathloop.client.quality.inspection import InstanceState, overall_score, score_instances
from pathloop.client.settings import SiteSettings
from pathloop.client.store import (
    CorrectionRecord,
    InspectionItemRecord,
    InspectionRecord,
    InstanceFindingRecord,
    PatchBox,
    Store,
)
from pathloop.client.usecases.slides import open_stored_slide
from pathloop.client.viewing.inspection_views import (
    SUSPECT_SCORE,
    View,
    ViewInstance,
    render_view,
)

Decision = Literal["keep-annotation", "accept-prediction", "re-annotate"]
DECISIONS: tuple[Decision, ...] = ("keep-annotation", "accept-prediction", "re-annotate")
DECISION_RASTER = "inspection-decision"
"""Kind of the label mask raster a decision stores."""
MAX_VIEW_PIXELS = 4096 * 4096
"""Largest item a view renders (a slide region beyond it is refused, not downsampled)."""


@dataclass(frozen=True)
class ScoredInstance:
    """An instance finding with its score at the asked α and γ and its latest decision."""

    finding: InstanceFindingRecord
    score: float
    decision: Decision | None

    @property
    def suspect(self) -> bool:
        """Whether the score reaches :data:`SUSPECT_SCORE`."""
        return self.score >= SUSPECT_SCORE


@dataclass(frozen=True)
class ScoredItem:
    """An inspected item scored at the asked α and γ.

    Attributes
    ----------
    overall:
        Mean of its instances' scores (0 for an item without instances).
    decision:
        The latest decision on the whole item, if any.
    version:
        Latest correction version of the item's box (0: none): the ``base_version`` of the
        next decision.
    """

    item: InspectionItemRecord
    slide_name: str
    overall: float
    instances: tuple[ScoredInstance, ...]
    decision: Decision | None
    version: int

    @property
    def n_suspect(self) -> int:
        """How many instances are suspect."""
        return sum(instance.suspect for instance in self.instances)


def weights(inspection: InspectionRecord, alpha: float | None, gamma: float | None
            ) -> tuple[float, float]:
    """α and γ to score with: the ones asked, else the run's; :class:`InputError` outside
    [0, 1]."""
    alpha = inspection.alpha if alpha is None else alpha
    gamma = inspection.gamma if gamma is None else gamma
    for name, value in (("alpha", alpha), ("gamma", gamma)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{name} must lie in [0, 1], got {value}")
    return alpha, gamma


def rescore(store: Store, inspection_id: int, *, alpha: float | None = None,
            gamma: float | None = None) -> list[ScoredItem]:
    """Every item of an inspection scored at α, γ (default the run's), the most suspect
    first (overall score descending, then name)."""
    inspection = store.get_inspection(inspection_id)
    alpha, gamma = weights(inspection, alpha, gamma)
    items = store.inspection_items(inspection_id)
    findings = store.instance_findings([item.id for item in items])
    names = {slide.id: slide.name for slide in store.list_slides()}
    scored = [_score(store, item, names.get(item.slide_id, ""), findings[item.id],
                     alpha, gamma) for item in items]
    return sorted(scored, key=lambda s: (-s.overall, s.item.name, s.item.id))


def scored_item(store: Store, inspection_id: int, item_id: int, *,
                alpha: float | None = None, gamma: float | None = None) -> ScoredItem:
    """One item scored at α, γ (default the run's)."""
    alpha, gamma = weights(store.get_inspection(inspection_id), alpha, gamma)
    item = store.inspection_item(inspection_id, item_id)
    slide = store.get_slide(item.slide_id)
    return _score(store, item, slide.name, store.instance_findings([item.id])[item.id],
                  alpha, gamma)


def item_labels(store: Store, item: InspectionItemRecord
                ) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """The item's stored annotation and prediction, ``(height, width)`` int32 each."""
    annotation = store.rasters.open_raster(item.annotation_raster_id).read()
    prediction = store.rasters.open_raster(item.prediction_raster_id).read()
    return annotation.astype(np.int32, copy=False), prediction.astype(np.int32, copy=False)


def item_view(settings: SiteSettings, store: Store, inspection_id: int, item_id: int,
              view: View, *, alpha: float | None = None, gamma: float | None = None,
              selected: int | None = None) -> NDArray[np.uint8]:
    """One of the item's three views as ``(height, width, 3)`` uint8 RGB at its µm/px.

    Raises
    ------
    InputError
        The item is larger than :data:`MAX_VIEW_PIXELS`.
    """
    scored = scored_item(store, inspection_id, item_id, alpha=alpha, gamma=gamma)
    item = scored.item
    if item.width * item.height > MAX_VIEW_PIXELS:
        raise InputError(f"item {item.id} is {item.width}×{item.height} px, more than the "
                         f"{MAX_VIEW_PIXELS} pixels a view renders")
    annotation, prediction = item_labels(store, item)
    with open_stored_slide(settings, store.get_slide(item.slide_id)) as slide:
        image = slide.read_region(item.x, item.y, item.width, item.height, item.mpp)
    instances = [ViewInstance(number=s.finding.number, annotation_id=s.finding.annotation_id,
                              prediction_id=s.finding.prediction_id, score=s.score,
                              bbox=s.finding.bbox) for s in scored.instances]
    return render_view(view, image, annotation, prediction, instances, selected=selected)


def decide(store: Store, inspection_id: int, item_id: int, *, decision: Decision,
           instance: int | None, base_version: int | None, author: str) -> CorrectionRecord:
    """Store a decision on an item (``instance=None``) or one of its instances.

    Raises
    ------
    InputError
        An unknown decision or instance number.
    ConflictError
        ``base_version`` is not the box's latest correction version; nothing is stored.
    """
    if decision not in DECISIONS:
        raise InputError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    item = store.inspection_item(inspection_id, item_id)
    findings = store.instance_findings([item.id])[item.id]
    finding = None
    if instance is not None:
        finding = next((f for f in findings if f.number == instance), None)
        if finding is None:
            raise InputError(f"item {item.id} has no instance {instance} "
                             f"(it has 1..{len(findings)})")
    box = _box(item)
    history = store.correction_history(box)
    if (base_version or 0) != len(history):  # refused before any raster is written
        raise ConflictError(f"the decisions on item {item.id} are at version {len(history)}, "
                            f"but this one was based on version {base_version or 0}")
    raster_id = None
    if decision != "re-annotate":
        mask = _decided_mask(store, item, history, decision, finding)
        raster_id = store.rasters.save(mask, item.slide_id, DECISION_RASTER, mpp=item.mpp,
                                       downsample="nearest", actor=author,
                                       attributes={"box": [item.x, item.y, item.width,
                                                           item.height]}).id
    data = {"source": "inspection", "inspection_id": inspection_id, "item_id": item.id,
            "instance": instance, "decision": decision}
    return store.save_correction(box, data=data, author=author, base_version=base_version,
                                 raster_id=raster_id)


def _box(item: InspectionItemRecord) -> PatchBox:
    return PatchBox(item.slide_id, item.x, item.y, item.width, item.height, item.mpp)


def _is_decision_of(record: CorrectionRecord, item: InspectionItemRecord) -> bool:
    data: dict[str, Any] = record.data
    return (data.get("source") == "inspection" and data.get("item_id") == item.id
            and data.get("inspection_id") == item.inspection_id)


def _decided_mask(store: Store, item: InspectionItemRecord, history: Sequence[CorrectionRecord],
                  decision: Decision, finding: InstanceFindingRecord | None
                  ) -> NDArray[np.int32]:
    annotation, prediction = item_labels(store, item)
    if finding is None:
        return annotation.copy() if decision == "keep-annotation" else prediction.copy()
    base = annotation.copy()
    if history and _is_decision_of(history[-1], item) and history[-1].raster_id is not None:
        base = store.rasters.open_raster(history[-1].raster_id).read().astype(np.int32)
    annotated = (annotation == finding.annotation_id) if finding.annotation_id is not None \
        else np.zeros(annotation.shape, dtype=bool)
    predicted = (prediction == finding.prediction_id) if finding.prediction_id is not None \
        else np.zeros(prediction.shape, dtype=bool)
    if decision == "keep-annotation":
        where = annotated | predicted
        base[where] = annotation[where]
    else:
        base[annotated] = 0
        # A fresh id: never one of the annotation's, which a later keep-annotation restores.
        base[predicted] = max(int(annotation.max(initial=0)), int(base.max(initial=0))) + 1
    return base


def _score(store: Store, item: InspectionItemRecord, slide_name: str,
           findings: Sequence[InstanceFindingRecord], alpha: float, gamma: float
           ) -> ScoredItem:
    states = [InstanceState(number=f.number, state=f.state, annotation_id=f.annotation_id,
                            prediction_id=f.prediction_id, iou=f.iou, area=f.area,
                            certainty=f.certainty, bbox=f.bbox) for f in findings]
    scores = score_instances(states, alpha=alpha, gamma=gamma) if states \
        else np.zeros(0, dtype=np.float64)
    history = store.correction_history(_box(item))
    item_decision: Decision | None = None
    instance_decisions: dict[int, Decision] = {}
    for record in history:
        if not _is_decision_of(record, item):
            continue
        number = record.data.get("instance")
        if number is None:
            item_decision = record.data["decision"]
        else:
            instance_decisions[int(number)] = record.data["decision"]
    instances = tuple(ScoredInstance(f, float(s), instance_decisions.get(f.number))
                      for f, s in zip(findings, scores, strict=True))
    return ScoredItem(item=item, slide_name=slide_name, overall=float(overall_score(scores)),
                      instances=instances, decision=item_decision, version=len(history))
