"""Initial schema: slides, tilings, tiles, model versions, rankings, corrections, rasters, audit.

Written by hand (checked against the models by tests/store/test_migrations.py). The audit log
and the correction versions are append-only: triggers abort UPDATE and DELETE on SQLite (and
on PostgreSQL, where TRUNCATE is refused too).

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_APPEND_ONLY = ("audit_events", "correction_versions")


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "slides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("vendor", sa.String(64), nullable=True),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mpp_x", sa.Float(), nullable=False),
        sa.Column("mpp_y", sa.Float(), nullable=False),
        sa.Column("mpp_source", sa.String(8), nullable=False),
        sa.Column("objective_power", sa.Float(), nullable=True),
        sa.Column("level_count", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        _at("added_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slides")),
        sa.UniqueConstraint("site_id", "content_hash", name="uq_slides_site_hash"),
        sa.CheckConstraint(
            "mpp_source IN ('slide', 'user')", name=op.f("ck_slides_mpp_source")
        ),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("weights_uri", sa.Text(), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["model_versions.id"],
            name=op.f("fk_model_versions_parent_id_model_versions"),
        ),
    )
    op.create_table(
        "tilings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Integer(), nullable=False),
        sa.Column("mpp", sa.Float(), nullable=False),
        sa.Column("tile_size", sa.Integer(), nullable=False),
        sa.Column("stride", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("n_tiles", sa.Integer(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tilings")),
        sa.ForeignKeyConstraint(
            ["slide_id"], ["slides.id"], name=op.f("fk_tilings_slide_id_slides")
        ),
    )
    op.create_index(op.f("ix_tilings_slide_id"), "tilings", ["slide_id"])
    op.create_table(
        "tiles",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("tiling_id", sa.Integer(), nullable=False),
        sa.Column("col", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("tissue_fraction", sa.Float(), nullable=True),
        sa.Column("background_fraction", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tiles")),
        sa.ForeignKeyConstraint(
            ["tiling_id"], ["tilings.id"], name=op.f("fk_tiles_tiling_id_tilings")
        ),
        sa.UniqueConstraint("tiling_id", "row", "col", name="uq_tiles_tiling_row_col"),
    )
    op.create_table(
        "rankings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("n_patches", sa.Integer(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rankings")),
        sa.ForeignKeyConstraint(
            ["slide_id"], ["slides.id"], name=op.f("fk_rankings_slide_id_slides")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"],
            name=op.f("fk_rankings_model_version_id_model_versions"),
        ),
    )
    op.create_index(op.f("ix_rankings_slide_id"), "rankings", ["slide_id"])
    op.create_table(
        "ranked_patches",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("ranking_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mpp", sa.Float(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("score_mean", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranked_patches")),
        sa.ForeignKeyConstraint(
            ["ranking_id"], ["rankings.id"], name=op.f("fk_ranked_patches_ranking_id_rankings")
        ),
        sa.UniqueConstraint("ranking_id", "rank", name="uq_ranked_patches_ranking_rank"),
        sa.CheckConstraint(
            "status IN ('pending', 'corrected', 'skipped')",
            name=op.f("ck_ranked_patches_status"),
        ),
    )
    op.create_table(
        "rasters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mpp", sa.Float(), nullable=False),
        sa.Column("shape", sa.JSON(), nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("levels", sa.Integer(), nullable=False),
        sa.Column("downsample", sa.String(8), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rasters")),
        sa.ForeignKeyConstraint(
            ["slide_id"], ["slides.id"], name=op.f("fk_rasters_slide_id_slides")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"],
            name=op.f("fk_rasters_model_version_id_model_versions"),
        ),
        sa.UniqueConstraint("slide_id", "kind", "version", name="uq_rasters_slide_kind_version"),
        sa.UniqueConstraint("path", name="uq_rasters_path"),
    )
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slide_id", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mpp", sa.Float(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
        sa.ForeignKeyConstraint(
            ["slide_id"], ["slides.id"], name=op.f("fk_corrections_slide_id_slides")
        ),
        sa.UniqueConstraint(
            "slide_id", "x", "y", "width", "height", "mpp", name="uq_corrections_patch"
        ),
    )
    op.create_table(
        "correction_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("correction_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("raster_id", sa.Integer(), nullable=True),
        sa.Column("ranked_patch_id", _big_id(), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_versions")),
        sa.ForeignKeyConstraint(
            ["correction_id"], ["corrections.id"],
            name=op.f("fk_correction_versions_correction_id_corrections"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["correction_versions.id"],
            name=op.f("fk_correction_versions_parent_id_correction_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["raster_id"], ["rasters.id"], name=op.f("fk_correction_versions_raster_id_rasters")
        ),
        sa.ForeignKeyConstraint(
            ["ranked_patch_id"], ["ranked_patches.id"],
            name=op.f("fk_correction_versions_ranked_patch_id_ranked_patches"),
        ),
        sa.UniqueConstraint("correction_id", "version", name="uq_correction_versions_version"),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", _big_id(), nullable=False),
        _at("at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_subject", "audit_events", ["subject"])
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index("ix_audit_events_subject", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("correction_versions")
    op.drop_table("corrections")
    op.drop_table("rasters")
    op.drop_table("ranked_patches")
    op.drop_index(op.f("ix_rankings_slide_id"), table_name="rankings")
    op.drop_table("rankings")
    op.drop_table("tiles")
    op.drop_index(op.f("ix_tilings_slide_id"), table_name="tilings")
    op.drop_table("tilings")
    op.drop_table("model_versions")
    op.drop_table("slides")


def _create_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in _APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION pathloop_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in _APPEND_ONLY:
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
    if dialect == "sqlite":
        for table in _APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    elif dialect == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pathloop_refuse_change()")
