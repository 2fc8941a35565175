"""The ``inspect`` job: its parameters are checked before anything is queued (paths inside
the slide roots only), and a run through the API stores an inspection the routes list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pathloop.client.api import TokenStore, create_app
from pathloop.client.quality.instances import INSTANCE_TASK
from pathloop.client.settings import SiteSettings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[SiteSettings, Path]:
    """A site whose slide roots hold two images with label-image annotations and a
    (randomly initialised) 1-fold instance model; the roots folder."""
    from support.nnunet import random_model_folder

    root = tmp_path_factory.mktemp("inspect-job")
    images = root / "roots" / "images"
    images.mkdir(parents=True)
    for index in (1, 2):
        labels = np.zeros((64, 64), dtype=np.int32)
        labels[10:30, 10:30] = 1
        labels[40:56, 36 + index:52] = 2
        pixels = np.full((64, 64, 3), 230, dtype=np.uint8)
        pixels[labels > 0] = (70, 40, 110)
        Image.fromarray(pixels).save(images / f"tile{index}.png")
        np.save(images / f"tile{index}_mask.npy", labels)
    random_model_folder(root / "roots" / "model", INSTANCE_TASK, n_folds=1, mpp=0.5)
    settings = SiteSettings(site_id="s", data_dir=root / "site",
                            slide_roots=(root / "roots",))
    return settings, root / "roots"


@pytest.fixture(scope="module")
def client(site: tuple[SiteSettings, Path]) -> Iterator[TestClient]:
    settings, _ = site
    token = TokenStore.for_data_dir(settings.data_dir).add("ops", "operator")
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent")),
                    headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


@pytest.mark.parametrize(("params", "message"), [
    ({"images": "IMAGES", "mpp": 0.5}, "'model'"),
    ({"images": "IMAGES", "mpp": 0.5, "model": "MODEL", "train": True}, "one of them"),
    ({"images": "IMAGES", "model": "MODEL"}, "'mpp'"),
    ({"images": "IMAGES", "mpp": 0.5, "model": "MODEL", "alpha": 2}, "'alpha'"),
    ({"images": "IMAGES", "mpp": 0.5, "model": "MODEL", "format": "doc"}, "'format'"),
    ({"images": "IMAGES", "mpp": 0.5, "model": "MODEL", "shell": "rm"}, "'shell'"),
])
def test_bad_parameters_are_refused_before_queueing(
        client: TestClient, site: tuple[SiteSettings, Path], params: dict[str, Any],
        message: str) -> None:
    _, roots = site
    filled = {k: str(roots / "images") if v == "IMAGES" else str(roots / "model")
              if v == "MODEL" else v for k, v in params.items()}
    answer = client.post("/api/jobs", json={"kind": "inspect", "params": filled})
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]
    assert all(j["state"] == "succeeded" for j in client.get("/api/jobs").json())


def test_folders_outside_the_slide_roots_are_forbidden(
        client: TestClient, site: tuple[SiteSettings, Path]) -> None:
    _, roots = site
    for params in ({"images": "/etc", "mpp": 0.5, "model": str(roots / "model")},
                   {"images": str(roots / "images"), "mpp": 0.5, "model": "/usr"},
                   {"images": str(roots / "images"), "annotations": "/etc", "mpp": 0.5,
                    "model": str(roots / "model")}):
        answer = client.post("/api/jobs", json={"kind": "inspect", "params": params})
        assert answer.status_code == 403, answer.text
        assert answer.json()["kind"] == "PathOutsideRootsError"


def test_an_inspect_job_stores_a_run(client: TestClient, site: tuple[SiteSettings, Path]
                                     ) -> None:
    _, roots = site
    posted = client.post("/api/jobs", json={"kind": "inspect", "params": {
        "images": str(roots / "images"), "mpp": 0.5, "model": str(roots / "model"),
        "alpha": 0.5, "name": "via the API"}})
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    with client.stream("GET", f"/api/jobs/{job_id}/events") as events:
        states = [json.loads(line[6:])["state"] for line in events.iter_lines()
                  if line.startswith("data: ")]
    finished = client.get(f"/api/jobs/{job_id}").json()
    assert finished["state"] == "succeeded", finished
    assert states[-1] == "succeeded"
    runs = client.get("/api/inspections").json()
    assert [(r["id"], r["name"], r["n_items"], r["alpha"]) for r in runs] == [
        (finished["result"]["inspection_id"], "via the API", 2, 0.5)]
    items = client.get(f"/api/inspections/{runs[0]['id']}/items").json()
    assert {i["name"] for i in items} == {"tile1.png", "tile2.png"}
    assert finished["result"]["top_item"] == items[0]["name"]
