"""``pathloop eval ai2seg``: AI²Seg's Table I (seed 000) on MoNuSeg.

For every noise type and ratio β (and seed):

1. every crop's clean instances (:mod:`~pathloop.client.experiments.ai2seg_crops`) get
   simulated noise (:func:`~pathloop.client.quality.noise.simulate_noise`, seeded by the
   cell's seed and the crop's number), which records which instances it made noisy;
2. the instance model (:mod:`pathloop.client.quality.instances`) is trained on the noisy
   crops — one network by default, trained on the crops of 80% of the images and
   validated on the rest, as the paper's 80/20 split (crops of one image stay together);
3. it predicts every crop with test-time augmentation; each crop's noisy annotation and
   prediction are matched into odd / additional / missing instances
   (:func:`~pathloop.client.quality.inspection.assign_states`), each with the members'
   certainty, and each instance is marked noisy or clean from the simulation's record
   (:func:`~pathloop.client.quality.inspection.noise_truth`);
4. the scores of all instances of all crops are ranked against that truth: AUC at
   α = γ = 0 (the paper's naive setting) and AUC* at the best (α, γ) of the grid.

The paper inspects the same images the network was trained on (the network learns the
majority, clean, shape of nuclei and disagrees with the noisy minority), so every crop is
scored, the validation crops included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import InputError
from pathloop.client.experiments.ai2seg_crops import MONUSEG_MPP, Crop, image_names, load_crops
from pathloop.client.experiments.ai2seg_records import (
    Ai2SegConfig,
    Ai2SegResult,
    CellResult,
)
from pathloop.client.quality.inspection import (
    InstanceState,
    assign_states,
    noise_truth,
    score_instances,
)
from pathloop.client.quality.instances import predict_instances, train_instance_model
from pathloop.client.quality.noise import NOISE_TYPES, simulate_noise
from pathloop.client.quality.roc import roc_auc, roc_curve
from pathloop.client.segmentation import make_splits

logger = logging.getLogger(__name__)

RESULT_NAME = "report.json"
ROC_POINTS = 201
Notify = Callable[[str, int, int], None]


def run_ai2seg_eval(monuseg: Path, workdir: Path, config: Ai2SegConfig = Ai2SegConfig(), *,
                    device: str = "cpu", progress: Notify | None = None) -> Ai2SegResult:
    """Run the experiment; models go to ``workdir/models`` and the result, rewritten after
    every cell, to ``workdir/report.json`` (``workdir`` new or empty but for ``logs``).

    Raises
    ------
    InputError
        ``monuseg`` is not a MoNuSeg folder, an unknown noise type, a β outside (0, 1],
        no seeds, or ``workdir`` already holds a run.
    """
    started = time.perf_counter()
    notify = progress or (lambda message, done, total: None)
    _check(config)
    if workdir.exists() and any(p.name != "logs" for p in workdir.iterdir()):
        raise InputError(f"{workdir}: not empty; give a new folder for the experiment")
    workdir.mkdir(parents=True, exist_ok=True)
    cells = [(kind, beta, seed) for kind in config.types for beta in config.betas
             for seed in config.seeds]
    notify("reading the MoNuSeg crops", 0, len(cells))
    crops = load_crops(monuseg, max_images=config.max_images)
    groups = {c.name: c.image for c in crops}
    (split,) = make_splits([c.name for c in crops], 1, groups=groups)
    result = Ai2SegResult(
        config=config.to_json(), images=image_names(crops), n_crops=len(crops),
        split={"train": sorted({groups[n] for n in split["train"]}),
               "val": sorted({groups[n] for n in split["val"]})})
    result.write(workdir / RESULT_NAME)
    factor = _factor(config.model_mpp)
    images = np.stack([downscale_image(c.pixels, factor) for c in crops])
    for done, (kind, beta, seed) in enumerate(cells):
        label = f"{kind} β={beta:.2f} seed {seed}"
        cell = _run_cell(crops, images, groups, config, kind, beta, seed,
                         workdir / "models" / f"{kind}-b{beta:.2f}-s{seed}", device,
                         lambda step, label=label, done=done: notify(  # type: ignore[misc]
                             f"{label}: {step}", done, len(cells)))
        logger.info("%s: AUC %.3f, AUC* %.3f at α=%.2f γ=%.2f (%d instances, %d noisy)",
                    label, cell.auc, cell.auc_star, cell.alpha, cell.gamma,
                    cell.n_instances, cell.n_noisy)
        result = replace(result, cells=[*result.cells, cell],
                         seconds=round(time.perf_counter() - started, 1))
        result.write(workdir / RESULT_NAME)
    result = replace(result, complete=True, seconds=round(time.perf_counter() - started, 1))
    result.write(workdir / RESULT_NAME)
    notify("done", len(cells), len(cells))
    return result


def _run_cell(crops: Sequence[Crop], images: NDArray[np.uint8], groups: dict[str, str],
              config: Ai2SegConfig, kind: str, beta: float, seed: int, model_dir: Path,
              device: str, step: Callable[[str], None]) -> CellResult:
    from pathloop.client.segmentation import Ensemble

    seconds: dict[str, float] = {}
    factor = _factor(config.model_mpp)
    clock = time.perf_counter()
    step("simulating the noise")
    noisy = [simulate_noise(c.labels, kind, beta, seed=seed * 100_000 + i)
             for i, c in enumerate(crops)]
    seconds["noise"] = round(time.perf_counter() - clock, 1)

    clock = time.perf_counter()
    step(f"training on {len(crops)} noisy crops")
    dice: float | None = None

    def training(event: Any) -> None:
        nonlocal dice
        if event.stage == "fold" and "ema_pseudo_dice" in event.detail:
            dice = float(event.detail["ema_pseudo_dice"])

    train_instance_model(
        [(c.name, image, downscale_labels(n.labels, factor))
         for c, image, n in zip(crops, images, noisy, strict=True)], model_dir,
        profile=config.profile.with_overrides(seed=seed), mpp=MONUSEG_MPP * factor,
        device=device, n_folds=config.n_folds, groups=groups,
        boundary_width=config.boundary_width, progress=training)
    seconds["train"] = round(time.perf_counter() - clock, 1)

    clock = time.perf_counter()
    step("predicting with TTA")
    ensemble = Ensemble.load(model_dir, device=device)
    predictions = predict_instances(ensemble, images, transforms=config.transforms)
    del ensemble
    seconds["predict"] = round(time.perf_counter() - clock, 1)

    clock = time.perf_counter()
    step("inspecting")
    states: list[tuple[InstanceState, ...]] = []
    truths: list[NDArray[np.bool_]] = []
    for crop, annotation, prediction in zip(crops, noisy, predictions, strict=True):
        labels = upscale_labels(prediction.labels, factor)
        members = [upscale_labels(m, factor) for m in prediction.members]
        crop_states = assign_states(annotation.labels, labels, members)
        states.append(crop_states)
        truths.append(noise_truth(crop_states, annotation, crop.labels, labels))
    cell = _score(kind, beta, seed, states, truths, config.grid)
    seconds["inspect"] = round(time.perf_counter() - clock, 1)
    return replace(cell, seconds=seconds, validation_dice=dice)


def _score(kind: str, beta: float, seed: int, states: Sequence[Sequence[InstanceState]],
           truths: Sequence[NDArray[np.bool_]], grid: Sequence[float]) -> CellResult:
    """AUC at α = γ = 0 and the best over the grid; scores recomputed from the states."""
    truth = np.concatenate([np.asarray(t, bool) for t in truths]) if truths else \
        np.zeros(0, bool)
    if truth.all() or not truth.any():
        raise InputError(f"{kind} β={beta}: {int(truth.sum())} of {truth.size} instances "
                         "noisy; an AUC needs both noisy and clean instances")

    def scores(alpha: float, gamma: float) -> NDArray[np.float64]:
        return np.concatenate([score_instances(s, alpha=alpha, gamma=gamma) for s in states])

    points = {(0.0, 0.0), *((a, g) for a in grid for g in grid)}
    table = {(a, g): roc_auc(truth, scores(a, g)) for a, g in sorted(points)}
    naive = table[0.0, 0.0]
    # Ties in AUC go to the smallest α, then γ (the simplest setting).
    (alpha, gamma), best = max(table.items(),
                               key=lambda item: (item[1], -item[0][0], -item[0][1]))
    return CellResult(
        kind=kind, beta=float(beta), seed=seed, auc=round(naive, 4), auc_star=round(best, 4),
        alpha=float(alpha), gamma=float(gamma),
        grid={f"{a},{g}": round(v, 4) for (a, g), v in table.items()},
        n_instances=int(truth.size), n_noisy=int(truth.sum()),
        roc={"naive": _curve(truth, scores(0.0, 0.0)),
             "best": _curve(truth, scores(alpha, gamma))},
        seconds={})


def _curve(truth: NDArray[np.bool_], scores: NDArray[np.float64]) -> list[list[float]]:
    fpr, tpr = roc_curve(truth, scores)
    if fpr.size > ROC_POINTS:
        keep = np.unique(np.linspace(0, fpr.size - 1, ROC_POINTS).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [[round(float(v), 4) for v in fpr], [round(float(v), 4) for v in tpr]]


def downscale_image(pixels: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 → ``(H/f, W/f, 3)``: the mean of each ``f × f`` block."""
    if factor == 1:
        return pixels
    h, w = pixels.shape[0] // factor, pixels.shape[1] // factor
    blocks = pixels[:h * factor, :w * factor].reshape(h, factor, w, factor, 3)
    return np.asarray(blocks.mean(axis=(1, 3)).round(), np.uint8)


def downscale_labels(labels: NDArray[np.int32], factor: int) -> NDArray[np.int32]:
    """``(H, W)`` labels → ``(H/f, W/f)``: the top-left pixel of each ``f × f`` block."""
    return np.ascontiguousarray(labels[::factor, ::factor]) if factor > 1 else labels


def upscale_labels(labels: NDArray[np.int32], factor: int) -> NDArray[np.int32]:
    """Each pixel repeated into an ``f × f`` block (the inverse of :func:`downscale_labels`
    for blocky labels)."""
    if factor == 1:
        return labels
    return np.repeat(np.repeat(labels, factor, axis=0), factor, axis=1)


def _factor(model_mpp: float) -> int:
    factor = round(model_mpp / MONUSEG_MPP)
    if factor < 1 or abs(factor * MONUSEG_MPP - model_mpp) > 1e-6:
        raise InputError(f"model_mpp {model_mpp} is not a multiple of MoNuSeg's "
                         f"{MONUSEG_MPP} µm/px")
    return factor


def _check(config: Ai2SegConfig) -> None:
    _factor(config.model_mpp)
    unknown = [t for t in config.types if t not in NOISE_TYPES]
    if unknown or not config.types:
        raise InputError(f"unknown noise types {unknown} (known: {', '.join(NOISE_TYPES)})")
    if not config.betas or any(not 0.0 < b <= 1.0 for b in config.betas):
        raise InputError(f"β must lie in (0, 1], got {list(config.betas)}")
    if not config.seeds or len(set(config.seeds)) < len(config.seeds) or min(config.seeds) < 0:
        raise InputError(f"seeds must be distinct integers >= 0, got {list(config.seeds)}")


__all__ = ["RESULT_NAME", "run_ai2seg_eval"]
