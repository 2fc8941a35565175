"""The light parts: environment handling, profiles, the protocol and its numpy fake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.folds import ThresholdFolds

import pathloop.client.segmentation as segmentation
from pathloop.client.errors import ConfigError
from pathloop.client.segmentation import (
    NNUNET,
    TINY,
    ArrayInputError,
    FoldPredictor,
    get_profile,
)
from pathloop.client.segmentation.environment import captured_output, nnunet_environment


def test_nnunet_variables_are_set_inside_and_restored_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("nnUNet_raw", "/somewhere/else")
    monkeypatch.setenv("nnUNet_extTrainer", "/stray/trainers")
    monkeypatch.delenv("nnUNet_results", raising=False)
    with nnunet_environment(raw=tmp_path / "raw", results=tmp_path / "results",
                            n_proc_data_augmentation=0):
        inside = dict(os.environ)
    after = dict(os.environ)
    assert inside["nnUNet_raw"] == str(tmp_path / "raw")
    assert inside["nnUNet_results"] == str(tmp_path / "results")
    assert inside["nnUNet_n_proc_DA"] == "0"
    assert inside["nnUNet_compile"] == "f"
    assert "nnUNet_preprocessed" not in inside
    assert "nnUNet_extTrainer" not in inside  # a stray shell value never reaches nnU-Net
    assert after["nnUNet_raw"] == "/somewhere/else"
    assert after["nnUNet_extTrainer"] == "/stray/trainers"
    assert "nnUNet_results" not in after
    assert "nnUNet_n_proc_DA" not in after

    with pytest.raises(RuntimeError), nnunet_environment(raw=tmp_path):
        raise RuntimeError("nnU-Net failed")
    assert dict(os.environ)["nnUNet_raw"] == "/somewhere/else"


def test_captured_output_goes_to_the_log(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "logs" / "nnunet.log"
    with captured_output(log):
        print("Please cite the following paper")
        print("a warning", file=sys.stderr)
    print("after")
    assert capsys.readouterr().out == "after\n"
    assert log.read_text() == "Please cite the following paper\na warning\n"


def test_importing_the_package_does_not_import_torch() -> None:
    code = ("import sys, pathloop.client.segmentation, pathloop.client.segmentation.protocol;"
            "print('torch' in sys.modules, 'nnunetv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


def test_public_surface() -> None:
    # ruff's isort-style order: constants, then everything else alphabetically.
    assert segmentation.__all__ == sorted(segmentation.__all__,
                                          key=lambda n: (not n.isupper(), n))
    for name in segmentation.__all__:
        assert getattr(segmentation, name) is not None, name
    with pytest.raises(AttributeError):
        _ = segmentation.NoSuchThing


def test_profiles() -> None:
    assert get_profile("tiny") is TINY and get_profile("nnunet") is NNUNET
    assert TINY.architecture is not None
    assert TINY.architecture.total_stride == (8, 8)
    assert TINY.patch_size == (128, 128) and TINY.batch_size == 4
    assert NNUNET.architecture is None and NNUNET.num_epochs is None  # nnU-Net's own
    short = TINY.with_overrides(num_epochs=1)
    assert short.num_epochs == 1 and TINY.num_epochs != 1
    assert short.to_json()["architecture"]["strides"][1] == [2, 2]
    with pytest.raises(ConfigError, match="unknown training profile"):
        get_profile("huge")
    with pytest.raises(ConfigError, match="total stride"):
        TINY.with_overrides(patch_size=(100, 128))
    with pytest.raises(ConfigError, match="hue_shift"):
        TINY.with_overrides(hue_shift=2.0)
    assert TINY.with_overrides(n_folds=1).n_folds == 1  # a single network (80/20 split)
    with pytest.raises(ConfigError, match="n_folds must be >= 1"):
        TINY.with_overrides(n_folds=0)


def test_fake_predictor_keeps_the_contract() -> None:
    fake = ThresholdFolds(n_folds=5, n_classes=3, mpp=0.5)
    assert isinstance(fake, FoldPredictor)
    ramp = np.repeat(np.linspace(255, 0, 64, dtype=np.float32)[None, :], 16, axis=0)
    images = np.stack([ramp, ramp[::-1]])[..., None].repeat(3, axis=3).astype(np.uint8)
    probs = fake.predict_folds(images)
    assert probs.shape == (5, 2, 3, 16, 64) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-5)
    classes = probs.mean(axis=0).argmax(axis=1)[0, 0]
    assert classes[0] == 0 and classes[-1] == 2  # glass → background, dark → top class
    spread = np.abs(probs[0] - probs[-1]).max(axis=(0, 1))  # (H, W) fold disagreement
    assert spread.max() > 0.3 and spread[:, 0].max() < 0.05
    with pytest.raises(ArrayInputError, match="images"):
        fake.predict_folds(images[..., :2])
