"""The append-only audit log: who did what to which record, and when.

Rows are only ever inserted, inside the transaction of the change they describe, so a change
and its audit event are committed (or lost) together. There is no update or delete here, and
database triggers refuse both (see the initial migration).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pathloop.client.store.models import AuditLog, utcnow
from pathloop.client.store.records import AuditEvent


def subject(table: str, record_id: int) -> str:
    """The audit subject naming one record, e.g. ``subject("slide", 3) == "slide:3"``."""
    return f"{table}:{record_id}"


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Insert one audit event in ``session``'s transaction.

    Parameters
    ----------
    actor:
        Who acted: a user name, ``"system"`` or a component name.
    action:
        What was done, dotted, e.g. ``"slide.add"``, ``"correction.save"``.
    subject:
        What it was done to (see :func:`subject`).
    details:
        JSON-compatible facts worth keeping (ids, versions, counts); never pixels.
    """
    session.execute(
        insert(AuditLog).values(
            at=utcnow(), actor=actor, action=action, subject=subject, details=dict(details or {})
        )
    )


def events(
    session: Session,
    *,
    subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Audit events, oldest first, filtered by whichever arguments are given.

    ``after_id`` pages through the log: pass the last id seen.
    """
    query = select(AuditLog).order_by(AuditLog.id)
    if subject is not None:
        query = query.where(AuditLog.subject == subject)
    if action is not None:
        query = query.where(AuditLog.action == action)
    if since is not None:
        query = query.where(AuditLog.at >= since)
    if after_id is not None:
        query = query.where(AuditLog.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return [
        AuditEvent(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            details=dict(row.details),
        )
        for row in session.scalars(query)
    ]
