"""Matching: one-pass overlaps and greedy IoU pairs equal the all-pairs peer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pathloop.client.errors import InputError
from pathloop.client.quality import (
    Matching,
    match_instances,
    match_instances_all_pairs,
    overlaps,
)


def test_overlaps_counts_each_overlapping_pair_and_every_area() -> None:
    a = np.array([[1, 1, 0, 0],
                  [1, 1, 2, 2],
                  [0, 0, 2, 2]], np.int32)
    b = np.array([[7, 7, 7, 0],
                  [0, 0, 9, 0],
                  [3, 0, 9, 9]], np.int32)
    table = overlaps(a, b)
    assert table.a_ids.tolist() == [1, 2]
    assert table.b_ids.tolist() == [7, 9]
    assert table.intersections.tolist() == [2, 3]
    assert table.a_area == {1: 4, 2: 4}
    assert table.b_area == {3: 1, 7: 3, 9: 3}
    assert table.iou().tolist() == [2 / 5, 3 / 4]


def test_greedy_takes_the_highest_iou_first_one_to_one() -> None:
    # b=5 meets a=1 (IoU 1/4) and a=2 (IoU 1/2): it goes to a=2, not to the first id that
    # asks; a=2 is then taken, so b=6 (IoU 1/3 with a=2) and a=1 stay unmatched.
    a = np.array([[1, 1, 2, 2, 2]], np.int32)
    b = np.array([[0, 5, 5, 5, 6]], np.int32)
    matching = match_instances(a, b)
    assert matching.pairs == ((2, 5, 0.5),)
    assert matching.unmatched_a == (1,) and matching.unmatched_b == (6,)


def test_ties_go_to_the_smaller_ids_and_the_rest_stay_unmatched() -> None:
    a = np.array([[1, 1, 2, 2]], np.int32)
    b = np.array([[0, 4, 4, 0]], np.int32)
    matching = match_instances(a, b)
    assert matching.pairs == ((1, 4, 1 / 3),)
    assert matching.unmatched_a == (2,)
    assert match_instances_all_pairs(a, b) == matching


def test_sizes_must_agree() -> None:
    with pytest.raises(InputError, match="3×2 but second label array is 2×3"):
        match_instances(np.zeros((2, 3), np.int32), np.zeros((3, 2), np.int32))


@st.composite
def label_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(st.tuples(st.integers(1, 24), st.integers(1, 24)))
    ids = st.integers(0, 6)
    a = draw(arrays(np.int32, shape, elements=ids))
    b = draw(arrays(np.int32, shape, elements=st.sampled_from([0, 3, 8, 1000, 70000])))
    return a, b


@settings(max_examples=300, deadline=None)
@given(label_pairs())
def test_match_instances_equals_the_all_pairs_peer(pair: tuple[np.ndarray, np.ndarray]
                                                   ) -> None:
    a, b = pair
    fast, slow = match_instances(a, b), match_instances_all_pairs(a, b)
    assert isinstance(fast, Matching)
    assert fast == slow
    assert fast == match_instances_all_pairs(a, b)
    matched_a = [i for i, _, _ in fast.pairs]
    matched_b = [j for _, j, _ in fast.pairs]
    assert len(set(matched_a)) == len(matched_a) and len(set(matched_b)) == len(matched_b)
    assert sorted(matched_a + list(fast.unmatched_a)) == sorted(set(a[a > 0].tolist()))
