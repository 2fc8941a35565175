"""Instances and label arrays: the pixel-exact round trip, pieces, holes, origin and crops."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from shapely.geometry import Polygon
from skimage.measure import label

from pathloop.client.annotations import Instance, InstanceSet, rasterize
from pathloop.client.errors import InputError


@settings(max_examples=200, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 14), st.integers(1, 14)),
              elements=st.integers(0, 3)),
       st.integers(1, 1000))
def test_simple_instances_round_trip_pixel_exactly(values: np.ndarray, stride: int) -> None:
    # One 4-connected piece per id (holes allowed); ids neither consecutive nor small.
    labels = (label(values, background=0, connectivity=1) * stride).astype(np.int32)
    instances = InstanceSet.from_labels(labels)
    assert len(instances) == len(np.unique(labels[labels > 0]))
    assert instances.image_size == (labels.shape[1], labels.shape[0])
    back = instances.to_labels()
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, labels)


def test_outlines_follow_pixel_edges_and_areas_count_pixels() -> None:
    labels = np.zeros((6, 8), np.int32)
    labels[1:4, 2:5] = 7          # a 3×3 square
    labels[4, 2] = 7              # and a foot below it: an L
    (instance,) = InstanceSet.from_labels(labels).instances
    assert instance.id == 7 and instance.polygon.area == 10
    assert instance.polygon.bounds == (2, 1, 5, 5)
    assert len(instance.polygon.exterior.coords) == 7   # six corners, no collinear vertex


def test_a_hole_is_an_interior_and_stays_background() -> None:
    labels = np.zeros((7, 7), np.int32)
    labels[1:6, 1:6] = 3
    labels[3, 3] = 0
    (instance,) = InstanceSet.from_labels(labels).instances
    assert len(instance.polygon.interiors) == 1 and instance.polygon.area == 24
    np.testing.assert_array_equal(InstanceSet.from_labels(labels).to_labels(), labels)


def test_an_instance_in_pieces_keeps_its_largest_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    labels = np.zeros((6, 6), np.int32)
    labels[0:3, 0:3] = 4
    labels[3, 3] = 4              # touches the square only at a corner
    labels[5, 5] = 4
    with caplog.at_level(logging.WARNING):
        instances = InstanceSet.from_labels(labels, source="case.png")
    assert instances.instances[0].polygon.area == 9
    assert "case.png: 1 instance(s) in several pieces" in caplog.text and "4 (2 px)" in caplog.text


def test_origin_shifts_the_outlines_and_back() -> None:
    labels = np.zeros((5, 5), np.int32)
    labels[1:3, 2:4] = 1
    moved = InstanceSet.from_labels(labels, origin=(100, 40), classification="nucleus")
    assert moved.instances[0].polygon.bounds == (102, 41, 104, 43)
    assert moved.instances[0].classification == "nucleus" and moved.image_size is None
    np.testing.assert_array_equal(moved.to_labels((5, 5), origin=(100, 40)), labels)


def test_a_crop_is_the_label_array_cut_to_the_box() -> None:
    labels = np.zeros((20, 30), np.int32)
    labels[2:8, 3:12] = 1
    labels[10:18, 20:29] = 2
    labels[5:15, 14:18] = 3
    whole = InstanceSet.from_labels(labels, mpp=0.5)
    cropped = whole.crop((10, 2, 9, 7))
    assert cropped.image_size == (9, 7) and cropped.mpp == 0.5
    assert {i.id for i in cropped.instances} == {1, 3}
    np.testing.assert_array_equal(cropped.to_labels(), labels[2:9, 10:19])


def test_rasterize_at_a_coarser_resolution_with_class_values() -> None:
    square = Instance(5, Polygon([(0, 0), (8, 0), (8, 8), (0, 8)]))
    drawn = rasterize([square], (4, 4), scale=0.25, values={5: 2}, dtype=np.uint8)
    assert drawn.dtype == np.uint8
    np.testing.assert_array_equal(drawn, [[2, 2, 0, 0], [2, 2, 0, 0], [0, 0, 0, 0],
                                          [0, 0, 0, 0]])


def test_a_label_array_beyond_the_limit_is_refused_before_allocating() -> None:
    square = Instance(1, Polygon([(0, 0), (1, 0), (1, 1)]))
    with pytest.raises(InputError, match=r"100000×100000 px label array is larger than"):
        InstanceSet((square,), (100_000, 100_000)).to_labels()


def test_ids_must_be_positive_and_unique() -> None:
    square = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    with pytest.raises(ValueError, match="must be > 0"):
        Instance(0, square)
    with pytest.raises(ValueError, match="unique"):
        InstanceSet((Instance(1, square), Instance(1, square)))
    with pytest.raises(InputError, match="negative"):
        InstanceSet.from_labels(np.array([[-1, 0]]))
