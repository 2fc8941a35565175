"""The site API over a real slide: errors users can cause, saves, conflicts, overlays, jobs."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from support.site import make_site

from pathloop.client.api import create_app
from pathloop.client.api.openapi import render
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.viewing.masks import encode_rle

REPO = Path(__file__).resolve().parents[2]


def _rle(mask: np.ndarray) -> dict[str, object]:
    values, counts = encode_rle(mask)
    return {"format": "rle", "width": mask.shape[1], "height": mask.shape[0],
            "values": values, "counts": counts}


def _png(image: Image.Image) -> dict[str, object]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"format": "png", "data": base64.b64encode(buffer.getvalue()).decode()}


def _patch(client: TestClient, index: int) -> dict[str, object]:
    items = client.get("/api/worklist").json()
    return items[index]


def _png_labels(response: object) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)))  # type: ignore[attr-defined]


def test_health_needs_no_token_and_everything_else_does(site: tuple[SiteSettings, str]) -> None:
    settings, token = site
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent"))) as anonymous:
        assert anonymous.get("/api/health").json()["status"] == "ok"
        for path in ("/api/slides", "/api/slides/1/dz/0/0_0.jpeg", "/api/worklist",
                     "/api/jobs"):
            missing = anonymous.get(path)
            assert missing.status_code == 401, path
            assert "token" in missing.json()["detail"]
            assert missing.headers["www-authenticate"] == "Bearer"
            assert missing.json()["kind"] == "AuthenticationError"
            wrong = anonymous.get(path, headers={"Authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401
            assert "not valid" in wrong.json()["detail"]
        assert anonymous.get("/api/me", headers={"Authorization": f"Bearer {token}"}
                             ).json() == {"user": "dr-test", "role": "operator"}


def test_cors_is_closed(client: TestClient) -> None:
    response = client.get("/api/slides", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/api/slides", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers


def test_slide_detail_deep_zoom_and_tiles(client: TestClient) -> None:
    detail = client.get("/api/slides/1").json()
    zoom = detail["deepzoom"]
    assert (zoom["width"], zoom["height"], zoom["tile_size"], zoom["overlap"]) == (
        2220, 2967, 254, 1)
    # The corrections overlay is listed once a patch is corrected (other tests of this
    # module's site correct some; in a random order they may have run already).
    corrected = any(item["status"] == "corrected" for item in client.get("/api/worklist").json())
    assert {o["kind"] for o in detail["overlays"]} == {
        "tissue", "prediction", "uncertainty", "annotation"} | (
        {"corrections"} if corrected else set())
    dzi = client.get(zoom["dzi_url"])
    assert dzi.headers["content-type"].startswith("application/xml")
    assert 'Width="2220"' in dzi.text and 'TileSize="254"' in dzi.text
    top = zoom["levels"] - 1
    for level in (0, top - 3, top):
        tile = client.get(zoom["url_template"].format(level=level, col=0, row=0))
        assert tile.status_code == 200
        assert Image.open(io.BytesIO(tile.content)).format == "JPEG"
    full = Image.open(io.BytesIO(client.get(f"/api/slides/1/dz/{top}/1_1.jpeg").content))
    assert full.size == (256, 256)  # 254 + overlap on both sides


def test_unknown_slide_and_tiles_outside_the_pyramid_are_404(client: TestClient) -> None:
    unknown = client.get("/api/slides/999")
    assert unknown.status_code == 404
    assert "slide 999" in unknown.json()["detail"]
    assert client.get("/api/slides/999/dz/0/0_0.jpeg").status_code == 404
    levels = client.get("/api/slides/1").json()["deepzoom"]["levels"]
    for path in (f"/api/slides/1/dz/{levels}/0_0.jpeg", f"/api/slides/1/dz/{levels - 1}/9_0.jpeg",
                 f"/api/slides/1/dz/{levels - 1}/0_12.jpeg", "/api/slides/1/dz/-1/0_0.jpeg",
                 "/api/slides/1/overlays/uncertainty/99/0_0.png"):
        response = client.get(path)
        assert response.status_code == 404, path
    outside = client.get(f"/api/slides/1/dz/{levels - 1}/9_0.jpeg").json()
    assert outside["kind"] == "TileOutOfRangeError"
    assert client.get("/api/slides/1/overlays/inspection/0/0_0.png").status_code == 404


def test_overlay_tiles_are_transparent_png_with_a_legend(client: TestClient) -> None:
    detail = client.get("/api/slides/1").json()
    uncertainty = next(o for o in detail["overlays"] if o["kind"] == "uncertainty")
    legend = uncertainty["legend"]
    assert legend["type"] == "continuous" and legend["min"] == 0
    assert legend["max"] == pytest.approx(np.log(2))
    assert len(legend["stops"]) >= 5
    level = detail["deepzoom"]["levels"] - 3
    tile = Image.open(io.BytesIO(client.get(
        uncertainty["url_template"].format(level=level, col=0, row=0)).content))
    assert tile.mode == "RGBA"
    alpha = np.asarray(tile)[..., 3]
    assert (alpha == 0).any() and (alpha > 0).any()  # confident glass clear, edges painted
    prediction = next(o for o in detail["overlays"] if o["kind"] == "prediction")
    assert [e["label"] for e in prediction["legend"]["entries"]] == ["tumour"]


@pytest.mark.parametrize(("mask", "expected"), [
    ({"format": "rle", "width": 64, "height": 64, "values": [0], "counts": [4096]},
     "64×64 px but the patch needs 128×128"),
    ({"format": "rle", "width": 128, "height": 128, "values": [0, 1], "counts": [10]},
     "2 values but 1 counts"),
    ({"format": "rle", "width": 128, "height": 128, "values": [0], "counts": [100]},
     "cover 100 pixels"),
    ({"format": "rle", "width": 128, "height": 128, "values": [7], "counts": [16384]},
     "label 7 but the site has 2 labels"),
    # Runs whose int64 sum wraps round to 128² (they once crashed the service), and a
    # label beyond int64: refused by the schema before any decoding.
    ({"format": "rle", "width": 128, "height": 128, "values": [1, 0, 1, 0],
      "counts": [2**62, 2**62, 2**62, 2**62 + 16384]}, "counts"),
    ({"format": "rle", "width": 128, "height": 128, "values": [2**70], "counts": [16384]},
     "values"),
    ({"format": "png", "data": "not base64!"}, "not valid base64"),
    ({"format": "png", "data": base64.b64encode(b"GIF89a....").decode()}, "not a PNG"),
    ("rgb", "mode RGB"),
    ("uint16", "mode I;16"),
    ("small", "128×100 px but the patch needs 128×128"),
    ({"format": "zip", "data": ""}, "mask"),
])
def test_a_wrong_mask_is_422_naming_the_problem(client: TestClient, mask: object,
                                                 expected: str) -> None:
    patch = _patch(client, 4)
    if mask == "rgb":
        mask = _png(Image.new("RGB", (128, 128)))
    elif mask == "uint16":
        mask = _png(Image.fromarray(np.zeros((128, 128), np.uint16)))
    elif mask == "small":
        mask = _png(Image.new("L", (128, 100)))
    response = client.post(f"/api/patches/{patch['id']}/versions",
                           json={"base_version": patch["version"], "mask": mask})
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]
    assert client.get(f"/api/patches/{patch['id']}/versions").json() == []


def test_two_saves_from_the_same_version_conflict_and_nothing_is_lost(
        client: TestClient) -> None:
    patch = _patch(client, 0)
    shape = (patch["mask_height"], patch["mask_width"])
    first, second = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    first[10:30, 10:50] = 1
    second[60:90, 60:90] = 1
    url = f"/api/patches/{patch['id']}/versions"
    saved = client.post(url, json={"base_version": 0, "mask": _rle(first)})
    assert saved.status_code == 201
    assert saved.json()["version"] == 1 and saved.json()["author"] == "dr-test"
    late = client.post(url, json={"base_version": 0, "mask": _png(Image.fromarray(second))})
    assert late.status_code == 409
    assert "at version 1" in late.json()["detail"]
    history = client.get(url).json()
    assert [v["version"] for v in history] == [1]
    stored = _png_labels(client.get(f"/api/patches/{patch['id']}/mask"))
    np.testing.assert_array_equal(stored, first)
    # The late author re-bases on version 1 and saves: both versions stay readable.
    rebased = client.post(url, json={"base_version": 1, "mask": _png(Image.fromarray(second))})
    assert rebased.status_code == 201 and rebased.json()["version"] == 2
    np.testing.assert_array_equal(_png_labels(client.get(
        f"/api/patches/{patch['id']}/mask", params={"source": "version", "version": 1})), first)
    item = client.get(f"/api/patches/{patch['id']}").json()
    assert item["status"] == "corrected" and item["version"] == 2


def test_undo_accept_and_keep_append_versions(client: TestClient) -> None:
    patch = _patch(client, 1)
    pid, shape = patch["id"], (patch["mask_height"], patch["mask_width"])
    painted = np.zeros(shape, np.uint8)
    painted[:20] = 1
    before = _png_labels(client.get(f"/api/patches/{pid}/mask"))  # the prediction
    prediction = _png_labels(client.get(f"/api/patches/{pid}/mask",
                                        params={"source": "prediction"}))
    np.testing.assert_array_equal(before, prediction)
    assert client.post(f"/api/patches/{pid}/versions",
                       json={"base_version": 0, "mask": _rle(painted)}).status_code == 201
    undo = client.post(f"/api/patches/{pid}/revert", json={"base_version": 1, "to_version": 0})
    assert undo.status_code == 201
    assert undo.json()["reverted_to"] == 0 and not undo.json()["has_mask"]
    np.testing.assert_array_equal(_png_labels(client.get(f"/api/patches/{pid}/mask")), before)
    assert client.get(f"/api/patches/{pid}").json()["status"] == "pending"
    redo = client.post(f"/api/patches/{pid}/revert", json={"base_version": 2, "to_version": 1})
    assert redo.json()["version"] == 3
    np.testing.assert_array_equal(_png_labels(client.get(f"/api/patches/{pid}/mask")), painted)
    accepted = client.post(f"/api/patches/{pid}/accept-prediction", json={"base_version": 3})
    assert accepted.json()["action"] == "accept-prediction"
    np.testing.assert_array_equal(_png_labels(client.get(f"/api/patches/{pid}/mask")),
                                  prediction)
    kept = client.post(f"/api/patches/{pid}/keep-annotation", json={"base_version": 4})
    assert kept.status_code == 201 and kept.json()["version"] == 5
    annotation = _png_labels(client.get(f"/api/patches/{pid}/mask",
                                        params={"source": "annotation"}))
    np.testing.assert_array_equal(_png_labels(client.get(f"/api/patches/{pid}/mask")),
                                  annotation)
    assert [v["action"] for v in client.get(f"/api/patches/{pid}/versions").json()] == [
        "edit", "revert", "revert", "accept-prediction", "keep-annotation"]
    missing = client.post(f"/api/patches/{pid}/revert", json={"base_version": 5,
                                                             "to_version": 9})
    assert missing.status_code == 404
    untouched = _patch(client, 3)["id"]
    nothing = client.post(f"/api/patches/{untouched}/revert",
                          json={"base_version": 0, "to_version": 0})
    assert nothing.status_code == 422 and "no correction to withdraw" in nothing.json()["detail"]


def test_corrections_show_in_their_overlay(client: TestClient) -> None:
    patch = _patch(client, 2)
    mask = np.ones((patch["mask_height"], patch["mask_width"]), np.uint8)
    client.post(f"/api/patches/{patch['id']}/versions",
                json={"base_version": patch["version"], "mask": _rle(mask)})
    detail = client.get("/api/slides/1").json()
    corrections = next(o for o in detail["overlays"] if o["kind"] == "corrections")
    top = detail["deepzoom"]["levels"] - 1
    col, row = (patch["x"] + 300) // 254, (patch["y"] + 300) // 254
    tile = np.asarray(Image.open(io.BytesIO(client.get(
        corrections["url_template"].format(level=top, col=col, row=row)).content)))
    assert (tile[..., 3] == 200).mean() > 0.2  # painted where the patch lies


def test_claims_are_exclusive(client: TestClient, site: tuple[SiteSettings, str]) -> None:
    settings, _ = site
    from pathloop.client.api import TokenStore

    other = TokenStore.for_data_dir(settings.data_dir).add("dr-other")
    patch = _patch(client, 3)
    assert client.post(f"/api/patches/{patch['id']}/claim").json()["claimed_by"] == "dr-test"
    taken = client.post(f"/api/patches/{patch['id']}/claim",
                        headers={"Authorization": f"Bearer {other}"})
    assert taken.status_code == 409 and "dr-test" in taken.json()["detail"]
    assert client.post(f"/api/patches/{patch['id']}/release").json()["claimed_by"] is None
    skipped = client.post(f"/api/patches/{patch['id']}/skip").json()
    assert skipped["status"] == "skipped"


def test_path_traversal_is_refused(client: TestClient, site: tuple[SiteSettings, str],
                                   tmp_path: Path, cmu_svs: Path) -> None:
    for path in ("/api/slides/..%2F..%2Fetc%2Fpasswd", "/api/slides/1/overlays/..%2F..%2F"
                 "etc%2Fpasswd/0/0_0.png", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd"):
        response = client.get(path)
        assert response.status_code in (404, 422), path
        assert "root:" not in response.text
    # A slide record pointing outside the slide roots (a tampered database) is refused.
    settings, _ = site
    outside = tmp_path / "outside.svs"
    outside.write_bytes(cmu_svs.read_bytes())
    with Store.open(settings) as store:
        record, _ = store.add_slide(content_hash="f" * 64, name="outside.svs", path=outside,
                                    width=2220, height=2967, mpp_x=0.5, mpp_y=0.5)
    refused = client.get(f"/api/slides/{record.id}/dz/12/0_0.jpeg")
    assert refused.status_code == 403
    assert "outside the configured slide roots" in refused.json()["detail"]


def test_jobs_run_report_progress_stream_and_cancel(cmu_svs: Path, tmp_path: Path) -> None:
    # Its own site: the rank job below replaces the worklist the module's other tests use.
    settings, token = make_site(tmp_path, cmu_svs)
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent")),
                    headers={"Authorization": f"Bearer {token}"}) as client:
        _jobs_run_report_progress_stream_and_cancel(client)


def _jobs_run_report_progress_stream_and_cancel(client: TestClient) -> None:
    job = client.post("/api/jobs", json={"kind": "rank", "slide_id": 1,
                                         "params": {"k": 3, "size": 128, "mpp": 2.0}})
    assert job.status_code == 202
    with client.stream("GET", f"/api/jobs/{job.json()['id']}/events") as events:
        states = [json.loads(line[6:])["state"] for line in events.iter_lines()
                  if line.startswith("data: ")]
    assert states[-1] == "succeeded"
    assert client.get(f"/api/jobs/{job.json()['id']}").json()["result"]["patches"] == 3
    # A bad parameter is refused before it is queued (tests/api/test_job_limits.py: more).
    bad = client.post("/api/jobs", json={"kind": "rank", "slide_id": 1, "params": {"k": -1}})
    assert bad.status_code == 422 and "'k'" in bad.json()["detail"]
    # A tiling job queued behind a long one is cancelled before it starts.
    first = client.post("/api/jobs", json={"kind": "tile", "slide_id": 1}).json()
    second = client.post("/api/jobs", json={"kind": "tile", "slide_id": 1}).json()
    cancelled = client.post(f"/api/jobs/{second['id']}/cancel").json()
    assert cancelled["state"] in ("cancelled", "running")
    client.post(f"/api/jobs/{first['id']}/cancel")
    deadline = time.monotonic() + 60
    while any(client.get(f"/api/jobs/{j['id']}").json()["state"] in ("queued", "running")
              for j in (first, second)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.get(f"/api/jobs/{second['id']}").json()["state"] == "cancelled"
    assert client.post("/api/jobs", json={"kind": "predict"}).status_code == 422
    assert client.post("/api/jobs", json={"kind": "format-disk"}).status_code == 422


def test_the_committed_openapi_schema_matches_the_app() -> None:
    committed = (REPO / "viewer" / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(), ("viewer/openapi.json is stale: run "
                                   "`.venv/bin/python -m pathloop.client.api.openapi "
                                   "viewer/openapi.json` and regenerate the viewer's client")


def test_coarse_levels_cut_from_one_read_match_the_slide(client: TestClient,
                                                         cmu_svs: Path) -> None:
    from pathloop.client.api.tiles import _Overview
    from pathloop.client.wsi import DeepZoomGrid, open_slide, read_deepzoom_tile

    grid = DeepZoomGrid(2220, 2967)
    with open_slide(cmu_svs) as slide:
        overview = _Overview(slide, grid)
        assert overview.level == 11  # 1110×1484: the finest level within 2048 px
        for level in range(3, 12):
            for col, row in {(0, 0), (grid.level_tiles[level][0] - 1,
                                      grid.level_tiles[level][1] - 1)}:
                cut = overview.tile(level, col, row).astype(float)
                direct = read_deepzoom_tile(slide, grid, level, col, row).astype(float)
                assert cut.shape == direct.shape
                assert np.abs(cut - direct).mean() < 5, (level, col, row)  # of 255: < 2%
                served = Image.open(io.BytesIO(client.get(
                    f"/api/slides/1/dz/{level}/{col}_{row}.jpeg").content))
                assert served.size == (cut.shape[1], cut.shape[0])
