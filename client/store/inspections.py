"""AI²Seg inspections: runs, their items and instance findings, all append-only.

A run (``inspections``) holds items (``inspection_items``: an image, or a region of a slide)
and each item its instance findings (``inspection_instances``). Nothing is updated in
place: a new run is a new inspection, and database triggers refuse UPDATE and DELETE on the
three tables. A pathologist's decision on a finding is a correction version of the item's
box (:mod:`pathloop.client.store.corrections`), not a change here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.store import audit, slides
from pathloop.client.store.models import Inspection, InspectionInstance, InspectionItem, utcnow
from pathloop.client.store.records import (
    InspectionItemRecord,
    InspectionRecord,
    InspectionSource,
    InstanceFindingRecord,
    InstanceStateName,
)


@dataclass(frozen=True)
class NewItem:
    """An item to record, its label rasters already stored in the same transaction.

    ``instances`` are objects with ``number``, ``state``, ``annotation_id``,
    ``prediction_id``, ``iou``, ``area``, ``certainty`` and ``bbox`` (``(x, y, w, h)``), such
    as :class:`pathloop.client.quality.inspection.InstanceState`.
    """

    name: str
    slide_id: int
    box: tuple[int, int, int, int]
    mpp: float
    annotation_raster_id: int
    prediction_raster_id: int
    overall: float
    instances: Sequence[Any]


def add(
    session: Session,
    *,
    name: str,
    source: InspectionSource,
    author: str,
    model_version_id: int | None,
    params: Mapping[str, Any],
    alpha: float,
    gamma: float,
    items: Sequence[NewItem],
) -> InspectionRecord:
    """Insert a run with its items and findings, and its audit event, in ``session``.

    Raises
    ------
    RecordNotFoundError
        An item's slide does not exist.
    ValueError
        α or γ outside [0, 1], or an unknown instance state.
    """
    if not (0.0 <= alpha <= 1.0 and 0.0 <= gamma <= 1.0):
        raise ValueError(f"alpha and gamma must lie in [0, 1], got {alpha}, {gamma}")
    inspection_id = session.execute(
        insert(Inspection)
        .values(name=name, source=source, author=author, model_version_id=model_version_id,
                params=dict(params), alpha=float(alpha), gamma=float(gamma),
                created_at=utcnow())
        .returning(Inspection.id)
    ).scalar_one()
    n_instances = 0
    for item in items:
        slides.require(session, item.slide_id)
        x, y, width, height = (int(v) for v in item.box)
        item_id = session.execute(
            insert(InspectionItem)
            .values(inspection_id=inspection_id, name=item.name, slide_id=item.slide_id,
                    x=x, y=y, width=width, height=height, mpp=float(item.mpp),
                    annotation_raster_id=item.annotation_raster_id,
                    prediction_raster_id=item.prediction_raster_id,
                    overall=float(item.overall))
            .returning(InspectionItem.id)
        ).scalar_one()
        rows = [_instance_row(item_id, instance) for instance in item.instances]
        if rows:
            session.execute(insert(InspectionInstance), rows)
        n_instances += len(rows)
    audit.append(
        session,
        actor=author,
        action="inspection.add",
        subject=audit.subject("inspection", inspection_id),
        details={"name": name, "source": source, "items": len(items),
                 "instances": n_instances, "alpha": alpha, "gamma": gamma,
                 "model_version_id": model_version_id},
    )
    return get(session, inspection_id)


def get(session: Session, inspection_id: int) -> InspectionRecord:
    """The inspection with this id, or :class:`RecordNotFoundError`."""
    row = session.get(Inspection, inspection_id)
    if row is None:
        raise RecordNotFoundError(f"inspection {inspection_id} not found")
    return _to_record(row, _count_items(session, [row.id]).get(row.id, 0))


def all_inspections(session: Session) -> list[InspectionRecord]:
    """Every inspection, newest first."""
    rows = session.scalars(select(Inspection).order_by(Inspection.id.desc())).all()
    counts = _count_items(session, [row.id for row in rows])
    return [_to_record(row, counts.get(row.id, 0)) for row in rows]


def items(session: Session, inspection_id: int) -> list[InspectionItemRecord]:
    """An inspection's items in the order they were stored."""
    get(session, inspection_id)
    rows = session.scalars(select(InspectionItem)
                           .where(InspectionItem.inspection_id == inspection_id)
                           .order_by(InspectionItem.id)).all()
    return [_to_item(row) for row in rows]


def get_item(session: Session, inspection_id: int, item_id: int) -> InspectionItemRecord:
    """One item of an inspection, or :class:`RecordNotFoundError` (also when it belongs to
    another inspection)."""
    row = session.get(InspectionItem, item_id)
    if row is None or row.inspection_id != inspection_id:
        raise RecordNotFoundError(f"item {item_id} of inspection {inspection_id} not found")
    return _to_item(row)


def findings(session: Session, item_ids: Sequence[int]) -> dict[int, list[InstanceFindingRecord]]:
    """The instance findings of each item, by number (an item without any: empty list)."""
    found: dict[int, list[InstanceFindingRecord]] = {item_id: [] for item_id in item_ids}
    if not item_ids:
        return found
    rows = session.scalars(select(InspectionInstance)
                           .where(InspectionInstance.item_id.in_(list(item_ids)))
                           .order_by(InspectionInstance.item_id, InspectionInstance.number))
    for row in rows:
        found[row.item_id].append(InstanceFindingRecord(
            item_id=row.item_id, number=row.number,
            state=cast(InstanceStateName, row.state),
            annotation_id=row.annotation_id, prediction_id=row.prediction_id,
            iou=row.iou, area=row.area, certainty=row.certainty,
            bbox=(row.bbox_x, row.bbox_y, row.bbox_width, row.bbox_height)))
    return found


_STATES = ("odd", "additional", "missing")


def _instance_row(item_id: int, instance: Any) -> dict[str, Any]:
    state = str(instance.state)
    if state not in _STATES:
        raise ValueError(f"instance state must be one of {_STATES}, got {state!r}")
    bx, by, bw, bh = (int(v) for v in instance.bbox)
    return {
        "item_id": item_id,
        "number": int(instance.number),
        "state": state,
        "annotation_id": None if instance.annotation_id is None else int(instance.annotation_id),
        "prediction_id": None if instance.prediction_id is None else int(instance.prediction_id),
        "iou": float(instance.iou),
        "area": int(instance.area),
        "certainty": float(instance.certainty),
        "bbox_x": bx, "bbox_y": by, "bbox_width": bw, "bbox_height": bh,
    }


def _count_items(session: Session, inspection_ids: Sequence[int]) -> dict[int, int]:
    if not inspection_ids:
        return {}
    rows = session.execute(
        select(InspectionItem.inspection_id, func.count())
        .where(InspectionItem.inspection_id.in_(list(inspection_ids)))
        .group_by(InspectionItem.inspection_id)
    ).all()
    return {int(inspection_id): int(count) for inspection_id, count in rows}


def _to_record(row: Inspection, n_items: int) -> InspectionRecord:
    return InspectionRecord(
        id=row.id, name=row.name, source=cast(InspectionSource, row.source), author=row.author,
        model_version_id=row.model_version_id, params=dict(row.params), alpha=row.alpha,
        gamma=row.gamma, n_items=n_items, created_at=row.created_at)


def _to_item(row: InspectionItem) -> InspectionItemRecord:
    return InspectionItemRecord(
        id=row.id, inspection_id=row.inspection_id, name=row.name, slide_id=row.slide_id,
        x=row.x, y=row.y, width=row.width, height=row.height, mpp=row.mpp,
        annotation_raster_id=row.annotation_raster_id,
        prediction_raster_id=row.prediction_raster_id, overall=row.overall)
