"""One instance distorted in place: the per-instance noise types of :mod:`.noise`.

Each function takes a window of the noisy label array (a view, ``(h, w)`` ``int32``, the
instance's bounding box grown by :data:`WINDOW_PAD` px), the instance's id, the run's random
generator and the next free id. It either changes the window and returns the ids in it that
are now noisy, or returns ``None`` without touching anything when the instance is too small
for the type (the caller then draws another instance). No function writes over another
instance's pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.draw import polygon
from skimage.measure import approximate_polygon, find_contours
from skimage.morphology import disk

#: Enough room around an instance for the largest dilation (4 px) and more.
WINDOW_PAD = 6
#: Dilation and erosion radii drawn per instance, px (inclusive).
RESIZE_RADII = (2, 4)
#: Width of the outline "contour" noise keeps, px (city-block erosions).
CONTOUR_WIDTH = 2
#: A hole leaves at least this much of the outline, px (Euclidean distance to outside).
HOLE_OUTLINE = 2.5
#: Douglas-Peucker tolerance range of "approximation", px.
APPROXIMATION_TOLERANCE = (1.5, 3.0)
#: Smallest instance "split" cuts in two, px.
MIN_SPLIT_AREA = 8

Distortion = Callable[[NDArray[np.int32], int, np.random.Generator, int],
                      tuple[int, ...] | None]


def oversized(window: NDArray[np.int32], own: int, rng: np.random.Generator,
              next_id: int) -> tuple[int, ...] | None:
    """Dilate by 2–4 px (a disk), into background only."""
    mask = window == own
    radius = int(rng.integers(RESIZE_RADII[0], RESIZE_RADII[1] + 1))
    grown = ndimage.binary_dilation(mask, disk(radius)) & (window == 0)
    if not grown.any():
        return None
    window[grown] = own
    return (own,)


def undersized(window: NDArray[np.int32], own: int, rng: np.random.Generator,
               next_id: int) -> tuple[int, ...] | None:
    """Erode by 2–4 px (a disk), less where that would leave nothing; never vanishes."""
    mask = window == own
    radius = int(rng.integers(RESIZE_RADII[0], RESIZE_RADII[1] + 1))
    for r in range(radius, 0, -1):
        kept = ndimage.binary_erosion(mask, disk(r))
        if kept.any():
            window[mask & ~kept] = 0
            return (own,)
    return None


def contour(window: NDArray[np.int32], own: int, rng: np.random.Generator,
            next_id: int) -> tuple[int, ...] | None:
    """Keep only the outline, a ring :data:`CONTOUR_WIDTH` px wide; the interior is cleared."""
    mask = window == own
    interior = ndimage.binary_erosion(mask, iterations=CONTOUR_WIDTH)
    if not interior.any():
        return None
    window[interior] = 0
    return (own,)


def holes(window: NDArray[np.int32], own: int, rng: np.random.Generator,
          next_id: int) -> tuple[int, ...] | None:
    """Punch a round hole inside, at least :data:`HOLE_OUTLINE` px from the outline."""
    mask = window == own
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    deepest = float(depth.max())
    if deepest < HOLE_OUTLINE + 1:
        return None
    # Radius r needs a centre at depth ≥ r + HOLE_OUTLINE (the distance map is 1-Lipschitz,
    # so every hole pixel then lies deeper than the outline); at most half the depth.
    r_max = max(1, min(int(deepest - HOLE_OUTLINE), int(np.ceil(deepest / 2))))
    radius = int(rng.integers(1, r_max + 1))
    centres = np.argwhere(depth >= radius + HOLE_OUTLINE)
    cy, cx = centres[int(rng.integers(len(centres)))]
    rows, cols = np.ogrid[:window.shape[0], :window.shape[1]]
    hole = mask & ((rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2)
    window[hole] = 0
    return (own,)


def approximation(window: NDArray[np.int32], own: int, rng: np.random.Generator,
                  next_id: int) -> tuple[int, ...] | None:
    """Replace the outline by a coarse polygon (Douglas-Peucker, 1.5–3 px tolerance).

    Only the longest outline is kept: an instance in several pieces becomes one polygon.
    """
    mask = window == own
    outlines = find_contours(np.pad(mask, 1).astype(np.float32), 0.5)
    if not outlines:
        return None
    outline = max(outlines, key=len) - 1
    tolerance = float(rng.uniform(*APPROXIMATION_TOLERANCE))
    coarse = approximate_polygon(outline, tolerance)
    rows, cols = polygon(coarse[:, 0], coarse[:, 1], shape=window.shape)
    shape = np.zeros_like(mask)
    shape[rows, cols] = True
    shape &= mask | (window == 0)
    if not shape.any() or np.array_equal(shape, mask):
        return None
    window[mask & ~shape] = 0
    window[shape] = own
    return (own,)


def split(window: NDArray[np.int32], own: int, rng: np.random.Generator,
          next_id: int) -> tuple[int, ...] | None:
    """Cut in two along a line through the centroid at a random angle; one half gets
    ``next_id``. Instances under :data:`MIN_SPLIT_AREA` px are not split."""
    rows, cols = np.nonzero(window == own)
    if len(rows) < MIN_SPLIT_AREA:
        return None
    cy, cx = rows.mean(), cols.mean()
    for _ in range(16):  # only an instance that is one straight line can fail every angle
        angle = rng.uniform(0.0, np.pi)
        side = (cols - cx) * np.cos(angle) + (rows - cy) * np.sin(angle) > 0
        if 0 < side.sum() < len(side):
            window[rows[side], cols[side]] = next_id
            return (own, next_id)
    return None


def forgotten(window: NDArray[np.int32], own: int, rng: np.random.Generator,
              next_id: int) -> tuple[int, ...] | None:
    """Remove the instance: nothing noisy is left in the label array."""
    window[window == own] = 0
    return ()


#: The per-instance types; "merged" and "jitter" act on the whole array (:mod:`.noise`).
DISTORTIONS: dict[str, Distortion] = {
    "oversized": oversized, "undersized": undersized, "contour": contour, "split": split,
    "holes": holes, "approximation": approximation, "forgotten": forgotten,
}

__all__ = ["DISTORTIONS", "WINDOW_PAD", "Distortion"]
