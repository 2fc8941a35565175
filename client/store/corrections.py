"""Versioned corrections of patches: every save appends version N+1, nothing is overwritten.

A correction thread (table ``corrections``) is identified by its patch: a slide, a level-0 box
and a resolution in µm/px. Each save inserts a row in ``correction_versions`` whose parent is
the previous latest version. Saves are optimistic: the caller says which version it edited
(``base_version``) and the save is refused with :class:`ConflictError` when another save got
there first. Database triggers refuse UPDATE and DELETE on ``correction_versions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pathloop.client.errors import ConflictError, RecordNotFoundError
from pathloop.client.store import audit, rankings, slides
from pathloop.client.store.models import Correction, CorrectionVersion, Raster, Slide, utcnow
from pathloop.client.store.records import CorrectionRecord, PatchBox


def save(
    session: Session,
    patch: PatchBox | int,
    *,
    data: Mapping[str, Any],
    author: str,
    base_version: int | None,
    raster_id: int | None,
) -> CorrectionRecord:
    """Append the next version of a patch's correction, in ``session``'s transaction.

    Parameters
    ----------
    patch:
        The patch, or the id of the ranked patch that designates it (that patch is then
        marked ``corrected`` in the worklist).
    base_version:
        The version the author edited: ``None`` (or 0) for a first correction.

    Raises
    ------
    ConflictError
        ``base_version`` is not the patch's latest version; nothing is written.
    RecordNotFoundError
        The slide, ranked patch or raster does not exist.
    """
    box, ranked_patch_id = _resolve(session, patch)
    if raster_id is not None:
        raster = session.get(Raster, raster_id)
        if raster is None or raster.slide_id != box.slide_id:
            raise RecordNotFoundError(f"raster {raster_id} of slide {box.slide_id} not found")
    expected = base_version or 0
    thread_id = _thread_id(session, box)
    latest = None if thread_id is None else _latest_version(session, thread_id)
    found = 0 if latest is None else latest.version
    if found != expected:
        raise ConflictError(
            f"correction of {_describe(box)} is at version {found}, "
            f"but this save was based on version {expected}"
        )
    if thread_id is None:
        thread_id = session.execute(
            insert(Correction)
            .values(
                slide_id=box.slide_id,
                x=box.x,
                y=box.y,
                width=box.width,
                height=box.height,
                mpp=box.mpp,
                created_at=utcnow(),
            )
            .returning(Correction.id)
        ).scalar_one()
    version_id = session.execute(
        insert(CorrectionVersion)
        .values(
            correction_id=thread_id,
            version=found + 1,
            parent_id=None if latest is None else latest.id,
            author=author,
            data=dict(data),
            raster_id=raster_id,
            ranked_patch_id=ranked_patch_id,
            created_at=utcnow(),
        )
        .returning(CorrectionVersion.id)
    ).scalar_one()
    audit.append(
        session,
        actor=author,
        action="correction.save",
        subject=audit.subject("correction", thread_id),
        details={
            "slide_id": box.slide_id,
            "version": found + 1,
            "version_id": version_id,
            "base_version": expected,
            "raster_id": raster_id,
            "ranked_patch_id": ranked_patch_id,
        },
    )
    if ranked_patch_id is not None:
        rankings.set_status(session, ranked_patch_id, "corrected", actor=author)
    return history(session, box)[-1]


def history(session: Session, patch: PatchBox | int) -> list[CorrectionRecord]:
    """Every version of a patch's correction, oldest first (empty when never corrected)."""
    box, _ = _resolve(session, patch)
    thread_id = _thread_id(session, box)
    if thread_id is None:
        return []
    rows = session.scalars(
        select(CorrectionVersion)
        .where(CorrectionVersion.correction_id == thread_id)
        .order_by(CorrectionVersion.version)
    ).all()
    version_of = {row.id: row.version for row in rows}
    return [
        CorrectionRecord(
            id=row.id,
            correction_id=row.correction_id,
            patch=box,
            version=row.version,
            parent_id=row.parent_id,
            parent_version=None if row.parent_id is None else version_of[row.parent_id],
            author=row.author,
            data=dict(row.data),
            raster_id=row.raster_id,
            ranked_patch_id=row.ranked_patch_id,
            created_at=row.created_at,
        )
        for row in rows
    ]


WITHDRAWN = "withdrawn"
"""``data["kind"]`` of a version that takes a patch back to "never corrected"."""


def latest_per_patch(session: Session, site_id: str | None = None) -> list[CorrectionRecord]:
    """The newest version of every corrected patch (of one site's slides when given).

    A patch whose newest version withdrew the correction (``data["kind"] == "withdrawn"``)
    counts as not corrected and is left out.
    """
    query = select(Correction)
    if site_id is not None:
        query = query.join(Slide, Slide.id == Correction.slide_id).where(Slide.site_id == site_id)
    latest = []
    for thread in session.scalars(query.order_by(Correction.id)).all():
        box = PatchBox(thread.slide_id, thread.x, thread.y, thread.width, thread.height,
                       thread.mpp)
        versions = history(session, box)
        if versions and versions[-1].data.get("kind") != WITHDRAWN:
            latest.append(versions[-1])
    return latest


def _resolve(session: Session, patch: PatchBox | int) -> tuple[PatchBox, int | None]:
    if isinstance(patch, PatchBox):
        slides.require(session, patch.slide_id)
        return patch, None
    ranked = rankings.get_patch(session, patch)
    box = PatchBox(ranked.slide_id, ranked.x, ranked.y, ranked.width, ranked.height, ranked.mpp)
    return box, ranked.id


def _thread_id(session: Session, box: PatchBox) -> int | None:
    return session.scalars(
        select(Correction.id).where(
            Correction.slide_id == box.slide_id,
            Correction.x == box.x,
            Correction.y == box.y,
            Correction.width == box.width,
            Correction.height == box.height,
            Correction.mpp == box.mpp,
        )
    ).one_or_none()


def _latest_version(session: Session, thread_id: int) -> CorrectionVersion | None:
    return session.scalars(
        select(CorrectionVersion)
        .where(CorrectionVersion.correction_id == thread_id)
        .order_by(CorrectionVersion.version.desc())
        .limit(1)
    ).one_or_none()


def _describe(box: PatchBox) -> str:
    return (
        f"slide {box.slide_id} patch ({box.x}, {box.y}, {box.width}x{box.height}) "
        f"at {box.mpp} µm/px"
    )
