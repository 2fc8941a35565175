"""`pathloop export worklist|corrections|findings`: GeoJSON in slide pixels that reads back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
from support.inspections import fill_inspection
from typer.testing import CliRunner

from pathloop.client.annotations import read_annotations
from pathloop.client.cli.app import app
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.inspection_review import decide, item_labels, rescore

runner = CliRunner()


@pytest.fixture()
def site(tmp_path: Path) -> tuple[Path, SiteSettings, int]:
    """A site with the two-image inspection, a worklist on the first image and an accepted
    prediction (a correction with a mask) on the most suspect one."""
    settings = SiteSettings(site_id="export-site", data_dir=tmp_path / "site",
                            slide_roots=(tmp_path / "images",))
    (tmp_path / "images").mkdir()
    with Store.open(settings) as store:
        inspection = fill_inspection(settings, store, tmp_path / "images")
        top = rescore(store, inspection.id)[0]
        decide(store, inspection.id, top.item.id, decision="accept-prediction", instance=None,
               base_version=None, author="dr-a")
        store.add_ranking(top.item.slide_id, strategy="uncertainty", patches=[
            {"x": 10, "y": 20, "width": 32, "height": 32, "mpp": 0.5, "score_sum": 9.0,
             "score_mean": 0.9},
            {"x": 64, "y": 40, "width": 32, "height": 32, "mpp": 0.5, "score_sum": 3.0,
             "score_mean": 0.3}])
    config = tmp_path / "site.toml"
    config.write_text(f'site-id = "export-site"\ndata-dir = "{tmp_path / "site"}"\n'
                      f'slide-roots = ["{tmp_path / "images"}"]\n')
    return config, settings, inspection.id


def _props(feature: dict) -> dict:
    """A QuPath feature's measurements and metadata in one mapping."""
    properties = feature["properties"]
    return {**properties.get("measurements", {}), **properties.get("metadata", {})}


def _run(config: Path, *args: str) -> str:
    result = runner.invoke(app, ["--config", str(config), "export", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_findings_hold_every_instance_with_its_state_and_score(
        site: tuple[Path, SiteSettings, int], tmp_path: Path) -> None:
    config, settings, inspection_id = site
    out = tmp_path / "findings.geojson"
    _run(config, "findings", str(inspection_id), "--out", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    features = json.loads(out.read_text())["features"]
    with Store.open(settings) as store:
        scored = rescore(store, inspection_id)
        expected = sorted((s.item.name, i.finding.number, i.finding.state, round(i.score, 4))
                          for s in scored for i in s.instances)
        suspect = sum(i.score >= 0.5 for s in scored for i in s.instances)
    got = sorted((_props(f)["item"], int(_props(f)["number"]), _props(f)["state"],
                  _props(f)["score"]) for f in features)
    assert got == expected
    classes = [f["properties"]["classification"]["name"] for f in features]
    assert classes.count("Suspect") == suspect > 0 and "Consistent" in classes
    # The outlines read back as the stored instances: QuPath's file is one pathloop reads.
    instances = read_annotations(out).instances
    assert len(instances) == len(features)


def test_findings_at_another_alpha_change_the_scores(site: tuple[Path, SiteSettings, int],
                                                     tmp_path: Path) -> None:
    config, _, inspection_id = site
    naive, weighted = tmp_path / "a0.geojson", tmp_path / "a1.geojson"
    _run(config, "findings", str(inspection_id), "--out", str(naive))
    _run(config, "findings", str(inspection_id), "--out", str(weighted), "--alpha", "1")
    scores = [[_props(f)["score"] for f in json.loads(p.read_text())["features"]]
              for p in (naive, weighted)]
    assert scores[0] != scores[1]


def test_worklist_boxes_keep_their_rank_and_place(site: tuple[Path, SiteSettings, int],
                                                  tmp_path: Path) -> None:
    config, settings, _ = site
    out = tmp_path / "worklist.geojson"
    with Store.open(settings) as store:
        slide_id = rescore(store, 1)[0].item.slide_id
    _run(config, "worklist", str(slide_id), "--out", str(out))
    features = json.loads(out.read_text())["features"]
    assert [_props(f)["rank"] for f in features] == [1, 2]
    assert [_props(f)["score"] for f in features] == [0.9, 0.3]
    assert {_props(f)["status"] for f in features} == {"pending"}
    xs, ys = zip(*features[0]["geometry"]["coordinates"][0], strict=True)
    assert (min(xs), min(ys), max(xs), max(ys)) == (10, 20, 42, 52)


def test_corrections_cover_the_accepted_prediction(site: tuple[Path, SiteSettings, int],
                                                   tmp_path: Path) -> None:
    config, settings, inspection_id = site
    out = tmp_path / "corrections.geojson"
    with Store.open(settings) as store:
        top = rescore(store, inspection_id)[0]
        _, prediction = item_labels(store, top.item)
        slide_id = top.item.slide_id
    _run(config, "corrections", str(slide_id), "--out", str(out))
    regions = read_annotations(out, image_size=(prediction.shape[1], prediction.shape[0]))
    drawn = regions.to_labels((prediction.shape[0], prediction.shape[1])) > 0
    assert np.array_equal(drawn, prediction > 0)
    assert {_props(f)["author"] for f in json.loads(out.read_text())["features"]} == {"dr-a"}


def test_an_existing_file_is_never_overwritten(site: tuple[Path, SiteSettings, int],
                                               tmp_path: Path) -> None:
    config, _, inspection_id = site
    out = tmp_path / "kept.geojson"
    out.write_text("mine")
    result = runner.invoke(app, ["--config", str(config), "export", "findings",
                                 str(inspection_id), "--out", str(out)])
    assert result.exit_code != 0 and "exists" in str(result.exception)
    assert out.read_text() == "mine"


def test_a_slide_without_a_worklist_is_named(site: tuple[Path, SiteSettings, int],
                                             tmp_path: Path) -> None:
    config, settings, inspection_id = site
    with Store.open(settings) as store:
        other = rescore(store, inspection_id)[1].item.slide_id
    result = runner.invoke(app, ["--config", str(config), "export", "worklist", str(other),
                                 "--out", str(tmp_path / "w.geojson")])
    assert result.exit_code != 0 and "no worklist" in str(result.exception)
    assert not (tmp_path / "w.geojson").exists()


def test_ids_beyond_the_store_are_refused_by_name(site: tuple[Path, SiteSettings, int],
                                                  tmp_path: Path) -> None:
    config, _, _ = site
    huge = str(2**64)
    worklist = runner.invoke(app, ["--config", str(config), "export", "worklist", huge,
                                   "--out", str(tmp_path / "w.geojson")])
    assert worklist.exit_code != 0 and "no such slide" in str(worklist.exception)
    findings = runner.invoke(app, ["--config", str(config), "export", "findings", huge,
                                   "--out", str(tmp_path / "f.geojson")])
    assert findings.exit_code == 2 and "Invalid value" in findings.output
    assert not list(tmp_path.glob("*.geojson"))
