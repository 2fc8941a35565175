"""Fixtures of the segmentation tests: MoNuSeg tiles and a real tiny 5-fold nnU-Net.

The model is trained once per session (about a minute on 2 cores) and shared by every test
that needs real weights; tests that damage a model folder work on a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.nnunet import TrainedModel, monuseg_tiles, train

from pathloop.client.segmentation import Case

if TYPE_CHECKING:  # torch loads on first use only, not when pytest collects
    from pathloop.client.segmentation import Ensemble


@pytest.fixture(scope="session")
def monuseg_cases(shared_data: Path) -> list[Case]:
    """32 MoNuSeg tiles (8 images × 4), ``(256, 256, 3)`` uint8 with ``(256, 256)`` masks."""
    return list(monuseg_tiles(shared_data))


@pytest.fixture(scope="session")
def tiny_model(monuseg_cases: list[Case],
               tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A real tiny 5-fold nnU-Net trained on the MoNuSeg tiles (CPU, a minute or so)."""
    return train(monuseg_cases, tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def ensemble(tiny_model: TrainedModel) -> Ensemble:
    """The session model, loaded."""
    from pathloop.client.segmentation import Ensemble

    return Ensemble.load(tiny_model.model_dir)


@pytest.fixture
def model_copy(tiny_model: TrainedModel, tmp_path: Path) -> Path:
    """A copy of the session model folder that a test may damage."""
    target = tmp_path / "model"
    shutil.copytree(tiny_model.model_dir, target)
    return target
