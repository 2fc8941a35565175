"""The adapter trains networks with extra input channels (the upgrade network's case)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.nnunet import NUCLEI, synthetic_cases

from pathloop.client.segmentation import (
    TINY,
    Channel,
    SegmentationTask,
    export_dataset,
)

UPGRADE = SegmentationTask("upgrade", {"background": 0, "nucleus": 1},
                           extra_channels=(Channel("lowquality_mask"),))


@pytest.mark.slow
def test_train_and_predict_with_an_extra_channel(tmp_path: Path) -> None:
    from pathloop.client.segmentation import Ensemble, train_ensemble

    cases = synthetic_cases(6)
    dataset = export_dataset(cases, tmp_path / "dataset", UPGRADE, mpp=1.0)
    profile = TINY.with_overrides(n_folds=2, num_epochs=1, iterations_per_epoch=3,
                                  val_iterations_per_epoch=1, patch_size=(64, 64),
                                  batch_size=2, n_proc_data_augmentation=0)
    card = train_ensemble(dataset, tmp_path / "model", profile=profile,
                          work_dir=tmp_path / "work")
    assert card.task == UPGRADE and card.folds == (0, 1)
    plans = json.loads((tmp_path / "model" / "plans.json").read_text())
    assert plans["configurations"]["2d"]["normalization_schemes"] == \
        ["ZScoreNormalization"] * 3 + ["NoNormalization"]

    ensemble = Ensemble.load(tmp_path / "model")
    images = np.stack([c.image for c in cases[:2]])
    extra = np.stack([c.extra for c in cases[:2] if c.extra is not None])
    probs = ensemble.predict_folds(images, extra)
    assert probs.shape == (2, 2, 2, 64, 64)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-5)

    # A kept work_dir can serve the next job, with another task.
    nuclei = export_dataset(synthetic_cases(6, extra=False), tmp_path / "nuclei", NUCLEI,
                            mpp=1.0)
    second = train_ensemble(nuclei, tmp_path / "model2", profile=profile,
                            work_dir=tmp_path / "work")
    assert second.task == NUCLEI
    assert Ensemble.load(tmp_path / "model2").predict_folds(images).shape == (2, 2, 2, 64, 64)
