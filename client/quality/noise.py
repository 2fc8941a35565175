"""Simulated annotation noise: the 9 types of AI²Seg's Fig. 1 (after Schilling et al., 2022).

:func:`simulate_noise` turns a clean instance label array into a noisy one of a single type,
affecting ``round(β·n)`` of its ``n`` instances (half up), drawn by a seeded
:class:`numpy.random.Generator`, and records which ids are noisy: the truth an inspection is
evaluated against.

=============== =====================================================================
oversized       dilated by 2–4 px (a disk), into background only
undersized      eroded by 2–4 px (less where that would leave nothing): never vanishes
contour         only a 2 px outline ring is left, the interior is background
merged          joined with its nearest neighbour (by centroid) into one id: the convex
                hull of the pair, over background only (see below for the count)
split           cut in two along a line through the centroid at a random angle: two ids
jitter          ``round(β·n)`` small discs (radius 2–4 px) added in background, at least
                :data:`JITTER_MARGIN` px from any instance and from one another
holes           a round hole punched inside, the outline (≥ 2.5 px) kept
approximation   the outline replaced by a coarse polygon (Douglas-Peucker, 1.5–3 px)
forgotten       removed
=============== =====================================================================

Instances too small for a type (nothing to erode, split, hollow or simplify; no background
to grow into) are skipped when drawing and another is drawn in their place; when fewer than
``round(β·n)`` qualify, all that do are affected (a warning is logged).

"merged" counts instances, not pairs: ``k = round(β·n)`` instances are joined in ``k // 2``
groups, pairs, except that for an odd ``k ≥ 3`` the last group also takes the instance
nearest to it (a triple), so exactly ``k`` clean instances are affected; ``k = 1`` needs a
pair (2). "jitter" affects no clean instance: its noisy ids are the ones it adds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

from pathloop.client.errors import InputError
from pathloop.client.quality.distortions import DISTORTIONS, WINDOW_PAD
from pathloop.client.quality.labels import as_labels, instance_boxes, instance_ids, padded

logger = logging.getLogger(__name__)

NOISE_TYPES = ("oversized", "undersized", "contour", "merged", "split", "jitter", "holes",
               "approximation", "forgotten")
#: Radius range of the "jitter" discs, px (inclusive).
JITTER_RADII = (2, 4)
#: Least distance of a "jitter" disc from any instance and from another disc, px.
JITTER_MARGIN = 3


@dataclass(frozen=True)
class NoisyAnnotation:
    """A clean annotation with simulated noise, and which instances the noise made.

    Attributes
    ----------
    labels:
        The noisy label array, ``(H, W)`` ``int32``, the clean array's size and pixels.
    kind, beta, seed:
        The noise type (one of :data:`NOISE_TYPES`), its ratio β and the generator's seed.
    noisy_labels:
        Ids in ``labels`` that are noisy: changed, or added (a split's second half, jitter).
    affected_clean:
        Ids of the clean array that the noise touched (changed, merged, split or removed).
    """

    labels: NDArray[np.int32]
    kind: str
    beta: float
    seed: int
    noisy_labels: frozenset[int]
    affected_clean: frozenset[int]


def affected_count(beta: float, n_instances: int) -> int:
    """``round(β·n)``, halves rounded up: how many instances a ratio β affects."""
    return math.floor(beta * n_instances + 0.5)


def simulate_noise(clean: NDArray, kind: str, beta: float, *, seed: int) -> NoisyAnnotation:
    """The clean label array with noise of one type on ``round(β·n)`` of its instances.

    Parameters
    ----------
    clean:
        ``(H, W)`` integer label array, 0 = background; it is not modified.
    kind:
        One of :data:`NOISE_TYPES`.
    beta:
        Ratio of affected instances, in [0, 1]; β = 0 returns the clean labels unchanged.
    seed:
        Seed of the generator: the same arguments give the same result.

    Raises
    ------
    InputError
        An unknown ``kind``, β outside [0, 1], or ``clean`` not a label array.
    """
    if kind not in NOISE_TYPES:
        raise InputError(f"noise type {kind!r}: expected one of {', '.join(NOISE_TYPES)}")
    if not 0.0 <= beta <= 1.0:
        raise InputError(f"noise ratio beta = {beta!r}: expected a number in [0, 1]")
    labels = as_labels(clean, "clean annotation").copy()
    rng = np.random.default_rng(seed)
    ids = instance_ids(labels)
    target = affected_count(beta, len(ids))
    next_id = int(ids[-1]) + 1 if len(ids) else 1
    if kind == "jitter":
        noisy, affected = _jitter(labels, target, rng, next_id), set[int]()
    elif kind == "merged":
        noisy, affected = _merge(labels, ids, target, rng)
    else:
        noisy, affected = _distort(labels, ids, kind, target, rng, next_id)
    done = len(noisy) if kind == "jitter" else len(affected)
    if done < target:
        logger.warning("%s noise: only %d of the %d instances β = %s asks for could be made",
                       kind, done, target, beta)
    return NoisyAnnotation(labels, kind, float(beta), seed, frozenset(noisy),
                           frozenset(affected))


def _distort(labels: NDArray[np.int32], ids: NDArray[np.int64], kind: str, target: int,
             rng: np.random.Generator, next_id: int) -> tuple[set[int], set[int]]:
    distortion = DISTORTIONS[kind]
    boxes = instance_boxes(labels)
    noisy: set[int] = set()
    affected: set[int] = set()
    for own in rng.permutation(ids).tolist():
        if len(affected) == target:
            break
        window = labels[padded(boxes[own], WINDOW_PAD, labels.shape)]
        made = distortion(window, own, rng, next_id)
        if made is None:
            continue
        affected.add(own)
        noisy.update(made)
        if next_id in made:
            next_id += 1
    return noisy, affected


def _merge(labels: NDArray[np.int32], ids: NDArray[np.int64], target: int,
           rng: np.random.Generator) -> tuple[set[int], set[int]]:
    if target == 0 or len(ids) < 2:
        return set(), set()
    centroids = np.asarray(ndimage.center_of_mass(np.ones(labels.shape), labels, ids))
    index = {int(i): n for n, i in enumerate(ids)}
    boxes = instance_boxes(labels)
    n_groups = max(1, target // 2)
    free = np.ones(len(ids), bool)
    noisy: set[int] = set()
    affected: set[int] = set()
    for first in rng.permutation(ids).tolist():
        if len(noisy) == n_groups or free.sum() < 2:
            break
        if not free[index[first]]:
            continue
        group = [first]
        size = 3 if len(noisy) == n_groups - 1 and target % 2 and target >= 3 else 2
        while len(group) < size and free.sum() > len(group):
            group.append(_nearest(centroids, [index[g] for g in group], free, ids))
        for member in group:
            free[index[member]] = False
        _join(labels, group, boxes)
        noisy.add(group[0])
        affected.update(group)
    return noisy, affected


def _nearest(centroids: NDArray[np.float64], members: list[int], free: NDArray[np.bool_],
             ids: NDArray[np.int64]) -> int:
    """The free instance whose centroid is nearest the group's mean centroid."""
    centre = centroids[members].mean(axis=0)
    distance = np.linalg.norm(centroids - centre, axis=1)
    distance[~free] = np.inf
    distance[members] = np.inf
    return int(ids[int(np.argmin(distance))])


def _join(labels: NDArray[np.int32], group: list[int], boxes: dict) -> None:
    """The group's instances become ``group[0]``: their convex hull over background."""
    rows = slice(min(boxes[g][0].start for g in group), max(boxes[g][0].stop for g in group))
    cols = slice(min(boxes[g][1].start for g in group), max(boxes[g][1].stop for g in group))
    window = labels[rows, cols]
    members = np.isin(window, group)
    hull = convex_hull_image(members) & (members | (window == 0))
    window[hull] = group[0]


def _jitter(labels: NDArray[np.int32], target: int, rng: np.random.Generator,
            next_id: int) -> set[int]:
    """Add ``target`` small discs in background, away from every instance and each other."""
    if target == 0:
        return set()
    r_max = JITTER_RADII[1]
    reach = r_max + JITTER_MARGIN
    clearance = ndimage.distance_transform_edt(labels == 0)
    height, width = labels.shape
    clearance[:r_max, :] = clearance[height - r_max:, :] = 0  # discs stay inside the image
    clearance[:, :r_max] = clearance[:, width - r_max:] = 0
    candidates = np.flatnonzero(clearance.ravel() > reach)
    taken = np.zeros(labels.shape, bool)  # centres too close to a disc already placed
    rows, cols = np.ogrid[:height, :width]
    added: set[int] = set()
    for flat in rng.permutation(candidates).tolist():
        if len(added) == target:
            break
        cy, cx = divmod(flat, width)
        if taken[cy, cx]:
            continue
        radius = int(rng.integers(JITTER_RADII[0], r_max + 1))
        box = padded((slice(cy, cy + 1), slice(cx, cx + 1)), 2 * reach, labels.shape)
        near = (rows[box[0]] - cy) ** 2 + (cols[:, box[1]] - cx) ** 2
        labels[box][near <= radius**2] = next_id
        taken[box] |= near <= (2 * reach) ** 2
        added.add(next_id)
        next_id += 1
    return added


__all__ = ["JITTER_MARGIN", "JITTER_RADII", "NOISE_TYPES", "NoisyAnnotation",
           "affected_count", "simulate_noise"]
