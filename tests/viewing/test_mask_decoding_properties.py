"""Whatever a client sends as a correction mask is decoded within the patch's size or refused
with a :class:`MaskError`: never another exception, never a crash (property-based)."""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pathloop.client.errors import MaskError
from pathloop.client.viewing.masks import decode_png, decode_rle, encode_png, encode_rle

SHAPE = (6, 5)  # (H, W) of the patch the mask is for
N_LABELS = 3
# Ints of every size a JSON body can carry: small, near the mask's size, beyond int64.
ANY_INT = st.one_of(st.integers(-3, 40), st.integers(-(2**70), 2**70),
                    st.sampled_from([2**31, 2**62, 2**63 - 1, 2**63, 2**64 + 30]))
CHECKED = settings(max_examples=400, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


def _accepted(mask: np.ndarray) -> None:
    assert mask.shape == SHAPE and mask.dtype == np.uint8
    assert int(mask.max(initial=0)) < N_LABELS


@CHECKED
@given(width=st.one_of(st.just(SHAPE[1]), st.integers(-2, 12)),
       height=st.one_of(st.just(SHAPE[0]), st.integers(-2, 12)),
       values=st.lists(ANY_INT, max_size=40), counts=st.lists(ANY_INT, max_size=40))
def test_any_rle_decodes_to_the_patch_or_is_refused(width: int, height: int,
                                                    values: list[int], counts: list[int]
                                                    ) -> None:
    try:
        mask = decode_rle(width=width, height=height, values=values, counts=counts,
                          shape=SHAPE, n_labels=N_LABELS)
    except MaskError:
        return
    _accepted(mask)
    expanded = [value for value, count in zip(values, counts, strict=True)
                for _ in range(count)]
    assert mask.ravel().tolist() == expanded


@CHECKED
@given(mask=st.lists(st.integers(0, N_LABELS - 1), min_size=30, max_size=30))
def test_valid_rle_round_trips(mask: list[int]) -> None:
    array = np.asarray(mask, np.uint8).reshape(SHAPE)
    values, counts = encode_rle(array)
    decoded = decode_rle(width=SHAPE[1], height=SHAPE[0], values=values, counts=counts,
                         shape=SHAPE, n_labels=N_LABELS)
    np.testing.assert_array_equal(decoded, array)


def _png(pixels: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


@CHECKED
@given(height=st.one_of(st.just(SHAPE[0]), st.integers(1, 9)),
       width=st.one_of(st.just(SHAPE[1]), st.integers(1, 9)),
       top=st.one_of(st.integers(0, N_LABELS - 1), st.integers(0, 255)),
       mode=st.sampled_from(["L", "P", "1", "RGB", "LA", "RGBA", "I;16"]),
       seed=st.integers(0, 2**16),
       cut=st.integers(0, 400), noise=st.binary(max_size=64), as_text=st.booleans())
def test_any_png_decodes_to_the_patch_or_is_refused(height: int, width: int, top: int,
                                                    mode: str, seed: int, cut: int,
                                                    noise: bytes, as_text: bool) -> None:
    """PNGs of every size, mode and label range, cut short or with bytes spliced in."""
    pixels = np.random.default_rng(seed).integers(0, top + 1, (height, width), np.uint8)
    data = _png(pixels, mode)
    if cut:
        data = data[:cut] + noise + data[cut + len(noise):]
    try:
        mask = decode_png(base64.b64encode(data).decode() if as_text else data,
                          shape=SHAPE, n_labels=N_LABELS)
    except MaskError:
        return
    _accepted(mask)


@CHECKED
@given(text=st.text(max_size=80))
def test_any_text_as_png_data_is_refused_with_a_mask_error(text: str) -> None:
    with pytest.raises(MaskError):
        decode_png(text, shape=SHAPE, n_labels=N_LABELS)


def test_counts_whose_int64_sum_wraps_to_the_mask_size_are_refused_in_process() -> None:
    """Four runs of 2**62 (+16) add up to 16 modulo 2**64: before the check, numpy sized the
    mask from the wrapped sum and wrote past it. Run in a child process, so that a crash
    fails this test instead of ending the run."""
    code = (
        "from pathloop.client.errors import MaskError\n"
        "from pathloop.client.viewing.masks import decode_rle\n"
        "try:\n"
        "    decode_rle(width=4, height=4, values=[1, 0, 1, 0],\n"
        "               counts=[2**62, 2**62, 2**62, 2**62 + 16], shape=(4, 4), n_labels=2)\n"
        "except MaskError as error:\n"
        "    print('refused:', error)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "refused: RLE counts must be whole numbers from 1" in done.stdout


def test_a_valid_png_mask_is_decoded_exactly() -> None:
    mask = np.arange(30, dtype=np.uint8).reshape(SHAPE) % N_LABELS
    np.testing.assert_array_equal(
        decode_png(encode_png(mask), shape=SHAPE, n_labels=N_LABELS), mask)
