"""Gaussian-weighted blending of every fold's window logits over one band of a stripe.

:class:`BandAccumulator` holds, for the rows ``[top, top + band + patch)`` of one stripe, the
weighted sum of each fold's logits and the sum of weights. Windows are added top to bottom;
once no window left to add can reach a band's rows, :meth:`BandAccumulator.pop_band` turns
them into per-fold softmax (the weighted mean of the logits first, as nnU-Net does) and rolls
the accumulator down by one band. Memory: ``(K·C + 1)·(band + patch)·(stripe + patch)``
float32, whatever the slide's size.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class BandAccumulator:
    """Blended logits of ``n_folds`` folds over the columns ``[left, left + width)``.

    Parameters
    ----------
    n_folds, n_classes:
        K and C.
    top:
        First row held (absolute raster row; may be negative).
    left, width:
        Columns held (absolute; ``left`` may be negative).
    band:
        Rows popped at a time.
    weights:
        The window's importance weights ``(patch rows, patch columns)``.
    """

    def __init__(self, n_folds: int, n_classes: int, *, top: int, left: int, width: int,
                 band: int, weights: NDArray[np.float32]) -> None:
        self.top = top
        self.left = left
        self.band = band
        self._weights = weights
        rows = band + weights.shape[0]
        self._logits = np.zeros((n_folds, n_classes, rows, width), np.float32)
        self._weight_sum = np.zeros((rows, width), np.float32)

    def add(self, y: int, x: int, logits: NDArray[np.float32]) -> None:
        """Add one window's ``(K, C, h, w)`` logits with its top-left corner at ``(y, x)``.

        The window must lie in the held rows and columns (``y + h <= top + band + patch``).
        """
        rows, cols = logits.shape[2:]
        r, c = y - self.top, x - self.left
        if r < 0 or c < 0 or r + rows > self._weight_sum.shape[0] \
                or c + cols > self._weight_sum.shape[1]:
            raise ValueError(f"window at ({y}, {x}) of {rows}×{cols} px lies outside the rows "
                             f"{self.top}… and columns {self.left}… held")
        self._logits[:, :, r:r + rows, c:c + cols] += logits * self._weights
        self._weight_sum[r:r + rows, c:c + cols] += self._weights

    def pop_band(self, x0: int, x1: int) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """The finished band's columns ``[x0, x1)`` as per-fold softmax, then roll down.

        Returns ``(probabilities (K, C, band, x1 - x0), covered (band, x1 - x0))``; pixels no
        window covered have uniform probabilities and ``covered`` False.
        """
        c0, c1 = x0 - self.left, x1 - self.left
        weight = self._weight_sum[:self.band, c0:c1]
        covered = weight > 0
        divisor = np.where(covered, weight, np.float32(1.0)).astype(np.float32)
        logits: NDArray[np.float32] = np.divide(self._logits[:, :, :self.band, c0:c1], divisor,
                                                dtype=np.float32)
        probabilities = _softmax(logits)
        self._roll()
        return probabilities, covered

    def _roll(self) -> None:
        band = self.band
        self._logits[:, :, :-band] = self._logits[:, :, band:]
        self._logits[:, :, -band:] = 0.0
        self._weight_sum[:-band] = self._weight_sum[band:]
        self._weight_sum[-band:] = 0.0
        self.top += band


def _softmax(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    """Softmax over the class axis (1) of ``(K, C, H, W)``, in place on a fresh array."""
    out = logits - logits.max(axis=1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


__all__ = ["BandAccumulator"]
