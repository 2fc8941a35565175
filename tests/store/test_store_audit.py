"""The audit log is append-only: every change writes one event, and nothing can rewrite it."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from pathloop.client.settings import SiteSettings
from pathloop.client.store import PatchBox, SlideRecord, Store


def test_every_change_is_audited_in_its_own_transaction(store: Store, slide: SlideRecord) -> None:
    model = store.add_model_version(name="m0", kind="uga-ensemble")
    tiling = store.add_tiling(
        slide.id,
        mpp=1.0,
        tile_size=256,
        stride=256,
        tiles=[{"col": 0, "row": 0, "x": 0, "y": 0, "width": 1024, "height": 1024}],
    )
    patch = {
        "x": 0,
        "y": 0,
        "width": 64,
        "height": 64,
        "mpp": 1.0,
        "score_sum": 1.0,
        "score_mean": 1.0,
    }
    ranking = store.add_ranking(
        slide.id, strategy="uga", model_version_id=model.id, patches=[patch]
    )
    raster = store.rasters.save(
        np.zeros((8, 8), np.uint8), slide.id, "tissue-mask", mpp=8.0, downsample="mode"
    )
    correction = store.save_correction(PatchBox(slide.id, 0, 0, 64, 64, 1.0), data={}, author="dr")
    events = store.audit_events()
    assert [(e.action, e.subject) for e in events] == [
        ("slide.add", f"slide:{slide.id}"),
        ("model_version.add", f"model_version:{model.id}"),
        ("tiling.add", f"tiling:{tiling.id}"),
        ("ranking.add", f"ranking:{ranking.id}"),
        ("raster.add", f"raster:{raster.id}"),
        ("correction.save", f"correction:{correction.correction_id}"),
    ]
    assert events[2].details["n_tiles"] == 1
    assert store.audit_events(after_id=events[3].id, limit=1) == [events[4]]
    assert store.audit_events(since=events[-1].at)[-1] == events[-1]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "UPDATE correction_versions SET data = '{}'",
        "DELETE FROM correction_versions",
    ],
)
def test_raw_sql_cannot_rewrite_history(
    settings: SiteSettings, store: Store, slide: SlideRecord, statement: str
) -> None:
    store.save_correction(PatchBox(slide.id, 0, 0, 64, 64, 1.0), data={"n": 1}, author="dr")
    before = store.audit_events()
    connection = sqlite3.connect(settings.data_dir / "pathloop.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()
    assert store.audit_events() == before
    assert len(store.correction_history(PatchBox(slide.id, 0, 0, 64, 64, 1.0))) == 1


def test_the_store_offers_no_way_to_edit_the_log(store: Store) -> None:
    public = {name for name in dir(store) if not name.startswith("_")}
    assert not {n for n in public if "audit" in n and n != "audit_events"}
    assert not {n for n in public if n.startswith(("delete", "remove", "update"))}


def test_an_event_without_a_change_is_appended_alone(store: Store, slide: SlideRecord) -> None:
    """Reads, refusals and token changes (the token file is outside the database) are
    recorded on their own."""
    store.record_event(actor="dr-a", action="slide.view", subject=f"slide:{slide.id}",
                       details={"request": f"GET /api/slides/{slide.id}"})
    last = store.audit_events()[-1]
    assert (last.actor, last.action, last.subject) == ("dr-a", "slide.view", f"slide:{slide.id}")
    assert last.details == {"request": f"GET /api/slides/{slide.id}"}
