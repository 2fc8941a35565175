"""train_ensemble trains folds in parallel processes: same weights, same errors, no leftovers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.nnunet import NUCLEI, TEST_PROFILE, synthetic_cases

from pathloop.client.errors import ConfigError
from pathloop.client.segmentation import PlansMismatchError, export_dataset

# Short and seeded: each fold repeats exactly when its thread count does.
PROFILE = TEST_PROFILE.with_overrides(num_epochs=1, iterations_per_epoch=4, seed=11)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    export_dataset(synthetic_cases(6, extra=False), tmp_path / "dataset", NUCLEI, mpp=0.5)
    return tmp_path / "dataset"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread in this process, as in each fold process of two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fold_workers_are_checked(dataset: Path, tmp_path: Path) -> None:
    from pathloop.client.segmentation import train_ensemble

    with pytest.raises(ConfigError, match="at least 1"):
        train_ensemble(dataset, tmp_path / "m", profile=PROFILE, workers=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # nothing left behind


def _weights(model_dir: Path) -> list[dict[str, object]]:
    from pathloop.client.segmentation.checkpoints import load_checkpoint
    from pathloop.client.segmentation.model_card import checkpoint_path

    return [load_checkpoint(checkpoint_path(model_dir, fold))["network_weights"]
            for fold in range(PROFILE.n_folds)]


@pytest.mark.slow
def test_parallel_folds_equal_sequential_ones(dataset: Path, tmp_path: Path,
                                              one_thread: None) -> None:
    import torch

    from pathloop.client.segmentation import TrainingEvent, train_ensemble

    events: list[TrainingEvent] = []
    train_ensemble(dataset, tmp_path / "parallel", profile=PROFILE, workers=2,
                   progress=events.append)
    train_ensemble(dataset, tmp_path / "sequential", profile=PROFILE, workers=1)

    assert sorted(e.fold for e in events if e.stage == "fold") == list(range(PROFILE.n_folds))
    for fold, (a, b) in enumerate(zip(_weights(tmp_path / "parallel"),
                                      _weights(tmp_path / "sequential"), strict=True)):
        assert a.keys() == b.keys()
        for name, tensor in a.items():
            assert isinstance(tensor, torch.Tensor)
            assert torch.equal(tensor, b[name]), f"fold {fold}: {name} differs"
    # The fold processes' job and outcome files are gone; their output is in the log.
    parallel = tmp_path / "parallel"
    assert not [p for p in parallel.rglob(".fold-*")]
    assert "Training done." in (parallel / "logs" / "nnunet.log").read_text()
    assert not list(tmp_path.glob(".parallel.partial-*"))


@pytest.mark.slow
@pytest.mark.realdata
def test_a_fold_failing_in_its_process_raises_its_error(model_copy: Path, dataset: Path,
                                                        tmp_path: Path) -> None:
    import torch

    from pathloop.client.segmentation import train_ensemble
    from pathloop.client.segmentation.model_card import checkpoint_path

    # Fold 3's first convolution gets one filter too many: only nnU-Net's load, inside the
    # fold's own process, can tell.
    path = checkpoint_path(model_copy, 3)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    weights = checkpoint["network_weights"]
    name = next(k for k, v in weights.items() if v.ndim == 4)
    weights[name] = torch.cat([weights[name], weights[name][:1]])
    torch.save(checkpoint, path)

    with pytest.raises(PlansMismatchError, match="fold_3") as raised:
        train_ensemble(dataset, tmp_path / "m", profile=PROFILE, parent=model_copy,
                       workers=2)
    assert "size mismatch" in raised.value.detail
    assert not (tmp_path / "m").exists()
