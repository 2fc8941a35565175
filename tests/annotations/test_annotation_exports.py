"""GeoJSON for QuPath: corrections (a class mask and its box), inspection findings, worklists."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from pathloop.client.annotations import (
    InstanceSet,
    boxes_to_geojson,
    findings_to_geojson,
    mask_to_geojson,
    read_annotations,
    write_feature_collection,
)
from pathloop.client.errors import InputError


def _qupath_features(collection: dict[str, object]) -> list[dict[str, object]]:
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert isinstance(features, list)
    for feature in features:
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
        assert feature["properties"]["objectType"] == "annotation"
        assert len(feature["properties"]["classification"]["color"]) == 3
    return features


def test_a_correction_mask_lands_on_its_box_at_level_0(tmp_path: Path) -> None:
    mask = np.zeros((8, 10), np.uint8)
    mask[1:4, 1:5] = 1
    mask[5:8, 6:10] = 1
    mask[5:7, 0:3] = 2
    collection = mask_to_geojson(mask, origin=(1000, 2000), scale=2.0,
                                 class_names=("background", "tumor", "stroma"))
    features = _qupath_features(collection)
    assert sorted(f["properties"]["classification"]["name"] for f in features) == [
        "stroma", "tumor", "tumor"]
    path = write_feature_collection(collection, tmp_path / "correction.geojson")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    read = read_annotations(path)
    # At level 0 each mask pixel is 2×2 px from (1000, 2000): the classes land there.
    drawn = read.to_labels((16, 20), origin=(1000, 2000))
    classes = {i.id: i.classification for i in read.instances}
    as_names = np.vectorize(lambda v: classes.get(v, "background"))(drawn)
    expected = np.array(["background", "tumor", "stroma"])[mask.repeat(2, 0).repeat(2, 1)]
    np.testing.assert_array_equal(as_names, expected)


def test_findings_are_suspect_or_consistent_with_their_properties(tmp_path: Path) -> None:
    labels = np.zeros((20, 20), np.int32)
    labels[1:5, 1:5] = 3
    labels[8:12, 8:12] = 5
    labels[15:18, 2:6] = 8
    cells = InstanceSet.from_labels(labels)
    findings = {3: {"number": 1, "state": "odd", "score": 0.8},
                5: {"number": 2, "state": "additional", "score": 0.49}}
    features = _qupath_features(findings_to_geojson(cells.instances, findings))
    assert [f["properties"]["classification"]["name"] for f in features] == [
        "Suspect", "Consistent"]
    assert features[0]["properties"]["measurements"] == {"number": 1.0, "score": 0.8}
    assert features[0]["properties"]["metadata"] == {"state": "odd"}
    read = read_annotations(write_feature_collection(
        findings_to_geojson(cells.instances, findings, suspect_at=0.4),
        tmp_path / "findings.geojson"))
    assert [(i.id, i.classification, i.properties["state"]) for i in read.instances] == [
        (3, "Suspect", "odd"), (5, "Suspect", "additional")]
    with pytest.raises(InputError, match="instance 3 has no score"):
        findings_to_geojson(cells.instances, {3: {"state": "odd"}})


def test_worklist_boxes_are_ranked_rectangles() -> None:
    boxes = [(100, 200, 512, 512), (0, 0, 256, 128)]
    features = _qupath_features(boxes_to_geojson(boxes, scores=[9.5, 3.0]))
    assert [f["properties"]["measurements"] for f in features] == [
        {"rank": 1.0, "score": 9.5}, {"rank": 2.0, "score": 3.0}]
    assert features[1]["geometry"]["coordinates"][0][:4] == [[256.0, 0.0], [256.0, 128.0],
                                                             [0.0, 128.0], [0.0, 0.0]]
    assert json.dumps(features)  # plain JSON, nothing QuPath could not read
    with pytest.raises(InputError, match="2 boxes but 1 scores"):
        boxes_to_geojson(boxes, scores=[1.0])
