"""Reading real slides at a resolution in µm/px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathloop.client.errors import MissingResolutionError, RegionError
from pathloop.client.wsi import in_memory_slide, open_slide
from pathloop.client.wsi.backends import TiffSlideSource
from pathloop.client.wsi.reader import Slide


def test_cmu_svs_metadata(cmu_svs: Path) -> None:
    with open_slide(cmu_svs) as slide:
        meta = slide.metadata
    assert meta.backend == "openslide"
    assert meta.vendor == "aperio"
    assert (meta.width, meta.height) == (2220, 2967)
    assert meta.level_count == 1
    assert meta.mpp == pytest.approx(0.499)
    assert meta.mpp_source == "slide"
    assert meta.objective_power == 20
    assert set(meta.associated_images) == {"label", "macro", "thumbnail"}


@pytest.mark.parametrize(("mpp", "expected"), [(1.0, (1481, 1108)), (2.0, (740, 554))])
def test_cmu_whole_slide_at_resolution(cmu_svs: Path, mpp: float,
                                       expected: tuple[int, int]) -> None:
    with open_slide(cmu_svs) as slide:
        image = slide.thumbnail(mpp)
    assert image.shape == (*expected, 3)
    assert image.dtype == np.uint8


@pytest.mark.parametrize("mpp", [1.0, 2.0])
def test_cmu_region_at_resolution_has_asked_size(cmu_svs: Path, mpp: float) -> None:
    with open_slide(cmu_svs) as slide:
        region = slide.read_region(500, 700, 256, 192, mpp)
    assert region.shape == (192, 256, 3)
    assert region.std() > 10  # tissue, not a blank fill


def test_associated_label_image(cmu_svs: Path) -> None:
    with open_slide(cmu_svs) as slide:
        label = slide.associated_image("label")
        with pytest.raises(RegionError, match="no associated image 'nope'"):
            slide.associated_image("nope")
    assert label.ndim == 3 and label.shape[2] == 3


def test_camelyon_dicom(shared_data: Path) -> None:
    with open_slide(shared_data / "wsi/multiframe_camelyon_challenge_image.dcm") as slide:
        meta = slide.metadata
        assert meta.vendor == "dicom"
        assert (meta.width, meta.height) == (1152, 700)
        assert meta.mpp == pytest.approx(28.97, abs=0.01)
        native = slide.thumbnail(meta.mpp)
        half = slide.thumbnail(2 * meta.mpp)
    assert native.shape == (700, 1152, 3)
    assert half.shape == (350, 576, 3)
    assert native.std() > 5


def test_boxes_tiff_has_four_levels_and_needs_a_resolution(shared_data: Path) -> None:
    path = shared_data / "wsi/fixtures/boxes.tiff"
    with open_slide(path) as slide:
        meta = slide.metadata
        assert meta.level_dimensions == ((300, 250), (150, 125), (75, 62), (37, 31))
        # 72 dpi is what TIFF writers put when they know no resolution.
        with pytest.raises(MissingResolutionError, match=r"boxes\.tiff: the slide records no"):
            _ = meta.mpp
    with open_slide(path, mpp=0.25) as slide:
        assert slide.metadata.mpp_source == "user"
        assert slide.best_level(4.0) == 2  # stored as 4.016: within the slack
        assert slide.best_level(8.0) == 2  # 8.086 is 1.1% coarser than asked: too coarse
        assert slide.best_level(8.1) == 3
        assert slide.best_level(3.9) == 1
        assert slide.read_region(0, 0, 37, 31, 0.25 * 8.086).shape == (31, 37, 3)


def test_real_pyramid_levels_are_used_and_agree(cmu_pyramid: Path, cmu_svs: Path) -> None:
    with open_slide(cmu_pyramid) as pyramid, open_slide(cmu_svs) as reference:
        assert pyramid.metadata.level_count == 4
        assert pyramid.metadata.mpp == pytest.approx(0.499, rel=1e-3)
        assert [pyramid.best_level(m / 0.499) for m in (0.499, 1.0, 2.0, 4.0)] == [0, 1, 2, 3]
        for mpp in (1.0, 2.0):
            a = pyramid.read_region(400, 800, 400, 400, mpp).astype(float)
            b = reference.read_region(400, 800, 400, 400, mpp).astype(float)
            assert a.shape == b.shape == (400, 400, 3)
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_tiffslide_fallback_reads_the_same_pixels(cmu_pyramid: Path) -> None:
    source = TiffSlideSource(cmu_pyramid)
    with open_slide(cmu_pyramid) as via_openslide:
        slide = Slide(source.metadata(cmu_pyramid, None), source)
        assert slide.metadata.backend == "tiffslide"
        assert slide.metadata.level_dimensions == via_openslide.metadata.level_dimensions
        a = slide.read_region(300, 300, 128, 128, 1.0).astype(int)
        b = via_openslide.read_region(300, 300, 128, 128, 1.0).astype(int)
        assert np.abs(a - b).mean() < 2
        # Outside the slide both give white glass.
        edge = slide.read_region(2100, 2900, 256, 256, 0.499)
        assert (edge[-50:, -50:] == 255).all()
        slide.close()


def test_outside_the_slide_is_white(cmu_svs: Path) -> None:
    with open_slide(cmu_svs) as slide:
        region = slide.read_region(2200, 2950, 64, 64, 0.499)
    assert (region[30:, 30:] == 255).all()
    assert region[:10, :10].std() > 0  # the corner inside the slide is tissue or glass


def test_large_reads_go_block_by_block() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(3000, 5000, 3), dtype=np.uint8)
    slide = in_memory_slide(image, mpp=0.5, levels=3)
    assert slide.read_region(0, 0, 5000, 3000, 0.5).tobytes() == image.tobytes()
    assert slide.thumbnail(2.0).shape == (750, 1250, 3)


@pytest.mark.parametrize("mpp", [0.0, -1.0, float("nan")])
def test_bad_resolution_is_refused(mpp: float) -> None:
    slide = in_memory_slide(np.zeros((10, 10, 3), np.uint8), mpp=0.5)
    with pytest.raises(RegionError, match="positive µm/px"):
        slide.read_region(0, 0, 4, 4, mpp)


def test_empty_region_is_refused() -> None:
    slide = in_memory_slide(np.zeros((10, 10, 3), np.uint8), mpp=0.5)
    with pytest.raises(RegionError, match="region size must be positive"):
        slide.read_region(0, 0, 0, 4, 0.5)
