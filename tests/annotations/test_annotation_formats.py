"""Every format round-trips: read → write → read gives the same instances and label array."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from pathloop.client.annotations import (
    FORMATS,
    Instance,
    InstanceSet,
    read_annotations,
    sniff_format,
    write_annotations,
)
from pathloop.client.errors import InputError

VECTOR = {"imagescope-xml": "cells.xml", "asap-xml": "cells.asap.xml",
          "geojson": "cells.geojson", "dsa-json": "cells.json"}
RASTER = {"cpm15-mask": "cells_mask.txt", "label-image": "cells.png"}


def _cells() -> InstanceSet:
    """Hole-free, 4-connected instances with sparse ids and two classifications."""
    labels = np.zeros((40, 50), np.int32)
    labels[2:9, 3:12] = 4
    labels[12:20, 5:9] = 9
    labels[14:16, 9:13] = 9                    # an L
    labels[25:37, 30:46] = 17
    labels[30:33, 46:50] = 17                  # touching the right edge
    labels[0:5, 40:48] = 300                   # touching the top edge
    found = InstanceSet.from_labels(labels, mpp=0.25)
    classes = {4: "tumor", 9: "tumor", 17: "stroma", 300: "stroma"}
    return InstanceSet(tuple(Instance(i.id, i.polygon, classes[i.id]) for i in found.instances),
                       found.image_size, found.mpp)


@pytest.mark.parametrize("format", sorted({**VECTOR, **RASTER}))
def test_each_format_round_trips(tmp_path: Path, format: str) -> None:
    cells = _cells()
    path = write_annotations(cells, tmp_path / {**VECTOR, **RASTER}[format], format=format)
    assert sniff_format(path) == format
    first = read_annotations(path, image_size=cells.image_size)
    again = read_annotations(write_annotations(first, tmp_path / f"again-{path.name}",
                                               format=format), image_size=cells.image_size)
    for read in (first, again):
        assert [i.id for i in read.instances] == [4, 9, 17, 300]
        np.testing.assert_array_equal(read.to_labels(), cells.to_labels())
    if format in VECTOR:
        assert [i.classification for i in again.instances] == ["tumor", "tumor", "stroma",
                                                               "stroma"]


@pytest.mark.parametrize("name", ["cells.png", "cells.tif", "cells.npy", "cells.npz"])
def test_every_label_image_kind_round_trips(tmp_path: Path, name: str) -> None:
    cells = _cells()
    read = read_annotations(write_annotations(cells, tmp_path / name, format="label-image"))
    assert read.image_size == (50, 40)
    np.testing.assert_array_equal(read.to_labels(), cells.to_labels())


@pytest.mark.parametrize("format", ["geojson", "dsa-json"])
def test_holes_survive_the_formats_that_have_them(tmp_path: Path, format: str) -> None:
    labels = np.zeros((9, 9), np.int32)
    labels[1:8, 1:8] = 2
    labels[3:5, 3:6] = 0
    ring = InstanceSet.from_labels(labels)
    read = read_annotations(write_annotations(ring, tmp_path / f"ring.{format}",
                                              format=format), format=format)
    np.testing.assert_array_equal(read.to_labels((9, 9)), labels)


def test_imagescope_vertices_are_pixel_centres_with_the_resolution(tmp_path: Path) -> None:
    xml = tmp_path / "one.xml"
    xml.write_text('<Annotations MicronsPerPixel="0.2527"><Annotation Name=""><Regions>'
                   '<Region Id="5"><Vertices><Vertex X="1" Y="1"/><Vertex X="3" Y="1"/>'
                   '<Vertex X="3" Y="3"/><Vertex X="1" Y="3"/></Vertices></Region>'
                   '</Regions></Annotation></Annotations>')
    read = read_annotations(xml)
    assert read.mpp == 0.2527 and read.instances[0].id == 5
    assert read.instances[0].classification is None
    assert read.instances[0].polygon.bounds == (1.5, 1.5, 3.5, 3.5)
    # Pixels (1..3, 1..3) have their centres on or inside the outline, as MoNuSeg drew them.
    assert read.to_labels((5, 5))[1:4, 1:4].all() and read.to_labels((5, 5)).sum() == 9 * 5


def test_qupath_geojson_in_its_three_shapes(tmp_path: Path) -> None:
    square = [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]]
    def feature(coords: object, kind: str = "Polygon") -> dict[str, object]:
        return {"type": "Feature", "geometry": {"type": kind, "coordinates": coords},
                "properties": {"objectType": "annotation",
                               "classification": {"name": "Tumor", "color": [200, 0, 0]},
                               "measurements": {"score": 0.5}}}
    shapes = {
        "collection.geojson": {"type": "FeatureCollection", "features": [feature(square)]},
        "list.geojson": [feature(square), {"type": "Feature", "properties": {},
                                           "geometry": {"type": "Point",
                                                        "coordinates": [1, 1]}}],
        "single.json": feature([square, [[[10, 10], [12, 10], [12, 12], [10, 10]]]],
                               "MultiPolygon"),
    }
    counts = {}
    for name, document in shapes.items():
        (tmp_path / name).write_text(json.dumps(document))
        assert sniff_format(tmp_path / name) == "geojson"
        read = read_annotations(tmp_path / name)
        assert read.instances[0].classification == "Tumor"
        assert read.instances[0].properties["score"] == 0.5
        counts[name] = len(read)
    assert counts == {"collection.geojson": 1, "list.geojson": 1, "single.json": 2}


def test_written_geojson_is_what_qupath_imports(tmp_path: Path) -> None:
    path = write_annotations(_cells(), tmp_path / "cells.geojson", format="geojson")
    document = json.loads(path.read_text())
    assert document["type"] == "FeatureCollection"
    first = document["features"][0]
    assert first["type"] == "Feature" and first["geometry"]["type"] == "Polygon"
    assert first["properties"]["objectType"] == "annotation"
    assert first["properties"]["classification"]["name"] == "tumor"
    color = first["properties"]["classification"]["color"]
    assert len(color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in color)


def test_writes_are_owner_only_and_replace_whole(tmp_path: Path) -> None:
    target = tmp_path / "cells.geojson"
    target.write_text("the earlier file")
    write_annotations(_cells(), target, format="geojson")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(read_annotations(target)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.geojson"]


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cells.png"
    write_annotations(_cells(), target, format="label-image")
    before = target.read_bytes()
    square = InstanceSet.from_labels(np.full((2, 2), 70_000, np.int32))
    with pytest.raises(InputError, match="does not fit a 16-bit PNG"):
        write_annotations(square, target, format="label-image")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.png"]


def test_unknown_formats_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"format 'qupath': one of imagescope-xml"):
        write_annotations(_cells(), tmp_path / "x.json", format="qupath")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: not an annotation file"):
        read_annotations(other)
    assert len(FORMATS) == 6
