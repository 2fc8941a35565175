"""The nnU-Net adapter: the only package of pathloop that imports nnunetv2 and torch.

Export tiles as an nnU-Net dataset, train a K-fold ensemble, load it and get every fold's
softmax for a batch of tiles::

    from pathloop.client.segmentation import (
        Ensemble, SegmentationTask, TINY, export_dataset, train_ensemble)

    task = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})
    dataset = export_dataset(cases, workdir / "dataset", task, mpp=0.5)
    train_ensemble(dataset, workdir / "model", profile=TINY, device="cpu")
    ensemble = Ensemble.load(workdir / "model")
    probs = ensemble.predict_folds(tiles)          # (K, B, C, H, W) float32

Importing this package does not import torch: :class:`Ensemble`, :func:`train_ensemble`
and :class:`TrainingEvent` are loaded on first use. Code that only needs the seam types
against :class:`FoldPredictor` (tests use the numpy fake in ``tests/support/folds.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pathloop.client.segmentation.dataset import Case, RawDataset, export_dataset, read_dataset
from pathloop.client.segmentation.errors import (
    ArrayInputError,
    DatasetError,
    MissingFoldError,
    ModelError,
    PlansMismatchError,
    TrainingError,
)
from pathloop.client.segmentation.model_card import ModelCard
from pathloop.client.segmentation.profiles import (
    NNUNET,
    PROFILES,
    TINY,
    Architecture,
    TrainingProfile,
    get_profile,
)
from pathloop.client.segmentation.protocol import FoldPredictor
from pathloop.client.segmentation.splits import Split, make_splits
from pathloop.client.segmentation.task import Channel, SegmentationTask

if TYPE_CHECKING:
    from pathloop.client.segmentation.ensemble import Ensemble
    from pathloop.client.segmentation.training import TrainingEvent, train_ensemble
    from pathloop.client.segmentation.weights import (
        ensemble_arrays,
        ensemble_plans,
        export_model,
        write_ensemble,
    )

# Names whose modules import torch and nnunetv2 (seconds of start-up): imported on first use.
_LAZY = {
    "Ensemble": "pathloop.client.segmentation.ensemble",
    "TrainingEvent": "pathloop.client.segmentation.training",
    "train_ensemble": "pathloop.client.segmentation.training",
    "ensemble_arrays": "pathloop.client.segmentation.weights",
    "ensemble_plans": "pathloop.client.segmentation.weights",
    "export_model": "pathloop.client.segmentation.weights",
    "write_ensemble": "pathloop.client.segmentation.weights",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NNUNET",
    "PROFILES",
    "TINY",
    "Architecture",
    "ArrayInputError",
    "Case",
    "Channel",
    "DatasetError",
    "Ensemble",
    "FoldPredictor",
    "MissingFoldError",
    "ModelCard",
    "ModelError",
    "PlansMismatchError",
    "RawDataset",
    "SegmentationTask",
    "Split",
    "TrainingError",
    "TrainingEvent",
    "TrainingProfile",
    "ensemble_arrays",
    "ensemble_plans",
    "export_dataset",
    "export_model",
    "get_profile",
    "make_splits",
    "read_dataset",
    "train_ensemble",
    "write_ensemble",
]
