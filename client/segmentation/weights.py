"""A model folder's fold ensemble as named numpy arrays, and back (for federation).

What travels between a site and the aggregation server is exactly
:func:`ensemble_arrays`' output: every member's parameters as float32 arrays named
``fold<k>/<parameter>`` (:func:`pathloop.server.contract.member_key`). Nothing else of the
model folder leaves the site (no logs, no dataset fingerprint, no training-case names).
:func:`write_ensemble` builds a new model folder from arrays that came back, taking
everything else from a local template folder whose plans the arrays must fit.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from pathloop.client.segmentation.checkpoints import load_checkpoint, write_checkpoint
from pathloop.client.segmentation.errors import ModelError, PlansMismatchError
from pathloop.client.segmentation.model_card import (
    CARD_NAME,
    DATASET_JSON_NAME,
    PLANS_NAME,
    ModelCard,
    checkpoint_path,
    fold_dir,
)
from pathloop.server.contract import member_key, parse_member_key, plans_digest

Arrays = dict[str, NDArray[np.float32]]
#: dynamic_network_architectures' U-Net decoders keep a reference to their encoder, so a
#: state dict lists every encoder parameter twice (``encoder.…`` and ``decoder.encoder.…``).
#: Only the first travels; the alias is refilled from it when a folder is written.
_ALIAS_PREFIX = "decoder.encoder."


def ensemble_arrays(model_dir: Path | str) -> Arrays:
    """Every fold's weights, ``fold<k>/<parameter>`` → float32 array (CPU, C order).

    Raises
    ------
    ModelError
        A fold checkpoint is missing or unreadable (see :func:`load_checkpoint`).
    """
    root = Path(model_dir)
    card = ModelCard.read(root)
    arrays: Arrays = {}
    for fold in card.folds:
        path = checkpoint_path(root, fold)
        if not path.is_file():
            raise ModelError(root, f"fold {fold} has no checkpoint ({path})")
        weights = load_checkpoint(path)["network_weights"]
        for name, tensor in weights.items():
            if _alias_source(str(name), weights) is not None:
                continue
            array = tensor.detach().cpu().numpy()
            if array.dtype != np.float32:
                raise ModelError(path, f"{name} is {array.dtype}; only float32 travels")
            arrays[member_key(fold, str(name))] = np.ascontiguousarray(array)
    return arrays


def ensemble_plans(model_dir: Path | str) -> dict[str, Any]:
    """The model folder's nnU-Net plans (the federation's global plans come from these)."""
    path = Path(model_dir) / PLANS_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(Path(model_dir), f"unreadable plans ({error})") from None
    if not isinstance(data, dict):
        raise ModelError(Path(model_dir), "plans are not a JSON object")
    return data


def write_ensemble(arrays: Mapping[str, NDArray[Any]], template: Path | str,
                   target: Path | str, *, extra: Mapping[str, Any] | None = None) -> Path:
    """A new model folder: ``template``'s plans and card with the given fold weights.

    The folder is assembled beside ``target`` and renamed into place, so it exists only
    when complete.

    Raises
    ------
    PlansMismatchError
        The arrays' names or shapes are not those of the template's networks.
    ModelError
        ``target`` exists, or the template is incomplete.
    """
    source, final = Path(template), Path(target)
    if final.exists():
        raise ModelError(final, "model folder already exists")
    card = ModelCard.read(source)
    by_fold: dict[int, dict[str, torch.Tensor]] = {fold: {} for fold in card.folds}
    for key, array in arrays.items():
        try:
            fold, name = parse_member_key(key)
        except ValueError as error:
            raise PlansMismatchError(checkpoint_path(source, 0), source / PLANS_NAME,
                                     str(error)) from None
        if array.dtype != np.float32:
            raise ModelError(source, f"{key}: weights must be float32, got {array.dtype}")
        if not np.isfinite(array).all():
            raise ModelError(source, f"{key}: weights hold NaN or infinite values")
        if fold not in by_fold:
            raise PlansMismatchError(checkpoint_path(source, 0), source / PLANS_NAME,
                                     f"arrays for fold {fold}, the model has {card.folds}")
        by_fold[fold][name] = torch.from_numpy(np.array(array, copy=True))
    staging = final.parent / f".{final.name}.partial-{os.getpid()}-{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        for name in (PLANS_NAME, DATASET_JSON_NAME):
            shutil.copyfile(source / name, staging / name)
        card.write(staging)
        for fold in card.folds:
            original = load_checkpoint(checkpoint_path(source, fold))
            template_weights = original["network_weights"]
            unique = {k: v for k, v in template_weights.items()
                      if _alias_source(str(k), template_weights) is None}
            _check_layout(source, fold, unique, by_fold[fold])
            for name in template_weights:
                alias_of = _alias_source(str(name), template_weights)
                if alias_of is not None:
                    by_fold[fold][name] = by_fold[fold][alias_of]
            init = original["init_args"]
            fold_dir(staging, fold).mkdir()
            write_checkpoint(
                checkpoint_path(staging, fold), by_fold[fold], plans=init["plans"],
                dataset_json=init["dataset_json"], configuration=init["configuration"],
                fold=fold, mirroring_axes=original.get("inference_allowed_mirroring_axes"),
                epochs=int(original.get("current_epoch", 0)),
                extra={**dict(original.get("pathloop", {})), **dict(extra or {})})
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def export_model(model_dir: Path | str, out: Path | str) -> Path:
    """A model folder as a federation's initial model, ready to ship.

    ``out`` receives the folder without its training logs and plots (which name training
    cases) — card, plans, dataset.json and one checkpoint per fold, what every site imports
    — plus ``arrays.npz``: the member arrays the aggregation server starts from.
    """
    source, target = Path(model_dir), Path(out)
    if target.exists():
        raise ModelError(target, "already exists")
    card = ModelCard.read(source)
    arrays = ensemble_arrays(source)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}-{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        for name in (CARD_NAME, PLANS_NAME, DATASET_JSON_NAME):
            shutil.copyfile(source / name, staging / name)
        for fold in card.folds:
            fold_dir(staging, fold).mkdir()
            shutil.copyfile(checkpoint_path(source, fold), checkpoint_path(staging, fold))
        named: dict[str, Any] = dict(arrays)
        np.savez(staging / "arrays.npz", allow_pickle=False, **named)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _alias_source(name: str, weights: Mapping[str, torch.Tensor]) -> str | None:
    """The parameter ``name`` duplicates (equal values), or ``None`` if it is its own."""
    if not name.startswith(_ALIAS_PREFIX):
        return None
    source = name[len("decoder."):]
    tensor, original = weights.get(name), weights.get(source)
    if tensor is None or original is None or tensor.shape != original.shape:
        return None
    return source if torch.equal(tensor, original) else None


def _check_layout(source: Path, fold: int, expected: Mapping[str, torch.Tensor],
                  given: Mapping[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise PlansMismatchError(checkpoint_path(source, fold), source / PLANS_NAME,
                                 f"fold {fold}: {len(missing)} parameters missing, "
                                 f"{len(extra)} unexpected")
    for name, tensor in expected.items():
        if tuple(given[name].shape) != tuple(tensor.shape):
            raise PlansMismatchError(checkpoint_path(source, fold), source / PLANS_NAME,
                                     f"fold {fold}: {name} is {tuple(given[name].shape)}, "
                                     f"the plans give {tuple(tensor.shape)}")


__all__ = ["ensemble_arrays", "ensemble_plans", "export_model", "plans_digest", "write_ensemble"]
