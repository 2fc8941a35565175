"""Errors of the segmentation adapter, as subclasses of :mod:`pathloop.client.errors`.

::

    PathloopError
    ├── InputError
    │   ├── DatasetError            cases or labels handed to the export are unusable
    │   └── ArrayInputError         an array breaks a function's shape/dtype contract
    └── ModelError                  a model folder cannot be used
        ├── MissingFoldError        a fold's checkpoint is absent
        ├── PlansMismatchError      plans.json does not describe the checkpoint weights
        └── TrainingError           nnU-Net failed while planning or training

Every model error names the folder or file concerned, so the one-line CLI message is enough
to act on.
"""

from __future__ import annotations

from pathlib import Path

from pathloop.client.errors import InputError, PathloopError


class DatasetError(InputError):
    """Cases, labels or channels handed to the dataset export are unusable."""


class ArrayInputError(InputError):
    """An array handed to the adapter breaks its shape/dtype contract.

    Attributes
    ----------
    name:
        The argument concerned.
    expected, actual:
        What the contract says and what was given, in words.
    """

    def __init__(self, name: str, expected: str, actual: str) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(f"{name}: expected {expected}, got {actual}")


class ModelError(PathloopError):
    """A model folder cannot be used; ``path`` names the folder or file, ``reason`` says why."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class MissingFoldError(ModelError):
    """A fold of the ensemble has no checkpoint in the model folder."""

    def __init__(self, model_dir: Path | str, fold: int, checkpoint: Path | str) -> None:
        self.fold = fold
        self.checkpoint = Path(checkpoint)
        super().__init__(model_dir, f"fold {fold} is missing (no {self.checkpoint})")


class PlansMismatchError(ModelError):
    """The architecture described by ``plans.json`` does not fit a checkpoint's weights."""

    def __init__(self, checkpoint: Path | str, plans: Path | str, detail: str) -> None:
        self.plans = Path(plans)
        self.detail = detail
        super().__init__(
            checkpoint, f"weights do not match the architecture in {self.plans}: {detail}"
        )


class TrainingError(ModelError):
    """nnU-Net failed while fingerprinting, planning, preprocessing or training.

    ``path`` is the log file holding nnU-Net's own output.
    """


__all__ = [
    "ArrayInputError",
    "DatasetError",
    "MissingFoldError",
    "ModelError",
    "PlansMismatchError",
    "TrainingError",
]
