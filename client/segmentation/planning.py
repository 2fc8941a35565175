"""Fingerprint, plans and preprocessing through nnunetv2's Python API, in this process.

nnU-Net's own entry points (``nnUNetv2_plan_and_preprocess``) fan every step out to a
``spawn`` process pool: each worker re-imports torch (≈5 s here), and a caller whose main
module lacks the ``if __name__ == "__main__"`` guard crashes. For tiles that are a few
hundred kilobytes each, the per-case functions run in this process instead:
``DatasetFingerprintExtractor.analyze_case`` and ``DefaultPreprocessor.run_case_save``,
with the fingerprint assembled as ``DatasetFingerprintExtractor.run`` does. The experiment
planner is nnU-Net's ``ExperimentPlanner``; the plans are then patched by the profile.

Every function here expects to run inside
:func:`~pathloop.client.segmentation.environment.nnunet_environment` pointing at the
:class:`Workspace`'s folders.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
    DatasetFingerprintExtractor,
)
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import (
    ExperimentPlanner,
)
from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from pathloop.client.segmentation.dataset import RawDataset
from pathloop.client.segmentation.errors import DatasetError
from pathloop.client.segmentation.profiles import TrainingProfile
from pathloop.client.segmentation.splits import Split

CONFIGURATION = "2d"
PLANS_IDENTIFIER = "nnUNetPlans"
DATASET_ID = 1
# nnU-Net draws 1e8 / n_cases foreground samples per case for its intensity statistics
# (3 million per channel for 32 tiles). Only CT normalisation uses them; 10 000 per case
# gives the same percentiles to within a grey level and keeps memory small.
FOREGROUND_SAMPLES_PER_CASE = 10_000


@dataclass(frozen=True)
class Workspace:
    """nnU-Net's three folders for one training job, under one root.

    Attributes
    ----------
    root:
        Folder holding ``raw/``, ``preprocessed/`` and ``results/``.
    dataset_name:
        nnU-Net's dataset name, ``Dataset001_<task>``.
    """

    root: Path
    dataset_name: str

    @property
    def raw(self) -> Path:
        """``nnUNet_raw``."""
        return self.root / "raw"

    @property
    def preprocessed(self) -> Path:
        """``nnUNet_preprocessed``."""
        return self.root / "preprocessed"

    @property
    def results(self) -> Path:
        """``nnUNet_results``."""
        return self.root / "results"

    @property
    def raw_dataset(self) -> Path:
        """The raw dataset folder (a link to the exported dataset)."""
        return self.raw / self.dataset_name

    @property
    def preprocessed_dataset(self) -> Path:
        """The dataset's folder under ``nnUNet_preprocessed``."""
        return self.preprocessed / self.dataset_name


def prepare_workspace(root: Path, dataset: RawDataset) -> Workspace:
    """Create nnU-Net's folders under ``root`` and link the exported dataset into ``raw``."""
    workspace = Workspace(root=root, dataset_name=f"Dataset{DATASET_ID:03d}_{dataset.task.name}")
    for folder in (workspace.raw, workspace.preprocessed_dataset, workspace.results):
        folder.mkdir(parents=True, exist_ok=True)
    # A reused work_dir may hold an earlier job: point raw at this dataset, drop old results.
    if workspace.raw_dataset.is_symlink():
        workspace.raw_dataset.unlink()
    workspace.raw_dataset.symlink_to(dataset.path.resolve(), target_is_directory=True)
    shutil.rmtree(workspace.results / workspace.dataset_name, ignore_errors=True)
    return workspace


def load_dataset_json(dataset: RawDataset) -> dict[str, Any]:
    """The exported ``dataset.json`` as nnU-Net reads it."""
    data: dict[str, Any] = json.loads((dataset.path / "dataset.json").read_text())
    return data


def extract_fingerprint(workspace: Workspace, dataset_json: Mapping[str, Any]) -> dict[str, Any]:
    """nnU-Net's dataset fingerprint, computed case by case in this process.

    Writes ``dataset_fingerprint.json`` into the preprocessed dataset folder.
    """
    n_channels = len(dataset_json["channel_names"])
    shapes, spacings, relative_sizes = [], [], []
    samples: list[list[np.ndarray]] = [[] for _ in range(n_channels)]
    for images, label in _case_files(workspace, dataset_json).values():
        shape, spacing, fg_samples, _, relative = DatasetFingerprintExtractor.analyze_case(
            images, label, NaturalImage2DIO, FOREGROUND_SAMPLES_PER_CASE
        )
        shapes.append([int(s) for s in shape])
        spacings.append([float(s) for s in spacing])
        relative_sizes.append(float(relative))
        for c in range(n_channels):
            samples[c].append(np.asarray(fg_samples[c], dtype=np.float64))
    stats: dict[str, dict[str, float]] = {}
    for c in range(n_channels):
        values = np.concatenate(samples[c]) if samples[c] else np.zeros(0)
        if values.size == 0:  # no foreground anywhere: neutral statistics
            values = np.zeros(1)
        low, median, high = np.percentile(values, (0.5, 50.0, 99.5))
        stats[str(c)] = {
            "mean": float(values.mean()), "median": float(median), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max()),
            "percentile_99_5": float(high), "percentile_00_5": float(low),
        }
    fingerprint = {
        "spacings": spacings,
        "shapes_after_crop": shapes,
        "foreground_intensity_properties_per_channel": stats,
        "median_relative_size_after_cropping": float(np.median(relative_sizes)),
    }
    _write_json(workspace.preprocessed_dataset / "dataset_fingerprint.json", fingerprint)
    return fingerprint


def make_plans(
    workspace: Workspace,
    dataset_json: Mapping[str, Any],
    profile: TrainingProfile,
    *,
    base_plans: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Plan the 2D configuration and apply the profile; save it as nnU-Net's plans file.

    Parameters
    ----------
    base_plans:
        Plans of a parent model to keep (fine-tuning: the network must stay the same);
        ``None`` runs nnU-Net's experiment planner and patches its 2D plans with the
        profile's patch size, batch size and architecture.

    Returns
    -------
    dict
        The plans, with only the ``"2d"`` configuration.
    """
    _write_json(workspace.preprocessed_dataset / "dataset.json", dict(dataset_json))
    if base_plans is not None:
        plans = copy.deepcopy(dict(base_plans))
    else:
        planner = ExperimentPlanner(workspace.dataset_name, plans_name=PLANS_IDENTIFIER)
        plans = planner.plan_experiment()
        plans = json.loads(json.dumps(plans, default=_json_number))  # → plain JSON types
        _apply_profile(plans["configurations"][CONFIGURATION], profile)
    if CONFIGURATION not in plans.get("configurations", {}):
        raise DatasetError(f"plans have no {CONFIGURATION!r} configuration (not 2D data?)")
    plans["configurations"] = {CONFIGURATION: plans["configurations"][CONFIGURATION]}
    plans["dataset_name"] = workspace.dataset_name
    plans["plans_name"] = PLANS_IDENTIFIER
    _write_json(workspace.preprocessed_dataset / f"{PLANS_IDENTIFIER}.json", plans)
    return plans


def preprocess(workspace: Workspace, plans: Mapping[str, Any],
               dataset_json: Mapping[str, Any]) -> int:
    """Run nnU-Net's preprocessing (crop, normalise, resample, save) case by case.

    Returns
    -------
    int
        Number of cases written.
    """
    manager = PlansManager(copy.deepcopy(dict(plans)))
    configuration = manager.get_configuration(CONFIGURATION)
    output = workspace.preprocessed_dataset / configuration.data_identifier
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    preprocessor = DefaultPreprocessor(verbose=False)
    cases = _case_files(workspace, dataset_json)
    for name, (images, label) in cases.items():
        preprocessor.run_case_save(str(output / name), images, label, manager, configuration,
                                   dict(dataset_json))
    return len(cases)


def write_splits(workspace: Workspace, splits: Sequence[Split]) -> None:
    """Save the folds' train/validation cases as nnU-Net's ``splits_final.json``."""
    _write_json(workspace.preprocessed_dataset / "splits_final.json",
                [{"train": list(s["train"]), "val": list(s["val"])} for s in splits])


def _apply_profile(configuration: dict[str, Any], profile: TrainingProfile) -> None:
    if profile.patch_size is not None:
        configuration["patch_size"] = list(profile.patch_size)
    if profile.batch_size is not None:
        configuration["batch_size"] = profile.batch_size
    arch = profile.architecture
    if arch is not None:
        n = len(arch.features_per_stage)
        configuration["architecture"]["arch_kwargs"].update({
            "n_stages": n,
            "features_per_stage": list(arch.features_per_stage),
            "kernel_sizes": [[arch.kernel_size, arch.kernel_size]] * n,
            "strides": [list(s) for s in arch.strides],
            "n_conv_per_stage": list(arch.n_conv_per_stage),
            "n_conv_per_stage_decoder": list(arch.n_conv_per_stage_decoder),
        })


def _case_files(workspace: Workspace,
                dataset_json: Mapping[str, Any]) -> dict[str, tuple[list[str], str]]:
    root = workspace.raw_dataset
    return {
        name: ([str(root / f) for f in entry["images"]], str(root / entry["label"]))
        for name, entry in dataset_json["dataset"].items()
    }


def _json_number(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_json_number))


__all__ = [
    "CONFIGURATION",
    "PLANS_IDENTIFIER",
    "Workspace",
    "extract_fingerprint",
    "load_dataset_json",
    "make_plans",
    "prepare_workspace",
    "preprocess",
    "write_splits",
]
