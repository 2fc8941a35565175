"""``/api/inspections``: runs, items ordered by score at any α and γ, views, decisions."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from support.inspections import fill_inspection

from pathloop.client.api import TokenStore, create_app
from pathloop.client.settings import SiteSettings
from pathloop.client.store import PatchBox, Store


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> tuple[SiteSettings, int]:
    """A site with the two-image fixture inspection; its id."""
    root = tmp_path_factory.mktemp("inspect")
    settings = SiteSettings(site_id="test-site", data_dir=root / "site",
                            slide_roots=(root / "images",))
    with Store.open(settings) as store:
        inspection = fill_inspection(settings, store, root / "images")
    return settings, inspection.id


@pytest.fixture(scope="module")
def tokens(inspected: tuple[SiteSettings, int]) -> dict[str, str]:
    settings, _ = inspected
    store = TokenStore.for_data_dir(settings.data_dir)
    return {"dr-a": store.add("dr-a"), "dr-b": store.add("dr-b"),
            "rev": store.add("rev", "reviewer")}


@pytest.fixture(scope="module")
def client(inspected: tuple[SiteSettings, int]) -> Iterator[TestClient]:
    settings, _ = inspected
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent"))) as test_client:
        yield test_client


def _as(tokens: dict[str, str], user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[user]}"}


def test_runs_are_listed_with_their_weights(client: TestClient, tokens: dict[str, str],
                                            inspected: tuple[SiteSettings, int]) -> None:
    runs = client.get("/api/inspections", headers=_as(tokens, "dr-a")).json()
    assert [(r["id"], r["n_items"], r["source"], r["alpha"], r["gamma"]) for r in runs] == [
        (inspected[1], 2, "image-set", 0.0, 0.0)]


def test_items_are_ordered_by_overall_score_and_alpha_reorders_them(
        client: TestClient, tokens: dict[str, str], inspected: tuple[SiteSettings, int]) -> None:
    url = f"/api/inspections/{inspected[1]}/items"
    default = client.get(url, headers=_as(tokens, "dr-a")).json()
    assert [i["name"] for i in default] == ["inspect-02.png", "inspect-01.png"]
    assert default[0]["overall"] == pytest.approx(0.781, abs=0.005)
    assert [(i["n_instances"], i["n_suspect"]) for i in default] == [(4, 3), (4, 3)]
    weighted = client.get(url, params={"alpha": 1.0}, headers=_as(tokens, "dr-a")).json()
    assert [i["name"] for i in weighted] == ["inspect-01.png", "inspect-02.png"]
    assert weighted[1]["n_suspect"] == 0  # its missing nuclei are uncertain: 0.25 each
    assert client.get(url, params={"alpha": 1.5}, headers=_as(tokens, "dr-a")
                      ).status_code == 422


def test_an_item_lists_its_instances_with_states_and_scores(
        client: TestClient, tokens: dict[str, str], inspected: tuple[SiteSettings, int]) -> None:
    first = client.get(f"/api/inspections/{inspected[1]}/items",
                       headers=_as(tokens, "dr-a")).json()[1]
    detail = client.get(f"/api/inspections/{inspected[1]}/items/{first['id']}",
                        headers=_as(tokens, "dr-a")).json()
    states = [(i["number"], i["state"], i["suspect"]) for i in detail["instances"]]
    assert states == [(1, "odd", False), (2, "odd", True), (3, "additional", True),
                      (4, "missing", True)]
    assert detail["instances"][0]["iou"] > 0.8
    assert detail["box"] == {"x": 0, "y": 0, "width": 128, "height": 96}
    assert client.get(f"/api/inspections/{inspected[1]}/items/999",
                      headers=_as(tokens, "dr-a")).status_code == 404


def _png(client: TestClient, url: str, headers: dict[str, str], **params: object
         ) -> np.ndarray:
    answer = client.get(url, params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))


def test_views_draw_green_red_and_white_outlines(
        client: TestClient, tokens: dict[str, str], inspected: tuple[SiteSettings, int]) -> None:
    item = client.get(f"/api/inspections/{inspected[1]}/items",
                      headers=_as(tokens, "dr-a")).json()[1]
    base = f"/api/inspections/{inspected[1]}/items/{item['id']}/views"
    combined = _png(client, f"{base}/combined.png", _as(tokens, "dr-a"))
    assert combined.shape == (96, 128, 3)
    green = (combined == (57, 231, 95)).all(axis=-1)
    red = (combined == (255, 45, 45)).all(axis=-1)
    assert green[10:31, 10:32].any() and not red[10:31, 10:32].any()  # instance 1: consistent
    assert red[60:80, 10:30].any()  # instance 3 (additional): suspect
    selected = _png(client, f"{base}/combined.png", _as(tokens, "dr-a"), selected=1)
    assert (selected[10:31, 10:32] == 255).all(axis=-1).any()
    annotation = _png(client, f"{base}/annotation.png", _as(tokens, "dr-a"))
    prediction = _png(client, f"{base}/prediction.png", _as(tokens, "dr-a"))
    # the missing nucleus (predicted at 70, 60) is outlined in the prediction view only
    assert (prediction[58:83, 48:73] == (255, 45, 45)).all(axis=-1).any()
    assert not (annotation[58:83, 48:73] == (255, 45, 45)).all(axis=-1).any()
    assert client.get(f"{base}/other.png", headers=_as(tokens, "dr-a")).status_code == 422


def test_decisions_are_correction_versions_with_the_resulting_mask(
        client: TestClient, tokens: dict[str, str], inspected: tuple[SiteSettings, int]) -> None:
    settings, inspection_id = inspected
    item = client.get(f"/api/inspections/{inspection_id}/items",
                      headers=_as(tokens, "dr-a")).json()[1]
    url = f"/api/inspections/{inspection_id}/items/{item['id']}/decisions"
    saved = client.post(url, json={"decision": "accept-prediction", "instance": 2,
                                   "base_version": item["version"]},
                        headers=_as(tokens, "dr-a"))
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == item["version"] + 1
    stale = client.post(url, json={"decision": "keep-annotation", "instance": None,
                                   "base_version": item["version"]},
                        headers=_as(tokens, "dr-a"))
    assert stale.status_code == 409
    refused = client.post(url, json={"decision": "re-annotate",
                                     "base_version": item["version"] + 1},
                          headers=_as(tokens, "dr-b"))
    assert refused.status_code == 403  # the latest decision is dr-a's
    reviewed = client.post(url, json={"decision": "re-annotate",
                                      "base_version": item["version"] + 1},
                           headers=_as(tokens, "rev"))
    assert reviewed.status_code == 201
    detail = client.get(f"/api/inspections/{inspection_id}/items/{item['id']}",
                        headers=_as(tokens, "dr-a")).json()
    assert detail["decision"] == "re-annotate"
    assert [i["decision"] for i in detail["instances"]] == [None, "accept-prediction", None,
                                                            None]
    with Store.open(settings) as store:
        record = store.inspection_item(inspection_id, item["id"])
        history = store.correction_history(PatchBox(record.slide_id, 0, 0, 128, 96, 0.5))
        assert [v.data["decision"] for v in history] == ["accept-prediction", "re-annotate"]
        assert history[0].data == {"source": "inspection", "inspection_id": inspection_id,
                                   "item_id": item["id"], "instance": 2,
                                   "decision": "accept-prediction"}
        assert history[1].raster_id is None
        assert history[0].raster_id is not None
        mask = store.rasters.open_raster(history[0].raster_id).read()
        annotation = store.rasters.open_raster(record.annotation_raster_id).read()
        prediction = store.rasters.open_raster(record.prediction_raster_id).read()
        # instance 2: annotated nucleus 2 replaced by predicted nucleus 12, the rest kept
        assert not (mask == 2).any()
        new = mask[prediction == 12]
        assert len(np.unique(new)) == 1 and new[0] > annotation.max()
        untouched = (annotation != 2) & (prediction != 12)
        np.testing.assert_array_equal(mask[untouched], annotation[untouched])
        actions = [e.action for e in store.audit_events(action="correction.save")]
        assert len(actions) == 2
