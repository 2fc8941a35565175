"""The instance model of the inspection: three classes through the nnU-Net adapter, then
a seeded watershed, with test-time augmentation (TTA) for the instance uncertainty.

AI²Seg (seed 000) predicts Euclidean distance maps with a U-Net and cuts them into
instances with a seeded watershed. pathloop trains through its nnU-Net adapter, which
learns classes, so the network here learns three: background, the *interior* of a
nucleus and its *boundary* (a ring of ``boundary_width`` pixels inside every instance,
where it touches the background or another instance). Touching nuclei are then told apart
by the boundary between them:

1. foreground = pixels whose most probable class is interior or boundary;
2. seeds = connected components of the confident interior (probability > 0.5, eroded by one
   pixel so that two cores joined by a thin bridge come apart);
3. the watershed floods ``1 − P(interior)`` from the seeds inside the foreground;
   foreground components that hold no seed become instances of their own;
4. instances smaller than ``min_size`` pixels are dropped.

TTA runs the network on the 8 dihedral transforms of each tile (:data:`TTA`), maps each
softmax back (de-augments it) and averages over folds and transforms for the prediction.
Every (fold, transform) softmax also becomes a label array of its own, a *member*: the
inspection's certainty of an instance is how well the members agree with it
(:func:`pathloop.client.quality.inspection.assign_states`).

This module imports no torch: it uses the adapter's :class:`FoldPredictor` protocol and its
lazily loaded :func:`~pathloop.client.segmentation.train_ensemble`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import disk
from skimage.segmentation import watershed

from pathloop.client.errors import InputError
from pathloop.client.segmentation import (
    Case,
    FoldPredictor,
    ModelCard,
    SegmentationTask,
    TrainingProfile,
    export_dataset,
    make_splits,
)

logger = logging.getLogger(__name__)

INSTANCE_TASK = SegmentationTask("nuclei-instances",
                                 {"background": 0, "interior": 1, "boundary": 2})
"""Background, nucleus interior, nucleus boundary; RGB input z-scored per tile."""

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2

TTA = ("identity", "flip-x", "flip-y", "rot90", "rot180", "rot270", "transpose",
       "anti-transpose")
"""The 8 dihedral transforms of a square: identity, mirrors along x (columns) and y (rows),
rotations by 90°, 180°, 270° counter-clockwise, and the mirrors along both diagonals."""

SEED_THRESHOLD = 0.5
"""Interior probability above which a pixel may seed an instance."""

MIN_SIZE = 20
"""Smallest instance kept, in pixels (a nucleus at 0.25 µm/px is some 300-1500 px)."""

DEFAULT_BATCH = 16
"""Tiles predicted together (times 8 transforms); bounds the memory of the softmax."""


@dataclass(frozen=True)
class InstancePrediction:
    """The instance model's prediction of one tile.

    Attributes
    ----------
    labels:
        ``(H, W)`` int32 instance labels (0 background) from the mean softmax over every
        fold and transform.
    members:
        One ``(H, W)`` int32 label array per (fold, transform), de-augmented, in the order
        fold-major: ``members[k * T + t]`` is fold ``k`` under transform ``t``.
    """

    labels: NDArray[np.int32]
    members: tuple[NDArray[np.int32], ...]


def instance_targets(labels: NDArray[np.integer[Any]], *,
                     boundary_width: int = 2) -> NDArray[np.uint8]:
    """The 3-class training map of an instance label array.

    Parameters
    ----------
    labels:
        ``(H, W)`` integer instance labels, 0 background, ids > 0 (not necessarily
        consecutive).
    boundary_width:
        Width in pixels of the boundary ring inside each instance: a pixel is boundary when
        a pixel of another label (background or another instance) lies within this
        Euclidean distance. Pixels at the array's edge only see what is inside the array (a
        nucleus cut by the tile's edge is not outlined along the cut).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8: 0 background, 1 interior, 2 boundary.

    Raises
    ------
    InputError
        ``labels`` is not a 2-D integer array, has negative values, or the width is < 1.
    """
    array = np.asarray(labels)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"instance labels must be an (H, W) integer array, got "
                         f"{array.shape} {array.dtype}")
    if array.size and array.min() < 0:
        raise InputError("instance labels must be >= 0 (0 background)")
    if boundary_width < 1:
        raise InputError(f"boundary_width must be >= 1, got {boundary_width}")
    footprint = disk(boundary_width).astype(bool)
    highest = ndimage.maximum_filter(array, footprint=footprint, mode="nearest")
    lowest = ndimage.minimum_filter(array, footprint=footprint, mode="nearest")
    out = np.zeros(array.shape, np.uint8)
    inside = array > 0
    out[inside] = INTERIOR
    out[inside & ((highest != array) | (lowest != array))] = BOUNDARY
    return out


def instances_from_probabilities(probs: NDArray[np.floating[Any]], *,
                                 seed_threshold: float = SEED_THRESHOLD,
                                 min_size: int = MIN_SIZE) -> NDArray[np.int32]:
    """Cut a 3-class softmax into instances with a seeded watershed.

    Parameters
    ----------
    probs:
        ``(3, H, W)`` float probabilities of background, interior, boundary (classes,
        rows, columns).
    seed_threshold:
        Interior probability above which pixels may seed an instance (the seeds are the
        connected components of that region, eroded by one pixel).
    min_size:
        Instances with fewer pixels are dropped.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` int32 labels, 0 background, instances numbered 1..n.

    Raises
    ------
    InputError
        ``probs`` is not a ``(3, H, W)`` array.
    """
    array = np.asarray(probs)
    if array.ndim != 3 or array.shape[0] != 3:
        raise InputError(f"probabilities must be (3, H, W), got {array.shape}")
    foreground = np.argmax(array, axis=0) != BACKGROUND
    interior = array[INTERIOR]
    cores = ndimage.binary_erosion(interior > seed_threshold, structure=disk(1))
    seeds, _ = ndimage.label(cores & foreground)
    flooded = watershed(1.0 - interior, markers=seeds, mask=foreground)
    # Foreground the seeds did not reach (no confident interior): its own instances.
    unseeded, n_unseeded = ndimage.label(foreground & (flooded == 0))
    if n_unseeded:
        flooded = np.where(unseeded > 0, unseeded + flooded.max(), flooded)
    sizes = np.bincount(flooded.ravel())
    small = sizes < min_size
    small[0] = False
    if small.any():
        flooded = np.where(small[flooded], 0, flooded)
    return _consecutive(flooded)


def predict_instances(predictor: FoldPredictor, images: NDArray[np.uint8], *,
                      transforms: Sequence[str] = TTA,
                      batch_size: int | None = None,
                      progress: Callable[[int], None] | None = None,
                      ) -> list[InstancePrediction]:
    """Instances of every tile from the folds' softmax under test-time augmentation.

    Parameters
    ----------
    predictor:
        A 3-class model (:data:`INSTANCE_TASK`), e.g. the adapter's ``Ensemble``.
    images:
        ``(B, H, W, 3)`` uint8 RGB tiles at the predictor's µm/px (batch, rows, columns,
        channel). Non-square tiles allow only the transforms that keep the shape.
    transforms:
        Names out of :data:`TTA`; each tile is predicted once per transform.
    batch_size:
        Tiles per call of the predictor (each call predicts them under one transform);
        default :data:`DEFAULT_BATCH`. Bounds memory, does not change the results.
    progress:
        Called with the number of tiles done after each batch.

    Returns
    -------
    list of InstancePrediction
        One per tile, in order.

    Raises
    ------
    InputError
        Wrong ``images``, an unknown transform, a transform that changes a non-square
        tile's shape, or a predictor that does not give 3 classes.
    """
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[3] != 3 or array.dtype != np.uint8:
        raise InputError(f"images must be (B, H, W, 3) uint8, got {array.shape} {array.dtype}")
    unknown = [t for t in transforms if t not in TTA]
    if unknown or not transforms:
        raise InputError(f"unknown transforms {unknown} (known: {', '.join(TTA)})")
    if array.shape[1] != array.shape[2]:
        swapping = [t for t in transforms if t in _SWAPS_AXES]
        if swapping:
            raise InputError(f"transforms {swapping} need square tiles, got "
                             f"{array.shape[2]}×{array.shape[1]}")
    if predictor.n_classes != 3:
        raise InputError(f"the instance model has 3 classes, the predictor {predictor.n_classes}")
    step = max(1, DEFAULT_BATCH if batch_size is None else int(batch_size))
    out: list[InstancePrediction] = []
    for start in range(0, array.shape[0], step):
        chunk = array[start:start + step]
        # (K, T, B, C, H, W): every fold's softmax under every transform, mapped back.
        probs = np.stack([
            invert_transform(predictor.predict_folds(
                np.ascontiguousarray(apply_transform(chunk, name, axes=(1, 2)))),
                name, axes=(-2, -1))
            for name in transforms], axis=1)
        mean = probs.mean(axis=(0, 1))
        for b in range(chunk.shape[0]):
            members = tuple(instances_from_probabilities(probs[k, t, b])
                            for k in range(probs.shape[0]) for t in range(probs.shape[1]))
            out.append(InstancePrediction(instances_from_probabilities(mean[b]), members))
        if progress is not None:
            progress(len(out))
    return out


def transforms_for(height: int, width: int) -> tuple[str, ...]:
    """The :data:`TTA` transforms a ``height`` × ``width`` tile allows: all of them for a
    square tile, else those that keep its shape (no 90° rotation, no transpose)."""
    return TTA if height == width else tuple(t for t in TTA if t not in _SWAPS_AXES)


def apply_transform(array: NDArray[Any], name: str, *,
                    axes: tuple[int, int]) -> NDArray[Any]:
    """One of :data:`TTA` applied to the (rows, columns) ``axes`` of an array (a view)."""
    rows, cols = axes
    if name == "identity":
        return array
    if name == "flip-x":
        return np.flip(array, cols)
    if name == "flip-y":
        return np.flip(array, rows)
    if name == "rot90":
        return np.rot90(array, 1, axes=(rows, cols))
    if name == "rot180":
        return np.rot90(array, 2, axes=(rows, cols))
    if name == "rot270":
        return np.rot90(array, 3, axes=(rows, cols))
    if name == "transpose":
        return np.swapaxes(array, rows, cols)
    if name == "anti-transpose":
        return np.flip(np.swapaxes(array, rows, cols), (rows, cols))
    raise InputError(f"unknown transform {name!r} (known: {', '.join(TTA)})")


def invert_transform(array: NDArray[Any], name: str, *,
                     axes: tuple[int, int]) -> NDArray[Any]:
    """Undo :func:`apply_transform` on the (rows, columns) ``axes``."""
    return apply_transform(array, _INVERSE.get(name, name), axes=axes)


def train_instance_model(
    cases: Sequence[tuple[str, NDArray[np.uint8], NDArray[np.integer[Any]]]],
    model_dir: Path | str,
    *,
    profile: TrainingProfile,
    mpp: float,
    device: str = "cpu",
    n_folds: int = 1,
    groups: Mapping[str, str] | None = None,
    boundary_width: int = 2,
    progress: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ModelCard:
    """Train the 3-class instance model on tiles and their instance labels.

    Parameters
    ----------
    cases:
        ``(name, image, labels)``: ``(H, W, 3)`` uint8 RGB and ``(H, W)`` integer instance
        labels at ``mpp`` µm/px. The labels become :func:`instance_targets`.
    model_dir:
        The model folder to create (must not exist); written whole or not at all.
    profile:
        Network and schedule (e.g. ``TINY`` shortened); its ``n_folds`` is replaced.
    mpp:
        Resolution of the tiles in µm/px (MoNuSeg: 0.25).
    device:
        Torch device.
    n_folds:
        Folds to train. One fold validates on a fifth of the groups (80/20).
    groups:
        Case name → group (e.g. the image a crop was cut from): a group's cases are
        validated together, so no fold validates on neighbours of its training crops.
    boundary_width:
        See :func:`instance_targets`.
    progress, should_stop:
        Passed to :func:`~pathloop.client.segmentation.train_ensemble`.

    Returns
    -------
    ModelCard
        The card of the trained model.

    Raises
    ------
    InputError
        A case's labels do not match its image.
    DatasetError, TrainingError, Cancelled
        From the adapter.
    """
    from pathloop.client.segmentation import train_ensemble

    target = Path(model_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    names = [name for name, _, _ in cases]
    splits = make_splits(names, n_folds, groups=groups)
    with tempfile.TemporaryDirectory(prefix=".instances-dataset-", dir=target.parent) as tmp:
        dataset = export_dataset((_training_case(case, boundary_width) for case in cases),
                                 Path(tmp) / "dataset", INSTANCE_TASK, mpp=mpp)
        card: ModelCard = train_ensemble(
            dataset, target, profile=profile.with_overrides(n_folds=n_folds), device=device,
            splits=splits, progress=progress, should_stop=should_stop)
    return card


def _training_case(case: tuple[str, NDArray[np.uint8], NDArray[np.integer[Any]]],
                   boundary_width: int) -> Case:
    name, image, labels = case
    if np.shape(labels) != np.shape(image)[:2]:
        raise InputError(f"case {name!r}: labels {np.shape(labels)} do not match the image "
                         f"{np.shape(image)}")
    return Case(name, image, instance_targets(labels, boundary_width=boundary_width))


def _consecutive(labels: NDArray[np.integer[Any]]) -> NDArray[np.int32]:
    """Renumber the instances 1..n in order of their ids (0 stays background)."""
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids.size and ids[0] == 0:
        return inverse.reshape(labels.shape).astype(np.int32)
    return (inverse.reshape(labels.shape) + 1).astype(np.int32)


_INVERSE = {"rot90": "rot270", "rot270": "rot90"}
_SWAPS_AXES = frozenset({"rot90", "rot270", "transpose", "anti-transpose"})

__all__ = [
    "INSTANCE_TASK",
    "MIN_SIZE",
    "SEED_THRESHOLD",
    "TTA",
    "InstancePrediction",
    "apply_transform",
    "instance_targets",
    "instances_from_probabilities",
    "invert_transform",
    "predict_instances",
    "train_instance_model",
    "transforms_for",
]
