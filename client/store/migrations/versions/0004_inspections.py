"""Inspections (AI²Seg): runs, their items (an image or a slide region) and instance findings.

A run is never updated: a new run is a new inspection, so the three tables are append-only
like the correction versions (triggers abort UPDATE and DELETE on SQLite, and on PostgreSQL,
where TRUNCATE is refused too).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_APPEND_ONLY = ("inspections", "inspection_items", "inspection_instances")


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("gamma", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"],
            name=op.f("fk_inspections_model_version_id_model_versions"),
        ),
        sa.CheckConstraint("source IN ('image-set', 'slide-regions')",
                           name=op.f("ck_inspections_source")),
        sa.CheckConstraint("alpha >= 0 AND alpha <= 1 AND gamma >= 0 AND gamma <= 1",
                           name=op.f("ck_inspections_weights")),
    )
    op.create_table(
        "inspection_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inspection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("slide_id", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mpp", sa.Float(), nullable=False),
        sa.Column("annotation_raster_id", sa.Integer(), nullable=False),
        sa.Column("prediction_raster_id", sa.Integer(), nullable=False),
        sa.Column("overall", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_items")),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspections.id"],
                                name=op.f("fk_inspection_items_inspection_id_inspections")),
        sa.ForeignKeyConstraint(["slide_id"], ["slides.id"],
                                name=op.f("fk_inspection_items_slide_id_slides")),
        sa.ForeignKeyConstraint(["annotation_raster_id"], ["rasters.id"],
                                name=op.f("fk_inspection_items_annotation_raster_id_rasters")),
        sa.ForeignKeyConstraint(["prediction_raster_id"], ["rasters.id"],
                                name=op.f("fk_inspection_items_prediction_raster_id_rasters")),
    )
    op.create_index(op.f("ix_inspection_items_inspection_id"), "inspection_items",
                    ["inspection_id"])
    op.create_table(
        "inspection_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=True),
        sa.Column("prediction_id", sa.Integer(), nullable=True),
        sa.Column("iou", sa.Float(), nullable=False),
        sa.Column("area", sa.Integer(), nullable=False),
        sa.Column("certainty", sa.Float(), nullable=False),
        sa.Column("bbox_x", sa.Integer(), nullable=False),
        sa.Column("bbox_y", sa.Integer(), nullable=False),
        sa.Column("bbox_width", sa.Integer(), nullable=False),
        sa.Column("bbox_height", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_instances")),
        sa.ForeignKeyConstraint(["item_id"], ["inspection_items.id"],
                                name=op.f("fk_inspection_instances_item_id_inspection_items")),
        sa.UniqueConstraint("item_id", "number", name="uq_inspection_instances_number"),
        sa.CheckConstraint("state IN ('odd', 'additional', 'missing')",
                           name=op.f("ck_inspection_instances_state")),
    )
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_table("inspection_instances")
    op.drop_index(op.f("ix_inspection_items_inspection_id"), table_name="inspection_items")
    op.drop_table("inspection_items")
    op.drop_table("inspections")


def _create_append_only_triggers() -> None:
    # PostgreSQL's pathloop_refuse_change() was created by 0001 and is reused.
    dialect = op.get_bind().dialect.name
    for table in _APPEND_ONLY:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pathloop_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pathloop_refuse_change()"
            )


def _drop_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for table in _APPEND_ONLY:
        if dialect == "sqlite":
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
