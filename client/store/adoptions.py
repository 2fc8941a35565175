"""Which stored model version is the site's current one: a log of adoption decisions.

A version is *current-eligible* when its newest decision is ``adopted`` or when it has no
decision at all (versions trained or imported by the operator, and every version of a store
older than this table); the current version of a kind is its newest eligible one. Versions
refused by the gate or held (stored, not a candidate yet) are kept with their weights but
never picked up as current by prediction, ranking or training.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session, aliased

from pathloop.client.store import audit, model_versions
from pathloop.client.store.models import ModelAdoption, ModelVersion, utcnow
from pathloop.client.store.records import AdoptionOutcome, AdoptionRecord, ModelVersionRecord


def add(
    session: Session,
    *,
    version_id: int,
    outcome: AdoptionOutcome,
    reason: str,
    actor: str,
    dice: float | None = None,
    current_id: int | None = None,
    current_dice: float | None = None,
    margin: float | None = None,
    held_out: int = 0,
) -> AdoptionRecord:
    """Record a decision on a model version (with its audit event).

    Raises
    ------
    RecordNotFoundError
        ``version_id`` (or ``current_id``) names no model version.
    """
    version = model_versions.get(session, version_id)
    if current_id is not None:
        model_versions.get(session, current_id)
    adoption_id = session.execute(
        insert(ModelAdoption)
        .values(
            model_version_id=version_id, kind=version.kind, outcome=outcome, dice=dice,
            current_id=current_id, current_dice=current_dice, margin=margin,
            held_out=held_out, reason=reason, actor=actor, created_at=utcnow(),
        )
        .returning(ModelAdoption.id)
    ).scalar_one()
    audit.append(
        session,
        actor=actor,
        action=f"model_version.{outcome}",
        subject=audit.subject("model_version", version_id),
        details={"dice": dice, "current_id": current_id, "current_dice": current_dice,
                 "margin": margin, "held_out": held_out, "reason": reason},
    )
    return _record(session.get_one(ModelAdoption, adoption_id))


def current(session: Session, kind: str, *, excluding: int | None = None
            ) -> ModelVersionRecord | None:
    """The newest current-eligible version of ``kind`` (not ``excluding``), or ``None``."""
    newest = (select(ModelAdoption.model_version_id, func.max(ModelAdoption.id).label("last"))
              .group_by(ModelAdoption.model_version_id).subquery())
    decision = aliased(ModelAdoption)
    query = (select(ModelVersion.id)
             .outerjoin(newest, newest.c.model_version_id == ModelVersion.id)
             .outerjoin(decision, decision.id == newest.c.last)
             .where(ModelVersion.kind == kind,
                    or_(decision.id.is_(None), decision.outcome == "adopted")))
    if excluding is not None:
        query = query.where(ModelVersion.id != excluding)
    version_id = session.scalars(query.order_by(ModelVersion.id.desc()).limit(1)).first()
    return None if version_id is None else model_versions.get(session, version_id)


def count(session: Session, kind: str, outcome: AdoptionOutcome) -> int:
    """How many distinct versions of ``kind`` had a decision with ``outcome``."""
    query = (select(func.count(func.distinct(ModelAdoption.model_version_id)))
             .where(ModelAdoption.kind == kind, ModelAdoption.outcome == outcome))
    return int(session.scalar(query) or 0)


def history(session: Session, version_id: int) -> list[AdoptionRecord]:
    """Every decision on a model version, oldest first."""
    rows = session.scalars(select(ModelAdoption)
                           .where(ModelAdoption.model_version_id == version_id)
                           .order_by(ModelAdoption.id))
    return [_record(row) for row in rows]


def _record(row: ModelAdoption) -> AdoptionRecord:
    return AdoptionRecord(
        id=row.id, model_version_id=row.model_version_id, kind=row.kind,
        outcome=cast(AdoptionOutcome, row.outcome), dice=row.dice, current_id=row.current_id,
        current_dice=row.current_dice, margin=row.margin, held_out=row.held_out,
        reason=row.reason, actor=row.actor, created_at=row.created_at,
    )
