"""The model folder's layout and its ``pathloop-model.json`` card.

A model folder is self-contained and laid out as nnU-Net's own trained-model folders, so
nnU-Net's predictor can read it too::

    <model_dir>/
      pathloop-model.json         this card: task, labels, channels, µm/px, profile, folds…
      plans.json                  nnU-Net plans (the network is built from them)
      dataset.json                labels and channel names (no case list)
      dataset_fingerprint.json
      fold_<k>/checkpoint_final.pth   weights of fold k (plain tensors and containers)
      fold_<k>/training_log.txt       nnU-Net's log of every epoch
      fold_<k>/progress.png           curves of loss and pseudo-Dice (10 epochs or more)
      logs/nnunet.log             nnU-Net's console output during training

The store records the folder as a model version; the card is what the rest of pathloop
reads about it without loading torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pathloop.client.segmentation.errors import DatasetError, ModelError
from pathloop.client.segmentation.task import SegmentationTask

CARD_NAME = "pathloop-model.json"
PLANS_NAME = "plans.json"
DATASET_JSON_NAME = "dataset.json"
FINGERPRINT_NAME = "dataset_fingerprint.json"
CHECKPOINT_NAME = "checkpoint_final.pth"
LOG_NAME = "logs/nnunet.log"
CARD_FORMAT = 1


def fold_dir(model_dir: Path, fold: int) -> Path:
    """``<model_dir>/fold_<fold>``."""
    return model_dir / f"fold_{fold}"


def checkpoint_path(model_dir: Path, fold: int) -> Path:
    """``<model_dir>/fold_<fold>/checkpoint_final.pth``."""
    return fold_dir(model_dir, fold) / CHECKPOINT_NAME


@dataclass(frozen=True)
class ModelCard:
    """What a model folder holds, as recorded in ``pathloop-model.json``.

    Attributes
    ----------
    task:
        Labels and input channels.
    mpp:
        Resolution in µm/px of the training tiles; predict at the same resolution.
    folds:
        Fold numbers present, ``(0, 1, 2, 3, 4)`` for a 5-fold ensemble.
    configuration:
        nnU-Net configuration trained (``"2d"``).
    patch_size:
        Training patch (rows, columns).
    profile:
        The training profile's fields (:meth:`TrainingProfile.to_json`).
    n_training_cases:
        Cases in the dataset the folds were trained on.
    created:
        UTC time the training finished, ISO 8601.
    parent:
        Card fields identifying the model the folds were fine-tuned from
        (``{"path": …, "created": …}``), or ``None`` for a training from scratch.
    training_seconds:
        Wall time of the whole training.
    versions:
        Library versions used (``nnunetv2``, ``torch``).
    """

    task: SegmentationTask
    mpp: float
    folds: tuple[int, ...]
    configuration: str
    patch_size: tuple[int, int]
    profile: Mapping[str, Any]
    n_training_cases: int
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    parent: Mapping[str, Any] | None = None
    training_seconds: float | None = None
    versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_folds(self) -> int:
        """Number of folds K."""
        return len(self.folds)

    def to_json(self) -> dict[str, Any]:
        """The card as written to ``pathloop-model.json``."""
        return {
            "format": CARD_FORMAT,
            "task": self.task.to_json(),
            "mpp": self.mpp,
            "folds": list(self.folds),
            "configuration": self.configuration,
            "patch_size": list(self.patch_size),
            "profile": dict(self.profile),
            "n_training_cases": self.n_training_cases,
            "created": self.created,
            "parent": None if self.parent is None else dict(self.parent),
            "training_seconds": self.training_seconds,
            "versions": dict(self.versions),
        }

    def write(self, model_dir: Path) -> Path:
        """Write ``pathloop-model.json`` into ``model_dir``; returns its path."""
        path = model_dir / CARD_NAME
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def read(cls, model_dir: Path | str) -> ModelCard:
        """Read a model folder's card.

        Raises
        ------
        ModelError
            No folder, no card, or a card this version cannot read.
        """
        model_dir = Path(model_dir)
        path = model_dir / CARD_NAME
        if not model_dir.is_dir():
            raise ModelError(model_dir, "model folder not found")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(model_dir, f"not a pathloop model folder (no {CARD_NAME})") from None
        except (OSError, ValueError) as error:
            raise ModelError(path, f"unreadable model card ({error})") from None
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise ModelError(path, f"model card format {found!r}, expected {CARD_FORMAT}")
        try:
            rows, cols = (int(v) for v in data["patch_size"])
            return cls(
                task=SegmentationTask.from_json(data["task"]),
                mpp=float(data["mpp"]),
                folds=tuple(int(f) for f in data["folds"]),
                configuration=str(data["configuration"]),
                patch_size=(rows, cols),
                profile=dict(data["profile"]),
                n_training_cases=int(data["n_training_cases"]),
                created=str(data["created"]),
                parent=data.get("parent"),
                training_seconds=data.get("training_seconds"),
                versions=dict(data.get("versions") or {}),
            )
        except (KeyError, TypeError, ValueError, DatasetError) as error:
            raise ModelError(path, f"malformed model card ({error})") from None


__all__ = [
    "CARD_NAME",
    "CHECKPOINT_NAME",
    "DATASET_JSON_NAME",
    "FINGERPRINT_NAME",
    "LOG_NAME",
    "PLANS_NAME",
    "ModelCard",
    "checkpoint_path",
    "fold_dir",
]
