"""Model versions and their lineage (parent version, provenance)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.store import audit
from pathloop.client.store.models import ModelVersion, utcnow
from pathloop.client.store.records import ModelVersionRecord


def add(
    session: Session,
    *,
    name: str,
    kind: str,
    parent_id: int | None,
    provenance: Mapping[str, Any] | None,
    weights_uri: str | None,
    actor: str,
) -> ModelVersionRecord:
    """Insert a model version.

    Raises
    ------
    RecordNotFoundError
        ``parent_id`` names no model version.
    """
    if parent_id is not None:
        get(session, parent_id)
    version_id = session.execute(
        insert(ModelVersion)
        .values(
            name=name,
            kind=kind,
            parent_id=parent_id,
            provenance=dict(provenance or {}),
            weights_uri=weights_uri,
            created_at=utcnow(),
        )
        .returning(ModelVersion.id)
    ).scalar_one()
    audit.append(
        session,
        actor=actor,
        action="model_version.add",
        subject=audit.subject("model_version", version_id),
        details={"name": name, "kind": kind, "parent_id": parent_id},
    )
    return get(session, version_id)


def get(session: Session, version_id: int) -> ModelVersionRecord:
    """The model version with this id, or :class:`RecordNotFoundError`."""
    row = session.get(ModelVersion, version_id)
    if row is None:
        raise RecordNotFoundError(f"model version {version_id} not found")
    return ModelVersionRecord(
        id=row.id,
        name=row.name,
        kind=row.kind,
        parent_id=row.parent_id,
        provenance=dict(row.provenance),
        weights_uri=row.weights_uri,
        created_at=row.created_at,
    )


def latest(session: Session, kind: str, name: str | None = None) -> ModelVersionRecord | None:
    """The newest model version of a kind (and name, when given), or ``None``."""
    query = select(ModelVersion.id).where(ModelVersion.kind == kind)
    if name is not None:
        query = query.where(ModelVersion.name == name)
    version_id = session.scalars(query.order_by(ModelVersion.id.desc()).limit(1)).first()
    return None if version_id is None else get(session, version_id)
