"""Helpers of the segmentation tests: MoNuSeg tiles and training a real tiny nnU-Net."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tifffile
from PIL import Image

from pathloop.client.segmentation import (
    TINY,
    Case,
    ModelCard,
    SegmentationTask,
    TrainingProfile,
    export_dataset,
    make_splits,
)

if TYPE_CHECKING:  # torch loads on first use only, not when pytest collects
    from pathloop.client.segmentation import TrainingEvent

MONUSEG_MPP = 0.25  # MoNuSeg tiles are 40× scans
TILE_MPP = 0.5
TILE = 256
N_IMAGES = 8
NUCLEI = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})

# 60 iterations per fold: enough to beat chance on training tiles in ~7 s per fold.
TEST_PROFILE = TINY.with_overrides(num_epochs=3, iterations_per_epoch=20,
                                   val_iterations_per_epoch=1, n_proc_data_augmentation=0)


@dataclass(frozen=True)
class TrainedModel:
    """The session's tiny model and what its training reported."""

    model_dir: Path
    card: ModelCard
    events: tuple[TrainingEvent, ...]
    env_before: dict[str, str]
    env_after: dict[str, str]


def monuseg_tiles(shared_data: Path, n_images: int = N_IMAGES) -> Iterator[Case]:
    """256×256 tiles at 0.5 µm/px from MoNuSeg training images, 4 per image.

    Images ``(1000, 1000, 3)`` uint8 at 0.25 µm/px are halved (bilinear; masks nearest) to
    ``(500, 500)`` and cut at offsets 0 and 244 along each axis. Read in place.
    """
    root = shared_data / "nuclei" / "monuseg" / "train"
    for path in sorted((root / "images").glob("*.tif"))[:n_images]:
        image = tifffile.imread(path)[..., :3]
        mask = np.asarray(Image.open(root / "masks" / f"{path.stem}.png"))
        side = round(image.shape[0] * MONUSEG_MPP / TILE_MPP)
        image = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))
        mask = np.asarray(Image.fromarray(mask).resize((side, side), Image.Resampling.NEAREST))
        for y in (0, side - TILE):
            for x in (0, side - TILE):
                yield Case(f"{path.stem[:12]}_y{y}_x{x}",
                           np.ascontiguousarray(image[y:y + TILE, x:x + TILE]),
                           np.ascontiguousarray(mask[y:y + TILE, x:x + TILE]).astype(np.uint8))


def source_image(case_name: str) -> str:
    """The MoNuSeg image a tile was cut from (its group for cross-validation)."""
    return case_name.split("_y")[0]


def nnunet_variables() -> dict[str, str]:
    """Every ``nnUNet_*`` variable of this process."""
    return {k: v for k, v in os.environ.items() if k.startswith("nnUNet_")}


def train(cases: list[Case], root: Path, profile: TrainingProfile = TEST_PROFILE,
          parent: Path | None = None) -> TrainedModel:
    """Export ``cases`` under ``root`` and train a model folder ``root / "model"``."""
    from pathloop.client.segmentation import train_ensemble

    dataset = export_dataset(cases, root / "dataset", NUCLEI, mpp=TILE_MPP)
    splits = make_splits(dataset.case_names, profile.n_folds,
                         groups={n: source_image(n) for n in dataset.case_names})
    events: list[TrainingEvent] = []
    before = nnunet_variables()
    card = train_ensemble(dataset, root / "model", profile=profile, parent=parent,
                          splits=splits, progress=events.append)
    return TrainedModel(root / "model", card, tuple(events), before, nnunet_variables())


def synthetic_cases(n: int, size: int = 64, extra: bool = True) -> list[Case]:
    """Pink tiles with dark discs; the extra channel is a shifted (low-quality) mask."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:size, :size]
    cases = []
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(6):
            cy, cx, r = rng.integers(6, size - 6), rng.integers(6, size - 6), rng.integers(3, 6)
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        image = np.where(mask[..., None] == 1, [70, 40, 120], [230, 170, 210])
        image = (image + rng.normal(0, 8, (size, size, 3))).clip(0, 255).astype(np.uint8)
        lowquality = np.roll(mask, 2, axis=1)[..., None]
        cases.append(Case(f"synthetic{i:02d}", image, mask, lowquality if extra else None))
    return cases


def random_model_folder(model_dir: Path, task: SegmentationTask = NUCLEI, n_folds: int = 5,
                        mpp: float = TILE_MPP) -> Path:
    """A model folder of randomly initialised tiny networks, written without training.

    Holds what :meth:`Ensemble.load` reads (card, plans, dataset.json, one checkpoint per
    fold), so the folder checks and input checks run in a second, without real data.
    """
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    from pathloop.client.segmentation.checkpoints import write_checkpoint

    arch_kwargs = {
        "n_stages": 4, "features_per_stage": [8, 16, 32, 64],
        "conv_op": "torch.nn.modules.conv.Conv2d", "kernel_sizes": [[3, 3]] * 4,
        "strides": [[1, 1], [2, 2], [2, 2], [2, 2]], "n_conv_per_stage": [2, 2, 2, 2],
        "n_conv_per_stage_decoder": [2, 2, 2], "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
        "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    plans = {
        "dataset_name": "Dataset001_random", "plans_name": "nnUNetPlans",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {"2d": {
            "patch_size": [64, 64], "batch_size": 2,
            "normalization_schemes": [c.nnunet_scheme for c in task.channels],
            "use_mask_for_norm": [False] * len(task.channels),
            "architecture": {
                "network_class_name":
                    "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                "arch_kwargs": arch_kwargs,
                "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
            },
        }},
    }
    dataset_json = {"channel_names": task.nnunet_channel_names(), "labels": dict(task.labels),
                    "file_ending": ".png"}
    model_dir.mkdir(parents=True)
    (model_dir / "plans.json").write_text(json.dumps(plans))
    (model_dir / "dataset.json").write_text(json.dumps(dataset_json))
    import torch

    for fold in range(n_folds):
        torch.manual_seed(fold)
        network = PlainConvUNet(
            len(task.channels), 4, (8, 16, 32, 64), torch.nn.Conv2d, 3,
            ((1, 1), (2, 2), (2, 2), (2, 2)), (2, 2, 2, 2), task.n_classes, (2, 2, 2),
            conv_bias=True, norm_op=torch.nn.InstanceNorm2d,
            norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
            nonlin_kwargs={"inplace": True},
        )
        (model_dir / f"fold_{fold}").mkdir()
        write_checkpoint(model_dir / f"fold_{fold}" / "checkpoint_final.pth",
                         network.state_dict(), plans=plans, dataset_json=dataset_json,
                         configuration="2d", fold=fold, mirroring_axes=(0, 1), epochs=0)
    ModelCard(task=task, mpp=mpp, folds=tuple(range(n_folds)), configuration="2d",
              patch_size=(64, 64), profile={"name": "random"}, n_training_cases=0
              ).write(model_dir)
    return model_dir
