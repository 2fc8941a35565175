"""Tissue detection, tile grids and the streaming tissue-tile iterator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathloop.client.errors import RegionError
from pathloop.client.tiling import (
    TileGrid,
    TissueMask,
    background_fraction,
    compute_tissue_mask,
    detect_tissue,
    iter_tissue_tiles,
)
from pathloop.client.tiling.tissue import MAX_THUMBNAIL_SIDE, thumbnail_mpp
from pathloop.client.wsi import in_memory_slide, open_slide


def _pink_tissue(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Glass (near-white) with one H&E-pink rectangle ``(y0, y1, x0, x1)``."""
    rng = np.random.default_rng(1)
    image = np.full((height, width, 3), 242, np.uint8)
    y0, y1, x0, x1 = box
    patch = np.array([200, 120, 170]) + rng.normal(0, 12, (y1 - y0, x1 - x0, 3))
    image[y0:y1, x0:x1] = patch.clip(0, 255).astype(np.uint8)
    return image


def test_cmu_tissue_tiles_lie_on_tissue_and_background_is_dropped(cmu_svs: Path) -> None:
    with open_slide(cmu_svs) as slide:
        meta = slide.metadata
        tissue = compute_tissue_mask(slide, mpp=8.0)
        grid = TileGrid(meta.width, meta.height, meta.mpp, mpp=1.0, tile_size=256, stride=256)
        fractions = grid.tissue_fractions(tissue)
        tiles = list(iter_tissue_tiles(slide, grid, tissue))
        kept = {(t.spec.col, t.spec.row) for t in tiles}
        # Every tile away from tissue is dropped (CMU: tissue is a band in the middle).
        empty = {(c, r) for r, c in zip(*np.nonzero(fractions == 0), strict=True)}
        assert empty, "the CMU slide has background tiles"
        assert not kept & empty
        for tile in tiles:
            assert tile.pixels.shape == (256, 256, 3)
            assert tile.background_fraction <= 0.7
            assert tissue.covered_fraction(tile.spec.x, tile.spec.y, tile.spec.width,
                                           tile.spec.height) >= 0.25
            # Tissue is stained: saturated pixels, not glass.
            rgb = tile.pixels.astype(float)
            saturation = (rgb.max(2) - rgb.min(2)) / np.maximum(rgb.max(2), 1)
            assert (saturation > 0.15).mean() > 0.2
        # And every background-grid tile read as white glass would be dropped.
        corner = slide.read_region(0, 0, 256, 256, 1.0)
        assert background_fraction(corner) > 0.7
    assert 0.15 < tissue.tissue_fraction < 0.6
    assert len(tiles) >= 8


def test_detect_tissue_finds_the_stained_rectangle() -> None:
    image = _pink_tissue(200, 300, (50, 150, 100, 250))
    mask = detect_tissue(image, mpp=8.0, min_object_um2=1000, max_hole_um2=1000)
    truth = np.zeros(mask.shape, bool)
    truth[50:150, 100:250] = True
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.95


def test_tinted_glass_is_still_glass() -> None:
    # A stained site's glass can be 0.12 saturated, but it stays bright.
    image = _pink_tissue(200, 300, (50, 150, 100, 250))
    image[image[..., 0] == 242] = (245, 232, 215)
    mask = detect_tissue(image, mpp=8.0, min_object_um2=1000, max_hole_um2=1000)
    truth = np.zeros(mask.shape, bool)
    truth[50:150, 100:250] = True
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95


@pytest.mark.realdata
def test_fields_of_view_without_glass_are_tissue_throughout(shared_data: Path) -> None:
    # MoNuSeg's 1000² images are cut from tissue: Otsu alone would split pale from dark
    # tissue and the speck filter would then drop most of it.
    images = sorted((shared_data / "nuclei" / "monuseg" / "train" / "images").glob("*.tif"))
    fractions = []
    for path in images[::3]:
        with open_slide(path, mpp=0.25) as slide:
            fractions.append(compute_tissue_mask(slide, mpp=2.0).tissue_fraction)
    assert min(fractions) > 0.9, fractions


def test_blank_slide_has_no_tissue() -> None:
    image = np.full((100, 100, 3), 240, np.uint8)
    assert not detect_tissue(image, mpp=8.0).any()


def test_grid_shape_and_level0_boxes() -> None:
    grid = TileGrid(10_000, 6_000, base_mpp=0.25, mpp=1.0, tile_size=256, stride=256)
    assert grid.factor == 4
    # 2500×1500 px at 1 µm/px → 10 columns (last one past the edge), 6 rows.
    assert grid.shape == (6, 10)
    tile = grid.tile(3, 2)
    assert (tile.x, tile.y, tile.width, tile.height) == (3072, 2048, 1024, 1024)
    overlapping = TileGrid(10_000, 6_000, base_mpp=0.25, mpp=1.0, tile_size=256, stride=128)
    assert overlapping.shape == (11, 19)
    assert len(list(overlapping)) == 11 * 19


def test_a_flush_grid_ends_at_the_slide_s_edge() -> None:
    # 2500×1500 px at 1 µm/px: the last column would start at 2304 and reach 2560.
    grid = TileGrid(10_000, 6_000, base_mpp=0.25, mpp=1.0, tile_size=256, stride=256,
                    flush=True)
    assert grid.shape == (6, 10)
    tiles = list(grid)
    assert max(t.x + t.width for t in tiles) == 10_000 - 10_000 % 4 and \
        max(t.y + t.height for t in tiles) <= 6_000
    assert grid.tile(9, 0).x == (2500 - 256) * 4 and grid.tile(8, 0).x == 8 * 1024
    assert all(t.x >= 0 and t.y >= 0 for t in tiles)
    # The tissue fractions are those of the moved tiles.
    mask = np.zeros((94, 157), bool)  # 2500×1500 µm in 16-µm mask pixels
    mask[:, 147:] = True  # the last 160 µm: only the pulled-back last column reaches it
    fractions = grid.tissue_fractions(TissueMask(mask, 16.0, 0.25))
    assert fractions[0, 9] > fractions[0, 8] >= 0
    # A slide narrower than a tile keeps its one tile at the origin.
    narrow = TileGrid(800, 800, base_mpp=0.25, mpp=1.0, tile_size=256, stride=256, flush=True)
    assert narrow.shape == (1, 1) and narrow.tile(0, 0).x == 0


def test_grid_refuses_nonsense() -> None:
    with pytest.raises(RegionError):
        TileGrid(100, 100, base_mpp=0.25, mpp=1.0, tile_size=0, stride=256)


@pytest.mark.parametrize(("value", "expected"), [(0, 1.0), (255, 1.0), (128, 0.0)])
def test_background_fraction_counts_black_and_white(value: int, expected: float) -> None:
    assert background_fraction(np.full((8, 8, 3), value, np.uint8)) == expected


def test_tiles_over_70_percent_black_or_white_are_dropped() -> None:
    """The UGA rule: a tile on tissue is still dropped when >70% of it is black/white."""
    image = _pink_tissue(1024, 1024, (0, 1024, 0, 1024))
    image[:256, 256:512][:, : int(256 * 0.8)] = 0    # tile (1, 0): 80% black (ink, void)
    image[256:512, :256][:, : int(256 * 0.6)] = 255  # tile (0, 1): 60% white: kept
    slide = in_memory_slide(image, mpp=1.0)
    tissue = compute_tissue_mask(slide, mpp=8.0)
    tissue.mask[:] = True  # judge by pixels alone
    grid = TileGrid(1024, 1024, 1.0, 1.0, 256, 256)
    kept = {(t.spec.col, t.spec.row): t.background_fraction
            for t in iter_tissue_tiles(slide, grid, tissue)}
    assert (1, 0) not in kept
    assert kept[(0, 1)] == pytest.approx(0.6, abs=0.01)
    assert len(kept) == 15


def test_progress_counts_every_candidate_read() -> None:
    image = _pink_tissue(1024, 1024, (0, 512, 0, 1024))
    slide = in_memory_slide(image, mpp=1.0)
    tissue = compute_tissue_mask(slide, mpp=8.0)
    grid = TileGrid(1024, 1024, 1.0, 1.0, 256, 256)
    calls: list[tuple[int, int]] = []
    tiles = list(iter_tissue_tiles(slide, grid, tissue,
                                   progress=lambda d, t: calls.append((d, t))))
    assert len(tiles) == 8
    assert calls[-1] == (8, 8)


def test_thumbnail_resolution_is_capped_for_huge_slides() -> None:
    slide = in_memory_slide(np.zeros((8, 8, 3), np.uint8), mpp=0.25)
    assert thumbnail_mpp(slide, 8.0) == 8.0
    huge = in_memory_slide(np.zeros((8, 8, 3), np.uint8), mpp=0.25)
    object.__setattr__(huge.metadata, "level_dimensions", ((200_000, 100_000),))
    assert thumbnail_mpp(huge, 8.0) == pytest.approx(200_000 * 0.25 / MAX_THUMBNAIL_SIDE)
