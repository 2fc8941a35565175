"""Rasters under Deep Zoom tiles, overlay colours, and masks on the wire."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathloop.client.errors import MaskError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.viewing.colours import colour_map, uncertainty_lut
from pathloop.client.viewing.masks import decode_png, decode_rle, encode_png, encode_rle
from pathloop.client.viewing.sampling import sample_raster
from pathloop.client.wsi import DeepZoomGrid


@pytest.fixture
def store(tmp_path: Path) -> Store:
    settings = SiteSettings(site_id="s", data_dir=tmp_path)
    opened = Store.open(settings)
    opened.add_slide(content_hash="a" * 64, name="x.svs", path=tmp_path / "x.svs",
                     width=4000, height=3000, mpp_x=0.5, mpp_y=0.5)
    return opened


def test_a_tile_reads_the_raster_pixels_under_it(store: Store) -> None:
    # A raster at 2 µm/px over a 0.5 µm/px slide: 4 level-0 px per raster px.
    values = np.arange(750 * 1000, dtype=np.uint32).reshape(750, 1000) % 251
    record = store.rasters.save(values.astype(np.uint8), 1, "prediction", mpp=2.0,
                                downsample="nearest")
    raster = store.rasters.open_raster(record)
    grid = DeepZoomGrid(4000, 3000)
    top = grid.level_count - 1
    tile = grid.tile(top, 3, 2)  # full resolution: each output px is one level-0 px
    out = sample_raster(raster, tile, slide_mpp=0.5)
    assert out.shape == (tile.out_height, tile.out_width)
    ys = np.floor((tile.y + np.arange(tile.out_height) + 0.5) / 4).astype(int)
    xs = np.floor((tile.x + np.arange(tile.out_width) + 0.5) / 4).astype(int)
    np.testing.assert_array_equal(out, values[np.ix_(ys, xs)].astype(np.uint8))
    # Zoomed out 16×: read from the raster's level 2 (16 level-0 px a pixel), not level 0.
    coarse = grid.tile(top - 4, 0, 0)
    assert sample_raster(raster, coarse, slide_mpp=0.5).shape == (coarse.out_height,
                                                                 coarse.out_width)


def test_outside_the_raster_is_the_fill_value(store: Store) -> None:
    record = store.rasters.save(np.ones((10, 10), np.float32), 1, "uncertainty", mpp=2.0,
                                downsample="mean")
    grid = DeepZoomGrid(4000, 3000)
    tile = grid.tile(grid.level_count - 1, 5, 5)  # far beyond the 40×40 level-0 px raster
    out = sample_raster(store.rasters.open_raster(record), tile, slide_mpp=0.5, fill=np.nan)
    assert np.isnan(out).all()
    painted = colour_map(out, 1.0, uncertainty_lut())
    assert (painted[..., 3] == 0).all()


def test_a_correction_mask_is_placed_at_its_patch(store: Store) -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 1
    record = store.rasters.save(mask, 1, "correction", mpp=2.0, downsample="mode")

    class Box:
        x, y, width, height, out_width, out_height = 100.0, 200.0, 32.0, 32.0, 8, 8

    out = sample_raster(store.rasters.open_raster(record), Box(), slide_mpp=0.5,
                        origin=(100, 200))
    np.testing.assert_array_equal(out, mask)


def test_rle_and_png_round_trip() -> None:
    rng = np.random.default_rng(0)
    mask = (rng.random((37, 53)) > 0.7).astype(np.uint8)
    values, counts = encode_rle(mask)
    assert sum(counts) == mask.size
    np.testing.assert_array_equal(
        decode_rle(width=53, height=37, values=values, counts=counts, shape=(37, 53),
                   n_labels=2), mask)
    np.testing.assert_array_equal(decode_png(encode_png(mask), shape=(37, 53), n_labels=2),
                                  mask)


def test_masks_are_checked_before_they_are_decoded() -> None:
    with pytest.raises(MaskError, match="counts must be whole numbers from 1"):
        decode_rle(width=2, height=1, values=[0, 1], counts=[3, -1], shape=(1, 2), n_labels=2)
    with pytest.raises(MaskError, match="53×37 px but the patch needs 10×10"):
        decode_png(encode_png(np.zeros((37, 53), np.uint8)), shape=(10, 10), n_labels=2)
