"""The same store on PostgreSQL, when a test database is given.

Set ``PATHLOOP_TEST_POSTGRES_URL`` (e.g.
``postgresql+psycopg://postgres@/pathloop_test?host=/tmp/pg&port=55432``) to an empty,
disposable database to run these; they are skipped otherwise, and fail when ``CI`` is set
(``.ci/run`` starts a throwaway server). The database is migrated down to nothing before and
after.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pathloop.client.errors import ConflictError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import PatchBox, Store, db
from pathloop.client.store.models import Base

URL = os.environ.get("PATHLOOP_TEST_POSTGRES_URL")


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[Store]:
    if not URL:
        message = "PATHLOOP_TEST_POSTGRES_URL is not set (scripts/throwaway-postgres.sh starts one)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    settings = SiteSettings(site_id="site-pg", data_dir=tmp_path / "data", database_url=URL)
    engine = db.create_store_engine(settings.db_url)
    db.downgrade(engine, "base")
    engine.dispose()
    with Store.open(settings) as store:
        yield store
        db.downgrade(store.engine, "base")


def test_postgres_schema_matches_and_round_trips(pg_store: Store) -> None:
    with pg_store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    db.downgrade(pg_store.engine, "base")
    assert db.current_revision(pg_store.engine) is None
    db.upgrade(pg_store.engine)
    assert db.current_revision(pg_store.engine) == db.head_revision()


def test_postgres_records_corrections_and_rasters(pg_store: Store) -> None:
    fields: dict[str, Any] = {
        "content_hash": hashlib.sha256(b"pg").hexdigest(),
        "name": "pg.svs",
        "path": "/slides/pg.svs",
        "width": 1000,
        "height": 1000,
        "mpp_x": 0.5,
        "mpp_y": 0.5,
    }
    slide, created = pg_store.add_slide(**fields)
    assert created and pg_store.add_slide(**fields) == (slide, False)
    tiles = [
        {"col": i % 100, "row": i // 100, "x": i, "y": 0, "width": 8, "height": 8}
        for i in range(20_000)
    ]
    tiling = pg_store.add_tiling(slide.id, mpp=1.0, tile_size=8, stride=8, tiles=tiles)
    assert sum(1 for _ in pg_store.iter_tiles(tiling.id)) == tiling.n_tiles == 20_000
    box = PatchBox(slide.id, 0, 0, 64, 64, 1.0)
    pg_store.save_correction(box, data={"n": 1}, author="dr")
    pg_store.save_correction(box, data={"n": 2}, author="dr", base_version=1)
    with pytest.raises(ConflictError):
        pg_store.save_correction(box, data={"n": 3}, author="dr", base_version=1)
    assert [c.version for c in pg_store.correction_history(box)] == [1, 2]
    raster = pg_store.rasters.save(
        np.ones((300, 300), np.uint8), slide.id, "tissue-mask", mpp=8.0, downsample="mode"
    )
    assert pg_store.rasters.open_raster(raster).levels[1].shape == (150, 150)
    for statement in (
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM correction_versions",
        "TRUNCATE audit_events CASCADE",
    ):
        with pytest.raises(DBAPIError, match="append-only"), pg_store.engine.begin() as conn:
            conn.execute(text(statement))
    assert len(pg_store.audit_events()) == 5  # slide, tiling, 2 corrections, raster
