"""Raster records: which committed zarr folder holds which raster of which slide."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.store import audit, model_versions, slides
from pathloop.client.store.models import Raster, utcnow
from pathloop.client.store.records import Downsample, RasterRecord


def add(session: Session, values: Mapping[str, Any], *, actor: str) -> RasterRecord:
    """Insert the record of a published raster as the next version of (slide, kind).

    Parameters
    ----------
    values:
        ``slide_id``, ``kind``, ``mpp``, ``shape``, ``dtype``, ``path``, ``levels``,
        ``downsample`` and ``model_version_id``.
    """
    slide_id, kind = values["slide_id"], values["kind"]
    latest = session.scalar(
        select(func.max(Raster.version)).where(Raster.slide_id == slide_id, Raster.kind == kind)
    )
    version = 1 + (latest or 0)
    raster_id = session.execute(
        insert(Raster)
        .values(
            {**values, "shape": list(values["shape"]), "version": version, "created_at": utcnow()}
        )
        .returning(Raster.id)
    ).scalar_one()
    audit.append(
        session,
        actor=actor,
        action="raster.add",
        subject=audit.subject("raster", raster_id),
        details={
            "slide_id": slide_id,
            "kind": kind,
            "version": version,
            "shape": list(values["shape"]),
            "dtype": values["dtype"],
            "model_version_id": values["model_version_id"],
        },
    )
    return get(session, raster_id)


def check_owner(session: Session, slide_id: int, model_version_id: int | None) -> None:
    """Raise :class:`RecordNotFoundError` unless the slide (and model version) exist."""
    slides.require(session, slide_id)
    if model_version_id is not None:
        model_versions.get(session, model_version_id)


def get(session: Session, raster_id: int) -> RasterRecord:
    """The raster with this id, or :class:`RecordNotFoundError`."""
    row = session.get(Raster, raster_id)
    if row is None:
        raise RecordNotFoundError(f"raster {raster_id} not found")
    return _to_record(row)


def latest(session: Session, slide_id: int, kind: str) -> RasterRecord | None:
    """The newest version of a slide's raster of this kind, if any."""
    row = session.scalars(
        select(Raster)
        .where(Raster.slide_id == slide_id, Raster.kind == kind)
        .order_by(Raster.version.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _to_record(row)


def all_of(session: Session, slide_id: int, kind: str | None = None) -> list[RasterRecord]:
    """A slide's rasters (of one kind when given), by kind then version."""
    query = select(Raster).where(Raster.slide_id == slide_id)
    if kind is not None:
        query = query.where(Raster.kind == kind)
    return [_to_record(row) for row in session.scalars(query.order_by(Raster.kind, Raster.version))]


def is_recorded(session: Session, path: str) -> bool:
    """Whether a record points to this folder (relative to the raster root)."""
    return session.scalar(select(Raster.id).where(Raster.path == path)) is not None


def _to_record(row: Raster) -> RasterRecord:
    return RasterRecord(
        id=row.id,
        slide_id=row.slide_id,
        kind=row.kind,
        version=row.version,
        mpp=row.mpp,
        shape=tuple(int(n) for n in row.shape),
        dtype=row.dtype,
        path=row.path,
        levels=row.levels,
        downsample=cast(Downsample, row.downsample),
        model_version_id=row.model_version_id,
        created_at=row.created_at,
    )
