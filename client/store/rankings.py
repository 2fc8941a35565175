"""Rankings of a slide's patches and the worklist status of each ranked patch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast, get_args

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from pathloop.client.errors import ConflictError, RecordNotFoundError
from pathloop.client.store import audit, model_versions, slides
from pathloop.client.store.models import RankedPatch, Ranking, utcnow
from pathloop.client.store.records import PatchStatus, RankedPatchRecord, RankingRecord

_FIELDS = ("x", "y", "width", "height", "mpp", "score_sum", "score_mean")
_INTS = frozenset({"x", "y", "width", "height"})


def add(
    session: Session,
    slide_id: int,
    *,
    model_version_id: int | None,
    strategy: str,
    params: Mapping[str, Any] | None,
    patches: Iterable[Mapping[str, Any] | object],
    actor: str,
) -> RankingRecord:
    """Insert a ranking and its patches (status ``pending``) in ``session``'s transaction.

    Parameters
    ----------
    patches:
        Mappings or objects with ``x``, ``y``, ``width``, ``height`` (level-0 pixels), ``mpp``
        (µm/px), ``score_sum`` and ``score_mean``, best first; rank 1 is the first.

    Raises
    ------
    RecordNotFoundError
        The slide or the model version does not exist.
    """
    slides.require(session, slide_id)
    if model_version_id is not None:
        model_versions.get(session, model_version_id)
    ranking_id = session.execute(
        insert(Ranking)
        .values(
            slide_id=slide_id,
            model_version_id=model_version_id,
            strategy=strategy,
            params=dict(params or {}),
            n_patches=0,
            created_at=utcnow(),
        )
        .returning(Ranking.id)
    ).scalar_one()
    rows = [_patch_row(ranking_id, rank, patch) for rank, patch in enumerate(patches, start=1)]
    if rows:
        session.connection().execute(insert(RankedPatch), rows)
    session.execute(update(Ranking).where(Ranking.id == ranking_id).values(n_patches=len(rows)))
    audit.append(
        session,
        actor=actor,
        action="ranking.add",
        subject=audit.subject("ranking", ranking_id),
        details={
            "slide_id": slide_id,
            "model_version_id": model_version_id,
            "strategy": strategy,
            "n_patches": len(rows),
        },
    )
    return get(session, ranking_id)


def _patch_row(ranking_id: int, rank: int, patch: Mapping[str, Any] | object) -> dict[str, Any]:
    row: dict[str, Any] = {"ranking_id": ranking_id, "rank": rank, "status": "pending"}
    for key in _FIELDS:
        try:
            value = patch[key] if isinstance(patch, Mapping) else getattr(patch, key)
        except (KeyError, AttributeError):
            raise ValueError(f"ranked patch {rank} lacks {key!r}") from None
        row[key] = int(value) if key in _INTS else float(value)
    return row


def get(session: Session, ranking_id: int) -> RankingRecord:
    """The ranking with this id, or :class:`RecordNotFoundError`."""
    row = session.get(Ranking, ranking_id)
    if row is None:
        raise RecordNotFoundError(f"ranking {ranking_id} not found")
    return _ranking_record(row)


def latest(session: Session, slide_id: int, strategy: str | None = None) -> RankingRecord | None:
    """The newest ranking of a slide (by ``strategy`` when given), if any."""
    slides.require(session, slide_id)
    query = select(Ranking).where(Ranking.slide_id == slide_id)
    if strategy is not None:
        query = query.where(Ranking.strategy == strategy)
    row = session.scalars(query.order_by(Ranking.id.desc()).limit(1)).one_or_none()
    return None if row is None else _ranking_record(row)


def patches(
    session: Session, ranking_id: int, status: PatchStatus | None = None
) -> list[RankedPatchRecord]:
    """A ranking's patches, best first, optionally only those with ``status``."""
    ranking = get(session, ranking_id)
    query = select(RankedPatch).where(RankedPatch.ranking_id == ranking_id)
    if status is not None:
        query = query.where(RankedPatch.status == status)
    return [
        _patch_record(row, ranking.slide_id)
        for row in session.scalars(query.order_by(RankedPatch.rank))
    ]


def get_patch(session: Session, patch_id: int) -> RankedPatchRecord:
    """The ranked patch with this id, or :class:`RecordNotFoundError`."""
    row = session.get(RankedPatch, patch_id)
    if row is None:
        raise RecordNotFoundError(f"ranked patch {patch_id} not found")
    return _patch_record(row, get(session, row.ranking_id).slide_id)


def set_status(
    session: Session, patch_id: int, status: PatchStatus, *, actor: str
) -> RankedPatchRecord:
    """Set a ranked patch's worklist status (audited).

    Raises
    ------
    RecordNotFoundError
        No ranked patch has this id.
    ValueError
        ``status`` is not one of ``pending``, ``corrected``, ``skipped``.
    """
    if status not in get_args(PatchStatus):
        raise ValueError(f"unknown patch status {status!r}")
    before = get_patch(session, patch_id)
    if before.status != status:
        session.execute(update(RankedPatch).where(RankedPatch.id == patch_id).values(status=status))
        audit.append(
            session,
            actor=actor,
            action="ranked_patch.status",
            subject=audit.subject("ranked_patch", patch_id),
            details={"from": before.status, "to": status, "ranking_id": before.ranking_id},
        )
    session.expire_all()
    return get_patch(session, patch_id)


def claim(session: Session, patch_id: int, user: str, *, force: bool = False
          ) -> RankedPatchRecord:
    """Record that ``user`` works on a ranked patch (audited); claiming one's own is a no-op.

    Raises
    ------
    ConflictError
        Someone else holds the claim (``force`` takes it over, audited as such).
    """
    before = get_patch(session, patch_id)
    if before.claimed_by == user:
        return before
    if before.claimed_by is not None and not force:
        raise ConflictError(f"ranked patch {patch_id} is claimed by {before.claimed_by} "
                            f"since {before.claimed_at:%Y-%m-%d %H:%M} UTC")
    session.execute(update(RankedPatch).where(RankedPatch.id == patch_id)
                    .values(claimed_by=user, claimed_at=utcnow()))
    audit.append(session, actor=user, action="ranked_patch.claim",
                 subject=audit.subject("ranked_patch", patch_id),
                 details={"from": before.claimed_by, "forced": before.claimed_by is not None})
    session.expire_all()
    return get_patch(session, patch_id)


def release(session: Session, patch_id: int, user: str, *, force: bool = False
            ) -> RankedPatchRecord:
    """Drop ``user``'s claim on a ranked patch (nothing happens when nobody holds one).

    Raises
    ------
    ConflictError
        Someone else holds the claim (``force`` drops it, audited as such).
    """
    before = get_patch(session, patch_id)
    if before.claimed_by is None:
        return before
    if before.claimed_by != user and not force:
        raise ConflictError(f"ranked patch {patch_id} is claimed by {before.claimed_by}, "
                            f"not {user}")
    session.execute(update(RankedPatch).where(RankedPatch.id == patch_id)
                    .values(claimed_by=None, claimed_at=None))
    details = {} if before.claimed_by == user else {"from": before.claimed_by, "forced": True}
    audit.append(session, actor=user, action="ranked_patch.release",
                 subject=audit.subject("ranked_patch", patch_id), details=details)
    session.expire_all()
    return get_patch(session, patch_id)


def _ranking_record(row: Ranking) -> RankingRecord:
    return RankingRecord(
        id=row.id,
        slide_id=row.slide_id,
        model_version_id=row.model_version_id,
        strategy=row.strategy,
        params=dict(row.params),
        n_patches=row.n_patches,
        created_at=row.created_at,
    )


def _patch_record(row: RankedPatch, slide_id: int) -> RankedPatchRecord:
    return RankedPatchRecord(
        id=row.id,
        ranking_id=row.ranking_id,
        slide_id=slide_id,
        rank=row.rank,
        x=row.x,
        y=row.y,
        width=row.width,
        height=row.height,
        mpp=row.mpp,
        score_sum=row.score_sum,
        score_mean=row.score_mean,
        status=cast(PatchStatus, row.status),
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
    )
