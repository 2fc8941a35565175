"""A real tiny 5-fold nnU-Net trained on MoNuSeg tiles, loaded and predicting (CI runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.nnunet import TEST_PROFILE, TILE_MPP, TrainedModel, train

from pathloop.client.segmentation import Case, Ensemble, FoldPredictor, ModelCard
from pathloop.client.segmentation.model_card import CARD_NAME, checkpoint_path

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def _dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    both = np.logical_and(prediction, truth).sum()
    return float(2 * both / max(prediction.sum() + truth.sum(), 1))


def test_training_writes_a_complete_model_folder(tiny_model: TrainedModel) -> None:
    root = tiny_model.model_dir
    for fold in range(5):
        assert checkpoint_path(root, fold).is_file()
        assert (root / f"fold_{fold}" / "training_log.txt").is_file()
    for name in ("plans.json", "dataset.json", "dataset_fingerprint.json", CARD_NAME,
                 "logs/nnunet.log"):
        assert (root / name).is_file(), name
    # nnU-Net's chatter went to the log, not to the console.
    assert "Epoch" in (root / "logs" / "nnunet.log").read_text()
    # No case list (names may identify slides) in the model folder's dataset.json.
    assert "dataset" not in json.loads((root / "dataset.json").read_text())
    plans = json.loads((root / "plans.json").read_text())
    arch = plans["configurations"]["2d"]["architecture"]["arch_kwargs"]
    assert arch["features_per_stage"] == [8, 16, 32, 64]
    assert arch["strides"] == [[1, 1], [2, 2], [2, 2], [2, 2]]
    assert plans["configurations"]["2d"]["patch_size"] == [128, 128]
    assert plans["configurations"]["2d"]["normalization_schemes"] == \
        ["ZScoreNormalization"] * 3

    card = ModelCard.read(root)
    assert card == tiny_model.card
    assert card.folds == (0, 1, 2, 3, 4)
    assert card.mpp == TILE_MPP
    assert card.task.label_names == ("background", "nucleus")
    assert card.profile["num_epochs"] == TEST_PROFILE.num_epochs
    assert card.n_training_cases == 32
    assert card.parent is None
    stages = [e.stage for e in tiny_model.events]
    assert stages == ["prepare", *["fold"] * 5, "done"]
    # The nnUNet_* variables were set for nnU-Net only and restored afterwards.
    assert tiny_model.env_after == tiny_model.env_before


def test_checkpoints_load_with_weights_only(tiny_model: TrainedModel) -> None:
    checkpoint = torch.load(checkpoint_path(tiny_model.model_dir, 0), map_location="cpu",
                            weights_only=True)
    assert checkpoint["trainer_name"] == "nnUNetTrainer"
    assert checkpoint["init_args"]["configuration"] == "2d"
    assert all(isinstance(v, torch.Tensor) for v in checkpoint["network_weights"].values())


def test_nnunet_own_predictor_reads_the_model_folder(tiny_model: TrainedModel) -> None:
    """The benchmark's peer path runs nnU-Net's predictor on our folders."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False,
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(tiny_model.model_dir), use_folds=(0, 4))
    assert len(predictor.list_of_parameters) == 2


def test_ensemble_predicts_every_fold(ensemble: Ensemble, monuseg_cases: list[Case]) -> None:
    assert isinstance(ensemble, FoldPredictor)
    assert (ensemble.n_folds, ensemble.n_classes) == (5, 2)
    assert ensemble.label_names == ("background", "nucleus")
    assert ensemble.mpp == TILE_MPP
    assert ensemble.patch_size == (128, 128)
    assert ensemble.total_stride == (8, 8)

    tiles = monuseg_cases[:6]
    images = np.stack([c.image for c in tiles])
    probs = ensemble.predict_folds(images)
    assert probs.shape == (5, 6, 2, 256, 256)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-5)
    assert probs.min() >= 0.0
    # Folds were trained on different cases: they disagree somewhere.
    assert np.abs(probs[0] - probs[1]).max() > 0.05
    assert np.abs(probs[0] - probs[1]).mean() > 1e-3

    truth = np.stack([c.mask for c in tiles]) == 1
    prediction = probs.mean(axis=0).argmax(axis=1) == 1
    dice = _dice(prediction, truth)
    all_background = _dice(np.zeros_like(truth), truth)
    all_foreground = _dice(np.ones_like(truth), truth)
    assert dice > all_background
    assert dice > all_foreground, (dice, all_foreground)


def test_batching_and_padding_do_not_change_results(ensemble: Ensemble,
                                                    monuseg_cases: list[Case]) -> None:
    images = np.stack([c.image for c in monuseg_cases[:3]])
    whole = ensemble.predict_folds(images, batch_size=8)
    one_by_one = ensemble.predict_folds(images, batch_size=1)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-5)

    # 250 × 203 is no multiple of the total stride 8: padded, predicted, cropped back.
    odd = ensemble.predict_folds(np.ascontiguousarray(images[:2, :250, :203]))
    assert odd.shape == (5, 2, 2, 250, 203)
    np.testing.assert_allclose(odd.sum(axis=2), 1.0, atol=1e-5)
    tiny = ensemble.predict_folds(images[:1, :5, :7])
    assert tiny.shape == (5, 1, 2, 5, 7)


def test_fine_tuning_starts_from_the_parent_weights(
    tiny_model: TrainedModel, monuseg_cases: list[Case], tmp_path: Path
) -> None:
    # Three iterations could not teach a fresh network anything: a good Dice afterwards
    # shows the folds started from the parent's weights. The hue augmentation runs too.
    profile = TEST_PROFILE.with_overrides(num_epochs=1, iterations_per_epoch=3,
                                          hue_shift=0.05, initial_lr=1e-3)
    child = train(monuseg_cases, tmp_path, profile=profile, parent=tiny_model.model_dir)
    assert child.card.parent is not None
    assert child.card.parent["created"] == tiny_model.card.created
    assert child.card.profile["hue_shift"] == 0.05
    fold_log = (child.model_dir / "fold_0" / "training_log.txt").read_text()
    assert "pathloop: hue rotation" in fold_log

    tiles = monuseg_cases[:6]
    images = np.stack([c.image for c in tiles])
    truth = np.stack([c.mask for c in tiles]) == 1
    parent_mean = Ensemble.load(tiny_model.model_dir).predict_folds(images).mean(axis=0)
    child_mean = Ensemble.load(child.model_dir).predict_folds(images).mean(axis=0)
    child_dice = _dice(child_mean.argmax(axis=1) == 1, truth)
    shift = float(np.abs(child_mean - parent_mean).mean())
    print(f"fine-tuned Dice {child_dice:.3f}, mean probability shift {shift:.3f}")
    assert child_dice > _dice(np.ones_like(truth), truth)
    assert shift < 0.1
    # ... and training did move the weights.
    before = torch.load(checkpoint_path(tiny_model.model_dir, 2), weights_only=True)
    after = torch.load(checkpoint_path(child.model_dir, 2), weights_only=True)
    key = next(k for k in before["network_weights"] if k.endswith("weight"))
    assert not torch.equal(before["network_weights"][key], after["network_weights"][key])


def test_a_seeded_profile_repeats_its_training_exactly(monuseg_cases: list[Case],
                                                        tmp_path: Path) -> None:
    profile = TEST_PROFILE.with_overrides(n_folds=2, num_epochs=1, iterations_per_epoch=2)
    cases = monuseg_cases[:6]

    def weights(name: str, seed: int) -> dict[str, torch.Tensor]:
        model = train(cases, tmp_path / name, profile=profile.with_overrides(seed=seed))
        return dict(torch.load(checkpoint_path(model.model_dir, 1),
                               weights_only=True)["network_weights"])

    first, again, other = weights("a", 7), weights("b", 7), weights("c", 8)
    assert first.keys() == again.keys() == other.keys()
    def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        return max(float((a[key].float() - b[key].float()).abs().max()) for key in a)

    # The same seed repeats the run up to rounding (a busy CPU can reorder the threads' sums:
    # ~1e-7 seen); another seed starts from other weights and draws other patches (~1).
    assert largest_difference(first, again) < 1e-4
    assert largest_difference(first, other) > 0.1
