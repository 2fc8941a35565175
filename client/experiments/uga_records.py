"""What ``pathloop eval uga`` is configured with and what it measures (written as JSON).

:class:`UgaEvalConfig` says what the experiment trains, ranks and measures;
:class:`UgaEvalResult` holds every scored model (:class:`ArmResult`) and the patches each
strategy picked (:class:`SelectedPatch`). :mod:`~pathloop.client.experiments.uga_eval` runs
the experiment, :mod:`~pathloop.client.experiments.uga_report` reports it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pathloop.client.segmentation import TINY, TrainingProfile

#: Fine-tuning from the baseline: a lower learning rate and hue shifts, as in the paper.
#: Five epochs keep the default run (18 retrained ensembles) near an hour on 2 cores.
RETRAIN_PROFILE = TINY.with_overrides(num_epochs=5, initial_lr=2e-3, hue_shift=0.05)


@dataclass(frozen=True)
class UgaEvalConfig:
    """What the experiment trains, ranks and measures.

    Attributes
    ----------
    baseline_centres, target_centres:
        Organs (see :data:`~pathloop.client.experiments.monuseg.ORGAN_OF_TSS`).
    n_pool:
        Training images per target centre whose patches may be picked; the centre's other
        images are held out.
    ks:
        How many patches each strategy adds.
    draws:
        Repeats of the comparison. Draw ``d`` picks the random strategy's patches with seed
        ``d`` and retrains both strategies' ensembles with training seed ``d``, so each draw
        gives a paired difference UGA − random (the UGA ranking itself is the same in every
        draw: it is a function of the baseline).
    model_mpp:
        Resolution in µm/px the networks work at (MoNuSeg is scanned at 0.25).
    patch_size, patch_stride:
        Candidate patches in pixels at ``model_mpp``.
    baseline_profile, retrain_profile:
        Training schedules; ``retrain_profile`` only changes schedule, learning rate and
        augmentation (the plans are the baseline's).
    control:
        Also continue the baseline without new patches (with the first draw's seed).
    """

    baseline_centres: tuple[str, ...] = ("breast", "bladder", "colon", "stomach")
    target_centres: tuple[str, ...] = ("kidney", "lung", "prostate")
    n_pool: int = 4
    ks: tuple[int, ...] = (10,)
    draws: tuple[int, ...] = (0, 1, 2)
    model_mpp: float = 0.5
    patch_size: int = 128
    patch_stride: int = 124
    baseline_profile: TrainingProfile = TINY
    retrain_profile: TrainingProfile = RETRAIN_PROFILE
    control: bool = True

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (profiles as their field values)."""
        data = asdict(self)
        data["baseline_profile"] = self.baseline_profile.to_json()
        data["retrain_profile"] = self.retrain_profile.to_json()
        return dict(json.loads(json.dumps(data)))  # tuples as lists, as read back


@dataclass(frozen=True)
class SelectedPatch:
    """A patch a strategy picked: where, how uncertain, how much nucleus it holds."""

    image: str
    x: int
    y: int
    score_mean: float
    nucleus_fraction: float


@dataclass(frozen=True)
class ArmResult:
    """One trained model scored on one centre's held-out images.

    Attributes
    ----------
    centre:
        The target centre (or ``"baseline centres"`` for the in-domain reference).
    arm:
        ``"baseline"``, ``"continued"`` (no new patches), ``"uga"`` or ``"random"``.
    k:
        Patches added (0 for baseline and control).
    draw:
        The draw (see :attr:`UgaEvalConfig.draws`) of a UGA or random arm; ``None`` for the
        baseline and the control.
    model_version_id:
        The scored model version in the experiment's store.
    dice:
        Held-out image stem → nucleus Dice.
    selected:
        The patches added, best first.
    training_seconds:
        Wall time of the model's training (0 for the baseline's reuse).
    """

    centre: str
    arm: str
    k: int
    draw: int | None
    model_version_id: int
    dice: dict[str, float]
    selected: list[SelectedPatch] = field(default_factory=list)
    training_seconds: float = 0.0

    @property
    def mean_dice(self) -> float:
        """Mean Dice over the held-out images."""
        return float(np.mean(list(self.dice.values())))


@dataclass(frozen=True)
class UgaEvalResult:
    """Everything the experiment measured (written as JSON next to the report)."""

    config: dict[str, Any]
    centres: dict[str, dict[str, list[str]]]
    arms: list[ArmResult]
    candidates: dict[str, int]
    seconds: float

    def write(self, path: Path) -> None:
        """Write the result as JSON."""
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, path: Path) -> UgaEvalResult:
        """Read a result written by :meth:`write`."""
        data = json.loads(path.read_text())
        arms = [ArmResult(**{**a, "selected": [SelectedPatch(**p) for p in a["selected"]]})
                for a in data.pop("arms")]
        return cls(arms=arms, **data)


__all__ = ["RETRAIN_PROFILE", "ArmResult", "SelectedPatch", "UgaEvalConfig", "UgaEvalResult"]
