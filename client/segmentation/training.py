"""Train a K-fold nnU-Net ensemble on an exported dataset into a model folder.

:func:`train_ensemble` runs, in this process and through nnunetv2's Python API: the
fingerprint, the plans (patched by the profile, or the parent model's plans when
fine-tuning), the preprocessing, then every fold with :class:`PathloopTrainer` on the
device named by the caller. nnU-Net's work folders live in a temporary directory (or
``work_dir``); its console output goes to ``logs/nnunet.log`` in the model folder. The
model folder is assembled beside its final path and renamed into place only when every
fold has finished, so a folder that exists is complete; if training fails or is stopped
(``should_stop``), the half-assembled folder is removed (when nnU-Net failed, its log is
kept beside the model's path and named in the error).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import nnunetv2
import numpy as np
import torch

from pathloop.client.errors import Cancelled, ConfigError
from pathloop.client.segmentation import planning
from pathloop.client.segmentation.checkpoints import load_checkpoint, write_checkpoint
from pathloop.client.segmentation.dataset import RawDataset, read_dataset
from pathloop.client.segmentation.devices import torch_device
from pathloop.client.segmentation.environment import captured_output, nnunet_environment
from pathloop.client.segmentation.errors import (
    DatasetError,
    MissingFoldError,
    ModelError,
    PlansMismatchError,
    TrainingError,
)
from pathloop.client.segmentation.model_card import (
    DATASET_JSON_NAME,
    FINGERPRINT_NAME,
    LOG_NAME,
    PLANS_NAME,
    ModelCard,
    checkpoint_path,
    fold_dir,
)
from pathloop.client.segmentation.profiles import TINY, TrainingProfile
from pathloop.client.segmentation.splits import Split, make_splits
from pathloop.client.segmentation.trainer import PathloopTrainer

logger = logging.getLogger(__name__)

FAILED_LOG_SUFFIX = "failed-nnunet.log"
"""nnU-Net's log of a failed training is kept as ``<model folder>.failed-nnunet.log``."""


@dataclass(frozen=True)
class TrainingEvent:
    """A step of :func:`train_ensemble` that has finished.

    Attributes
    ----------
    stage:
        ``"prepare"`` (fingerprint, plans, preprocessing), ``"fold"`` or ``"done"``.
    fold:
        The fold for ``"fold"`` events, else ``None``.
    seconds:
        Wall time of the step.
    detail:
        Small facts about the step (e.g. the fold's last validation pseudo-Dice).
    """

    stage: str
    fold: int | None
    seconds: float
    detail: Mapping[str, Any] = field(default_factory=dict)


def train_ensemble(
    dataset: RawDataset | Path | str,
    model_dir: Path | str,
    *,
    profile: TrainingProfile = TINY,
    device: str = "cpu",
    parent: Path | str | None = None,
    splits: Sequence[Split] | None = None,
    work_dir: Path | str | None = None,
    progress: Callable[[TrainingEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ModelCard:
    """Plan, preprocess and train ``profile.n_folds`` folds; write a model folder.

    Parameters
    ----------
    dataset:
        An exported dataset (:func:`~pathloop.client.segmentation.dataset.export_dataset`)
        or its folder.
    model_dir:
        Model folder to create (must not exist). See
        :mod:`pathloop.client.segmentation.model_card` for its layout.
    profile:
        Network size and schedule (``TINY`` for CPUs, ``NNUNET`` for GPUs). With a
        ``parent``, only the schedule, learning rate and augmentation of the profile apply:
        plans (network, patch, batch) are the parent's.
    device:
        Torch device to train on: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    parent:
        A model folder to continue from: fold ``k`` starts from the parent's fold ``k``
        weights (fine-tuning, retraining on corrections). Its task and µm/px must match.
    splits:
        Train/validation cases per fold (:func:`make_splits`); default: every case its own
        group, shuffled with a fixed seed.
    work_dir:
        Where nnU-Net's raw/preprocessed/results folders go; default a temporary folder
        removed afterwards.
    progress:
        Called after the preparation and after each fold.
    should_stop:
        Asked between the preparation's steps, before every training and validation
        iteration, and last right before the model folder is renamed into place; once it
        answers true, :class:`~pathloop.client.errors.Cancelled` is raised and nothing is
        left behind.

    Returns
    -------
    ModelCard
        The card written into ``model_dir``.

    Raises
    ------
    DatasetError
        Too few cases for the folds, or a task or resolution different from the parent's.
    ConfigError
        The device does not exist on this machine.
    ModelError
        The parent folder is incomplete (:class:`MissingFoldError`) or its weights do not
        fit its plans (:class:`PlansMismatchError`).
    TrainingError
        nnU-Net failed; the message names the log file.
    Cancelled
        ``should_stop`` answered true.
    """
    started = time.perf_counter()
    data = dataset if isinstance(dataset, RawDataset) else read_dataset(dataset)
    target = Path(model_dir)
    if target.exists():
        raise ModelError(target, "model folder already exists")
    device_ = torch_device(device)
    n_folds = profile.n_folds
    splits = list(splits) if splits is not None else make_splits(data.case_names, n_folds)
    if len(splits) != n_folds:
        raise DatasetError(f"{len(splits)} splits given for {n_folds} folds")
    parent_card, parent_plans, parent_weights = _read_parent(parent, data, n_folds)

    staging = target.parent / f".{target.name}.partial-{os.getpid()}-{time.time_ns()}"
    staging.mkdir(parents=True)
    stop_check = _stop_check(should_stop)
    try:
        log_file = staging / LOG_NAME
        with _work_root(work_dir) as root:
            workspace = planning.prepare_workspace(root, data)
            dataset_json = planning.load_dataset_json(data)
            folders = (workspace.raw, workspace.preprocessed, workspace.results)
            step = time.perf_counter()
            with captured_output(log_file), _environment(folders), \
                    _failures(log_file, "preparing the data"):
                planning.extract_fingerprint(workspace, dataset_json)
                stop_check()
                plans = planning.make_plans(workspace, dataset_json, profile,
                                            base_plans=parent_plans)
                planning.preprocess(workspace, plans, dataset_json)
                stop_check()
                planning.write_splits(workspace, splits)
            _notify(progress, TrainingEvent("prepare", None, time.perf_counter() - step,
                                            {"n_cases": data.n_cases}))

            for fold in range(n_folds):
                step = time.perf_counter()
                with captured_output(log_file), \
                        _environment(folders, profile.n_proc_data_augmentation):
                    detail = _train_fold(
                        staging, fold, plans, dataset_json, profile, device_, log_file,
                        None if parent_weights is None else parent_weights[fold],
                        None if parent is None else Path(parent), should_stop,
                    )
                _notify(progress, TrainingEvent("fold", fold, time.perf_counter() - step, detail))
            shutil.copyfile(workspace.preprocessed_dataset / "dataset_fingerprint.json",
                            staging / FINGERPRINT_NAME)

        _write_json(staging / PLANS_NAME, plans)
        _write_json(staging / DATASET_JSON_NAME,
                    {k: v for k, v in dataset_json.items() if k != "dataset"})
        configuration = plans["configurations"][planning.CONFIGURATION]
        rows, cols = (int(v) for v in configuration["patch_size"])
        card = ModelCard(
            task=data.task,
            mpp=data.mpp,
            folds=tuple(range(n_folds)),
            configuration=planning.CONFIGURATION,
            patch_size=(rows, cols),
            profile=profile.to_json(),
            n_training_cases=data.n_cases,
            parent=None if parent_card is None
            else {"path": str(Path(str(parent)).resolve()), "created": parent_card.created},
            training_seconds=round(time.perf_counter() - started, 1),
            versions={"nnunetv2": _version("nnunetv2"), "torch": torch.__version__},
        )
        card.write(staging)
        stop_check()  # the last moment a stop leaves nothing behind
        staging.rename(target)
    except TrainingError as error:
        # nnU-Net's log is what the user needs to act: kept beside the model's path.
        kept = target.parent / f"{target.name}.{FAILED_LOG_SUFFIX}"
        if error.path.is_file():
            error.path.replace(kept)
        shutil.rmtree(staging, ignore_errors=True)
        raise TrainingError(kept, error.reason) from error.__cause__
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _notify(progress, TrainingEvent("done", None, time.perf_counter() - started,
                                    {"model_dir": str(target)}))
    return card


def _train_fold(
    staging: Path,
    fold: int,
    plans: Mapping[str, Any],
    dataset_json: Mapping[str, Any],
    profile: TrainingProfile,
    device: torch.device,
    log_file: Path,
    initial_weights: Mapping[str, torch.Tensor] | None,
    parent: Path | None,
    should_stop: Callable[[], bool] | None,
) -> dict[str, Any]:
    trainer_plans = copy.deepcopy(dict(plans))
    trainer_plans["continue_training"] = False  # nnU-Net 2.8 pops this key in __init__
    if profile.seed is not None:
        _seed_generators(profile.seed * 1000 + fold)
    with _failures(log_file, f"training fold {fold}"):
        trainer = PathloopTrainer(trainer_plans, planning.CONFIGURATION, fold,
                                  copy.deepcopy(dict(dataset_json)), device=device)
        if profile.num_epochs is not None:
            trainer.num_epochs = profile.num_epochs
        if profile.iterations_per_epoch is not None:
            trainer.num_iterations_per_epoch = profile.iterations_per_epoch
        if profile.val_iterations_per_epoch is not None:
            trainer.num_val_iterations_per_epoch = profile.val_iterations_per_epoch
        if profile.initial_lr is not None:
            trainer.initial_lr = profile.initial_lr
        trainer.hue_shift = profile.hue_shift
        trainer.proximal_mu = profile.proximal_mu
        trainer.save_every = 10**9  # no intermediate "latest" checkpoints
        trainer.initial_weights = initial_weights
        trainer.should_stop = should_stop
        try:
            trainer.initialize()
        except RuntimeError as error:
            if initial_weights is None or parent is None:
                raise
            # torch names the first mismatching parameter on the message's second line.
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise PlansMismatchError(checkpoint_path(parent, fold), parent / PLANS_NAME,
                                     " ".join([_first_line(error), *lines[1:2]])) from None
        trainer.run_training()

    out = fold_dir(staging, fold)
    out.mkdir()
    # torch.compile wraps the network; its state dict lives on the original module.
    network = cast(torch.nn.Module, getattr(trainer.network, "_orig_mod", trainer.network))
    dice = trainer.logger.get_value("ema_fg_dice", step=-1)
    write_checkpoint(
        checkpoint_path(staging, fold), network.state_dict(),
        plans=plans, dataset_json={k: v for k, v in dataset_json.items() if k != "dataset"},
        configuration=planning.CONFIGURATION, fold=fold,
        mirroring_axes=trainer.inference_allowed_mirroring_axes,
        epochs=trainer.num_epochs,
        extra={"trainer": type(trainer).__name__, "ema_pseudo_dice": float(dice)},
    )
    nnunet_output = Path(trainer.output_folder)
    for log in sorted(nnunet_output.glob("training_log_*.txt"))[-1:]:
        shutil.copyfile(log, out / "training_log.txt")
    if (nnunet_output / "progress.png").exists():
        shutil.copyfile(nnunet_output / "progress.png", out / "progress.png")
    del trainer, network
    gc.collect()
    return {"ema_pseudo_dice": round(float(dice), 4)}


def _seed_generators(seed: int) -> None:
    """Seed every generator a fold's training draws from (see ``TrainingProfile.seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _read_parent(
    parent: Path | str | None, data: RawDataset, n_folds: int
) -> tuple[ModelCard | None, dict[str, Any] | None, list[dict[str, torch.Tensor]] | None]:
    if parent is None:
        return None, None, None
    parent_dir = Path(parent)
    card = ModelCard.read(parent_dir)
    if card.task != data.task:
        raise DatasetError(
            f"{data.path}: task {data.task.to_json()} differs from the parent model's "
            f"{card.task.to_json()} ({parent_dir})"
        )
    if abs(card.mpp - data.mpp) > 1e-3 * card.mpp:
        raise DatasetError(
            f"{data.path}: tiles at {data.mpp} µm/px, the parent model {parent_dir} was "
            f"trained at {card.mpp} µm/px"
        )
    if card.n_folds != n_folds:
        raise ModelError(parent_dir, f"has {card.n_folds} folds, the profile trains {n_folds}")
    plans_file = parent_dir / PLANS_NAME
    try:
        plans = json.loads(plans_file.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(plans_file, f"unreadable plans ({error})") from None
    weights = []
    for fold in range(n_folds):
        path = checkpoint_path(parent_dir, fold)
        if not path.is_file():
            raise MissingFoldError(parent_dir, fold, path)
        weights.append(dict(load_checkpoint(path)["network_weights"]))
    return card, plans, weights


def _environment(
    folders: tuple[Path, Path, Path], n_proc_data_augmentation: int | None = 1
) -> contextlib.AbstractContextManager[None]:
    # Planning needs at least 1: nnU-Net's planner calls torch.set_num_threads with it.
    raw, preprocessed, results = folders
    return nnunet_environment(raw=raw, preprocessed=preprocessed, results=results,
                              n_proc_data_augmentation=n_proc_data_augmentation)


@contextlib.contextmanager
def _work_root(work_dir: Path | str | None) -> Iterator[Path]:
    if work_dir is not None:
        root = Path(work_dir)
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="pathloop-nnunet-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def _failures(log_file: Path, doing: str) -> Iterator[None]:
    """Turn nnU-Net's failures into :class:`TrainingError`; ours pass through."""
    try:
        yield
    except (ModelError, DatasetError, ConfigError, Cancelled):
        raise
    except Exception as error:
        logger.exception("nnU-Net failed while %s", doing)
        raise TrainingError(
            log_file, f"nnU-Net failed while {doing}: {_first_line(error)}"
        ) from error


def _stop_check(should_stop: Callable[[], bool] | None) -> Callable[[], None]:
    """A check raising :class:`Cancelled` once ``should_stop`` answers true."""
    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("training stopped on request; no model was written")
    return check


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _notify(progress: Callable[[TrainingEvent], None] | None, event: TrainingEvent) -> None:
    logger.info("training %s%s done in %.1f s %s", event.stage,
                "" if event.fold is None else f" fold {event.fold}", event.seconds,
                dict(event.detail))
    if progress is not None:
        progress(event)


def _version(package: str) -> str:
    return str(getattr(nnunetv2, "__version__", None) or _dist_version(package))


def _dist_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1))


__all__ = ["TrainingEvent", "train_ensemble"]
