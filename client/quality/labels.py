"""Instance label arrays: the checks every quality function starts with, and their boxes.

A label array is ``(H, W)`` integer, 0 = background, each instance one id > 0 (ids need not
be consecutive). Pixels are level-0 pixels of the image or region; nothing here depends on
the resolution.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pathloop.client.errors import InputError

Box = tuple[slice, slice]


def as_labels(array: NDArray, what: str) -> NDArray[np.int32]:
    """``array`` as an ``(H, W)`` ``int32`` label array (a copy only where the dtype differs).

    Raises
    ------
    InputError
        ``array`` is not 2-D, not integer (or boolean), has negative values or ids beyond
        int32; the message starts with ``what`` (e.g. ``"annotation"``).
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise InputError(f"{what}: expected an (H, W) label array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{what}: expected integer instance ids, got dtype {array.dtype}")
    if array.size and (int(array.min()) < 0 or int(array.max()) > np.iinfo(np.int32).max):
        raise InputError(f"{what}: instance ids must lie in 0..{np.iinfo(np.int32).max}, got "
                         f"{int(array.min())}..{int(array.max())}")
    return array.astype(np.int32, copy=False)


def same_shape(a: NDArray, b: NDArray, what_a: str, what_b: str) -> None:
    """Raise :class:`InputError` naming both when two label arrays differ in shape."""
    if a.shape != b.shape:
        raise InputError(f"{what_a} is {_size(a)} but {what_b} is {_size(b)}: label arrays "
                         "of one image must have the same size")


def instance_ids(labels: NDArray[np.int32]) -> NDArray[np.int64]:
    """The ids > 0 present in ``labels``, ascending."""
    ids = np.unique(labels)
    return ids[ids > 0].astype(np.int64)


def instance_boxes(labels: NDArray[np.int32]) -> dict[int, Box]:
    """Each instance's bounding box as ``(rows, cols)`` slices, keyed by id."""
    if labels.size == 0:
        return {}
    ids, compact = np.unique(labels, return_inverse=True)
    if ids[0] != 0:  # no background: shift so that every instance has a code > 0
        ids = np.concatenate(([0], ids))
        compact = compact + 1
    boxes = ndimage.find_objects(compact.reshape(labels.shape))
    return {int(i): box for i, box in zip(ids[1:], boxes, strict=True) if box is not None}


def padded(box: Box, pad: int, shape: tuple[int, ...]) -> Box:
    """``box`` grown by ``pad`` pixels on every side, clipped to ``shape``."""
    rows, cols = box
    return (slice(max(rows.start - pad, 0), min(rows.stop + pad, shape[0])),
            slice(max(cols.start - pad, 0), min(cols.stop + pad, shape[1])))


def box_xywh(box: Box) -> tuple[int, int, int, int]:
    """A ``(rows, cols)`` slice box as ``(x, y, w, h)``."""
    rows, cols = box
    return (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)


def _size(array: NDArray) -> str:
    return "×".join(map(str, array.shape[::-1]))


__all__ = ["Box", "as_labels", "box_xywh", "instance_boxes", "instance_ids", "padded",
           "same_shape"]
