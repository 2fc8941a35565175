"""Slide-level inference: raster shapes, Gaussian-blended windows, work order, background,
bounded memory."""

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
    InferenceLayout,
    MapKind,
    Region,
    SlidePrediction,
    gaussian_importance,
    predict_slide,
    window_origins,
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
    whole = Region(0, 0, layout.raster_height, layout.raster_width)
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
                               model_version_id=version.id, batch_size=3,
                               progress=lambda done, total: seen.append((done, total)))
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
    assert opened.attributes["n_folds"] == 5 and opened.attributes["patch"] == [64, 64]
    assert opened.attributes["step"] == [32, 32]
    assert seen[-1] == (result.n_windows, result.n_windows)
    # Windows 32 px apart over 1024×768 px (33 × 25 lattice points), minus those on glass.
    assert 0 < result.n_windows < 33 * 25
    prediction = _read(store, result, "prediction")
    assert set(np.unique(prediction).tolist()) == {0, 1, 2}
    uga, entropy = _read(store, result, "uncertainty"), _read(store, result, "entropy")
    mutual = _read(store, result, "mutual-information")
    assert np.all(uga >= entropy - 1e-2) and np.all(mutual <= entropy + 1e-2)
    assert float(uga.max()) > 0.5


def _blend_whole_image(predictor: ThresholdFolds, image: np.ndarray, step: int
                       ) -> np.ndarray:
    """Every lattice window of ``image`` predicted and Gaussian-blended in one array: the
    definition :func:`predict_slide` must match, written as plainly as possible."""
    patch = predictor.patch_size
    height, width = image.shape[:2]
    pad = 2 * max(patch)
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=255)
    weights = gaussian_importance(patch)
    logits = np.zeros((predictor.n_folds, predictor.n_classes, height + 2 * pad,
                       width + 2 * pad), np.float32)
    total = np.zeros((height + 2 * pad, width + 2 * pad), np.float32)
    for y in window_origins(0, height, patch[0], step):
        for x in window_origins(0, width, patch[1], step):
            window = padded[None, pad + y:pad + y + patch[0], pad + x:pad + x + patch[1]]
            rows = slice(pad + y, pad + y + patch[0])
            cols = slice(pad + x, pad + x + patch[1])
            logits[:, :, rows, cols] += predictor.predict_logits(window)[:, 0] * weights
            total[rows, cols] += weights
    mean = logits[:, :, pad:-pad, pad:-pad] / total[pad:-pad, pad:-pad]
    probs = np.exp(mean - mean.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def test_maps_are_the_gaussian_blend_of_every_window_of_the_slide(
        store: Store, synthetic_slide: Path) -> None:
    # The fake sees a 17×17 neighbourhood (radius 8), edge-padded at a window's border: like
    # a network, its output near a window's edge differs from that in the window's middle.
    predictor = ThresholdFolds(mpp=1.0, radius=8, thresholds=(0.4,), patch_size=(64, 64))
    with open_slide(synthetic_slide) as slide:
        record = add_slide(store, "slide", 2048, 1536, 0.5)
        tissue = compute_tissue_mask(slide)
        # Stripes of 256 columns: several stripes and bands, windows on two stripes.
        result = predict_slide(slide, tissue, predictor, store.rasters, record.id,
                               batch_size=7, stripe=256)
        layout = InferenceLayout.for_slide(slide, mpp=1.0, patch=(64, 64))
        whole = slide.read_region(0, 0, 1024, 768, 1.0)
        seams = predict_slide(slide, tissue, predictor, store.rasters, record.id, step=1.0)
    maps = uncertainty_maps(_blend_whole_image(predictor, whole, 32))
    on_tissue = _whole_tissue_window(layout, tissue)
    expected = np.where(on_tissue, np.argmax(maps.mean, axis=0), 0)
    expected_u = np.where(on_tissue, maps.uga, 0).astype(np.float32)
    prediction = _read(store, result, "prediction")
    assert expected.any() and (expected == 0).any()
    assert (prediction != expected).mean() < 1e-4  # argmax ties at float16-level margins
    np.testing.assert_allclose(_read(store, result, "uncertainty").astype(np.float32),
                               expected_u, atol=2e-3)
    # Windows that do not overlap leave steps at their borders: the comparison can fail.
    seamed = _read(store, seams, "uncertainty").astype(np.float32)
    assert np.abs(seamed - expected_u).max() > 0.05


def test_the_order_of_work_does_not_change_the_maps(store: Store,
                                                    synthetic_slide: Path) -> None:
    predictor = ThresholdFolds(mpp=1.0, radius=8, thresholds=(0.4,), patch_size=(96, 96))
    with open_slide(synthetic_slide) as slide:
        record = add_slide(store, "slide", 2048, 1536, 0.5)
        tissue = compute_tissue_mask(slide)
        first = predict_slide(slide, tissue, predictor, store.rasters, record.id)
        # Band and stripe boundaries moved by half a chunk, narrower stripes, read-ahead.
        moved = predict_slide(slide, tissue, predictor, store.rasters, record.id, phase=256,
                              stripe=384, batch_size=5, workers=1)
    for kind in ("probability", "uncertainty", "entropy", "mutual-information"):
        a = _read(store, first, kind).astype(np.float32)
        b = _read(store, moved, kind).astype(np.float32)
        assert a.any()
        np.testing.assert_allclose(a, b, atol=2e-3, err_msg=kind)
    assert moved.n_windows > first.n_windows  # windows on two stripes are predicted twice


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
    masked = predict_slide(slide, tissue, predictor, store.rasters, record.id, workers=0)
    kept = predict_slide(slide, tissue, predictor, store.rasters, record.id,
                         mask_background=False)
    layout = InferenceLayout.for_slide(slide, mpp=2.0, patch=predictor.patch_size)
    assert masked.shape == (300, 400)
    on_tissue = _whole_tissue_window(layout, tissue)
    assert 0.2 < on_tissue.mean() < 0.5
    for kind in ("uncertainty", "entropy", "mutual-information", "probability",
                 "prediction"):
        values = _read(store, masked, kind)
        assert not values[~on_tissue].any(), kind
    assert np.all(_read(store, masked, "uncertainty")[on_tissue] > 0)
    # Unmasked, the glass that windows covered keeps the folds' disagreement.
    unmasked = _read(store, kept, "uncertainty")
    assert (unmasked[~on_tissue] > 0).sum() > 1000
    # Far from the disc nothing is predicted at all.
    assert not unmasked[:, 350:].any()


def test_no_tissue_writes_empty_rasters_without_calling_the_model(store: Store) -> None:
    slide = in_memory_slide(np.full((512, 512, 3), 245, np.uint8), mpp=0.5)
    record = add_slide(store, "glass", 512, 512, 0.5)
    predictor = ThresholdFolds(mpp=0.5)
    result = predict_slide(slide, compute_tissue_mask(slide), predictor, store.rasters,
                           record.id)
    assert result.n_windows == 0 and predictor.calls == 0
    assert not _read(store, result, "uncertainty").any()


class _WrongShape(ThresholdFolds):
    def predict_logits(self, images: np.ndarray, *, stats: np.ndarray | None = None
                       ) -> np.ndarray:
        return super().predict_logits(images)[:, :, :, :-1]


class _NotFinite(ThresholdFolds):
    def predict_logits(self, images: np.ndarray, *, stats: np.ndarray | None = None
                       ) -> np.ndarray:
        out = super().predict_logits(images)
        out[0, 0, 0, 0, 0] = np.nan
        return out


def test_a_predictor_with_the_wrong_output_shape_is_refused_and_nothing_is_stored(
        store: Store) -> None:
    slide = in_memory_slide(np.full((256, 256, 3), (205, 120, 175), np.uint8), mpp=0.5)
    record = add_slide(store, "pink", 256, 256, 0.5)
    tissue = TissueMask(np.ones((32, 32), bool), 4.0, 0.5)
    with pytest.raises(ValueError, match="expected"):
        predict_slide(slide, tissue, _WrongShape(mpp=0.5), store.rasters, record.id)
    with pytest.raises(ValueError, match="non-finite"):
        predict_slide(slide, tissue, _NotFinite(mpp=0.5), store.rasters, record.id)
    assert store.rasters.list_rasters(record.id) == []


@pytest.mark.parametrize(("patch", "step", "error"), [
    ((0, 64), 0.5, RegionError), ((64, 64), 0.0, ValueError), ((64, 64), 1.5, ValueError)])
def test_impossible_window_geometry_is_refused(store: Store, patch: tuple[int, int],
                                              step: float, error: type[Exception]) -> None:
    slide = in_memory_slide(np.full((256, 256, 3), 200, np.uint8), mpp=0.5)
    record = add_slide(store, "grey", 256, 256, 0.5)
    with pytest.raises(error):
        predict_slide(slide, compute_tissue_mask(slide),
                      ThresholdFolds(mpp=0.5, patch_size=patch), store.rasters, record.id,
                      step=step)


def test_a_tissue_mask_of_another_slide_is_refused(store: Store) -> None:
    slide = in_memory_slide(np.full((256, 256, 3), 200, np.uint8), mpp=0.5)
    other = in_memory_slide(np.full((256, 256, 3), 200, np.uint8), mpp=0.25)
    record = add_slide(store, "grey", 256, 256, 0.5)
    with pytest.raises(RegionError, match="tissue mask"):
        predict_slide(slide, compute_tissue_mask(other), ThresholdFolds(mpp=0.5),
                      store.rasters, record.id)


def _tissue_slide(side: int) -> Slide:
    """A slide that is tissue everywhere (so every window is predicted)."""
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
        result = predict_slide(slide, tissue, ThresholdFolds(mpp=0.5, patch_size=(128, 128)),
                               store.rasters, record.id, batch_size=2, stripe=512)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_stripe = len(window_origins(0, 512, 128, 64))
    assert result.n_windows == len(window_origins(0, side, 128, 64)) * per_stripe * side // 512
    return peak


@pytest.mark.slow
def test_memory_does_not_grow_with_the_slide(store: Store) -> None:
    # From 2048² px on, the pyramid build reads its largest block (2048² of level 0), so
    # what is left to grow is inference itself.
    small = _peak_bytes(store, 2048)
    big = _peak_bytes(store, 4096)  # 4× the pixels; one float32 map of it is 64 MiB
    # Peaks are ~110 MB each (pyramid blocks, a band's accumulator, a batch of logits): any
    # slide-sized array would add at least 16 MiB (uint8) to the big slide's peak.
    assert big - small < 4096 * 4096 // 2, (small, big)  # half a uint8 map of the big slide


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
