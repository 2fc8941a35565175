"""The local store of a site: the one seam the rest of the node uses for records and rasters.

:class:`Store` opens (and migrates) the database, hands out frozen records, never ORM objects,
and writes every change with its audit event in one transaction. Rasters live in
``store.rasters`` (:class:`~pathloop.client.store.rasters.RasterStore`). There is no in-memory
fake: a SQLite store in a temporary folder opens in tens of milliseconds, so tests use the
real thing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine

from pathloop.client.errors import ConflictError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import (
    adoptions,
    audit,
    corrections,
    inspections,
    model_versions,
    rankings,
    slides,
    tilings,
)
from pathloop.client.store.db import create_store_engine, ensure_schema, read_session, write_session
from pathloop.client.store.rasters import RasterStore, RasterWriter
from pathloop.client.store.records import (
    AdoptionOutcome,
    AdoptionRecord,
    AuditEvent,
    CorrectionRecord,
    InspectionItemRecord,
    InspectionRecord,
    InspectionSource,
    InstanceFindingRecord,
    ModelVersionRecord,
    MppSource,
    PatchBox,
    PatchStatus,
    RankedPatchRecord,
    RankingRecord,
    SlideRecord,
    TileRecord,
    TilingRecord,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InspectionItemInput:
    """An inspected image or region as the use case hands it to :meth:`Store.add_inspection`.

    Attributes
    ----------
    box:
        ``(x, y, width, height)`` in level-0 pixels of the slide.
    mpp:
        The slide's level-0 µm/px (the rasters' resolution).
    annotation, prediction:
        ``(height, width)`` int32 instance labels over the box, 0 = background.
    overall:
        The item's overall score at the run's α and γ.
    instances:
        Its findings (see :class:`pathloop.client.store.inspections.NewItem`).
    """

    name: str
    slide_id: int
    box: tuple[int, int, int, int]
    mpp: float
    annotation: NDArray[np.int32]
    prediction: NDArray[np.int32]
    overall: float
    instances: Sequence[Any]


class Store:
    """Records of one site node in SQLite (default) or PostgreSQL, plus its zarr rasters.

    Build it with :meth:`open`; close it with :meth:`close` or use it as a context manager.
    Methods that change anything take an ``actor`` (or ``author``) recorded in the audit log.
    """

    def __init__(self, engine: Engine, rasters: RasterStore, site_id: str) -> None:
        self.engine = engine
        self.rasters = rasters
        self.site_id = site_id

    @classmethod
    def open(cls, settings: SiteSettings) -> Store:
        """Create the data folder (mode 0700: what it holds is derived from patients'
        slides), migrate the database to head, sweep unfinished rasters.

        Raises
        ------
        SchemaError
            The database was migrated by newer code, or did not reach this code's head.
        StoreError
            The database cannot be opened.
        """
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _owner_only(settings.data_dir)
        engine = create_store_engine(settings.db_url)
        try:
            ensure_schema(engine)
            rasters = RasterStore(settings.raster_dir, engine)
            swept = rasters.sweep()
        except BaseException:
            engine.dispose()
            raise
        if swept:
            logger.info("removed %d unfinished raster writes", swept)
        return cls(engine, rasters, settings.site_id)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- slides -------------------------------------------------------------------------------

    def add_slide(
        self,
        *,
        content_hash: str,
        name: str,
        path: Path | str,
        width: int,
        height: int,
        mpp_x: float,
        mpp_y: float,
        mpp_source: MppSource = "slide",
        vendor: str | None = None,
        objective_power: float | None = None,
        level_count: int = 1,
        metadata: Mapping[str, Any] | None = None,
        site_id: str | None = None,
        actor: str = "system",
    ) -> tuple[SlideRecord, bool]:
        """Record a slide; idempotent on (site, content hash).

        Returns
        -------
        tuple of (SlideRecord, bool)
            The record, and ``True`` when it was created now (``False``: it was known, and
            is returned unchanged).
        """
        site = site_id or self.site_id
        try:
            with write_session(self.engine) as session:
                return slides.add(
                    session,
                    site_id=site,
                    content_hash=content_hash,
                    name=name,
                    path=path,
                    width=width,
                    height=height,
                    mpp_x=mpp_x,
                    mpp_y=mpp_y,
                    mpp_source=mpp_source,
                    vendor=vendor,
                    objective_power=objective_power,
                    level_count=level_count,
                    metadata=metadata,
                    actor=actor,
                )
        except ConflictError:
            # Another writer added the same slide between our look-up and insert (PostgreSQL).
            found = self.find_slide(content_hash, site)
            if found is None:
                raise
            return found, False

    def get_slide(self, slide_id: int) -> SlideRecord:
        """The slide with this id, or :class:`RecordNotFoundError`."""
        with read_session(self.engine) as session:
            return slides.get(session, slide_id)

    def find_slide(self, content_hash: str, site_id: str | None = None) -> SlideRecord | None:
        """The slide with this content hash at ``site_id`` (default: this site), if any."""
        with read_session(self.engine) as session:
            return slides.find(session, content_hash, site_id or self.site_id)

    def list_slides(self, site_id: str | None = None) -> list[SlideRecord]:
        """All slides in the order they were added, or those of ``site_id``."""
        with read_session(self.engine) as session:
            return slides.all_slides(session, site_id)

    # --- tilings ------------------------------------------------------------------------------

    def add_tiling(
        self,
        slide_id: int,
        *,
        mpp: float,
        tile_size: int,
        stride: int,
        params: Mapping[str, Any] | None = None,
        tiles: Iterable[Mapping[str, Any] | object],
        actor: str = "system",
    ) -> TilingRecord:
        """Record a tiling and all its tiles in one transaction (bulk insert, streamed).

        Parameters
        ----------
        mpp:
            Tile resolution in µm/px.
        tile_size, stride:
            In pixels at ``mpp``.
        tiles:
            Mappings or objects with ``col``, ``row``, ``x``, ``y``, ``width``, ``height``
            (level-0 pixels) and optional ``tissue_fraction``, ``background_fraction``.
        """
        with write_session(self.engine) as session:
            return tilings.add(
                session,
                slide_id,
                mpp=mpp,
                tile_size=tile_size,
                stride=stride,
                params=params,
                tiles=tiles,
                actor=actor,
            )

    def latest_tiling(
        self, slide_id: int, *, mpp: float | None = None, tile_size: int | None = None
    ) -> TilingRecord | None:
        """The newest tiling of a slide (at ``mpp`` / ``tile_size`` when given), if any."""
        with read_session(self.engine) as session:
            return tilings.latest(session, slide_id, mpp=mpp, tile_size=tile_size)

    def iter_tiles(self, tiling_id: int) -> Iterator[TileRecord]:
        """Stream a tiling's tiles in row-major order, in batches (memory stays bounded)."""
        return tilings.iter_tiles(self.engine, tiling_id)

    # --- models and rankings ------------------------------------------------------------------

    def add_model_version(
        self,
        *,
        name: str,
        kind: str,
        parent_id: int | None = None,
        provenance: Mapping[str, Any] | None = None,
        weights_uri: str | None = None,
        actor: str = "system",
        held: str | None = None,
    ) -> ModelVersionRecord:
        """Record a model version with its lineage (parent, provenance) and weights location.

        With ``held`` (the reason), the version is recorded as held in the same transaction:
        stored but never current until a later decision adopts it (see
        :meth:`record_adoption`); without, it is current as soon as it is the newest.
        """
        with write_session(self.engine) as session:
            version = model_versions.add(
                session,
                name=name,
                kind=kind,
                parent_id=parent_id,
                provenance=provenance,
                weights_uri=weights_uri,
                actor=actor,
            )
            if held is not None:
                adoptions.add(session, version_id=version.id, outcome="held", reason=held,
                              actor=actor)
            return version

    def get_model_version(self, version_id: int) -> ModelVersionRecord:
        """The model version with this id, or :class:`RecordNotFoundError`."""
        with read_session(self.engine) as session:
            return model_versions.get(session, version_id)

    def latest_model_version(self, kind: str, name: str | None = None
                             ) -> ModelVersionRecord | None:
        """The newest model version of ``kind`` (e.g. the site's current ensemble)."""
        with read_session(self.engine) as session:
            return model_versions.latest(session, kind, name)

    def current_model_version(self, kind: str, *, excluding: int | None = None
                              ) -> ModelVersionRecord | None:
        """The site's current version of ``kind``: the newest one not refused nor held
        (see :mod:`pathloop.client.store.adoptions`); ``excluding`` leaves one version out."""
        with read_session(self.engine) as session:
            return adoptions.current(session, kind, excluding=excluding)

    def record_adoption(self, version_id: int, outcome: AdoptionOutcome, *, reason: str,
                        actor: str, **scores: Any) -> AdoptionRecord:
        """Record a decision on a stored version (``scores``: ``dice``, ``current_id``,
        ``current_dice``, ``margin``, ``held_out``); its newest decision is in force."""
        with write_session(self.engine) as session:
            return adoptions.add(session, version_id=version_id, outcome=outcome,
                                 reason=reason, actor=actor, **scores)

    def count_adoptions(self, kind: str, outcome: AdoptionOutcome) -> int:
        """How many versions of ``kind`` had a decision with ``outcome`` (e.g. refused)."""
        with read_session(self.engine) as session:
            return adoptions.count(session, kind, outcome)

    def adoption_history(self, version_id: int) -> list[AdoptionRecord]:
        """Every decision on a model version, oldest first."""
        with read_session(self.engine) as session:
            return adoptions.history(session, version_id)

    def add_ranking(
        self,
        slide_id: int,
        *,
        strategy: str,
        patches: Iterable[Mapping[str, Any] | object],
        model_version_id: int | None = None,
        params: Mapping[str, Any] | None = None,
        actor: str = "system",
    ) -> RankingRecord:
        """Record a ranking and its patches, best first, all ``pending``.

        ``patches`` items have ``x``, ``y``, ``width``, ``height`` (level-0 pixels), ``mpp``
        (µm/px), ``score_sum`` and ``score_mean``.
        """
        with write_session(self.engine) as session:
            return rankings.add(
                session,
                slide_id,
                model_version_id=model_version_id,
                strategy=strategy,
                params=params,
                patches=patches,
                actor=actor,
            )

    def latest_ranking(self, slide_id: int, strategy: str | None = None) -> RankingRecord | None:
        """The newest ranking of a slide (by ``strategy`` when given), if any."""
        with read_session(self.engine) as session:
            return rankings.latest(session, slide_id, strategy)

    def ranked_patches(
        self, ranking_id: int, status: PatchStatus | None = None
    ) -> list[RankedPatchRecord]:
        """A ranking's patches, best first (only those with ``status`` when given)."""
        with read_session(self.engine) as session:
            return rankings.patches(session, ranking_id, status)

    def set_patch_status(
        self, patch_id: int, status: PatchStatus, *, actor: str = "system"
    ) -> RankedPatchRecord:
        """Mark a ranked patch ``pending``, ``corrected`` or ``skipped`` in the worklist."""
        with write_session(self.engine) as session:
            return rankings.set_status(session, patch_id, status, actor=actor)

    def get_ranked_patch(self, patch_id: int) -> RankedPatchRecord:
        """The ranked patch with this id, or :class:`RecordNotFoundError`."""
        with read_session(self.engine) as session:
            return rankings.get_patch(session, patch_id)

    def claim_patch(self, patch_id: int, user: str, *, force: bool = False
                    ) -> RankedPatchRecord:
        """Record that ``user`` works on a ranked patch; :class:`ConflictError` when another
        user holds it (unless ``force``)."""
        with write_session(self.engine) as session:
            return rankings.claim(session, patch_id, user, force=force)

    def release_patch(self, patch_id: int, user: str, *, force: bool = False
                      ) -> RankedPatchRecord:
        """Drop ``user``'s claim on a ranked patch (another user's too with ``force``)."""
        with write_session(self.engine) as session:
            return rankings.release(session, patch_id, user, force=force)

    # --- corrections --------------------------------------------------------------------------

    def save_correction(
        self,
        patch: PatchBox | int,
        *,
        data: Mapping[str, Any],
        author: str,
        base_version: int | None = None,
        raster_id: int | None = None,
    ) -> CorrectionRecord:
        """Append a new version of a patch's correction; older versions are kept untouched.

        Parameters
        ----------
        patch:
            The patch (slide, level-0 box, µm/px), or a ranked patch's id (which is then
            marked ``corrected``).
        data:
            The correction, JSON-compatible (e.g. GeoJSON features).
        base_version:
            The version the author edited; ``None`` for a first correction.
        raster_id:
            A correction mask raster of the same slide, if any.

        Raises
        ------
        ConflictError
            ``base_version`` is not the latest version: someone saved in between.
        """
        with write_session(self.engine) as session:
            return corrections.save(
                session,
                patch,
                data=data,
                author=author,
                base_version=base_version,
                raster_id=raster_id,
            )

    def latest_corrections(self, site_id: str | None = None) -> list[CorrectionRecord]:
        """The newest version of every corrected patch, of ``site_id``'s slides when given."""
        with read_session(self.engine) as session:
            return corrections.latest_per_patch(session, site_id)

    def correction_history(self, patch: PatchBox | int) -> list[CorrectionRecord]:
        """Every version of a patch's correction, oldest first (a ranked patch's id works too)."""
        with read_session(self.engine) as session:
            return corrections.history(session, patch)

    # --- inspections ---------------------------------------------------------------------------

    def add_inspection(
        self,
        *,
        name: str,
        source: InspectionSource,
        author: str,
        params: Mapping[str, Any],
        alpha: float,
        gamma: float,
        items: Sequence[InspectionItemInput],
        model_version_id: int | None = None,
    ) -> InspectionRecord:
        """Record an inspection run, its items' label rasters and its findings at once.

        The rasters and every record are one transaction: on any error nothing is recorded
        and the rasters written so far are removed.
        """
        writers: list[RasterWriter] = []
        try:
            with write_session(self.engine) as session:
                new_items = []
                for item in items:
                    rasters = []
                    for kind, labels in (("inspection-annotation", item.annotation),
                                         ("inspection-prediction", item.prediction)):
                        writer = self.rasters.save_in(
                            session, labels, item.slide_id, kind, mpp=item.mpp,
                            downsample="nearest", actor=author,
                            attributes={"box": list(item.box), "item": item.name})
                        writers.append(writer)
                        rasters.append(writer.record.id)
                    new_items.append(inspections.NewItem(
                        name=item.name, slide_id=item.slide_id, box=item.box, mpp=item.mpp,
                        annotation_raster_id=rasters[0], prediction_raster_id=rasters[1],
                        overall=item.overall, instances=item.instances))
                record = inspections.add(
                    session, name=name, source=source, author=author,
                    model_version_id=model_version_id, params=params, alpha=alpha,
                    gamma=gamma, items=new_items)
        except BaseException:
            for writer in writers:
                writer.discard()
            raise
        for writer in writers:
            writer.release()
        return record

    def list_inspections(self) -> list[InspectionRecord]:
        """Every inspection, newest first."""
        with read_session(self.engine) as session:
            return inspections.all_inspections(session)

    def get_inspection(self, inspection_id: int) -> InspectionRecord:
        """The inspection with this id, or :class:`RecordNotFoundError`."""
        with read_session(self.engine) as session:
            return inspections.get(session, inspection_id)

    def inspection_items(self, inspection_id: int) -> list[InspectionItemRecord]:
        """An inspection's items in the order they were stored."""
        with read_session(self.engine) as session:
            return inspections.items(session, inspection_id)

    def inspection_item(self, inspection_id: int, item_id: int) -> InspectionItemRecord:
        """One item of an inspection, or :class:`RecordNotFoundError`."""
        with read_session(self.engine) as session:
            return inspections.get_item(session, inspection_id, item_id)

    def instance_findings(self, item_ids: Sequence[int]
                          ) -> dict[int, list[InstanceFindingRecord]]:
        """The instance findings of each item, by number."""
        with read_session(self.engine) as session:
            return inspections.findings(session, item_ids)

    # --- audit --------------------------------------------------------------------------------

    def record_event(self, *, actor: str, action: str, subject: str,
                     details: Mapping[str, Any] | None = None) -> None:
        """Append an event that changes no record to the audit log: a read of a slide, a
        refused request, a change of API tokens (which live outside the database).

        ``subject`` is like ``"slide:3"`` or ``"user:dr-smith"``; ``details`` are
        JSON-compatible facts, never a secret.
        """
        with write_session(self.engine) as session:
            audit.append(session, actor=actor, action=action, subject=subject, details=details)

    def audit_events(
        self,
        *,
        subject: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Audit events, oldest first; ``subject`` is like ``"slide:3"``."""
        with read_session(self.engine) as session:
            return audit.events(
                session, subject=subject, action=action, since=since, after_id=after_id, limit=limit
            )


def _owner_only(folder: Path) -> None:
    """Take group and other access off a folder this user owns (an older install's 0755)."""
    status = folder.stat()
    if status.st_mode & 0o077 and status.st_uid == os.getuid():
        folder.chmod(status.st_mode & 0o700)
