"""Slide-level inference: raster shapes, seamless stitching, background, bounded memory."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from support.folds import ThresholdFolds
from support.records import add_slide

import pathloop.client.inference as inference
from pathloop.client.errors import RegionError
from pathloop.client.inference import (
    InferenceBlock,
    InferenceLayout,
    MapKind,
    SlidePrediction,
    predict_slide,
)
from pathloop.client.sample import write_synthetic_slide
from pathloop.client.store import Store
from pathloop.client.tiling import TissueMask, compute_tissue_mask
from pathloop.client.uncertainty import uncertainty_maps
from pathloop.client.wsi import Slide, in_memory_slide, open_slide


@pytest.fixture(scope="module")
def synthetic_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2048×1536 synthetic H&E slide at 0.5 µm/px (tissue blobs with a tumour)."""
    folder = tmp_path_factory.mktemp("synthetic")
    return write_synthetic_slide(folder, "slide", width=2048, height=1536, seed=3).slide_path


def _whole_tissue_window(layout: InferenceLayout, tissue: TissueMask) -> np.ndarray:
    whole = InferenceBlock(0, 0, 0, 0, layout.raster_height, layout.raster_width, 0, 0)
    return layout.tissue_window(tissue, whole)


def _read(store: Store, result: SlidePrediction, kind: str) -> np.ndarray:
    """A whole raster of ``result`` by its kind string."""
    return store.rasters.open_raster(result.rasters[kind]).read()


def test_rasters_cover_the_slide_at_the_model_resolution(store: Store,
                                                         synthetic_slide: Path) -> None:
    predictor = ThresholdFolds(mpp=1.0, n_classes=3)
    with open_slide(synthetic_slide) as slide:
        record = add_slide(store, "slide", 2048, 1536, 0.5)
        version = store.add_model_version(name="fake", kind="uga-ensemble")
        tissue = compute_tissue_mask(slide)
        seen: list[tuple[int, int]] = []
        result = predict_slide(slide, tissue, predictor, store.rasters, record.id,
                               model_version_id=version.id, tile_size=256, overlap=32,
                               batch_size=3, progress=lambda done, total: seen.append(
                                   (done, total)))
        width, height = slide.size_at(1.0)
    assert (width, height) == (1024, 768)
    assert result.shape == (768, 1024) and result.mpp == 1.0
    dtypes = {"prediction": "uint8", "probability": "float16", "uncertainty": "float16",
              "entropy": "float16", "mutual-information": "float16"}
    assert set(result.rasters) == set(MapKind)
    assert set(result.rasters) == set(dtypes)
    for kind, raster in result.rasters.items():
        assert raster.shape == (768, 1024)
        assert raster.mpp == 1.0
        assert raster.dtype == dtypes[kind]
        assert raster.levels >= 3  # 1024 → 512 → 256 → 128
        assert raster.model_version_id == version.id
        assert raster.downsample == ("mode" if kind == "prediction" else "mean")
        assert store.rasters.latest(record.id, kind) == raster
    opened = store.rasters.open_raster(result.uncertainty)
    assert opened.levels[1].shape == (384, 512)
    assert opened.attributes["n_folds"] == 5 and opened.attributes["overlap"] == 32
    assert seen[-1] == (result.n_tiles, result.n_tiles)
    assert 0 < result.n_tiles < 5 * 4 * 2  # cores of 224 px over 1024×768 minus glass
    prediction = _read(store, result, "prediction")
    assert set(np.unique(prediction).tolist()) == {0, 1, 2}
    uga, entropy = _read(store, result, "uncertainty"), _read(store, result, "entropy")
    mutual = _read(store, result, "mutual-information")
    assert np.all(uga >= entropy - 1e-2) and np.all(mutual <= entropy + 1e-2)
    assert float(uga.max()) > 0.5


def test_stitched_maps_equal_the_whole_image_prediction_away_from_the_border(
        store: Store, synthetic_slide: Path) -> None:
    # The fake sees a 17×17 neighbourhood (radius 8): a 16-px margin covers it.
    predictor = ThresholdFolds(mpp=1.0, radius=8, thresholds=(0.4,))
    with open_slide(synthetic_slide) as slide:
        record = add_slide(store, "slide", 2048, 1536, 0.5)
        tissue = compute_tissue_mask(slide)
        result = predict_slide(slide, tissue, predictor, store.rasters, record.id,
                               tile_size=128, overlap=32, batch_size=8)
        layout = InferenceLayout.for_slide(slide, mpp=1.0, tile_size=128, overlap=32)
        whole = slide.read_region(0, 0, 1024, 768, 1.0)
        seams = predict_slide(slide, tissue, predictor, store.rasters, record.id,
                              tile_size=96, overlap=0, batch_size=8)
    maps = uncertainty_maps(predictor.predict_folds(whole[None])[:, 0])
    on_tissue = _whole_tissue_window(layout, tissue)
    expected = np.where(on_tissue, np.argmax(maps.mean, axis=0), 0)
    expected_u = np.where(on_tissue, maps.uga, 0).astype(np.float16)
    inner = (slice(8, -8), slice(8, -8))  # the fake pads the image's edge differently
    prediction = _read(store, result, "prediction")
    assert expected[inner].any() and (expected[inner] == 0).any()
    np.testing.assert_array_equal(prediction[inner], expected[inner])
    np.testing.assert_allclose(_read(store, result, "uncertainty")[inner].astype(np.float32),
                               expected_u[inner].astype(np.float32), atol=2e-3)
    # Without overlap the same fake leaves seams along the tile borders: the test can fail.
    seamed = _read(store, seams, "uncertainty")[inner].astype(np.float32)
    assert np.abs(seamed - expected_u[inner].astype(np.float32)).max() > 0.05


def test_background_never_has_uncertainty(store: Store) -> None:
    # Glass with one pink disc; the fake's folds disagree everywhere, glass included.
    yy, xx = np.mgrid[0:1200, 0:1600]
    image = np.full((1200, 1600, 3), 242, np.uint8)
    disc = (yy - 600) ** 2 + (xx - 700) ** 2 < 350**2
    image[disc] = (205, 120, 175)
    slide = in_memory_slide(image, mpp=0.5, levels=3)
    record = add_slide(store, "disc", 1600, 1200, 0.5)
    tissue = compute_tissue_mask(slide)
    predictor = ThresholdFolds(mpp=2.0, disagreement=2.0)
    masked = predict_slide(slide, tissue, predictor, store.rasters, record.id, tile_size=96,
                           overlap=16, workers=0)
    kept = predict_slide(slide, tissue, predictor, store.rasters, record.id, tile_size=96,
                         overlap=16, mask_background=False)
    layout = InferenceLayout.for_slide(slide, mpp=2.0, tile_size=96, overlap=16)
    assert masked.shape == (300, 400)
    on_tissue = _whole_tissue_window(layout, tissue)
    assert 0.2 < on_tissue.mean() < 0.5
    for kind in ("uncertainty", "entropy", "mutual-information", "probability",
                 "prediction"):
        values = _read(store, masked, kind)
        assert not values[~on_tissue].any(), kind
    assert np.all(_read(store, masked, "uncertainty")[on_tissue] > 0)
    # Unmasked, the glass inside predicted tiles keeps the folds' disagreement.
    unmasked = _read(store, kept, "uncertainty")
    assert (unmasked[~on_tissue] > 0).sum() > 1000
    # Far from the disc nothing is predicted at all.
    assert not unmasked[:, 350:].any()


def test_no_tissue_writes_empty_rasters_without_calling_the_model(store: Store) -> None:
    slide = in_memory_slide(np.full((512, 512, 3), 245, np.uint8), mpp=0.5)
    record = add_slide(store, "glass", 512, 512, 0.5)
    predictor = ThresholdFolds(mpp=0.5)
    result = predict_slide(slide, compute_tissue_mask(slide), predictor, store.rasters,
                           record.id, tile_size=128, overlap=16)
    assert result.n_tiles == 0 and predictor.calls == 0
    assert not _read(store, result, "uncertainty").any()


class _WrongShape(ThresholdFolds):
    def predict_folds(self, images: np.ndarray) -> np.ndarray:
        return super().predict_folds(images)[:, :, :, :-1]


def test_a_predictor_with_the_wrong_output_shape_is_refused_and_nothing_is_stored(
        store: Store) -> None:
    slide = in_memory_slide(np.full((256, 256, 3), (205, 120, 175), np.uint8), mpp=0.5)
    record = add_slide(store, "pink", 256, 256, 0.5)
    with pytest.raises(ValueError, match="expected"):
        predict_slide(slide, TissueMask(np.ones((32, 32), bool), 4.0, 0.5), _WrongShape(mpp=0.5),
                      store.rasters, record.id, tile_size=64, overlap=16)
    assert store.rasters.list_rasters(record.id) == []


@pytest.mark.parametrize(("tile_size", "overlap"), [(64, 64), (64, -2), (32, 40)])
def test_impossible_tile_geometry_is_refused(store: Store, tile_size: int,
                                            overlap: int) -> None:
    slide = in_memory_slide(np.full((256, 256, 3), 200, np.uint8), mpp=0.5)
    record = add_slide(store, "grey", 256, 256, 0.5)
    with pytest.raises(RegionError):
        predict_slide(slide, compute_tissue_mask(slide), ThresholdFolds(mpp=0.5),
                      store.rasters, record.id, tile_size=tile_size, overlap=overlap)


def test_a_tissue_mask_of_another_slide_is_refused(store: Store) -> None:
    slide = in_memory_slide(np.full((256, 256, 3), 200, np.uint8), mpp=0.5)
    other = in_memory_slide(np.full((256, 256, 3), 200, np.uint8), mpp=0.25)
    record = add_slide(store, "grey", 256, 256, 0.5)
    with pytest.raises(RegionError, match="tissue mask"):
        predict_slide(slide, compute_tissue_mask(other), ThresholdFolds(mpp=0.5),
                      store.rasters, record.id)


def _tissue_slide(side: int) -> Slide:
    """A slide that is tissue everywhere (so every tile is predicted)."""
    rng = np.random.default_rng(side)
    noise = rng.integers(-25, 25, (side // 8, side // 8, 3))
    image = (np.array([200, 120, 170]) + np.kron(noise, np.ones((8, 8, 1)))).clip(0, 255)
    return in_memory_slide(image.astype(np.uint8), mpp=0.5)


def _peak_bytes(store: Store, side: int) -> int:
    slide = _tissue_slide(side)
    record = add_slide(store, f"tissue-{side}", side, side, 0.5)
    tissue = TissueMask(np.ones((side // 16, side // 16), bool), 8.0, 0.5)
    tracemalloc.start()
    try:
        result = predict_slide(slide, tissue, ThresholdFolds(mpp=0.5), store.rasters,
                               record.id, tile_size=288, overlap=32, batch_size=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.n_tiles == (side // 256) ** 2
    return peak


@pytest.mark.slow
def test_memory_does_not_grow_with_the_slide(store: Store) -> None:
    small = _peak_bytes(store, 1024)
    big = _peak_bytes(store, 3072)  # 9× the pixels; one float32 map of it is 36 MiB
    # Peaks are ~30 MB each (a batch of probabilities, pyramid blocks): any slide-sized
    # array would add at least 9 MiB (uint8) to the big slide's peak.
    assert big < 1.15 * small + 2 * 2**20, (small, big)
    assert big < 3072 * 3072 * 4, (small, big)


def test_public_surface() -> None:
    assert inference.__all__ == sorted(inference.__all__)
    assert all(hasattr(inference, name) for name in inference.__all__)


def test_inference_and_ranking_import_neither_torch_nor_nnunet() -> None:
    code = ("import sys, pathloop.client.inference, pathloop.client.ranking, "
            "pathloop.client.uncertainty; "
            "print(sorted(m for m in ('torch', 'nnunetv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
