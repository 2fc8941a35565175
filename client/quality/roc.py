"""ROC-AUC of instance scores against a known truth (the evaluation of AI²Seg's Table I).

:func:`roc_auc` is the Mann–Whitney statistic: the chance that a noisy instance scores above
a clean one, ties counting one half (tied scores get their average rank), which is the area
under the ROC curve of :func:`roc_curve` and what ``sklearn.metrics.roc_auc_score`` returns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from pathloop.client.errors import InputError


def roc_auc(truth: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` (higher = more suspect) for boolean ``truth``.

    Parameters
    ----------
    truth, scores:
        1-D, one entry per instance: ``True`` for a noisy instance; its finite score.

    Raises
    ------
    InputError
        Lengths differ, a score is not finite, or ``truth`` has only one class (the AUC is
        then undefined).
    """
    positive, values = _checked(truth, scores)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    ranks = rankdata(values)  # ties: average rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(truth: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.float64],
                                                            NDArray[np.float64]]:
    """The ROC curve: false and true positive rates, one point per distinct score.

    Thresholds run from above the highest score (the point (0, 0)) down to the lowest
    (the point (1, 1)); an instance is called noisy when its score is at or above the
    threshold. Same errors as :func:`roc_auc`.
    """
    positive, values = _checked(truth, scores)
    order = np.argsort(-values, kind="stable")
    values, positive = values[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(values)), values.size - 1]
    true_pos = np.cumsum(positive)[last_of_tie]
    false_pos = (last_of_tie + 1) - true_pos
    fpr = np.r_[0.0, false_pos / (positive.size - positive.sum())]
    tpr = np.r_[0.0, true_pos / positive.sum()]
    return fpr.astype(np.float64), tpr.astype(np.float64)


def _checked(truth: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.bool_],
                                                           NDArray[np.float64]]:
    positive = np.asarray(truth, dtype=bool).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if positive.size != values.size:
        raise InputError(f"ROC: {positive.size} truth values but {values.size} scores")
    if not np.isfinite(values).all():
        raise InputError("ROC: every score must be a finite number")
    n_pos = int(positive.sum())
    if n_pos == 0 or n_pos == positive.size:
        raise InputError(f"ROC-AUC needs noisy and clean instances: got {n_pos} noisy and "
                         f"{positive.size - n_pos} clean")
    return positive, values


__all__ = ["roc_auc", "roc_curve"]
