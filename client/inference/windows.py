"""The sliding-window lattice and its Gaussian importance weights, as nnU-Net predicts.

A fold network sees windows of its training patch size. Windows sit on a lattice anchored at
the slide's origin, ``step`` pixels apart (by default half a patch, nnU-Net's
``tile_step_size=0.5``), so where a window falls depends only on the slide, never on how the
work is cut into stripes and bands. Each window's logits are weighted by a Gaussian centred
on the window (``sigma = patch / 8``, nnU-Net's ``compute_gaussian``): the network's output
near a window's edge, where its context is cut off, counts little, so neighbouring windows
blend without seams.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

SIGMA_SCALE = 1.0 / 8.0
"""Gaussian sigma as a fraction of the patch side (nnU-Net's default)."""


def gaussian_importance(patch: tuple[int, int], sigma_scale: float = SIGMA_SCALE
                        ) -> NDArray[np.float32]:
    """``patch``-shaped float32 weights, 1 at the centre, no zeros (nnU-Net's Gaussian).

    Every pixel of a window must weigh more than 0, or pixels covered by a single window at
    the slide's edge would have no prediction; nnU-Net sets the zeros to the smallest
    non-zero weight, and so does this.
    """
    rows, cols = patch
    if rows < 1 or cols < 1:
        raise ValueError(f"patch size must be positive, got {patch}")
    delta = np.zeros((rows, cols), np.float64)
    delta[rows // 2, cols // 2] = 1.0
    sigmas = (rows * sigma_scale, cols * sigma_scale)
    weights = ndimage.gaussian_filter(delta, sigmas, mode="constant", cval=0.0)
    weights /= weights.max()
    positive = weights[weights > 0]
    weights[weights <= 0] = positive.min()
    return weights.astype(np.float32)


def step_pixels(patch: int, step: float) -> int:
    """Window step in pixels for a step given as a fraction of ``patch`` (0 < step <= 1)."""
    if not 0.0 < step <= 1.0:
        raise ValueError(f"the window step is a fraction of the patch in (0, 1], got {step}")
    return max(1, math.floor(patch * step))


def window_origins(start: int, stop: int, patch: int, step: int) -> NDArray[np.int64]:
    """Lattice origins ``k * step`` of the windows ``[o, o + patch)`` that meet ``[start, stop)``.

    Origins may be negative: windows reaching past the slide's edge read white glass there,
    so that every pixel of the slide is seen by windows centred on both sides of it.
    """
    if stop <= start:
        return np.zeros(0, np.int64)
    first = (start - patch) // step + 1  # smallest k with k * step + patch > start
    last = (stop - 1) // step  # largest k with k*step < stop
    return np.arange(first, last + 1, dtype=np.int64) * step


__all__ = ["SIGMA_SCALE", "gaussian_importance", "step_pixels", "window_origins"]
