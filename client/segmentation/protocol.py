"""The seam between slide-level inference and a fold ensemble.

Inference (:mod:`pathloop.client.inference`) and the uncertainty maps only need an object
that turns a batch of RGB tiles into every fold's softmax; the nnU-Net adapter provides the
real one, tests use a small numpy fake. Importing this module imports neither torch nor
nnunetv2.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray


class FoldPredictor(Protocol):
    """A K-fold ensemble predicting per-pixel class probabilities at one resolution."""

    @property
    def n_folds(self) -> int:
        """Number of folds ``K``."""
        ...

    @property
    def n_classes(self) -> int:
        """Number of classes ``C`` (class 0 is background)."""
        ...

    @property
    def mpp(self) -> float:
        """Resolution in µm/px the model was trained at (tiles must be read at it)."""
        ...

    def predict_folds(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Every fold's softmax for a batch of tiles.

        Parameters
        ----------
        images:
            ``(B, H, W, 3)`` uint8 RGB tiles at :attr:`mpp` µm/px.

        Returns
        -------
        ndarray
            ``(K, B, C, H, W)`` float32 per-fold probabilities (summing to 1 over ``C``).
        """
        ...


__all__ = ["FoldPredictor"]
