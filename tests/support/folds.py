"""The one fake of :class:`~pathloop.client.segmentation.protocol.FoldPredictor`: numpy folds
that disagree where real folds do, near class boundaries, and agree far from them.

Every test that needs an ensemble without torch uses :class:`ThresholdFolds`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pathloop.client.segmentation import ArrayInputError


class ThresholdFolds:
    """A fake K-fold ensemble: thresholds on (optionally box-blurred) darkness.

    Class ``c >= 1`` starts where the darkness passes ``thresholds[c - 1]``; each fold shifts
    the thresholds by its own offset, so the folds disagree near class boundaries and agree
    far from them. With ``radius > 0`` a pixel depends on its ``(2 r + 1)²`` neighbourhood
    (edge-padded at the tile border), like a small network's receptive field.
    ``disagreement`` adds a per-fold constant to the logits everywhere, glass included.
    """

    def __init__(self, *, n_folds: int = 5, n_classes: int = 2, mpp: float = 1.0,
                 radius: int = 0, sharpness: float = 30.0, spread: float = 0.05,
                 thresholds: tuple[float, ...] = (0.25, 0.5),
                 disagreement: float = 0.0, patch_size: tuple[int, int] = (64, 64)) -> None:
        self._n_folds = n_folds
        self._n_classes = n_classes
        self._mpp = mpp
        self.radius = radius
        self.sharpness = sharpness
        self.offsets = np.linspace(-spread, spread, n_folds)
        self.bias = np.linspace(-disagreement, disagreement, n_folds)
        self.thresholds = thresholds[: n_classes - 1]
        self._patch_size = patch_size
        self.calls = 0

    @property
    def n_folds(self) -> int:
        return self._n_folds

    @property
    def n_classes(self) -> int:
        return self._n_classes

    @property
    def mpp(self) -> float:
        return self._mpp

    @property
    def patch_size(self) -> tuple[int, int]:
        return self._patch_size

    def predict_logits(self, images: NDArray[np.uint8], *,
                       stats: NDArray[np.float64] | None = None) -> NDArray[np.float32]:
        """Log of :meth:`predict_folds` (its softmax is the same probabilities)."""
        probs = self.predict_folds(images)
        return np.log(np.maximum(probs, 1e-12)).astype(np.float32)

    def predict_folds(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """``(B, H, W, 3)`` uint8 RGB → ``(K, B, C, H, W)`` float32 softmax per fold."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ArrayInputError("images", "(B, H, W, 3) uint8",
                                  f"{images.shape} {images.dtype}")
        self.calls += 1
        darkness = 1.0 - images.astype(np.float64).mean(axis=-1) / 255.0  # (B, H, W)
        if self.radius:
            size = 2 * self.radius + 1
            darkness = ndimage.uniform_filter(darkness, size=(1, size, size), mode="nearest")
        batch, height, width = darkness.shape
        out = np.empty((self.n_folds, batch, self.n_classes, height, width), np.float32)
        for k in range(self.n_folds):
            # P(class >= c) for c = 1 … C-1, decreasing in c; P(class >= 0) = 1.
            above = [np.ones_like(darkness)]
            for threshold in self.thresholds:
                logit = self.sharpness * (darkness - threshold - self.offsets[k]) + self.bias[k]
                above.append(1.0 / (1.0 + np.exp(-logit)))
            above.append(np.zeros_like(darkness))
            for c in range(self.n_classes):
                out[k, :, c] = np.clip(above[c] - above[c + 1], 0.0, 1.0)
            out[k] /= out[k].sum(axis=1, keepdims=True)
        return out
