"""Inspection runs on an image set and on a slide's regions, with a numpy fake instance
model: states stored with both label rasters, nothing stored when cancelled, decisions that
add up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from support.folds import ThresholdFolds

from pathloop.client.errors import Cancelled, InputError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.quality import (
    InstanceModel,
    decide,
    image_pairs,
    inspect_image_set,
    inspect_slide_regions,
    item_labels,
    rescore,
)
from pathloop.client.usecases.slides import ingest_slide

MPP = 0.5


def _disk(labels: NDArray[np.int32], label: int, cy: int, cx: int, radius: int) -> None:
    rows, cols = np.ogrid[: labels.shape[0], : labels.shape[1]]
    labels[(rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2] = label


def _nuclei(shape: tuple[int, int], centres: list[tuple[int, int]]) -> NDArray[np.int32]:
    labels = np.zeros(shape, dtype=np.int32)
    for label, (cy, cx) in enumerate(centres, start=1):
        _disk(labels, label, cy, cx, 7)
    return labels


def _pixels(labels: NDArray[np.int32]) -> NDArray[np.uint8]:
    image = np.full((*labels.shape, 3), 235, dtype=np.uint8)
    image[labels > 0] = (60, 30, 90)
    return image


def _model() -> InstanceModel:
    # class 1 (interior) where dark, class 2 (boundary) never: one instance per dark disc
    return InstanceModel(predictor=ThresholdFolds(n_folds=1, n_classes=3, mpp=MPP,
                                                  thresholds=(0.3, 2.0)))


@pytest.fixture
def site(tmp_path: Path) -> SiteSettings:
    return SiteSettings(site_id="s", data_dir=tmp_path / "site", slide_roots=(tmp_path,))


def _image_set(folder: Path) -> None:
    """Two 64² images; image a's annotation forgets one nucleus, b's is exact."""
    folder.mkdir()
    truth_a = _nuclei((64, 64), [(15, 15), (15, 45), (45, 30)])
    truth_b = _nuclei((64, 64), [(20, 20), (44, 44)])
    Image.fromarray(_pixels(truth_a)).save(folder / "a.png")
    Image.fromarray(_pixels(truth_b)).save(folder / "b.png")
    forgotten = truth_a.copy()
    forgotten[forgotten == 3] = 0
    np.save(folder / "a_mask.npy", forgotten)
    np.save(folder / "b_mask.npy", truth_b)


def test_an_image_set_is_inspected_and_stored(site: SiteSettings, tmp_path: Path) -> None:
    _image_set(tmp_path / "set")
    stages: list[tuple[str, int, int]] = []
    with Store.open(site) as store:
        run = inspect_image_set(site, store, tmp_path / "set", mpp=MPP, model=_model(),
                                author="dr", progress=lambda *s: stages.append(s))
        items = rescore(store, run.id)
        assert [s.item.name for s in items] == ["a.png", "b.png"]
        worst = items[0]
        assert [(i.finding.state, i.suspect) for i in worst.instances] == [
            ("odd", False), ("odd", False), ("missing", True)]
        assert worst.overall > items[1].overall
        assert items[1].n_suspect == 0
        annotation, prediction = item_labels(store, worst.item)
        assert len(np.unique(prediction)) == 4 and len(np.unique(annotation)) == 3
        assert run.params["model"] == "given" and run.source == "image-set"
        assert [s.mpp_source for s in store.list_slides()] == ["user", "user"]
    assert ("predicting", 2, 2) in stages


def test_a_cancelled_run_stores_no_inspection(site: SiteSettings, tmp_path: Path) -> None:
    _image_set(tmp_path / "set")
    calls = iter(range(100))
    with Store.open(site) as store:
        with pytest.raises(Cancelled):
            inspect_image_set(site, store, tmp_path / "set", mpp=MPP, model=_model(),
                              should_stop=lambda: next(calls) >= 3)
        assert store.list_inspections() == []
        assert all(store.rasters.list_rasters(s.id) == [] for s in store.list_slides())


def test_images_pair_with_one_annotation_each(tmp_path: Path) -> None:
    _image_set(tmp_path / "set")
    assert [(i.name, a.name) for i, a in image_pairs(tmp_path / "set")] == [
        ("a.png", "a_mask.npy"), ("b.png", "b_mask.npy")]
    (tmp_path / "set" / "b_mask.npy").unlink()
    with pytest.raises(InputError, match=r"b\.png: expected one annotation file"):
        image_pairs(tmp_path / "set")


def _geojson(path: Path, features: list[tuple[str | None, list[list[float]]]]) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
         "properties": {"classification": {"name": name}} if name else {}}
        for name, ring in features]}))


def _square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def test_a_slides_regions_are_the_items(site: SiteSettings, tmp_path: Path) -> None:
    truth = _nuclei((96, 160), [(20, 20), (20, 50), (70, 120), (75, 145)])
    Image.fromarray(_pixels(truth)).save(tmp_path / "slide.png")
    # two regions; the first annotates its two nuclei, the second only one of its two
    _geojson(tmp_path / "regions.geojson", [
        ("Region", _square(0, 0, 64)), ("ROI", _square(96, 32, 64)),
        ("Nucleus", _square(13, 13, 14)), ("Nucleus", _square(43, 13, 14)),
        ("Nucleus", _square(113, 63, 14))])
    with Store.open(site) as store:
        slide = ingest_slide(site, store, tmp_path / "slide.png", mpp=MPP).slide
        run = inspect_slide_regions(site, store, slide, tmp_path / "regions.geojson",
                                    model=_model(), author="dr")
        items = rescore(store, run.id)
        assert [(s.item.x, s.item.y, s.item.width, s.item.height) for s in items] == [
            (96, 32, 64, 64), (0, 0, 64, 64)]
        assert [i.finding.state for i in items[0].instances] == ["odd", "missing"]
        assert [i.finding.state for i in items[1].instances] == ["odd", "odd"]
        assert run.source == "slide-regions" and run.params["slide_id"] == slide.id
        _geojson(tmp_path / "nuclei.geojson", [("Nucleus", _square(13, 13, 14))])
        with pytest.raises(InputError, match=r"no region outline.*Nucleus"):
            inspect_slide_regions(site, store, slide, tmp_path / "nuclei.geojson",
                                  model=_model())


def test_instance_decisions_add_up_and_keep_restores(site: SiteSettings,
                                                     tmp_path: Path) -> None:
    _image_set(tmp_path / "set")
    with Store.open(site) as store:
        run = inspect_image_set(site, store, tmp_path / "set", mpp=MPP, model=_model())
        item = rescore(store, run.id)[0]
        annotation, prediction = item_labels(store, item.item)
        missing = item.instances[2].finding
        first = decide(store, run.id, item.item.id, decision="accept-prediction",
                       instance=missing.number, base_version=0, author="dr")
        mask = store.rasters.open_raster(first.raster_id or 0).read()
        added = prediction == missing.prediction_id
        assert (mask[added] > annotation.max()).all()
        np.testing.assert_array_equal(mask[~added], annotation[~added])
        second = decide(store, run.id, item.item.id, decision="keep-annotation",
                        instance=missing.number, base_version=1, author="dr")
        np.testing.assert_array_equal(
            store.rasters.open_raster(second.raster_id or 0).read(), annotation)
        with pytest.raises(InputError, match="no instance 9"):
            decide(store, run.id, item.item.id, decision="re-annotate", instance=9,
                   base_version=2, author="dr")
        whole = decide(store, run.id, item.item.id, decision="accept-prediction",
                       instance=None, base_version=2, author="dr")
        np.testing.assert_array_equal(store.rasters.open_raster(whole.raster_id or 0).read(),
                                      prediction)
        assert rescore(store, run.id)[0].decision == "accept-prediction"
