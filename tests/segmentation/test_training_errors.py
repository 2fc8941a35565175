"""train_ensemble refuses what it cannot train, before or while nnU-Net runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.nnunet import NUCLEI, TEST_PROFILE, random_model_folder, synthetic_cases

from pathloop.client.errors import Cancelled, ConfigError
from pathloop.client.segmentation import (
    DatasetError,
    MissingFoldError,
    ModelError,
    SegmentationTask,
    TrainingError,
    export_dataset,
)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    export_dataset(synthetic_cases(6, extra=False), tmp_path / "dataset", NUCLEI, mpp=0.5)
    return tmp_path / "dataset"


def test_refusals_before_training(dataset: Path, tmp_path: Path) -> None:
    from pathloop.client.segmentation import train_ensemble

    (tmp_path / "exists").mkdir()
    with pytest.raises(ModelError, match="already exists"):
        train_ensemble(dataset, tmp_path / "exists", profile=TEST_PROFILE)
    with pytest.raises(DatasetError, match="6 groups of validation cases for 7 folds"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE.with_overrides(n_folds=7))
    with pytest.raises(ConfigError, match="CUDA"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE, device="cuda")
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        train_ensemble(tmp_path / "nowhere", tmp_path / "m", profile=TEST_PROFILE)
    assert not (tmp_path / "m").exists()


def test_parent_must_match_the_dataset(dataset: Path, tmp_path: Path) -> None:
    from pathloop.client.segmentation import train_ensemble

    other = SegmentationTask("nuclei", {"background": 0, "nucleus": 1, "mitosis": 2})
    with pytest.raises(DatasetError, match="differs from the parent"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE,
                       parent=random_model_folder(tmp_path / "p1", other))
    with pytest.raises(DatasetError, match="µm/px"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE,
                       parent=random_model_folder(tmp_path / "p2", NUCLEI, mpp=1.0))
    incomplete = random_model_folder(tmp_path / "p3", NUCLEI)
    shutil.rmtree(incomplete / "fold_2")
    with pytest.raises(MissingFoldError, match="fold 2"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE, parent=incomplete)
    with pytest.raises(ModelError, match="has 2 folds"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE,
                       parent=random_model_folder(tmp_path / "p4", NUCLEI, n_folds=2))


def test_nnunet_failures_name_the_log(dataset: Path, tmp_path: Path) -> None:
    from pathloop.client.segmentation import train_ensemble

    # The random parent's plans lack most of what nnU-Net's preprocessing needs.
    parent = random_model_folder(tmp_path / "parent", NUCLEI)
    with pytest.raises(TrainingError, match="while preparing the data") as raised:
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE, parent=parent)
    log = raised.value.path
    assert log == tmp_path / "m.failed-nnunet.log" and log.is_file()
    assert str(log) in str(raised.value)
    assert not (tmp_path / "m").exists()  # no half-written model folder at the target
    assert not list(tmp_path.glob(".m.partial-*"))  # nor the folder it was assembled in


def test_a_stop_or_a_failing_callback_leaves_nothing(dataset: Path, tmp_path: Path) -> None:
    from pathloop.client.segmentation import TrainingEvent, train_ensemble

    def fail_after_preparing(event: TrainingEvent) -> None:
        raise RuntimeError(f"the caller failed after {event.stage}")

    with pytest.raises(RuntimeError, match="after prepare"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE,
                       progress=fail_after_preparing)
    asked: list[int] = []

    def stop_at_the_third_question() -> bool:
        asked.append(1)
        return len(asked) >= 3  # two checks of the preparation, then the first iteration

    with pytest.raises(Cancelled, match="fold 0 stopped on request at epoch 0"):
        train_ensemble(dataset, tmp_path / "m", profile=TEST_PROFILE,
                       should_stop=stop_at_the_third_question)
    assert len(asked) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no model, no partial
