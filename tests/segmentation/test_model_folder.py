"""Loading model folders: what is checked, and the errors for broken folders and inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from support.nnunet import NUCLEI, TrainedModel, random_model_folder

from pathloop.client.api.errors import status_code
from pathloop.client.errors import ConfigError, InputError, PathloopError
from pathloop.client.segmentation import (
    ArrayInputError,
    Channel,
    Ensemble,
    MissingFoldError,
    ModelError,
    PlansMismatchError,
    SegmentationTask,
)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_model_folder(tmp_path_factory.mktemp("random") / "model")


@pytest.fixture
def broken(random_model: Path, tmp_path: Path) -> Path:
    """A copy of the random model folder to damage."""
    return Path(shutil.copytree(random_model, tmp_path / "model"))


def _images(n: int = 2, size: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_random_model_loads_and_predicts(random_model: Path) -> None:
    ensemble = Ensemble.load(random_model)
    probs = ensemble.predict_folds(_images())
    assert probs.shape == (5, 2, 2, 64, 64)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-5)


def test_missing_fold_names_folder_and_fold(broken: Path) -> None:
    (broken / "fold_3" / "checkpoint_final.pth").unlink()
    with pytest.raises(MissingFoldError) as raised:
        Ensemble.load(broken)
    assert raised.value.fold == 3
    assert str(broken) in str(raised.value) and "fold 3 is missing" in str(raised.value)
    shutil.rmtree(broken / "fold_0")
    with pytest.raises(MissingFoldError, match="fold 0"):
        Ensemble.load(broken)


def test_plans_that_do_not_fit_the_weights(broken: Path) -> None:
    plans = json.loads((broken / "plans.json").read_text())
    plans["configurations"]["2d"]["architecture"]["arch_kwargs"]["features_per_stage"] = \
        [16, 32, 64, 128]
    (broken / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(PlansMismatchError) as raised:
        Ensemble.load(broken)
    message = str(raised.value)
    assert str(broken / "fold_0" / "checkpoint_final.pth") in message
    assert "plans.json" in message and "size mismatch" in message
    assert isinstance(raised.value, ModelError) and isinstance(raised.value, PathloopError)


def test_fewer_stages_in_the_plans_than_in_the_weights(broken: Path) -> None:
    plans = json.loads((broken / "plans.json").read_text())
    kwargs = plans["configurations"]["2d"]["architecture"]["arch_kwargs"]
    kwargs.update(n_stages=3, features_per_stage=[8, 16, 32], kernel_sizes=[[3, 3]] * 3,
                  strides=[[1, 1], [2, 2], [2, 2]], n_conv_per_stage=[2, 2, 2],
                  n_conv_per_stage_decoder=[2, 2])
    (broken / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(PlansMismatchError, match="Unexpected key"):
        Ensemble.load(broken)


def test_other_broken_folders(broken: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model folder not found"):
        Ensemble.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"pathloop-model\.json"):
        Ensemble.load(tmp_path / "empty")
    (broken / "fold_1" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot load checkpoint"):
        Ensemble.load(broken)
    (broken / "plans.json").unlink()
    with pytest.raises(ModelError, match=r"no plans\.json"):
        Ensemble.load(broken)


def test_labels_of_the_card_and_dataset_json_must_agree(broken: Path) -> None:
    meta = json.loads((broken / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "tumour": 1}
    (broken / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="labels"):
        Ensemble.load(broken)


def test_pickled_objects_are_refused(broken: Path) -> None:
    import torch

    path = broken / "fold_2" / "checkpoint_final.pth"
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["sneaky"] = Path("/etc/passwd")  # any class outside the allow-list
    torch.save(checkpoint, path)
    with pytest.raises(ModelError, match="cannot load checkpoint"):
        Ensemble.load(broken)


def test_unknown_device(random_model: Path) -> None:
    with pytest.raises(ConfigError, match="device"):
        Ensemble.load(random_model, device="tpu")
    with pytest.raises(ConfigError, match="no CUDA"):
        Ensemble.load(random_model, device="cuda")


@pytest.mark.parametrize(("images", "expected"), [
    (np.zeros((64, 64, 3), np.uint8), r"\(B, H, W, 3\) uint8"),  # one tile without batch axis
    (np.zeros((2, 64, 64, 4), np.uint8), r"\(2, 64, 64, 4\)"),  # RGBA
    (np.zeros((2, 3, 64, 64), np.uint8), r"\(2, 3, 64, 64\)"),  # channels first
    (np.zeros((2, 64, 64, 3), np.float32), "float32"),
    (np.zeros((0, 64, 64, 3), np.uint8), r"B, H, W >= 1"),
    ([[[[0, 0, 0]]]], "numpy array"),
])
def test_wrong_inputs_are_refused(random_model: Path, images: object, expected: str) -> None:
    ensemble = Ensemble.load(random_model)
    with pytest.raises(ArrayInputError, match=expected) as raised:
        ensemble.predict_folds(images)  # type: ignore[arg-type]
    assert isinstance(raised.value, InputError) and status_code(raised.value) == 422
    assert "images" in str(raised.value)


def test_extra_channel_models_need_the_extra_input(tmp_path: Path) -> None:
    task = SegmentationTask("upgrade", {"background": 0, "nucleus": 1},
                            extra_channels=(Channel("lowquality_mask"),))
    ensemble = Ensemble.load(random_model_folder(tmp_path / "upgrade", task, n_folds=2))
    images = _images()
    extra = (images[..., :1] > 128).astype(np.uint8)
    assert ensemble.predict_folds(images, extra).shape == (2, 2, 2, 64, 64)
    with pytest.raises(ArrayInputError, match="extra"):
        ensemble.predict_folds(images)
    with pytest.raises(ArrayInputError, match=r"extra: expected \(2, 64, 64, 1\)"):
        ensemble.predict_folds(images, extra[:1])
    plain = Ensemble.load(random_model_folder(tmp_path / "plain", NUCLEI, n_folds=2))
    with pytest.raises(ArrayInputError, match="no extra channels"):
        plain.predict_folds(images, extra)


@pytest.mark.slow
@pytest.mark.realdata
def test_trained_model_with_a_missing_fold_or_edited_plans(tiny_model: TrainedModel,
                                                           model_copy: Path) -> None:
    plans = json.loads((model_copy / "plans.json").read_text())
    plans["configurations"]["2d"]["architecture"]["arch_kwargs"]["features_per_stage"] = \
        [8, 16, 32, 32]
    (model_copy / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(PlansMismatchError, match="fold_0"):
        Ensemble.load(model_copy)
    shutil.copyfile(tiny_model.model_dir / "plans.json", model_copy / "plans.json")
    Ensemble.load(model_copy)
    (model_copy / "fold_4" / "checkpoint_final.pth").unlink()
    with pytest.raises(MissingFoldError, match="fold 4"):
        Ensemble.load(model_copy)


@pytest.mark.parametrize(("key", "value"), [("network_class_name", "subprocess.Popen"),
                                            ("conv_op", "os.system")])
def test_plans_naming_other_callables_are_refused(broken: Path, key: str, value: str) -> None:
    plans = json.loads((broken / "plans.json").read_text())
    architecture = plans["configurations"]["2d"]["architecture"]
    (architecture if key == "network_class_name" else architecture["arch_kwargs"])[key] = value
    (broken / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ModelError, match=f"refusing to import '{value}'"):
        Ensemble.load(broken)
