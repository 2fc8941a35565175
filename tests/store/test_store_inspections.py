"""Inspections in the store: a run, its items' label rasters and findings in one
transaction; nothing of a failed run is kept; nothing stored can be rewritten."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import InspectionItemInput, SlideRecord, Store


def _finding(number: int, state: str, annotation_id: int | None,
             prediction_id: int | None) -> SimpleNamespace:
    return SimpleNamespace(number=number, state=state, annotation_id=annotation_id,
                           prediction_id=prediction_id, iou=0.5 if state == "odd" else 0.0,
                           area=12, certainty=0.75, bbox=(1, 2, 3, 4))


def _item(slide: SlideRecord, name: str, instances: list[SimpleNamespace]
          ) -> InspectionItemInput:
    annotation = np.zeros((16, 24), dtype=np.int32)
    annotation[2:6, 2:6] = 1
    prediction = np.zeros((16, 24), dtype=np.int32)
    prediction[3:7, 2:6] = 7
    return InspectionItemInput(name=name, slide_id=slide.id, box=(100, 200, 24, 16),
                               mpp=0.25, annotation=annotation, prediction=prediction,
                               overall=0.4, instances=instances)


def _rasters(settings: SiteSettings) -> list[Path]:
    return sorted(settings.raster_dir.glob("slide-*/*/*.zarr"))


def test_a_run_is_stored_with_its_rasters_and_findings(
        settings: SiteSettings, store: Store, slide: SlideRecord) -> None:
    run = store.add_inspection(
        name="run", source="slide-regions", author="dr", params={"regions": "r.json"},
        alpha=0.5, gamma=0.25,
        items=[_item(slide, "a", [_finding(1, "odd", 1, 7), _finding(2, "missing", None, 9)]),
               _item(slide, "b", [])])
    assert (run.n_items, run.alpha, run.gamma, run.source) == (2, 0.5, 0.25, "slide-regions")
    assert store.list_inspections() == [run]
    first, second = store.inspection_items(run.id)
    assert (first.name, first.x, first.y, first.width, first.height) == ("a", 100, 200, 24, 16)
    labels = store.rasters.open_raster(first.prediction_raster_id).read()
    assert labels.dtype == np.int32 and (labels == 7).sum() == 16
    findings = store.instance_findings([first.id, second.id])
    assert [(f.number, f.state, f.annotation_id, f.prediction_id)
            for f in findings[first.id]] == [(1, "odd", 1, 7), (2, "missing", None, 9)]
    assert findings[second.id] == []
    assert findings[first.id][0].bbox == (1, 2, 3, 4)
    assert len(_rasters(settings)) == 4
    assert [e.action for e in store.audit_events(subject=f"inspection:{run.id}")] == [
        "inspection.add"]
    with pytest.raises(RecordNotFoundError):
        store.inspection_item(run.id + 1, first.id)


def test_a_failing_run_stores_nothing(settings: SiteSettings, store: Store,
                                      slide: SlideRecord) -> None:
    bad = _item(slide, "bad", [_finding(1, "strange", 1, 7)])
    with pytest.raises(ValueError, match="strange"):
        store.add_inspection(name="run", source="image-set", author="dr", params={},
                             alpha=0.0, gamma=0.0,
                             items=[_item(slide, "good", [_finding(1, "odd", 1, 7)]), bad])
    assert store.list_inspections() == []
    assert store.rasters.list_rasters(slide.id) == []
    assert _rasters(settings) == []  # the published folders went with the transaction
    assert store.audit_events(action="raster.add") == []


@pytest.mark.parametrize("statement", [
    "UPDATE inspections SET alpha = 1", "DELETE FROM inspections",
    "UPDATE inspection_items SET overall = 0", "DELETE FROM inspection_items",
    "UPDATE inspection_instances SET state = 'odd'", "DELETE FROM inspection_instances",
])
def test_raw_sql_cannot_rewrite_a_run(settings: SiteSettings, store: Store,
                                      slide: SlideRecord, statement: str) -> None:
    run = store.add_inspection(name="run", source="image-set", author="dr", params={},
                               alpha=0.0, gamma=0.0,
                               items=[_item(slide, "a", [_finding(1, "additional", 1, None)])])
    connection = sqlite3.connect(settings.data_dir / "pathloop.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()
    assert store.get_inspection(run.id) == run
    assert len(store.instance_findings([store.inspection_items(run.id)[0].id])
               [store.inspection_items(run.id)[0].id]) == 1
