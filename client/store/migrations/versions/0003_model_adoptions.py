"""Model adoptions: which stored model version is the site's current one, and why.

A log of decisions (adopted, refused by the held-out Dice gate, or held: stored but not a
candidate yet). Versions without any decision (every version of an older store) stay
eligible, so a store migrated from 0002 keeps its newest version as the current one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "model_adoptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("dice", sa.Float(), nullable=True),
        sa.Column("current_id", sa.Integer(), nullable=True),
        sa.Column("current_dice", sa.Float(), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("held_out", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_adoptions")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"],
            name=op.f("fk_model_adoptions_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["current_id"], ["model_versions.id"],
            name=op.f("fk_model_adoptions_current_id_model_versions"),
        ),
        sa.CheckConstraint(
            "outcome IN ('adopted', 'refused', 'held')", name=op.f("ck_model_adoptions_outcome")
        ),
    )
    op.create_index(op.f("ix_model_adoptions_model_version_id"), "model_adoptions",
                    ["model_version_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_model_adoptions_model_version_id"), table_name="model_adoptions")
    op.drop_table("model_adoptions")
