"""Each fold of :class:`Ensemble` gives what nnU-Net's own predictor gives for that fold.

The oracle is nnU-Net's code end to end: its preprocessor (``run_case_npy``, the plans'
normalisation), its padding and sliding window (``predict_sliding_window_return_logits``,
no mirroring), its network built by its predictor with each entry of
``predictor.list_of_parameters``. Tiles no larger than the training patch are one window
for nnU-Net and one forward pass for us, so the two must agree up to nnU-Net's float16
accumulation: it stores ``logit · g`` (g its Gaussian weight, 10 at the window's centre,
~1e-6 at its corners) in float16 and divides by g again in float16. Each rounding is
relative 2⁻¹¹ in float16's normal range; below it (|logit · g| < 6e-5) the spacing is an
absolute 2⁻²⁴, which the division magnifies by 1/g. Odd sizes check the padding (nnU-Net
centres it); a transposed input is the negative control showing the comparison can fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch
from support.nnunet import TrainedModel

from pathloop.client.segmentation import Case

if TYPE_CHECKING:
    from pathloop.client.segmentation import Ensemble

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

#: (rows, columns) of the tiles compared: the patch, odd sides, one side short.
SIZES = ((128, 128), (101, 77), (128, 93), (64, 120))
#: |ours − nnU-Net| ≤ RELATIVE·|logit| + SUBNORMAL/g + ABSOLUTE: two float16 roundings of
#: at most 2⁻¹¹ relative each, float16's spacing below its normal range divided by the
#: window's Gaussian weight g there, and float32's own rounding.
RELATIVE = 2.0 ** -10
SUBNORMAL = 2.0 ** -24
ABSOLUTE = 1e-4


@pytest.fixture(scope="module")
def float32_ensemble(tiny_model: TrainedModel) -> Ensemble:
    from pathloop.client.segmentation import Ensemble

    return Ensemble.load(tiny_model.model_dir, precision="float32")


@pytest.fixture(scope="module")
def predictor(tiny_model: TrainedModel) -> Any:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=False,
                                device=torch.device("cpu"), verbose=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(tiny_model.model_dir),
                                                   use_folds=tiny_model.card.folds)
    return predictor


def _tiles(cases: list[Case]) -> Iterator[np.ndarray]:
    """One crop of a different MoNuSeg tile for each size, at a different offset."""
    for i, (rows, cols) in enumerate(SIZES):
        image = cases[3 * i].image
        top, left = 7 * i + 3, 11 * i + 5
        yield np.ascontiguousarray(image[top:top + rows, left:left + cols])


def _nnunet_fold_logits(predictor: Any, image: np.ndarray) -> np.ndarray:
    """``(K, C, H, W)`` float32 logits of every fold, computed by nnU-Net alone."""
    data = image.transpose(2, 0, 1)[:, None].astype(np.float32)  # (C, 1, H, W) as its 2D IO
    spacing = [999.0, *predictor.configuration_manager.spacing]  # no resampling
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    normalised, _, _ = preprocessor.run_case_npy(
        data, None, {"spacing": spacing}, predictor.plans_manager,
        predictor.configuration_manager, predictor.dataset_json)
    assert normalised.shape[1:] == data.shape[1:], "nnU-Net cropped or resampled the tile"
    folds = []
    for parameters in predictor.list_of_parameters:
        predictor.network.load_state_dict(parameters)
        logits = predictor.predict_sliding_window_return_logits(torch.from_numpy(normalised))
        folds.append(logits[:, 0].float().numpy())
    return np.stack(folds)


def _gaussian_under(tile: tuple[int, int], patch: tuple[int, int]) -> np.ndarray:
    """nnU-Net's float16 Gaussian weight under each pixel of a tile padded (centred) to one
    window, as its predictor computes it."""
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian

    weights = compute_gaussian(patch, sigma_scale=1.0 / 8, value_scaling_factor=10,
                               device=torch.device("cpu")).float().numpy()
    top, left = (patch[0] - tile[0]) // 2, (patch[1] - tile[1]) // 2
    return weights[top:top + tile[0], left:left + tile[1]]


def _worst_excess(ours: np.ndarray, theirs: np.ndarray, patch: tuple[int, int]) -> float:
    """How far the largest difference is above the float16 bound (≤ 0 means within)."""
    weights = _gaussian_under(theirs.shape[-2:], patch)
    bound = RELATIVE * np.abs(theirs) + SUBNORMAL / weights + ABSOLUTE
    return float((np.abs(ours - theirs) - bound).max())


@pytest.mark.parametrize("index", range(len(SIZES)), ids=[f"{r}x{c}" for r, c in SIZES])
def test_every_fold_matches_nnunet(float32_ensemble: Ensemble, predictor: Any,
                                   monuseg_cases: list[Case], index: int) -> None:
    image = list(_tiles(monuseg_cases))[index]
    theirs = _nnunet_fold_logits(predictor, image)
    ours = float32_ensemble.predict_logits(image[None])[:, 0]
    assert ours.shape == theirs.shape == (5, 2, *image.shape[:2])
    assert _worst_excess(ours, theirs, float32_ensemble.patch_size) <= 0, \
        np.abs(ours - theirs).max()

    # The probabilities the uncertainty is made from are the softmax of those logits.
    probabilities = float32_ensemble.predict_folds(image[None])[:, 0]
    np.testing.assert_allclose(probabilities, torch.softmax(torch.from_numpy(ours), 1),
                               atol=1e-6)
    # The folds differ from each other by far more than from nnU-Net: the bound is tight.
    assert np.abs(theirs[0] - theirs[1]).mean() > 100 * np.abs(ours - theirs).mean()


def test_a_transposed_tile_is_caught(float32_ensemble: Ensemble, predictor: Any,
                                     monuseg_cases: list[Case]) -> None:
    """Negative control: feeding the tile with rows and columns swapped fails the check."""
    image = next(_tiles(monuseg_cases))  # square, so a swapped axis order still runs
    theirs = _nnunet_fold_logits(predictor, image)
    swapped = float32_ensemble.predict_logits(
        np.ascontiguousarray(image.transpose(1, 0, 2))[None])[:, 0]
    assert _worst_excess(swapped, theirs, float32_ensemble.patch_size) > 0.1
