"""Inputs are normalised as nnU-Net preprocessed the training cases; the hue augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pathloop.client.segmentation.augmentation import HueRotationTransform, hue_rotation_matrix
from pathloop.client.segmentation.normalization import normalize_batch


def _tiles(n: int = 3, size: tuple[int, int] = (40, 56), channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (n, *size, channels)).astype(np.uint8)
    base[..., 0] //= 2  # unequal channel statistics
    return base


def test_zscore_matches_nnunet_preprocessing() -> None:
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    tiles = _tiles()
    ours = normalize_batch(tiles, ["ZScoreNormalization"] * 3)
    assert ours.shape == (3, 3, 40, 56) and ours.dtype == np.float32
    assert ours.flags.c_contiguous
    plans = {
        "dataset_name": "Dataset001_x", "plans_name": "p", "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2], "image_reader_writer": "NaturalImage2DIO",
        "foreground_intensity_properties_per_channel": {
            str(c): {"mean": 0, "std": 1, "percentile_00_5": 0, "percentile_99_5": 255}
            for c in range(3)},
        "configurations": {"2d": {
            "data_identifier": "d", "preprocessor_name": "DefaultPreprocessor",
            "spacing": [1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"] * 3,
            "use_mask_for_norm": [False] * 3, "patch_size": [32, 32], "batch_size": 2,
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0,
                                          "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0,
                                         "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "architecture": {}, "batch_dice": True}},
    }
    manager = PlansManager(plans)
    preprocessor = DefaultPreprocessor(verbose=False)
    for b in range(len(tiles)):
        # nnU-Net's reader gives (C, 1, H, W) float32 with spacing (999, 1, 1).
        data = tiles[b].transpose(2, 0, 1)[:, None].astype(np.float32)
        seg = np.zeros((1, *data.shape[1:]), np.int8)
        theirs, _, _ = preprocessor.run_case_npy(
            data, seg, {"spacing": [999.0, 1.0, 1.0]}, manager,
            manager.get_configuration("2d"),
            {"labels": {"background": 0, "x": 1}, "channel_names": {"0": "R", "1": "G", "2": "B"}})
        np.testing.assert_allclose(ours[b], theirs[:, 0], atol=2e-5)


def test_other_schemes() -> None:
    tiles = _tiles(channels=4)
    tiles[..., 3] = tiles[..., 3] > 128
    out = normalize_batch(tiles, ["RGBTo01Normalization"] * 3 + ["NoNormalization"])
    np.testing.assert_allclose(out[:, 0], tiles[..., 0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(out[:, 3], tiles[..., 3])
    rescaled = normalize_batch(tiles[..., :1], ["RescaleTo01Normalization"])
    assert rescaled.min() == 0.0 and rescaled.max() == pytest.approx(1.0)
    constant = normalize_batch(np.full((1, 4, 4, 1), 9, np.uint8), ["ZScoreNormalization"])
    assert np.all(constant == 0.0)  # std 0: divided by 1e-8 after subtracting the mean
    with pytest.raises(ValueError, match="unsupported"):
        normalize_batch(tiles[..., :1], ["CTNormalization"])
    with pytest.raises(ValueError, match="expected"):
        normalize_batch(tiles, ["ZScoreNormalization"] * 3)


def test_given_statistics_replace_each_tile_s_own_for_z_scored_channels_only() -> None:
    rng = np.random.default_rng(1)
    tiles = rng.integers(0, 256, (2, 8, 8, 2)).astype(np.uint8)
    stats = np.array([[100.0, 50.0], [20.0, 10.0]])  # means, standard deviations
    out = normalize_batch(tiles, ["ZScoreNormalization", "RGBTo01Normalization"], stats=stats)
    np.testing.assert_allclose(out[:, 0], (tiles[..., 0] - 100.0) / 20.0, rtol=1e-5)
    np.testing.assert_allclose(out[:, 1], tiles[..., 1] / 255.0, rtol=1e-6)
    # Two tiles, one statistic: the same pixel value maps to the same input everywhere.
    tiles[1, 0, 0, 0] = tiles[0, 0, 0, 0]
    out = normalize_batch(tiles, ["ZScoreNormalization"] * 2, stats=stats)
    assert out[0, 0, 0, 0] == out[1, 0, 0, 0]


def test_hue_rotation_keeps_grey_and_is_a_rotation() -> None:
    matrix = hue_rotation_matrix(0.1)
    grey = torch.tensor([0.3, 0.3, 0.3])
    torch.testing.assert_close(matrix @ grey, grey)
    torch.testing.assert_close(matrix @ matrix.T, torch.eye(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(hue_rotation_matrix(1 / 3) @ torch.tensor([1.0, 0.0, 0.0]),
                               torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(hue_rotation_matrix(0.0), torch.eye(3))


def test_hue_transform_changes_colour_but_not_channel_moments() -> None:
    torch.manual_seed(0)
    image = torch.randn(4, 32, 32)
    image[0] += 2 * image[1]  # correlated channels, like stains
    transform = HueRotationTransform(0.1)
    before = image.clone()
    out = transform(image=image)["image"]
    rgb, old = out[:3].reshape(3, -1), before[:3].reshape(3, -1)
    torch.testing.assert_close(rgb.mean(1), old.mean(1), atol=1e-5, rtol=0)
    torch.testing.assert_close(rgb.std(1), old.std(1), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(rgb, old)
    torch.testing.assert_close(out[3], before[3])  # extra channels untouched
