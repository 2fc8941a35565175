"""A numpy stand-in for the fold ensemble, for fast tests of the packages that use it.

:class:`FakeFoldPredictor` satisfies :class:`~pathloop.client.segmentation.protocol.FoldPredictor`
without torch: a pixel's foreground probability rises with its darkness (nuclei are dark in
H&E), and each fold moves the threshold a little, so folds agree on glass and on dark
nuclei and disagree in between, as real folds do near boundaries.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pathloop.client.segmentation.errors import ArrayInputError


class FakeFoldPredictor:
    """Darkness thresholds with one offset per fold.

    Parameters
    ----------
    n_folds:
        Number of folds K.
    n_classes:
        Number of classes C (>= 2); class ``c`` takes over where darkness passes
        ``c / C``.
    mpp:
        Resolution in µm/px reported to callers.
    spread:
        Largest threshold offset of a fold (darkness units, 0..1): 0 makes identical folds.
    sharpness:
        Slope of the logistic step: larger is more confident.
    """

    def __init__(self, *, n_folds: int = 5, n_classes: int = 2, mpp: float = 0.5,
                 spread: float = 0.1, sharpness: float = 20.0) -> None:
        if n_folds < 1 or n_classes < 2:
            raise ValueError("need n_folds >= 1 and n_classes >= 2")
        self._n_folds = n_folds
        self._n_classes = n_classes
        self._mpp = mpp
        self.offsets = np.linspace(-spread, spread, n_folds) if n_folds > 1 else np.zeros(1)
        self.sharpness = sharpness

    @property
    def n_folds(self) -> int:
        """Number of folds K."""
        return self._n_folds

    @property
    def n_classes(self) -> int:
        """Number of classes C."""
        return self._n_classes

    @property
    def mpp(self) -> float:
        """Resolution in µm/px."""
        return self._mpp

    def predict_folds(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """``(B, H, W, 3)`` uint8 RGB → ``(K, B, C, H, W)`` float32 softmax per fold."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ArrayInputError("images", "(B, H, W, 3) uint8",
                                  f"{images.shape} {images.dtype}")
        darkness = 1.0 - images.astype(np.float32).mean(axis=3) / 255.0  # (B, H, W)
        centres = np.arange(1, self._n_classes, dtype=np.float32) / self._n_classes
        out = np.empty((self._n_folds, *darkness.shape[:1], self._n_classes,
                        *darkness.shape[1:]), np.float32)
        for k, offset in enumerate(self.offsets):
            # Logit of class c: how far darkness is past each of the c lower thresholds.
            steps = self.sharpness * (darkness[:, None] - centres[None, :, None, None] - offset)
            logits = np.concatenate(
                [np.zeros_like(darkness[:, None]), np.cumsum(steps, axis=1)], axis=1
            )
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            out[k] = probs / probs.sum(axis=1, keepdims=True)
        return out


__all__ = ["FakeFoldPredictor"]
