"""The seam between the fold ensemble and everything that uses it.

Other packages (slide inference, ranking, the demo) type against :class:`FoldPredictor`
and never import torch or nnunetv2; this module imports neither. The real implementation
is :class:`pathloop.client.segmentation.ensemble.Ensemble`; the numpy fake every fast test
uses is ``ThresholdFolds`` in ``tests/support/folds.py``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


@runtime_checkable
class FoldPredictor(Protocol):
    """K cross-validation folds that each give logits (and a softmax) per pixel.

    Attributes
    ----------
    n_folds:
        Number of folds K.
    n_classes:
        Number of classes C (background is class 0).
    mpp:
        Resolution in µm/px that tiles must be read at (the training tiles' resolution).
    patch_size:
        ``(rows, columns)`` of the training patch: the window slide inference feeds.
    """

    @property
    def n_folds(self) -> int:
        """Number of folds K."""
        ...

    @property
    def n_classes(self) -> int:
        """Number of classes C, background (0) included."""
        ...

    @property
    def mpp(self) -> float:
        """Resolution in µm/px the tiles must be read at."""
        ...

    @property
    def patch_size(self) -> tuple[int, int]:
        """Training patch ``(rows, columns)`` in pixels at :attr:`mpp`."""
        ...

    def predict_logits(self, images: NDArray[np.uint8], *,
                       stats: NDArray[np.float64] | None = None) -> NDArray[np.float32]:
        """Every fold's logits for a batch of tiles.

        Parameters
        ----------
        images:
            ``(B, H, W, 3)`` uint8 RGB tiles at :attr:`mpp`.
        stats:
            ``(2, 3)`` per-channel mean and standard deviation to z-score with instead of
            each tile's own (slide inference passes the slide's); ignored by channels the
            network does not z-score.

        Returns
        -------
        numpy.ndarray
            ``(K, B, C, H, W)`` float32 logits; their softmax over ``C`` is
            :meth:`predict_folds`.
        """
        ...

    def predict_folds(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Every fold's softmax for a batch of tiles.

        Parameters
        ----------
        images:
            ``(B, H, W, 3)`` uint8 RGB tiles at :attr:`mpp`, axis order batch, rows,
            columns, channel.

        Returns
        -------
        numpy.ndarray
            ``(K, B, C, H, W)`` float32: fold, tile, class, rows, columns; each fold's
            probabilities sum to 1 over the class axis.
        """
        ...


__all__ = ["FoldPredictor"]
