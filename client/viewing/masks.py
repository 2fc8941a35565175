"""Label masks on the wire: 8-bit grey PNG or row-major run lengths, checked on the way in.

A correction mask is ``(H, W)`` uint8, one label value per pixel (0 = background), exactly the
size of its patch at the patch's resolution. Whatever a browser or a script sends is decoded
here and refused with a :class:`MaskError` that names what was wrong (size, data type, mode,
labels, encoding); nothing is stored before that.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from pathloop.client.errors import MaskError

LabelMask = NDArray[np.uint8]
MAX_MASK_PIXELS = 8192 * 8192
"""Largest mask accepted: a patch is at most 8192 px a side."""


def encode_png(mask: LabelMask) -> bytes:
    """An ``(H, W)`` uint8 label mask as an 8-bit grey PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="L").save(
        buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def decode_png(data: bytes | str, *, shape: tuple[int, int], n_labels: int) -> LabelMask:
    """Decode a PNG label mask (bytes, or base64 text) and check it.

    Raises
    ------
    MaskError
        Not base64 or not a PNG; not 8-bit single-channel (``L``, or ``P``/``1`` whose values
        are labels); not ``shape``; a value ≥ ``n_labels``.
    """
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise MaskError("mask data is not valid base64") from None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise MaskError("mask is not a PNG file (the PNG signature is missing)")
    try:
        image = Image.open(io.BytesIO(data))
        if image.mode not in ("L", "P", "1"):
            raise MaskError(f"mask must be an 8-bit single-channel (grey) PNG of label "
                            f"values, got mode {image.mode}")
        if image.size != (shape[1], shape[0]):  # checked before decoding any pixel
            raise MaskError(f"mask is {image.size[0]}×{image.size[1]} px but the patch needs "
                            f"{shape[1]}×{shape[0]} px")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as error:
        raise MaskError(f"mask PNG cannot be decoded: {error}") from None
    mask = np.asarray(image, dtype=np.uint8)
    return check_mask(mask, shape=shape, n_labels=n_labels)


def decode_rle(*, width: int, height: int, values: Sequence[int], counts: Sequence[int],
               shape: tuple[int, int], n_labels: int) -> LabelMask:
    """Expand row-major runs (``values[i]`` repeated ``counts[i]`` times) and check them.

    Raises
    ------
    MaskError
        ``values`` and ``counts`` differ in length, a count is not positive, the runs do not
        add up to ``width × height``, the size is not ``shape``, or a value is not a label.
    """
    if (height, width) != shape:
        raise MaskError(f"mask is {width}×{height} px but the patch needs "
                        f"{shape[1]}×{shape[0]} px")
    if len(values) != len(counts):
        raise MaskError(f"RLE has {len(values)} values but {len(counts)} counts")
    pixels = width * height
    if pixels > MAX_MASK_PIXELS:
        raise MaskError(f"mask of {pixels} pixels exceeds {MAX_MASK_PIXELS}")
    if len(counts) > pixels:  # every run covers at least one pixel
        raise MaskError(f"RLE has {len(counts)} runs, more than the mask's {pixels} pixels")
    # Bounded before numpy sees them: an int beyond int64, or counts whose int64 sum wraps
    # round to the mask's size, would otherwise crash the decoder (np.repeat writes past
    # the buffer it sized from the wrapped sum).
    if any(not isinstance(c, int) or not 0 < c <= pixels for c in counts):
        raise MaskError(f"RLE counts must be whole numbers from 1 to the mask's {pixels} "
                        "pixels")
    if any(not isinstance(v, int) or not 0 <= v <= 255 for v in values):
        raise MaskError("RLE values must be 8-bit labels (0-255)")
    run_counts = np.asarray(counts, dtype=np.int64)
    total = int(run_counts.sum())  # at most len(counts) × pixels < 2**53: no wrap
    if total != pixels:
        raise MaskError(f"RLE runs cover {total} pixels, the mask has {pixels}")
    run_values = np.asarray(values, dtype=np.uint8)
    mask = np.repeat(run_values, run_counts).reshape(height, width)
    return check_mask(mask, shape=shape, n_labels=n_labels)


def encode_rle(mask: LabelMask) -> tuple[list[int], list[int]]:
    """Row-major ``(values, counts)`` runs of a mask (the inverse of :func:`decode_rle`)."""
    flat = np.asarray(mask, dtype=np.uint8).ravel()
    if flat.size == 0:
        return [], []
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    counts = np.diff(np.r_[starts, flat.size])
    return flat[starts].tolist(), counts.tolist()


def check_mask(mask: NDArray[np.generic], *, shape: tuple[int, int], n_labels: int) -> LabelMask:
    """Return ``mask`` as uint8 if it has ``shape`` and only values below ``n_labels``."""
    if mask.dtype != np.uint8:
        raise MaskError(f"mask must be uint8 label values, got {mask.dtype}")
    if mask.ndim != 2:
        raise MaskError(f"mask must be 2-D (one label per pixel), got shape {mask.shape}")
    if mask.shape != shape:
        raise MaskError(f"mask is {mask.shape[1]}×{mask.shape[0]} px but the patch needs "
                        f"{shape[1]}×{shape[0]} px")
    if mask.size > MAX_MASK_PIXELS:
        raise MaskError(f"mask of {mask.size} pixels exceeds {MAX_MASK_PIXELS}")
    top = int(mask.max(initial=0))
    if top >= n_labels:
        raise MaskError(f"mask holds label {top} but the site has {n_labels} labels "
                        f"(0-{n_labels - 1})")
    return mask.astype(np.uint8, copy=False)
