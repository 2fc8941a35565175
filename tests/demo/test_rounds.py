"""The demo's federated stage: its sites in Flower's Simulation Runtime, and the loop closing
at every site (the new global model current, the worklists re-ranked with it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pathloop.client.api import TokenStore, create_app
from pathloop.client.demo import run_demo, site_settings, viewer_settings
from pathloop.client.errors import InputError
from pathloop.client.segmentation import TINY
from pathloop.client.store import Store
from pathloop.client.usecases.models import MODEL_KIND

QUICK = TINY.with_overrides(num_epochs=1, iterations_per_epoch=3, val_iterations_per_epoch=1)


@pytest.mark.slow
def test_a_federated_round_across_the_demo_sites_refreshes_their_worklists(
        tmp_path: Path) -> None:
    # 4096² slides: enough tissue tiles on one slide for every site to train 5 folds.
    summary = run_demo(tmp_path, n_sites=2, slides_per_site=2, size=4096, k=3,
                       profiles=(QUICK, QUICK), rounds=1)
    assert [r.version for r in summary.rounds] == [0, 1]
    assert all(sorted(r.dice) == ["site-a", "site-b"] for r in summary.rounds)
    assert all(0.0 <= d <= 1.0 for r in summary.rounds for d in r.dice.values())
    # The demo's table scores the global version on each site's held-out slide.
    results = summary.results
    assert results is not None and results.n_rounds == 1
    assert [s.site_id for s in results.sites] == ["site-a", "site-b"]
    assert all(len(s.rounds) == 1 and 0.0 <= s.rounds[0] <= 1.0 for s in results.sites)
    assert results.round_seconds[1] > 0
    assert any(line.startswith("federation: after 1 rounds") for line in results.findings())
    saved = json.loads((tmp_path / "demo-summary.json").read_text())
    assert saved["mean"]["rounds"] == [pytest.approx(results.mean_after_round(1))]
    for site in ("site-a", "site-b"):
        with Store.open(site_settings(tmp_path, site)) as store:
            current = store.latest_model_version(MODEL_KIND)
            assert current is not None and current.provenance["global_version"] == 1
            for slide in store.list_slides(site):
                ranking = store.latest_ranking(slide.id)
                assert ranking is not None and ranking.model_version_id == current.id
                patches = store.ranked_patches(ranking.id)
                assert 0 < len(patches) <= 3
                assert all(p.status == "pending" for p in patches)
    # The viewer is served for the site that ran the loop, with the demo's labels.
    viewer = viewer_settings(summary)
    assert viewer.site_id == "site-b"
    assert viewer.federation.labels == ("background", "tumour")
    with TestClient(create_app(viewer), headers={
            "Authorization": f"Bearer {TokenStore.for_data_dir(viewer.data_dir).add('t')}"}
            ) as client:
        items = client.get("/api/worklist").json()
        assert items and items[0]["rank"] == 1
        detail = client.get(f"/api/slides/{items[0]['slide_id']}").json()
        assert {"prediction", "uncertainty", "annotation"} <= {
            o["kind"] for o in detail["overlays"]}
        kept = client.post(f"/api/patches/{items[0]['id']}/keep-annotation",
                           json={"base_version": items[0]["version"]})
        assert kept.status_code == 201, kept.text


def test_an_unknown_federation_mode_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="federation mode 'carrier-pigeon'"):
        run_demo(tmp_path, federation="carrier-pigeon")
    assert not (tmp_path / "samples").exists()


def test_an_unknown_aggregation_rule_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="aggregation rule 'krum': one of mean, trimmed-mean"):
        run_demo(tmp_path, aggregation_rule="krum")
    assert not (tmp_path / "samples").exists()
