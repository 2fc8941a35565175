"""MoNuSeg as centres: organs from TCGA codes, expert masks from PNG and contour XML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathloop.client.errors import InputError
from pathloop.client.experiments.monuseg import (
    MONUSEG_MPP,
    by_organ,
    list_images,
    rasterize_contours,
    read_contours,
    read_instances,
    read_nucleus_mask,
)

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def monuseg(shared_data: Path) -> Path:
    return shared_data / "nuclei" / "monuseg"


def test_every_image_has_an_organ_and_an_annotation(monuseg: Path) -> None:
    images = list_images(monuseg)
    assert len(images) == 37
    groups = by_organ(images)
    # MoNuSeg: 6 training images each of breast, kidney, lung, prostate; 2 each of bladder,
    # colon, stomach; one test image per organ except stomach, plus brain.
    assert {o: len(v) for o, v in groups.items()} == {
        "breast": 7, "kidney": 7, "lung": 7, "prostate": 7, "bladder": 3, "colon": 3,
        "stomach": 2, "brain": 1}
    assert all(g[0].split == "train" for o, g in groups.items() if o != "brain")


def test_png_and_xml_masks_mark_nuclei(monuseg: Path) -> None:
    images = {i.stem: i for i in list_images(monuseg)}
    train = read_nucleus_mask(images["TCGA-18-5592-01Z-00-DX1"], (1000, 1000))
    test = read_nucleus_mask(images["TCGA-2Z-A9J9-01A-01-TS1"], (1000, 1000))
    for mask in (train, test):
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        assert 0.05 < mask.mean() < 0.6
    contours = read_contours(images["TCGA-2Z-A9J9-01A-01-TS1"].annotation_path)
    assert 400 < len(contours) < 900  # the README: 441-818 nuclei per test image


def test_a_mask_of_the_wrong_size_is_refused(monuseg: Path) -> None:
    image = next(i for i in list_images(monuseg) if i.split == "train")
    with pytest.raises(InputError, match=r"mask is 1000×1000, the image 900×1000"):
        read_nucleus_mask(image, (1000, 900))


def test_malformed_xml_and_vertices_are_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<Annotations><Region><Vertices><Vertex X='1'")
    with pytest.raises(InputError, match=r"broken\.xml: not a readable ImageScope XML"):
        read_contours(broken)
    bad = tmp_path / "bad.xml"
    bad.write_text("<Annotations><Region><Vertices><Vertex X='1' Y='a'/></Vertices></Region>"
                   "</Annotations>")
    with pytest.raises(InputError, match=r"bad\.xml: region 1 has a vertex without numeric"):
        read_contours(bad)


def test_contours_fill_their_inside() -> None:
    square = np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]])
    mask = rasterize_contours([square], (10, 10))
    assert mask[4, 4] == 1 and mask[0, 0] == 0 and mask[8, 8] == 0


def test_a_folder_that_is_not_monuseg_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a MoNuSeg folder"):
        list_images(tmp_path)
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "slide-01.tif").write_bytes(b"")
    (tmp_path / "test" / "slide-01.xml").write_text("<Annotations/>")
    with pytest.raises(InputError, match=r"slide-01\.tif: not named by a TCGA code"):
        list_images(tmp_path)


def test_instance_contours_where_monuseg_has_them(monuseg: Path) -> None:
    images = list_images(monuseg)
    with_contours = [i for i in images if i.contours_path is not None]
    assert sum(i.split == "train" for i in with_contours) == 13
    assert sum(i.split == "test" for i in with_contours) == 7
    nuclei = read_instances(next(i for i in with_contours if i.split == "train"), (1000, 1000))
    assert nuclei.mpp == MONUSEG_MPP and 200 < len(nuclei) < 900
    assert nuclei.to_labels().max() > 0
    without = next(i for i in images if i.contours_path is None)
    with pytest.raises(InputError, match="MoNuSeg has no nucleus contours for this image"):
        read_instances(without)
