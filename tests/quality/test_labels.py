"""Label array checks and instance boxes, for dense and for sparse, large ids."""

from __future__ import annotations

import numpy as np
import pytest

from pathloop.client.errors import InputError
from pathloop.client.quality.labels import as_labels, instance_boxes


def test_boxes_are_the_same_for_small_and_for_sparse_large_ids() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (30, 40)).astype(np.int32)
    dense = instance_boxes(labels)
    assert set(dense) == set(np.unique(labels[labels > 0]).tolist())
    for i, (rows, cols) in dense.items():
        where = np.argwhere(labels == i)
        assert (rows.start, cols.start) == tuple(where.min(axis=0))
        assert (rows.stop, cols.stop) == tuple(where.max(axis=0) + 1)
    sparse = np.where(labels > 0, labels * 10_000_000, 0).astype(np.int32)
    assert instance_boxes(sparse) == {i * 10_000_000: box for i, box in dense.items()}
    full = labels + 1  # no background at all
    assert set(instance_boxes(full)) == set(range(1, 7))
    assert set(instance_boxes(full * 10_000_000)) == {i * 10_000_000 for i in range(1, 7)}


@pytest.mark.parametrize(("array", "words"), [
    (np.zeros((2, 2, 3), np.int32), r"shape \(2, 2, 3\)"),
    (np.zeros((2, 2), np.float32), "dtype float32"),
    (np.full((2, 2), -1, np.int64), "ids must lie in"),
])
def test_what_is_not_a_label_array_is_refused_by_name(array: np.ndarray, words: str) -> None:
    with pytest.raises(InputError, match=f"annotation: .*{words}"):
        as_labels(array, "annotation")
