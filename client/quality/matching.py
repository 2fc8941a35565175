"""Instances of two label arrays of one image matched one-to-one by IoU.

:func:`overlaps` counts every pair of overlapping instances in one pass over the pixels (a
sparse contingency table); :func:`match_instances` pairs them greedily, highest IoU first.
:func:`match_instances_all_pairs` is the straightforward peer the benchmark
(``bench/inspect.py``) and the tests hold it against: every pair of instances, IoU from
their boolean masks. Both take ``(H, W)`` integer label arrays of the same size (0 =
background) and return the same :class:`Matching`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pathloop.client.quality.labels import as_labels, instance_ids, same_shape

# Above this many codes a dense bincount would allocate more than it saves: sort instead.
_DENSE_LIMIT = 1 << 24


@dataclass(frozen=True)
class Overlaps:
    """The sparse contingency of two label arrays ``a`` and ``b``.

    Attributes
    ----------
    a_ids, b_ids, intersections:
        Aligned 1-D ``int64`` arrays, one entry per pair of instances that share pixels,
        sorted by ``a`` id then ``b`` id: the ids and the number of shared pixels.
    a_area, b_area:
        Every instance's area in px, keyed by id (instances without overlap included).
    """

    a_ids: NDArray[np.int64]
    b_ids: NDArray[np.int64]
    intersections: NDArray[np.int64]
    a_area: dict[int, int]
    b_area: dict[int, int]

    def iou(self) -> NDArray[np.float64]:
        """IoU of each overlapping pair, aligned with :attr:`a_ids`."""
        area_a = np.array([self.a_area[i] for i in self.a_ids.tolist()], np.int64)
        area_b = np.array([self.b_area[i] for i in self.b_ids.tolist()], np.int64)
        union = area_a + area_b - self.intersections
        return self.intersections / union.astype(np.float64)


@dataclass(frozen=True)
class Matching:
    """A one-to-one matching of the instances of ``a`` and ``b``.

    Attributes
    ----------
    pairs:
        ``(a_id, b_id, IoU)`` with IoU > 0, in the order they were matched (IoU descending,
        ties by ``a`` id then ``b`` id).
    unmatched_a, unmatched_b:
        The ids left without a partner, ascending.
    """

    pairs: tuple[tuple[int, int, float], ...]
    unmatched_a: tuple[int, ...]
    unmatched_b: tuple[int, ...]


def overlaps(a: NDArray, b: NDArray) -> Overlaps:
    """The overlapping instance pairs of two ``(H, W)`` label arrays, in one pass.

    Raises
    ------
    InputError
        Either is not a label array, or their sizes differ.
    """
    a, b = as_labels(a, "first label array"), as_labels(b, "second label array")
    same_shape(a, b, "first label array", "second label array")
    a_flat, b_flat = a.ravel(), b.ravel()
    both = (a_flat > 0) & (b_flat > 0)
    stride = int(b_flat.max(initial=0)) + 1
    keys = a_flat[both].astype(np.int64) * stride + b_flat[both]
    codes, counts = _count(keys)
    return Overlaps(codes // stride, codes % stride, counts, _areas(a_flat), _areas(b_flat))


def match_instances(a: NDArray, b: NDArray) -> Matching:
    """Greedy one-to-one matching by IoU, highest first (ties: smaller ``a`` id, then ``b``).

    ``a`` and ``b`` are ``(H, W)`` label arrays of the same size; only overlapping instances
    are paired (IoU > 0).
    """
    table = overlaps(a, b)
    return _greedy(table.a_ids, table.b_ids, table.iou(), table.a_area, table.b_area)


def match_instances_all_pairs(a: NDArray, b: NDArray) -> Matching:
    """:func:`match_instances` the straightforward way: every pair of instances, IoU from
    their boolean masks (each cut to its bounding box; pairs whose boxes do not meet have
    IoU 0). Slow — the peer the benchmark measures against."""
    a, b = as_labels(a, "first label array"), as_labels(b, "second label array")
    same_shape(a, b, "first label array", "second label array")
    masks_a = {i: _mask(a, i) for i in instance_ids(a).tolist()}
    masks_b = {j: _mask(b, j) for j in instance_ids(b).tolist()}
    a_ids, b_ids, ious = [], [], []
    for i, (box_i, mask_i) in masks_a.items():
        for j, (box_j, mask_j) in masks_b.items():
            iou = _mask_iou(box_i, mask_i, box_j, mask_j)
            if iou > 0:
                a_ids.append(i)
                b_ids.append(j)
                ious.append(iou)
    area_a = {i: int(mask.sum()) for i, (_, mask) in masks_a.items()}
    area_b = {j: int(mask.sum()) for j, (_, mask) in masks_b.items()}
    return _greedy(np.array(a_ids, np.int64), np.array(b_ids, np.int64),
                   np.array(ious, np.float64), area_a, area_b)


def _greedy(a_ids: NDArray[np.int64], b_ids: NDArray[np.int64], ious: NDArray[np.float64],
            a_area: dict[int, int], b_area: dict[int, int]) -> Matching:
    order = np.lexsort((b_ids, a_ids, -ious))
    taken_a: set[int] = set()
    taken_b: set[int] = set()
    pairs = []
    for i, j, iou in zip(a_ids[order].tolist(), b_ids[order].tolist(), ious[order].tolist(),
                         strict=True):
        if iou > 0 and i not in taken_a and j not in taken_b:
            taken_a.add(i)
            taken_b.add(j)
            pairs.append((i, j, iou))
    return Matching(tuple(pairs), tuple(sorted(set(a_area) - taken_a)),
                    tuple(sorted(set(b_area) - taken_b)))


def _count(values: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The distinct values, ascending, and how often each occurs."""
    if values.size and int(values.max()) < _DENSE_LIMIT:
        counts = np.bincount(values)
        present = np.flatnonzero(counts)
        return present.astype(np.int64), counts[present].astype(np.int64)
    unique, counts = np.unique(values, return_counts=True)
    return unique.astype(np.int64), counts.astype(np.int64)


def _areas(flat: NDArray[np.int32]) -> dict[int, int]:
    ids, counts = _count(flat[flat > 0].astype(np.int64))
    return dict(zip(ids.tolist(), counts.tolist(), strict=True))


def _mask(labels: NDArray[np.int32], own: int) -> tuple[tuple[int, int, int, int],
                                                        NDArray[np.bool_]]:
    full = labels == own
    rows = np.flatnonzero(full.any(axis=1))
    cols = np.flatnonzero(full.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return (int(top), int(bottom), int(left), int(right)), full[top:bottom, left:right]


def _mask_iou(box_a: tuple[int, int, int, int], mask_a: NDArray[np.bool_],
              box_b: tuple[int, int, int, int], mask_b: NDArray[np.bool_]) -> float:
    top, bottom = max(box_a[0], box_b[0]), min(box_a[1], box_b[1])
    left, right = max(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    if top >= bottom or left >= right:
        return 0.0
    part_a = mask_a[top - box_a[0]:bottom - box_a[0], left - box_a[2]:right - box_a[2]]
    part_b = mask_b[top - box_b[0]:bottom - box_b[0], left - box_b[2]:right - box_b[2]]
    intersection = int(np.count_nonzero(part_a & part_b))
    union = int(mask_a.sum()) + int(mask_b.sum()) - intersection
    return intersection / float(union)


__all__ = ["Matching", "Overlaps", "match_instances", "match_instances_all_pairs", "overlaps"]
