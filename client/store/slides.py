"""Slide records: one per (site, content hash); the path never leaves the site."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.store import audit
from pathloop.client.store.models import Slide, utcnow
from pathloop.client.store.records import MppSource, SlideRecord

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def add(
    session: Session,
    *,
    site_id: str,
    content_hash: str,
    name: str,
    path: Path | str,
    width: int,
    height: int,
    mpp_x: float,
    mpp_y: float,
    mpp_source: MppSource,
    vendor: str | None,
    objective_power: float | None,
    level_count: int,
    metadata: Mapping[str, Any] | None,
    actor: str,
) -> tuple[SlideRecord, bool]:
    """Insert a slide unless (site, hash) is known; return the record and whether it is new.

    Raises
    ------
    ValueError
        The hash is not 64 lowercase hex digits, a size or resolution is not positive, or
        ``mpp_source`` is unknown.
    """
    if not _SHA256_HEX.match(content_hash):
        raise ValueError(f"content_hash must be 64 lowercase hex digits, got {content_hash!r}")
    if width <= 0 or height <= 0 or level_count <= 0:
        raise ValueError(f"slide size must be positive, got {width}x{height}, {level_count} levels")
    if not (mpp_x > 0 and mpp_y > 0):
        raise ValueError(f"slide resolution must be positive µm/px, got {mpp_x}, {mpp_y}")
    if mpp_source not in ("slide", "user"):
        raise ValueError(f"mpp_source must be 'slide' or 'user', got {mpp_source!r}")
    existing = find(session, content_hash, site_id)
    if existing is not None:
        return existing, False
    slide_id = session.execute(
        insert(Slide)
        .values(
            site_id=site_id,
            content_hash=content_hash,
            name=name,
            path=str(path),
            vendor=vendor,
            width=width,
            height=height,
            mpp_x=mpp_x,
            mpp_y=mpp_y,
            mpp_source=mpp_source,
            objective_power=objective_power,
            level_count=level_count,
            meta=dict(metadata or {}),
            added_at=utcnow(),
        )
        .returning(Slide.id)
    ).scalar_one()
    audit.append(
        session,
        actor=actor,
        action="slide.add",
        subject=audit.subject("slide", slide_id),
        details={"site_id": site_id, "content_hash": content_hash, "name": name},
    )
    return get(session, slide_id), True


def get(session: Session, slide_id: int) -> SlideRecord:
    """The slide with this id.

    Raises
    ------
    RecordNotFoundError
        No slide has this id.
    """
    return to_record(require(session, slide_id))


def require(session: Session, slide_id: int) -> Slide:
    """The slide row with this id, or :class:`RecordNotFoundError`."""
    row = session.get(Slide, slide_id)
    if row is None:
        raise RecordNotFoundError(f"slide {slide_id} not found")
    return row


def find(session: Session, content_hash: str, site_id: str) -> SlideRecord | None:
    """The slide of this site with this content hash, if any."""
    row = session.scalars(
        select(Slide).where(Slide.site_id == site_id, Slide.content_hash == content_hash)
    ).one_or_none()
    return None if row is None else to_record(row)


def all_slides(session: Session, site_id: str | None = None) -> list[SlideRecord]:
    """Slides in the order they were added, of one site or of all."""
    query = select(Slide).order_by(Slide.id)
    if site_id is not None:
        query = query.where(Slide.site_id == site_id)
    return [to_record(row) for row in session.scalars(query)]


def to_record(row: Slide) -> SlideRecord:
    """The frozen record of a slide row."""
    return SlideRecord(
        id=row.id,
        site_id=row.site_id,
        content_hash=row.content_hash,
        name=row.name,
        path=Path(row.path),
        vendor=row.vendor,
        width=row.width,
        height=row.height,
        mpp_x=row.mpp_x,
        mpp_y=row.mpp_y,
        mpp_source=cast(MppSource, row.mpp_source),
        objective_power=row.objective_power,
        level_count=row.level_count,
        metadata=dict(row.meta),
        added_at=row.added_at,
    )
