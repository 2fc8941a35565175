"""The site API's ``predict`` and ``train`` background jobs, with a real tiny nnU-Net.

A site with the CMU slide, MoNuSeg training tiles and an imported 2-fold model: a
``predict`` job writes maps tied to the current model version; a ``train`` job fine-tunes
it into a new version whose parent, provenance and model card name where it came from; the
next ``predict`` job uses the new version.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from support.monuseg_sites import monuseg_cases, train_model, write_tiles

from pathloop.client.api import TokenStore, create_app
from pathloop.client.experiments.monuseg import by_organ, list_images
from pathloop.client.segmentation import ModelCard
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.models import MODEL_KIND, import_model
from pathloop.client.usecases.slides import ingest_slide, tile_slide

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def site(shared_data: Path, cmu_svs: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[SiteSettings, str, int]:
    """The site's settings, a user's token and the imported model's version id."""
    root = tmp_path_factory.mktemp("jobs")
    groups = by_organ(list_images(shared_data / "nuclei" / "monuseg"))
    initial = train_model(monuseg_cases(groups["lung"][:2], "i"), root / "initial")
    images, masks = write_tiles(monuseg_cases(groups["breast"][:2], "t"), root / "train")
    config = root / "site.toml"
    config.write_text(
        f'site-id = "site-jobs"\ndata-dir = "{root / "data"}"\n'
        f'slide-roots = ["{cmu_svs.parent}"]\n[federation]\n'
        f'training-images = "{images}"\ntraining-masks = "{masks}"\n'
        'mpp = 0.5\nlabels = ["background", "nucleus"]\n')
    settings = SiteSettings.from_file(config)
    with Store.open(settings) as store:
        version = import_model(settings, store, initial, "initial")
        slide = ingest_slide(settings, store, cmu_svs).slide
        tile_slide(settings, store, slide)
    token = TokenStore.for_data_dir(settings.data_dir).add("dr-jobs", "operator")
    return settings, token, version.id


@pytest.fixture(scope="module")
def client(site: tuple[SiteSettings, str, int]) -> Iterator[TestClient]:
    settings, token, _ = site
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent")),
                    headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def _run_job(client: TestClient, **body: Any) -> dict[str, Any]:
    """Post a job and follow its event stream to the end; the finished job."""
    posted = client.post("/api/jobs", json=body)
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    with client.stream("GET", f"/api/jobs/{job_id}/events") as events:
        states = [json.loads(line[6:])["state"] for line in events.iter_lines()
                  if line.startswith("data: ")]
    finished: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
    assert finished["state"] == "succeeded", finished
    assert states[-1] == "succeeded"
    return finished


def _maps(settings: SiteSettings, slide_id: int) -> dict[str, Any]:
    """The newest prediction and uncertainty rasters of the slide."""
    with Store.open(settings) as store:
        return {kind: store.rasters.latest(slide_id, kind)
                for kind in ("prediction", "uncertainty")}


def test_predict_then_train_then_predict(client: TestClient,
                                         site: tuple[SiteSettings, str, int]) -> None:
    settings, _, initial_id = site
    slide_id = client.get("/api/slides").json()[0]["id"]

    predicted = _run_job(client, kind="predict", slide_id=slide_id)
    assert predicted["result"]["model_version_id"] == initial_id
    assert predicted["result"]["windows"] > 0
    first = _maps(settings, slide_id)
    for raster in first.values():
        assert raster is not None and raster.model_version_id == initial_id
    with Store.open(settings) as store:
        uncertainty = store.rasters.open_raster(first["uncertainty"]).read(
            first["uncertainty"].levels - 1)
        assert np.isfinite(uncertainty).all() and uncertainty.max() > 0

    trained = _run_job(client, kind="train", params={"epochs": 1})
    result = trained["result"]
    assert result["cases"] == 4  # 2 breast images, 2 tiles each; no corrections yet
    # No held-out tiles at this site: adopted unscored ([federation] adopt-without-held-out).
    assert result["adopted"] is True and "adopt-without-held-out" in result["adoption"]
    with Store.open(settings) as store:
        new = store.get_model_version(result["model_version_id"])
        initial = store.get_model_version(initial_id)
        assert store.latest_model_version(MODEL_KIND) == new
    assert new.name == result["name"] and new.kind == MODEL_KIND
    assert new.parent_id == initial_id
    assert new.provenance["training_cases"] == 4 and new.provenance["corrections"] == []
    assert new.provenance["profile"] == settings.federation.profile
    card, parent_card = ModelCard.read(new.weights_uri), ModelCard.read(initial.weights_uri)
    assert card.parent == {"path": str(Path(initial.weights_uri).resolve()),
                           "created": parent_card.created}
    assert card.n_folds == parent_card.n_folds == 2 and card.profile["num_epochs"] == 1

    again = _run_job(client, kind="predict", slide_id=slide_id)
    assert again["result"]["model_version_id"] == new.id
    second = _maps(settings, slide_id)
    for kind, raster in second.items():
        assert raster is not None and raster.model_version_id == new.id
        assert raster.version == first[kind].version + 1  # the old maps stay readable


def test_a_train_job_cancelled_while_training_stores_nothing(
        client: TestClient, site: tuple[SiteSettings, str, int]) -> None:
    settings, _, _ = site
    models, work = settings.data_dir / "models", settings.data_dir / "work"
    with Store.open(settings) as store:
        current = store.latest_model_version(MODEL_KIND)
    folders = sorted(p.name for p in models.iterdir())
    work_folders = sorted(p.name for p in work.iterdir()) if work.exists() else []

    # 50 epochs of 2 folds would take many minutes: the cancel must stop it mid-fold.
    posted = client.post("/api/jobs", json={"kind": "train", "params": {"epochs": 50}})
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]
    job = client.get(f"/api/jobs/{job_id}").json()
    while job["message"] != "training fold 1 of 2":  # the data prepared, fold 0 training
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job_id}").json()
    client.post(f"/api/jobs/{job_id}/cancel")
    with client.stream("GET", f"/api/jobs/{job_id}/events") as events:
        states = [json.loads(line[6:])["state"] for line in events.iter_lines()
                  if line.startswith("data: ")]
    finished = client.get(f"/api/jobs/{job_id}").json()
    assert states[-1] == finished["state"] == "cancelled", finished
    assert (finished["done"], finished["total"]) == (1, 3)  # no fold finished
    # Stopped by the check before every iteration, not at the end of the fold.
    assert finished["message"].startswith("cancelled: training of fold 0 stopped on request")
    with Store.open(settings) as store:
        assert store.latest_model_version(MODEL_KIND) == current
    assert sorted(p.name for p in models.iterdir()) == folders  # no model, no .partial-*
    assert (sorted(p.name for p in work.iterdir()) if work.exists() else []) == work_folders
