"""The real annotation files in ../shared/data read, count what their READMEs say, and
round-trip; a QuPath-style GeoJSON made from the region annotations reads the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Polygon

from pathloop.client.annotations import (
    Instance,
    InstanceSet,
    read_annotations,
    sniff_format,
    write_annotations,
)


@pytest.fixture(scope="module")
def nuclei(shared_data: Path) -> Path:
    return shared_data / "nuclei"


@pytest.fixture(scope="module")
def regions(shared_data: Path) -> Path:
    return shared_data / "regions"


def test_monuseg_contours_hold_the_published_nucleus_counts(nuclei: Path) -> None:
    test = {p.stem: len(read_annotations(p, image_size=(1000, 1000)))
            for p in sorted((nuclei / "monuseg" / "test").glob("*.xml"))}
    assert len(test) == 7 and min(test.values()) == 441 and max(test.values()) == 818
    train = sorted((nuclei / "monuseg" / "train" / "annotations").glob("*.xml"))
    assert len(train) == 13
    first = read_annotations(train[0])
    assert sniff_format(train[0]) == "imagescope-xml"
    assert len(first) == 398 and first.mpp == pytest.approx(0.2527)


def test_cpm15_masks_hold_2905_nuclei(nuclei: Path) -> None:
    masks = sorted((nuclei / "cpm15").glob("image*_mask.txt"))
    assert len(masks) == 15
    read = [read_annotations(m) for m in masks]
    assert sum(len(r) for r in read) == 2905
    assert read[0].image_size == (643, 488)


def test_asap_groups_become_classifications(regions: Path) -> None:
    tumor = read_annotations(regions / "annotations" / "tumor_076.xml")
    assert len(tumor) == 39 and {i.classification for i in tumor.instances} == {"metastasis"}
    assert len(read_annotations(regions / "annotations" / "tumor_085.xml")) == 50
    folder = regions / "benchmark_deep_tissue_detector_annotations"
    counts = {p.name: len(read_annotations(p)) for p in sorted(folder.glob("*.xml"))}
    assert sorted(counts.values()) == [5, 6, 9]
    mixed = read_annotations(folder / "tumor_021.xml")
    assert {i.classification for i in mixed.instances} == {"tissue", "negative"}


def test_dsa_elements_with_their_groups(regions: Path) -> None:
    path = next(regions.glob("TCGA-*.json"))
    assert sniff_format(path) == "dsa-json"
    read = read_annotations(path)
    assert len(read) == 98
    assert {i.classification for i in read.instances} == {
        "mostly_tumor", "mostly_stroma", "mostly_lymphocytic_infiltrate", "roi"}


def test_a_qupath_export_of_the_regions_reads_the_same(regions: Path, tmp_path: Path) -> None:
    # As QuPath exports (File › Export objects as GeoJSON): a FeatureCollection, one feature per
    # class holding a MultiPolygon of that class's areas, ids as UUID strings.
    asap = read_annotations(regions / "annotations" / "tumor_085.xml")
    coordinates = [[[list(map(float, xy)) for xy in i.polygon.exterior.coords]]
                   for i in asap.instances]
    qupath = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": "c3a0f4b2-3f2e-4c59-9d8e-1f0a8b6d7e21",
        "geometry": {"type": "MultiPolygon", "coordinates": coordinates},
        "properties": {"objectType": "annotation", "isLocked": False,
                       "classification": {"name": "metastasis", "color": [0, 170, 0]}}}]}
    path = tmp_path / "tumor_085.geojson"
    path.write_text(json.dumps(qupath))
    read = read_annotations(path)
    assert len(read) == len(asap) == 50
    assert {i.classification for i in read.instances} == {"metastasis"}
    assert sum(i.polygon.area for i in read.instances) == pytest.approx(
        sum(i.polygon.area for i in asap.instances))


@pytest.mark.parametrize("format", ["imagescope-xml", "geojson", "dsa-json", "asap-xml"])
def test_a_monuseg_image_round_trips_through_every_vector_format(
        nuclei: Path, tmp_path: Path, format: str) -> None:
    source = nuclei / "monuseg" / "test" / "TCGA-A6-6782-01A-01-BS1.xml"
    original = read_annotations(source, image_size=(1000, 1000))
    written = write_annotations(original, tmp_path / f"copy.{format}", format=format)
    again = read_annotations(written, format=format, image_size=(1000, 1000))
    assert len(again) == len(original) == 441
    if format in ("imagescope-xml", "asap-xml"):
        # These formats have no holes: the few that repairing self-touching contours made
        # (here 5 of 441 nuclei, 11 px) are filled when written.
        assert sum(len(i.polygon.interiors) > 0 for i in original.instances) == 5
        original = InstanceSet(tuple(Instance(i.id, Polygon(i.polygon.exterior))
                                     for i in original.instances), original.image_size)
    np.testing.assert_array_equal(again.to_labels(), original.to_labels())
