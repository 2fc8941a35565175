"""The schema is made by the Alembic migrations only, and they go down and up again."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pathloop.client.errors import SchemaError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store, db
from pathloop.client.store.models import Base

TABLES = {
    "alembic_version",
    "audit_events",
    "correction_versions",
    "corrections",
    "inspection_instances",
    "inspection_items",
    "inspections",
    "model_adoptions",
    "model_versions",
    "ranked_patches",
    "rankings",
    "rasters",
    "slides",
    "tiles",
    "tilings",
}


def test_open_migrates_an_empty_folder_to_head(settings: SiteSettings) -> None:
    assert not settings.data_dir.exists()
    with Store.open(settings) as store:
        assert set(inspect(store.engine).get_table_names()) == TABLES
        assert db.current_revision(store.engine) == db.head_revision()


def test_migrated_schema_matches_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_upgrade_again(store: Store) -> None:
    db.downgrade(store.engine, "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    assert db.current_revision(store.engine) is None
    db.upgrade(store.engine, "head")
    assert set(inspect(store.engine).get_table_names()) == TABLES
    with store.engine.connect() as connection:
        triggers = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).scalars()
        assert len(set(triggers)) == 10  # UPDATE and DELETE of 5 append-only tables


def test_reopening_keeps_data(settings: SiteSettings) -> None:
    with Store.open(settings) as store:
        store.add_model_version(name="m1", kind="uga-ensemble")
    with Store.open(settings) as store:
        assert store.get_model_version(1).name == "m1"


def test_sqlite_runs_in_wal_mode_with_durable_pragmas(store: Store) -> None:
    with store.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 30_000


def test_a_database_from_newer_code_is_refused(settings: SiteSettings) -> None:
    Store.open(settings).close()
    with sqlite3.connect(settings.data_dir / "pathloop.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00d'")
    with pytest.raises(SchemaError, match="f00d"):
        Store.open(settings)


def test_alembic_config_needs_no_ini_file() -> None:
    config = db.alembic_config()
    assert config.config_file_name is None
    assert db.head_revision() == "0004"
