"""SQLAlchemy declarative models of the local store (private to ``pathloop.client.store``).

The schema itself is created only by the Alembic migrations in ``migrations/versions``; these
models must match them (a test compares both). Nothing outside the store sees these classes:
the store converts rows to the frozen records of :mod:`pathloop.client.store.records`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Tile and audit ids may pass 2**31 on a busy PostgreSQL site; SQLite needs INTEGER for rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone: stored as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names, so that later migrations (SQLite batch mode) can refer to them."""


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        float: Float,
    }


class Slide(Base):
    __tablename__ = "slides"
    __table_args__ = (
        UniqueConstraint("site_id", "content_hash", name="uq_slides_site_hash"),
        CheckConstraint("mpp_source IN ('slide', 'user')", name="mpp_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(Text)
    vendor: Mapped[str | None] = mapped_column(String(64))
    width: Mapped[int]
    height: Mapped[int]
    mpp_x: Mapped[float]
    mpp_y: Mapped[float]
    mpp_source: Mapped[str] = mapped_column(String(8))
    objective_power: Mapped[float | None]
    level_count: Mapped[int]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    added_at: Mapped[datetime]


class Tiling(Base):
    __tablename__ = "tilings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id"), index=True)
    mpp: Mapped[float]
    tile_size: Mapped[int]
    stride: Mapped[int]
    params: Mapped[dict[str, Any]]
    n_tiles: Mapped[int]
    created_at: Mapped[datetime]


class Tile(Base):
    __tablename__ = "tiles"
    # The unique index doubles as the lookup index of a tiling's tiles, in row-major order.
    __table_args__ = (UniqueConstraint("tiling_id", "row", "col", name="uq_tiles_tiling_row_col"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tiling_id: Mapped[int] = mapped_column(ForeignKey("tilings.id"))
    col: Mapped[int]
    row: Mapped[int]
    x: Mapped[int]
    y: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    tissue_fraction: Mapped[float | None]
    background_fraction: Mapped[float | None]


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    provenance: Mapped[dict[str, Any]]
    weights_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class ModelAdoption(Base):
    """One decision on whether a stored model version is the site's current one (a log:
    rows are only inserted; a version's newest decision is the one in force)."""

    __tablename__ = "model_adoptions"
    __table_args__ = (
        CheckConstraint("outcome IN ('adopted', 'refused', 'held')", name="outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    dice: Mapped[float | None]
    current_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    current_dice: Mapped[float | None]
    margin: Mapped[float | None]
    held_out: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class Ranking(Base):
    __tablename__ = "rankings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id"), index=True)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    strategy: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]]
    n_patches: Mapped[int]
    created_at: Mapped[datetime]


class RankedPatch(Base):
    __tablename__ = "ranked_patches"
    __table_args__ = (
        UniqueConstraint("ranking_id", "rank", name="uq_ranked_patches_ranking_rank"),
        CheckConstraint("status IN ('pending', 'corrected', 'skipped')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ranking_id: Mapped[int] = mapped_column(ForeignKey("rankings.id"))
    rank: Mapped[int]
    x: Mapped[int]
    y: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    mpp: Mapped[float]
    score_sum: Mapped[float]
    score_mean: Mapped[float]
    status: Mapped[str] = mapped_column(String(16))
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None]


class Correction(Base):
    """A patch that has corrections: the thread all its versions belong to."""

    __tablename__ = "corrections"
    __table_args__ = (
        UniqueConstraint(
            "slide_id", "x", "y", "width", "height", "mpp", name="uq_corrections_patch"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id"))
    x: Mapped[int]
    y: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    mpp: Mapped[float]
    created_at: Mapped[datetime]


class CorrectionVersion(Base):
    """One immutable version of a correction (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "correction_versions"
    __table_args__ = (
        UniqueConstraint("correction_id", "version", name="uq_correction_versions_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    correction_id: Mapped[int] = mapped_column(ForeignKey("corrections.id"))
    version: Mapped[int]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("correction_versions.id"))
    author: Mapped[str] = mapped_column(String(128))
    data: Mapped[dict[str, Any]]
    raster_id: Mapped[int | None] = mapped_column(ForeignKey("rasters.id"))
    ranked_patch_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ranked_patches.id"))
    created_at: Mapped[datetime]


class Raster(Base):
    __tablename__ = "rasters"
    __table_args__ = (
        UniqueConstraint("slide_id", "kind", "version", name="uq_rasters_slide_kind_version"),
        UniqueConstraint("path", name="uq_rasters_path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id"))
    kind: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    mpp: Mapped[float]
    shape: Mapped[list[int]] = mapped_column(JSON)
    dtype: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(512))
    levels: Mapped[int]
    downsample: Mapped[str] = mapped_column(String(8))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime]


class AuditLog(Base):
    """The append-only audit log (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]]


class Inspection(Base):
    """One AI²Seg inspection run (append-only: a new run is a new row)."""

    __tablename__ = "inspections"
    __table_args__ = (
        CheckConstraint("source IN ('image-set', 'slide-regions')", name="source"),
        CheckConstraint("alpha >= 0 AND alpha <= 1 AND gamma >= 0 AND gamma <= 1",
                        name="weights"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(128))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    params: Mapped[dict[str, Any]]
    alpha: Mapped[float]
    gamma: Mapped[float]
    created_at: Mapped[datetime]


class InspectionItem(Base):
    """An inspected image or slide region, with its annotation and prediction rasters."""

    __tablename__ = "inspection_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    slide_id: Mapped[int] = mapped_column(ForeignKey("slides.id"))
    x: Mapped[int]
    y: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    mpp: Mapped[float]
    annotation_raster_id: Mapped[int] = mapped_column(ForeignKey("rasters.id"))
    prediction_raster_id: Mapped[int] = mapped_column(ForeignKey("rasters.id"))
    overall: Mapped[float]


class InspectionInstance(Base):
    """One instance finding of an item: its state and what its score is made of."""

    __tablename__ = "inspection_instances"
    __table_args__ = (
        UniqueConstraint("item_id", "number", name="uq_inspection_instances_number"),
        CheckConstraint("state IN ('odd', 'additional', 'missing')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("inspection_items.id"))
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))
    annotation_id: Mapped[int | None]
    prediction_id: Mapped[int | None]
    iou: Mapped[float]
    area: Mapped[int]
    certainty: Mapped[float]
    bbox_x: Mapped[int]
    bbox_y: Mapped[int]
    bbox_width: Mapped[int]
    bbox_height: Mapped[int]


APPEND_ONLY_TABLES = ("audit_events", "correction_versions", "inspections",
                      "inspection_items", "inspection_instances")
"""Tables whose rows are never updated nor deleted once written."""
