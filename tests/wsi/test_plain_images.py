"""Plain images (PNG, JPEG) open as one-level slides with the user's µm/px."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pathloop.client.errors import CorruptSlideError, MissingResolutionError, UnsupportedSlideError
from pathloop.client.wsi import open_slide
from pathloop.client.wsi.plain import PlainImageSource


def _gradient(height: int = 40, width: int = 60) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows * 5, cols * 4, (rows + cols) % 256], axis=-1).astype(np.uint8)


def test_png_opens_with_the_given_resolution(tmp_path: Path) -> None:
    pixels = _gradient()
    path = tmp_path / "tile.png"
    Image.fromarray(pixels).save(path)
    with open_slide(path, mpp=0.25) as slide:
        meta = slide.metadata
        assert (meta.backend, meta.vendor) == ("plain-image", "png")
        assert (meta.width, meta.height, meta.level_count) == (60, 40, 1)
        assert (meta.mpp, meta.mpp_source) == (0.25, "user")
        np.testing.assert_array_equal(slide.read_region(0, 0, 60, 40, 0.25), pixels)
        # a region over the edge: the image where it is, white glass beyond
        region = slide.read_region(50, 30, 20, 20, 0.25)
        np.testing.assert_array_equal(region[:10, :10], pixels[30:, 50:])
        assert (region[10:] == 255).all() and (region[:, 10:] == 255).all()
        assert slide.read_region(0, 0, 30, 20, 0.5).shape == (20, 30, 3)


def test_jpeg_opens(tmp_path: Path) -> None:
    path = tmp_path / "tile.jpg"
    Image.fromarray(_gradient()).save(path, quality=95)
    with open_slide(path, mpp=0.5) as slide:
        assert slide.metadata.vendor == "jpeg"
        assert slide.thumbnail(0.5).shape == (40, 60, 3)


def test_png_without_a_resolution_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "tile.png"
    Image.fromarray(_gradient()).save(path)
    with open_slide(path) as slide, pytest.raises(MissingResolutionError):
        slide.metadata.mpp  # noqa: B018


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width × height`` (its data is not even there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    _png_header_only(path, 50_000, 50_000)
    assert path.stat().st_size < 200
    with pytest.raises(UnsupportedSlideError, match="exceeds the limit"):
        open_slide(path, mpp=0.25)


def test_pixel_limit_is_the_sources_bound(tmp_path: Path) -> None:
    path = tmp_path / "tile.png"
    Image.fromarray(_gradient()).save(path)
    with pytest.raises(UnsupportedSlideError, match="2400 pixels exceeds the limit of 2399"):
        PlainImageSource(path, max_pixels=2399)
    assert PlainImageSource(path, max_pixels=2400).metadata(path, 1.0).width == 60


def test_truncated_png_is_a_corrupt_slide(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.fromarray(_gradient()).save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptSlideError, match=r"cut\.png"):
        open_slide(path, mpp=0.25)


def test_cpm15_image_opens(shared_data: Path) -> None:
    path = shared_data / "nuclei/cpm15/image01.png"
    with open_slide(path, mpp=0.25) as slide:
        meta = slide.metadata
        region = slide.read_region(0, 0, 64, 64, 0.25)
    assert meta.width * meta.height > 100_000
    assert region.std() > 5
