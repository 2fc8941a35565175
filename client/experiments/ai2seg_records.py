"""What ``pathloop eval ai2seg`` is configured with and what it measures (written as JSON).

:class:`Ai2SegConfig` says which noise the experiment simulates and how the instance model
is trained; :class:`CellResult` holds one (noise type, β, seed) cell of Table I;
:class:`Ai2SegResult` the whole run. :mod:`~pathloop.client.experiments.ai2seg` runs the
experiment, :mod:`~pathloop.client.experiments.ai2seg_report` reports it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pathloop.client.quality.instances import TTA
from pathloop.client.quality.noise import NOISE_TYPES
from pathloop.client.segmentation import TINY, TrainingProfile

#: The instance model's schedule: the tiny network on whole crops (128² at 0.5 µm/px), one
#: fold, 8 epochs of 30 iterations. Measured on 2 shared cores: ~0.5 s per iteration, and a
#: forward pass of a 256² crop at 0.25 µm/px cost 0.19 s against 0.026 s for the same crop
#: at 0.5 µm/px — the 8-transform TTA of 320 crops would take 8 minutes at 0.25 µm/px.
AI2SEG_PROFILE = TINY.with_overrides(num_epochs=8, seed=0)
MODEL_MPP = 0.5
BETAS = (0.10, 0.25, 0.50)
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Ai2SegConfig:
    """What the experiment simulates, trains and measures.

    Attributes
    ----------
    types:
        Noise types (:data:`~pathloop.client.quality.noise.NOISE_TYPES`).
    betas:
        Fractions of the instances each noise affects.
    seeds:
        Repeats: seed ``s`` simulates the noise with seed ``s`` and trains with seed ``s``
        (the paper averages 5 trained networks).
    profile:
        The instance model's network and schedule.
    n_folds:
        Folds of the instance model (1: one network, validated on a fifth of the images).
    max_images:
        Use only the first images by name (``None``: all with contours).
    model_mpp:
        Resolution the instance model works at, an integer multiple of MoNuSeg's 0.25
        µm/px: crops are downscaled for it (area average; labels: nearest), its
        predictions upscaled back (nearest) and inspected against the annotation at
        0.25 µm/px.
    boundary_width:
        The boundary ring of the training targets, pixels at ``model_mpp``.
    transforms:
        Test-time augmentation (:data:`~pathloop.client.quality.instances.TTA`).
    grid:
        The values of α and γ searched for AUC*.
    """

    types: tuple[str, ...] = NOISE_TYPES
    betas: tuple[float, ...] = BETAS
    seeds: tuple[int, ...] = (0,)
    profile: TrainingProfile = AI2SEG_PROFILE
    n_folds: int = 1
    max_images: int | None = None
    model_mpp: float = MODEL_MPP
    boundary_width: int = 1
    transforms: tuple[str, ...] = TTA
    grid: tuple[float, ...] = GRID

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (the profile as its field values)."""
        data = asdict(self)
        data["profile"] = self.profile.to_json()
        return dict(json.loads(json.dumps(data)))


@dataclass(frozen=True)
class CellResult:
    """One cell of Table I: a noise type and β, one seed.

    Attributes
    ----------
    kind, beta, seed:
        The noise simulated.
    auc:
        ROC-AUC of the instance scores at α = γ = 0 against the simulated noise.
    auc_star:
        The best AUC over the grid of α and γ, found at (``alpha``, ``gamma``).
    grid:
        ``"α,γ"`` → AUC for every grid point.
    n_instances, n_noisy:
        Scored instances (odd, additional and missing) of all crops, and how many of them
        the simulation made noisy.
    roc:
        ``"naive"`` and ``"best"`` → ``[fpr, tpr]`` (at most 201 points each).
    seconds:
        Wall time per step: ``"noise"``, ``"train"``, ``"predict"``, ``"inspect"``.
    validation_dice:
        The network's last pseudo-Dice on its validation crops (nnU-Net's EMA).
    """

    kind: str
    beta: float
    seed: int
    auc: float
    auc_star: float
    alpha: float
    gamma: float
    grid: dict[str, float]
    n_instances: int
    n_noisy: int
    roc: dict[str, list[list[float]]]
    seconds: dict[str, float]
    validation_dice: float | None = None


@dataclass(frozen=True)
class Ai2SegResult:
    """Everything the experiment measured (``report.json``, rewritten after every cell)."""

    config: dict[str, Any]
    images: list[str]
    n_crops: int
    split: dict[str, list[str]]
    cells: list[CellResult] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = False

    def write(self, path: Path) -> None:
        """Write the result as JSON, atomically (a reader never sees half a file)."""
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        partial.write_text(json.dumps(asdict(self), indent=1))
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> Ai2SegResult:
        """Read a result written by :meth:`write`."""
        data = json.loads(path.read_text())
        cells = [CellResult(**cell) for cell in data.pop("cells")]
        return cls(cells=cells, **data)


__all__ = ["AI2SEG_PROFILE", "BETAS", "GRID", "MODEL_MPP", "Ai2SegConfig", "Ai2SegResult",
           "CellResult"]
