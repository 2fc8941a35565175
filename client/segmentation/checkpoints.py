"""Fold checkpoints: written without pickled objects, read with ``weights_only=True``.

nnU-Net saves checkpoints with ``torch.save`` of a dict that holds, besides the weights, a
``torch.device``, the optimiser state and logging lists of numpy scalars. Loading such a
pickle with ``weights_only=False`` can run arbitrary code, so pathloop never does:

- the model folder's checkpoints are rewritten by :func:`write_checkpoint` with tensors,
  dicts, lists, strings and numbers only, which ``torch.load(weights_only=True)`` accepts
  as they are;
- nnU-Net's own checkpoints (from its training output) also load with
  ``weights_only=True`` once numpy's scalar and dtype reconstructors are allow-listed
  (:data:`NUMPY_SAFE_GLOBALS`, which rebuild numbers from bytes and call nothing else).

The written checkpoint keeps the keys nnU-Net's predictor reads (``network_weights``,
``trainer_name``, ``init_args.configuration``, ``inference_allowed_mirroring_axes``), so
``nnUNetPredictor.initialize_from_trained_model_folder`` accepts a pathloop model folder.
``trainer_name`` is ``nnUNetTrainer``: our trainer builds the same network, and nnU-Net
looks trainers up by name inside its own package.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pathloop.client.segmentation.errors import ModelError

NUMPY_SAFE_GLOBALS: list[Any] = [
    np._core.multiarray.scalar,  # type: ignore[attr-defined]
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
    np.dtypes.Int64DType,
    np.dtypes.BoolDType,
]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a local checkpoint with ``weights_only=True`` onto the CPU.

    Raises
    ------
    ModelError
        The file is unreadable, not a checkpoint, needs objects outside the allow-list, or
        has no ``network_weights``.
    """
    try:
        with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ModelError(path, f"cannot load checkpoint ({first_line})") from None
    if not isinstance(checkpoint, dict) or not isinstance(
        checkpoint.get("network_weights"), Mapping
    ):
        raise ModelError(path, "not an nnU-Net checkpoint (no network_weights)")
    return checkpoint


def write_checkpoint(
    path: Path,
    network_weights: Mapping[str, torch.Tensor],
    *,
    plans: Mapping[str, Any],
    dataset_json: Mapping[str, Any],
    configuration: str,
    fold: int,
    mirroring_axes: tuple[int, ...] | None,
    epochs: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a fold checkpoint of plain tensors and containers (see the module docstring).

    Parameters
    ----------
    path:
        File to write (its folder must exist).
    network_weights:
        The network's state dict; tensors are moved to the CPU.
    plans, dataset_json, configuration, fold:
        nnU-Net's ``init_args`` (without the device).
    mirroring_axes:
        Axes nnU-Net may mirror at inference (its test-time augmentation).
    epochs:
        Epochs trained.
    extra:
        JSON-like facts pathloop adds under ``"pathloop"``.
    """
    checkpoint = {
        "network_weights": {k: v.detach().cpu().clone() for k, v in network_weights.items()},
        "trainer_name": "nnUNetTrainer",
        "init_args": {
            "plans": _plain(plans),
            "configuration": configuration,
            "fold": int(fold),
            "dataset_json": _plain(dataset_json),
        },
        "inference_allowed_mirroring_axes": None if mirroring_axes is None
        else tuple(int(a) for a in mirroring_axes),
        "current_epoch": int(epochs),
        "pathloop": _plain(dict(extra or {})),
    }
    torch.save(checkpoint, path)


def _plain(value: Any) -> Any:
    """JSON-like copy: numpy scalars to Python numbers, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


__all__ = ["NUMPY_SAFE_GLOBALS", "load_checkpoint", "write_checkpoint"]
