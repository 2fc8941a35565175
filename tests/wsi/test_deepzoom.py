"""Deep Zoom geometry and tiles, beside openslide's own DeepZoomGenerator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openslide
import pytest
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image

from pathloop.client.api.errors import status_code
from pathloop.client.errors import RegionError, TileOutOfRangeError
from pathloop.client.wsi import (
    DeepZoomGrid,
    in_memory_slide,
    open_slide,
    read_deepzoom_tile,
)

ODD_SIZES = [(1, 1), (255, 1), (1, 255), (3000, 17), (254, 254), (255, 509)]


def _generator(osr: openslide.AbstractSlide) -> DeepZoomGenerator:
    return DeepZoomGenerator(osr, tile_size=254, overlap=1, limit_bounds=False)


def _assert_same_geometry(osr: openslide.AbstractSlide) -> None:
    """Every level and every tile of our grid against DeepZoomGenerator over ``osr``."""
    generator = _generator(osr)
    grid = DeepZoomGrid(*osr.dimensions)
    assert grid.level_count == generator.level_count
    assert grid.level_dimensions == generator.level_dimensions
    assert grid.level_tiles == generator.level_tiles
    assert grid.tile_count == generator.tile_count
    for level in range(grid.level_count):
        # The level DeepZoomGenerator reads from (OpenSlide's rule, without our 1% slack).
        slide_level = osr.get_best_level_for_downsample(grid.downsample(level))
        cols, rows = grid.level_tiles[level]
        for col in range(cols):
            for row in range(rows):
                tile = grid.tile(level, col, row)
                (x, y), read_level, (w, h) = generator.get_tile_coordinates(level, (col, row))
                assert read_level == slide_level
                assert grid.level_region(tile, osr.level_downsamples[slide_level],
                                         osr.level_dimensions[slide_level]) == (x, y, w, h)
                assert (tile.out_width, tile.out_height) == \
                    generator.get_tile_dimensions(level, (col, row))
                # The level-0 region: where the tile starts, how far it reaches (clipped).
                if slide_level == 0:
                    assert (tile.x, tile.y) == (x, y)
                assert tile.width <= grid.downsample(level) * tile.out_width
                assert 0 < tile.x + tile.width <= osr.dimensions[0]
                assert 0 < tile.y + tile.height <= osr.dimensions[1]


@pytest.mark.realdata
def test_geometry_of_the_cmu_slide(cmu_svs: Path) -> None:
    with openslide.OpenSlide(str(cmu_svs)) as osr:
        _assert_same_geometry(osr)


@pytest.mark.realdata
def test_geometry_of_the_multi_level_pyramid(cmu_pyramid: Path) -> None:
    with openslide.OpenSlide(str(cmu_pyramid)) as osr:
        assert osr.level_count == 4
        _assert_same_geometry(osr)


@pytest.mark.parametrize(("width", "height"), ODD_SIZES)
def test_geometry_of_odd_sizes(width: int, height: int) -> None:
    _assert_same_geometry(openslide.ImageSlide(Image.new("RGB", (width, height), "white")))


def test_cmu_sized_grid_by_hand() -> None:
    grid = DeepZoomGrid(2220, 2967)
    assert grid.level_count == 13
    assert grid.level_dimensions[-1] == (2220, 2967)
    assert grid.level_dimensions[-2] == (1110, 1484)
    assert grid.level_tiles[-1] == (9, 12)
    assert grid.downsample(12) == 1.0 and grid.downsample(0) == 4096.0
    interior = grid.tile(12, 1, 1)
    assert (interior.x, interior.y, interior.out_width, interior.out_height) == \
        (253.0, 253.0, 256, 256)
    # The last row of DZ level 11 is 1484 - 11×254 + 1 = 91 px: 182 level-0 px nominally,
    # clipped to the 2967 px slide.
    last = grid.tile(11, 4, 5)
    assert (last.out_width, last.out_height) == (1110 - 4 * 254 + 1, 1484 - 5 * 254 + 1)
    assert last.y == 2 * (5 * 254 - 1)
    assert last.y + last.height == 2967


@pytest.mark.parametrize(
    ("level", "col", "row", "message"),
    [(-1, 0, 0, r"level -1 is outside the pyramid: levels are 0\.\.12"),
     (13, 0, 0, r"level 13 is outside the pyramid: levels are 0\.\.12"),
     (12, 9, 0, r"tile 12/9_0 is outside the pyramid: level 12 has columns 0\.\.8 and "
                r"rows 0\.\.11"),
     (12, 0, 12, r"tile 12/0_12 is outside"),
     (12, -1, 0, r"tile 12/-1_0 is outside"),
     (0, 0, -1, r"tile 0/0_-1 is outside the pyramid: level 0 has columns 0\.\.0")],
)
def test_out_of_range_tiles(level: int, col: int, row: int, message: str) -> None:
    grid = DeepZoomGrid(2220, 2967)
    with pytest.raises(TileOutOfRangeError, match=message) as caught:
        grid.tile(level, col, row)
    assert status_code(caught.value) == 404  # what the site API answers
    assert isinstance(caught.value, RegionError)


def test_out_of_range_level_downsample() -> None:
    with pytest.raises(TileOutOfRangeError):
        DeepZoomGrid(10, 10).downsample(5)


@pytest.mark.parametrize(("width", "height"), [(0, 5), (5, 0)])
def test_empty_slide_has_no_grid(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="at least 1×1 px"):
        DeepZoomGrid(width, height)


@pytest.mark.parametrize(("width", "height"), [*ODD_SIZES, (2220, 2967)])
@pytest.mark.parametrize("format", ["jpeg", "png"])
def test_dzi_descriptor(width: int, height: int, format: str) -> None:
    osr = openslide.ImageSlide(Image.new("RGB", (width, height), "white"))
    assert DeepZoomGrid(width, height).dzi_xml(format) == _generator(osr).get_dzi(format)


def _assert_thumbnail_rounding(generator: DeepZoomGenerator, level: int, col: int, row: int,
                               theirs: np.ndarray) -> None:
    """DeepZoomGenerator's tile has another size than it advertises only through Pillow.

    ``Image.thumbnail`` keeps the read region's aspect ratio, so where the region is far
    from the tile's shape (the few-px levels, thin slides) the tile comes out a px or two
    smaller than ``get_tile_dimensions``; ours always has the advertised size.
    """
    _, _, read_size = generator.get_tile_coordinates(level, (col, row))
    resized = Image.new("L", read_size)
    resized.thumbnail(generator.get_tile_dimensions(level, (col, row)))
    assert theirs.shape[:2] == (resized.height, resized.width)


def _assert_tiles_close(slide_path: Path, levels: list[int]) -> None:
    """Our tiles against DeepZoomGenerator.get_tile for every tile of ``levels``."""
    with openslide.OpenSlide(str(slide_path)) as osr, open_slide(slide_path, mpp=0.5) as slide:
        generator = _generator(osr)
        grid = DeepZoomGrid(*osr.dimensions)
        compared = total = 0
        for level in levels:
            ds = grid.downsample(level)
            # Same slide level as OpenSlide, or the comparison would measure the pyramid.
            assert slide.best_level(ds) == osr.get_best_level_for_downsample(ds)
            cols, rows = grid.level_tiles[level]
            for col in range(cols):
                for row in range(rows):
                    ours = read_deepzoom_tile(slide, grid, level, col, row)
                    tile = grid.tile(level, col, row)
                    assert ours.shape == (tile.out_height, tile.out_width, 3)
                    assert ours.dtype == np.uint8
                    theirs = np.asarray(generator.get_tile(level, (col, row)))
                    if theirs.shape != ours.shape:
                        _assert_thumbnail_rounding(generator, level, col, row, theirs)
                        continue
                    difference = np.abs(ours.astype(np.int16) - theirs).mean(axis=(0, 1))
                    assert difference.max() < 2, (level, col, row, difference)
                    compared += 1
            total += cols * rows
        assert compared >= total - len(levels)  # at most one thumbnail-rounded tile a level


@pytest.mark.realdata
def test_tiles_match_openslide_on_the_cmu_slide(cmu_svs: Path) -> None:
    _assert_tiles_close(cmu_svs, list(range(13)))


@pytest.mark.realdata
def test_tiles_match_openslide_on_the_pyramid(cmu_pyramid: Path) -> None:
    # DZ levels 0-8 read slide level 3 (8×) and level 12 reads level 0, as OpenSlide does.
    _assert_tiles_close(cmu_pyramid, [*range(9), 12])


@pytest.mark.realdata
def test_pyramid_levels_within_the_slack_are_read_from_the_stored_level(
        cmu_pyramid: Path) -> None:
    # The pyramid stores 2.0003×, 4.002×, 8.017×: OpenSlide reads the finer level for DZ
    # downsamples 2, 4, 8; Slide.best_level's 1% slack reads the stored one. Our tile is that
    # level's read, resized as DeepZoomGenerator resizes.
    with openslide.OpenSlide(str(cmu_pyramid)) as osr, \
            open_slide(cmu_pyramid, mpp=0.5) as slide:
        grid = DeepZoomGrid(*osr.dimensions)
        for level, expected in ((11, 1), (10, 2), (9, 3)):
            slide_level = slide.best_level(grid.downsample(level))
            assert slide_level == expected
            assert osr.get_best_level_for_downsample(grid.downsample(level)) == expected - 1
            cols, rows = grid.level_tiles[level]
            for col in range(cols):
                for row in range(rows):
                    tile = grid.tile(level, col, row)
                    x, y, w, h = grid.level_region(tile, osr.level_downsamples[slide_level],
                                                   osr.level_dimensions[slide_level])
                    reference = osr.read_region((x, y), slide_level, (w, h)).convert("RGB")
                    reference = reference.resize((tile.out_width, tile.out_height),
                                                 Image.Resampling.LANCZOS)
                    ours = read_deepzoom_tile(slide, grid, level, col, row)
                    difference = np.abs(ours.astype(np.int16) - np.asarray(reference))
                    assert difference.mean(axis=(0, 1)).max() < 1, (level, col, row)


@pytest.mark.parametrize(("width", "height"), [(255, 1), (3000, 17), (300, 700)])
def test_tiles_of_an_in_memory_slide_match_openslide(width: int, height: int) -> None:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    generator = _generator(openslide.ImageSlide(Image.fromarray(pixels)))
    slide = in_memory_slide(pixels, mpp=0.5)
    grid = DeepZoomGrid(width, height)
    compared = 0
    for level in range(grid.level_count):
        cols, rows = grid.level_tiles[level]
        for col in range(cols):
            for row in range(rows):
                tile = grid.tile(level, col, row)
                ours = read_deepzoom_tile(slide, grid, level, col, row)
                assert ours.shape == (tile.out_height, tile.out_width, 3)
                theirs = np.asarray(generator.get_tile(level, (col, row)))
                if theirs.shape != ours.shape:
                    _assert_thumbnail_rounding(generator, level, col, row, theirs)
                    continue
                assert np.abs(ours.astype(np.int16) - theirs).mean() < 2, (level, col, row)
                compared += 1
    assert compared >= grid.tile_count // 2


def test_full_resolution_tile_is_the_slide_itself() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (600, 700, 3), dtype=np.uint8)
    grid = DeepZoomGrid(700, 600)
    tile = read_deepzoom_tile(in_memory_slide(pixels, mpp=0.5), grid, grid.level_count - 1,
                              1, 1)
    np.testing.assert_array_equal(tile, pixels[253:253 + 256, 253:253 + 256])


def test_grid_of_another_slide_is_refused() -> None:
    slide = in_memory_slide(np.zeros((10, 20, 3), np.uint8), mpp=0.5)
    with pytest.raises(RegionError, match=r"grid over 20×11 px does not fit this 20×10 px"):
        read_deepzoom_tile(slide, DeepZoomGrid(20, 11), 0, 0, 0)


def test_out_of_range_tile_read_raises() -> None:
    slide = in_memory_slide(np.zeros((10, 20, 3), np.uint8), mpp=0.5)
    with pytest.raises(TileOutOfRangeError):
        read_deepzoom_tile(slide, DeepZoomGrid(20, 10), 5, 1, 0)


def test_a_whole_level_in_one_read_is_its_single_tile(cmu_svs: Path) -> None:
    from pathloop.client.wsi import read_deepzoom_level

    with open_slide(cmu_svs) as slide:
        grid = DeepZoomGrid(slide.metadata.width, slide.metadata.height)
        single = max(k for k, tiles in enumerate(grid.level_tiles) if tiles == (1, 1))
        np.testing.assert_array_equal(read_deepzoom_level(slide, grid, single),
                                      read_deepzoom_tile(slide, grid, single, 0, 0))
        whole = read_deepzoom_level(slide, grid, single + 2)
        assert whole.shape == (*grid.level_dimensions[single + 2][::-1], 3)
