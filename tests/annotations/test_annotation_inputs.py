"""Bad annotation files: each gets an InputError naming the file and what was wrong, or a
repair with a warning naming the file and the instance."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pathloop.client.annotations import _shapes, formats, instances, read_annotations
from pathloop.client.errors import InputError

SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]


def _geojson(path: Path, *features: object) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path


def _polygon(ring: list[list[object]]) -> dict[str, object]:
    return {"type": "Feature", "properties": {"objectType": "annotation"},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.mark.parametrize(("name", "text", "format", "message"), [
    ("cut.xml", "<Annotations><Annotation><Regions><Region", "imagescope-xml",
     r"cut\.xml: not a readable ImageScope XML file \(malformed XML"),
    ("cut.asap.xml", "<ASAP_Annotations><Annotations>", "asap-xml",
     r"cut\.asap\.xml: not a readable ASAP XML file"),
    ("other.xml", "<Slide/>", "asap-xml", r"other\.xml: not ASAP XML \(root <Slide>"),
    ("cut.geojson", '{"type": "FeatureCollection", "features": [', "geojson",
     r"cut\.geojson: malformed JSON"),
    ("bare.geojson", '{"type": "FeatureCollection", "features": [{"type": "Feature"}]}',
     "geojson", r"bare\.geojson: feature 1 is not a Feature with a geometry"),
    ("nolist.json", '[{"annotation": {"name": "x"}}]', "dsa-json",
     r"nolist\.json: annotation document 1 has no 'elements' list"),
    ("notype.json", '{"elements": [{"points": []}]}', "dsa-json",
     r"notype\.json: element 1 has no 'type'"),
    ("rect.json", '{"elements": [{"type": "rectangle", "center": [1, 2]}]}', "dsa-json",
     r"rect\.json: element 1 \(rectangle\) needs a numeric center, width and height"),
    ("head_mask.txt", "3 x\n0\n", "cpm15-mask", r"head_mask\.txt: the first line must be"),
    ("short_mask.txt", "2 2\n0\n1\n1\n", "cpm15-mask",
     r"short_mask\.txt: 3 labels, but the header says 2×2 = 4"),
    ("word_mask.txt", "1 2\n0\nx\n", "cpm15-mask", r"word_mask\.txt: a label is not an integer"),
])
def test_malformed_files_are_named(tmp_path: Path, name: str, text: str, format: str,
                                   message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        read_annotations(tmp_path / name, format=format)


@pytest.mark.parametrize("declaration", [
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>',
    '<!doctype Annotations SYSTEM "file:///etc/passwd">',
])
def test_xml_with_a_document_type_is_refused_before_parsing(tmp_path: Path,
                                                            declaration: str) -> None:
    path = tmp_path / "laughs.xml"
    path.write_text(f'<?xml version="1.0"?>{declaration}<Annotations><Annotation>'
                    '<Regions><Region><Vertices><Vertex X="&lol2;" Y="1"/></Vertices>'
                    '</Region></Regions></Annotation></Annotations>')
    with pytest.raises(InputError, match=r"laughs\.xml: XML with a DOCTYPE or ENTITY"):
        read_annotations(path)


def test_non_numeric_and_non_finite_coordinates_are_named(tmp_path: Path) -> None:
    path = _geojson(tmp_path / "words.geojson", _polygon(SQUARE),
                    _polygon([[0, 0], ["ten", 0], [10, 10], [0, 0]]))
    with pytest.raises(InputError, match=r"words\.geojson: feature 2 has a vertex without "
                                         r"numeric x and y"):
        read_annotations(path)
    path = tmp_path / "inf.xml"
    path.write_text('<ASAP_Annotations><Annotations><Annotation Name="a" Type="Polygon">'
                    '<Coordinates><Coordinate Order="0" X="inf" Y="0"/><Coordinate Order="1"'
                    ' X="1" Y="0"/><Coordinate Order="2" X="1" Y="1"/></Coordinates>'
                    '</Annotation></Annotations></ASAP_Annotations>')
    with pytest.raises(InputError, match=r"inf\.xml: annotation a has a vertex that is not a "
                                         r"finite number"):
        read_annotations(path)


def test_a_self_intersecting_polygon_is_repaired_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bow_tie = [[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]
    path = _geojson(tmp_path / "bow.geojson", _polygon(SQUARE), _polygon(bow_tie))
    with caplog.at_level(logging.WARNING):
        read = read_annotations(path)
    assert len(read) == 2 and all(i.polygon.is_valid for i in read.instances)
    assert read.instances[1].polygon.area == pytest.approx(25)   # one of the two triangles
    assert "bow.geojson: 1 outline(s) repaired as self-intersecting" in caplog.text
    assert "feature 2 (Self-intersection" in caplog.text


def test_outlines_outside_the_image_are_clipped_or_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    partly = _geojson(tmp_path / "edge.geojson",
                      _polygon([[90, 90], [120, 90], [120, 120], [90, 120], [90, 90]]))
    with caplog.at_level(logging.WARNING):
        read = read_annotations(partly, image_size=(100, 100))
    assert read.instances[0].polygon.bounds == (90, 90, 100, 100)
    assert "edge.geojson: 1 outline(s) clipped to the image: feature 1" in caplog.text
    assert read_annotations(partly).instances[0].polygon.bounds == (90, 90, 120, 120)
    beyond = _geojson(tmp_path / "far.geojson", _polygon(SQUARE),
                      _polygon([[200, 0], [210, 0], [210, 10], [200, 0]]))
    with pytest.raises(InputError, match=r"far\.geojson: feature 2 lies outside the 100×100 px "
                                         r"image \(x 200…210, y 0…10\)"):
        read_annotations(beyond, image_size=(100, 100))


def test_a_mask_of_another_size_than_its_image_is_refused(tmp_path: Path) -> None:
    png = tmp_path / "labels.png"
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(png)
    with pytest.raises(InputError, match=r"labels\.png: labels are 40×30 px, the image 40×31"):
        read_annotations(png, image_size=(40, 31))
    mask = tmp_path / "image01_mask.txt"
    mask.write_text("2 1\n0\n1\n")
    with pytest.raises(InputError, match=r"image01_mask\.txt: labels are 2×1 px, the image 1×2"):
        read_annotations(mask, image_size=(1, 2))


def test_label_images_must_be_single_channel_integers(tmp_path: Path) -> None:
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    with pytest.raises(InputError, match=r"rgb\.png: a label image must be single-channel, "
                                         r"got mode RGB"):
        read_annotations(rgb)
    floats = tmp_path / "floats.npy"
    np.save(floats, np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match=r"floats\.npy: a label array must be 2-D integers"):
        read_annotations(floats)
    several = tmp_path / "several.npz"
    np.savez(several, a=np.zeros((2, 2), np.int32), b=np.zeros((2, 2), np.int32))
    with pytest.raises(InputError, match=r"several\.npz: holds 2 arrays \(a, b\) and none "
                                         r"named 'labels'"):
        read_annotations(several)


def test_a_binary_mask_becomes_its_connected_components(tmp_path: Path) -> None:
    mask = np.zeros((6, 6), np.uint8)
    mask[0:2, 0:2] = 255
    mask[4:6, 3:6] = 255
    Image.fromarray(mask).save(tmp_path / "binary.png")
    read = read_annotations(tmp_path / "binary.png")
    assert len(read) == 2 and sorted(i.polygon.area for i in read.instances) == [4, 6]


def test_absurd_sizes_are_refused_before_decoding(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = _geojson(tmp_path / "big.geojson", _polygon(SQUARE), _polygon(SQUARE))
    monkeypatch.setattr(formats, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError, match=r"big\.geojson: \d+ bytes, more than the 100 byte"):
        read_annotations(path)
    monkeypatch.undo()
    monkeypatch.setattr(_shapes, "MAX_VERTICES", 4)
    with pytest.raises(InputError, match=r"feature 1 has 5 vertices, more than the 4 limit"):
        read_annotations(path)
    monkeypatch.undo()
    monkeypatch.setattr(_shapes, "MAX_INSTANCES", 1)
    with pytest.raises(InputError, match=r"big\.geojson: 2 instances, more than the 1 limit"):
        read_annotations(path)
    monkeypatch.undo()
    # A 20000×20000 label array declared by a header is refused before its pixels are read.
    huge = tmp_path / "huge_mask.txt"
    huge.write_text("20000 20000\n0\n")
    with pytest.raises(InputError, match=r"huge_mask\.txt: a 20000×20000 px label array is "
                                         r"beyond the"):
        read_annotations(huge)


def test_a_compressed_array_that_unpacks_too_big_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instances, "MAX_LABEL_PIXELS", 1000)
    from pathloop.client.annotations import rasters

    monkeypatch.setattr(rasters, "MAX_LABEL_PIXELS", 1000)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((100, 100), np.int64))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels.npy", buffer.getvalue())
    assert bomb.stat().st_size < 2000
    with pytest.raises(InputError, match=r"bomb\.npz: array 'labels' unpacks to 80128 bytes"):
        read_annotations(bomb)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone\.geojson: not readable"):
        read_annotations(tmp_path / "gone.geojson", format="geojson")
