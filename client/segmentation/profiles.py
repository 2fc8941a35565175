"""Training profiles: how big a network and how long a training.

Two profiles ship:

``tiny``
    For CPUs (development machines, CI, the demo): a 4-stage U-Net with 8…64 features,
    128×128 patches, batch 4, 25 epochs of 30 iterations, data augmentation in the training
    process (on 2 cores a worker process only competes with the network for the cores).
    Measured on 2 cores with 120 MoNuSeg tiles of 256² at 0.5 µm/px: about 65 s per fold,
    5½ minutes for 5 folds, held-out Dice ≈ 0.74 per fold. Tests shorten it further with
    :meth:`TrainingProfile.with_overrides`.
``nnunet``
    nnU-Net's own plans and schedule, untouched (1000 epochs of 250 iterations, patch size
    and network from the experiment planner): for sites with a GPU.

A profile never changes the normalisation: that is the task's business
(:mod:`pathloop.client.segmentation.task`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pathloop.client.errors import ConfigError


@dataclass(frozen=True)
class Architecture:
    """A plain-convolution U-Net (nnU-Net's ``PlainConvUNet``) that replaces the planned one.

    Attributes
    ----------
    features_per_stage:
        Feature maps per encoder stage, e.g. ``(8, 16, 32, 64)``.
    strides:
        Per stage, the stride of its first convolution along (rows, columns); the first
        stage is ``(1, 1)``. The network's total stride is their product per axis.
    n_conv_per_stage:
        Convolutions per encoder stage.
    n_conv_per_stage_decoder:
        Convolutions per decoder stage (one fewer stage than the encoder).
    kernel_size:
        Edge of the square convolution kernels.
    """

    features_per_stage: tuple[int, ...]
    strides: tuple[tuple[int, int], ...]
    n_conv_per_stage: tuple[int, ...]
    n_conv_per_stage_decoder: tuple[int, ...]
    kernel_size: int = 3

    def __post_init__(self) -> None:
        n = len(self.features_per_stage)
        if not (len(self.strides) == len(self.n_conv_per_stage) == n >= 2):
            raise ConfigError("architecture: one stride and conv count per stage (>= 2 stages)")
        if len(self.n_conv_per_stage_decoder) != n - 1:
            raise ConfigError("architecture: the decoder has one stage fewer than the encoder")

    @property
    def total_stride(self) -> tuple[int, int]:
        """Product of the strides per axis: tile sides must be multiples of it."""
        rows = cols = 1
        for r, c in self.strides:
            rows, cols = rows * r, cols * c
        return rows, cols


@dataclass(frozen=True)
class TrainingProfile:
    """How to plan and train a 5-fold ensemble.

    ``None`` fields keep nnU-Net's planned or default value.

    Attributes
    ----------
    name:
        Recorded in the model card.
    n_folds:
        Cross-validation folds (each fold is one member of the ensemble). One fold trains
        a single network on four fifths of the cases and validates on the rest
        (:func:`~pathloop.client.segmentation.splits.make_splits`).
    num_epochs, iterations_per_epoch, val_iterations_per_epoch:
        The schedule (nnU-Net: 1000, 250, 50).
    patch_size:
        Training patch (rows, columns) in pixels.
    batch_size:
        Patches per iteration.
    architecture:
        Replaces the planned network when given.
    initial_lr:
        SGD's starting learning rate (nnU-Net: 1e-2, polynomial decay to 0).
    hue_shift:
        Largest hue rotation of the extra augmentation, as a fraction of the colour
        circle (0.05 = ±18°), applied to half the training patches; 0 turns it off.
        nnU-Net's own augmentation (mirroring along both axes, rotation, scaling,
        brightness, contrast, gamma, blur, noise) always runs.
    n_proc_data_augmentation:
        Worker processes for nnU-Net's data augmentation (0 = in the training process);
        ``None`` lets nnU-Net decide (up to 12, capped at the CPU count).
    proximal_mu:
        FedProx's μ: ``μ/2 · ‖w − w⁰‖²`` is added to the loss, ``w⁰`` the weights a fold
        starts from (0 = plain training).
    seed:
        Seeds Python's, NumPy's and PyTorch's generators before each fold (fold ``k`` with
        ``seed * 1000 + k``): weight initialisation, patch sampling and augmentation repeat.
        ``None`` leaves them as they are (every run differs). A seeded run repeats up to
        rounding: threads may add partial sums in another order (~1e-7 on a busy CPU).
    """

    name: str
    n_folds: int = 5
    num_epochs: int | None = None
    iterations_per_epoch: int | None = None
    val_iterations_per_epoch: int | None = None
    patch_size: tuple[int, int] | None = None
    batch_size: int | None = None
    architecture: Architecture | None = None
    initial_lr: float | None = None
    hue_shift: float = 0.0
    n_proc_data_augmentation: int | None = None
    proximal_mu: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.n_folds < 1:
            raise ConfigError(f"profile {self.name!r}: n_folds must be >= 1")
        if self.seed is not None and not 0 <= self.seed < 2**20:
            raise ConfigError(f"profile {self.name!r}: seed must lie in [0, 2**20), "
                              f"got {self.seed}")
        if self.proximal_mu < 0:
            raise ConfigError(f"profile {self.name!r}: proximal_mu must be >= 0")
        if not 0.0 <= self.hue_shift <= 0.5:
            raise ConfigError(f"profile {self.name!r}: hue_shift must lie in [0, 0.5]")
        for key in ("num_epochs", "iterations_per_epoch", "val_iterations_per_epoch",
                    "batch_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"profile {self.name!r}: {key} must be >= 1, got {value}")
        if self.patch_size is not None and self.architecture is not None:
            stride = self.architecture.total_stride
            if any(p % s for p, s in zip(self.patch_size, stride, strict=True)):
                raise ConfigError(
                    f"profile {self.name!r}: patch {self.patch_size} is not a multiple of "
                    f"the network's total stride {stride}"
                )

    def with_overrides(self, **changes: Any) -> TrainingProfile:
        """A copy with some fields changed, e.g. ``TINY.with_overrides(num_epochs=2)``."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description for the model card (tuples as lists)."""
        data: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(self)))
        return data


TINY = TrainingProfile(
    name="tiny",
    num_epochs=25,
    iterations_per_epoch=30,
    # Validation batches only feed nnU-Net's logged pseudo-Dice; 2 cost 4% less per epoch
    # than 5 on 2 cores.
    val_iterations_per_epoch=2,
    patch_size=(128, 128),
    batch_size=4,
    n_proc_data_augmentation=0,
    architecture=Architecture(
        features_per_stage=(8, 16, 32, 64),
        strides=((1, 1), (2, 2), (2, 2), (2, 2)),
        n_conv_per_stage=(2, 2, 2, 2),
        n_conv_per_stage_decoder=(2, 2, 2),
    ),
)

NNUNET = TrainingProfile(name="nnunet")

PROFILES: Mapping[str, TrainingProfile] = MappingProxyType({p.name: p for p in (TINY, NNUNET)})


def get_profile(name: str) -> TrainingProfile:
    """The profile called ``name`` (``"tiny"`` or ``"nnunet"``).

    Raises
    ------
    ConfigError
        No such profile.
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ConfigError(f"unknown training profile {name!r} (known: {known})") from None


__all__ = ["NNUNET", "PROFILES", "TINY", "Architecture", "TrainingProfile", "get_profile"]
