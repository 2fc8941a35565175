"""The ensemble as named arrays (what federation sends) and a model folder rebuilt from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support.nnunet import random_model_folder

from pathloop.client.segmentation import (
    Ensemble,
    ModelError,
    PlansMismatchError,
    ensemble_arrays,
    ensemble_plans,
    write_ensemble,
)
from pathloop.client.segmentation.checkpoints import load_checkpoint
from pathloop.server.contract import parse_member_key


def test_arrays_round_trip_into_a_working_model_folder(tmp_path: Path) -> None:
    template = random_model_folder(tmp_path / "template")
    arrays = ensemble_arrays(template)
    assert {parse_member_key(k)[0] for k in arrays} == {0, 1, 2, 3, 4}
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays.values())
    # The decoder's copy of the encoder does not travel (a third of nnU-Net's state dict).
    assert not [k for k in arrays if "/decoder.encoder." in k]
    assert any("/encoder.stages." in k for k in arrays)
    assert ensemble_plans(template)["configurations"]["2d"]["patch_size"] == [64, 64]

    shifted = {k: v + np.float32(0.01) for k, v in arrays.items()}
    rebuilt = write_ensemble(shifted, template, tmp_path / "global-1", extra={"global": 1})
    again = ensemble_arrays(rebuilt)
    assert again.keys() == arrays.keys()
    for key, value in shifted.items():
        np.testing.assert_array_equal(again[key], value)
    weights = load_checkpoint(rebuilt / "fold_0" / "checkpoint_final.pth")["network_weights"]
    aliases = [k for k in weights if k.startswith("decoder.encoder.")]
    assert aliases
    for key in aliases:
        assert torch.equal(weights[key], weights[key[len("decoder."):]])
    tiles = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    before = Ensemble.load(template).predict_folds(tiles)
    after = Ensemble.load(rebuilt).predict_folds(tiles)
    assert after.shape == before.shape and not np.allclose(after, before)


def test_arrays_that_do_not_fit_the_plans_are_refused(tmp_path: Path) -> None:
    template = random_model_folder(tmp_path / "template")
    arrays = ensemble_arrays(template)
    key = next(k for k in arrays if k.endswith("weight") and arrays[k].ndim == 4)
    wrong = {**arrays, key: np.zeros((1, *arrays[key].shape[1:]), np.float32)}
    with pytest.raises(PlansMismatchError, match="the plans give"):
        write_ensemble(wrong, template, tmp_path / "bad")
    fewer = {k: v for k, v in arrays.items() if k != key}
    with pytest.raises(PlansMismatchError, match="1 parameters missing"):
        write_ensemble(fewer, template, tmp_path / "bad")
    with pytest.raises(PlansMismatchError, match="arrays for fold 7"):
        write_ensemble({**arrays, "fold7/x": np.zeros(1, np.float32)}, template,
                       tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert not list(tmp_path.glob(".bad.partial-*"))
    with pytest.raises(ModelError, match="already exists"):
        write_ensemble(arrays, template, template)
