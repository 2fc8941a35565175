"""Per-pixel uncertainty of a K-fold ensemble: the UGA measure, predictive entropy, MI.

Every function takes the folds' probabilities ``p`` of shape ``(K, C, ...)`` (folds, classes,
then any spatial axes, e.g. ``(K, C, H, W)``) and returns float32 maps of shape ``(...)``.
With the fold mean ``p̄ = (1/K) Σ_k p_k`` and ``ε = 1e-8``:

* UGA uncertainty (the authors' code): ``u = -(1/K) Σ_k Σ_c p̄_c log(p_k,c + ε)``, the mean
  soft cross-entropy of each fold against the fold mean. It equals ``H(p̄) + mean_k
  KL(p̄ ‖ p_k)``: the ensemble's entropy plus how much the folds disagree.
* Predictive entropy: ``H(p̄) = -Σ_c p̄_c log(p̄_c + ε)``.
* Mutual information (the folds' disagreement alone): ``H(p̄) - (1/K) Σ_k H(p_k)``.

Bounds (natural logarithms): ``0 ≤ MI ≤ H(p̄) ≤ log C`` and ``H(p̄) ≤ u ≤ -log ε ≈ 18.4``
(``u ≥ H(p̄)`` by Jensen's inequality, also with ``ε``). Identical folds give ``u = H(p̄)``
and ``MI = 0``; confident agreeing folds give 0 everywhere.

Memory: beyond the outputs, one pass holds two ``(C, ...)`` float32 buffers (the mean and a
logarithm) and one ``(...)`` scratch map, whatever ``K``; the input is read fold by fold and
never copied whole. Callers keep memory flat by passing one tile (or chunk) at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatMap = NDArray[np.float32]
"""A float32 map of shape ``(...)`` (e.g. ``(H, W)``)."""

EPS = 1e-8
"""Added to probabilities inside the logarithm, as in the authors' code."""


@dataclass(frozen=True)
class UncertaintyMaps:
    """Everything derived from the folds' probabilities in one pass.

    Attributes
    ----------
    mean:
        ``(C, ...)`` float32, the fold mean ``p̄``.
    uga:
        ``(...)`` float32, the UGA uncertainty ``u``.
    entropy:
        ``(...)`` float32, the predictive entropy ``H(p̄)``.
    mutual_information:
        ``(...)`` float32, ``H(p̄) - mean_k H(p_k)`` (clipped at 0 against rounding).
    """

    mean: NDArray[np.float32]
    uga: FloatMap
    entropy: FloatMap
    mutual_information: FloatMap


def uncertainty_maps(probs: NDArray[np.floating[Any]], *, eps: float = EPS) -> UncertaintyMaps:
    """The fold mean and all three uncertainty measures, in one pass over the folds.

    Parameters
    ----------
    probs:
        ``(K, C, ...)`` per-fold class probabilities (any float dtype; computed in float32).
        Each fold's probabilities should sum to 1 over ``C``.
    eps:
        Added to probabilities inside every logarithm.

    Returns
    -------
    UncertaintyMaps
        ``mean`` of shape ``(C, ...)`` and three ``(...)`` maps, all float32.

    Raises
    ------
    ValueError
        ``probs`` has fewer than two axes, no fold, no class, or is not floating point.
    """
    n_folds, n_classes = _check(probs)
    mean = fold_mean(probs)
    log = np.empty_like(mean)
    scratch = np.empty(mean.shape[1:], dtype=np.float32)
    cross = np.zeros(mean.shape[1:], dtype=np.float32)  # Σ_k Σ_c p̄_c log(p_k,c + ε)
    fold_entropy = np.zeros(mean.shape[1:], dtype=np.float32)  # Σ_k Σ_c p_k,c log(p_k,c + ε)
    for k in range(n_folds):
        fold = np.asarray(probs[k], dtype=np.float32)
        _log_eps(fold, eps, out=log)
        for c in range(n_classes):
            cross += np.multiply(mean[c], log[c], out=scratch)
            fold_entropy += np.multiply(fold[c], log[c], out=scratch)
    entropy = _entropy_of(mean, eps, log, scratch)
    uga = np.multiply(cross, -1.0 / n_folds, out=cross)
    mutual = np.multiply(fold_entropy, 1.0 / n_folds, out=fold_entropy)
    np.add(entropy, mutual, out=mutual)  # H(p̄) - mean_k H(p_k); fold_entropy holds -H sums
    np.maximum(mutual, 0.0, out=mutual)
    return UncertaintyMaps(mean, uga, entropy, mutual)


def fold_mean(probs: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """The fold mean ``p̄`` of ``(K, C, ...)`` probabilities, as ``(C, ...)`` float32."""
    n_folds, _ = _check(probs)
    mean = np.array(probs[0], dtype=np.float32)
    for k in range(1, n_folds):
        mean += probs[k]
    mean /= np.float32(n_folds)
    return mean


def uga_uncertainty(probs: NDArray[np.floating[Any]], *, eps: float = EPS) -> FloatMap:
    """The UGA uncertainty ``u = -(1/K) Σ_k Σ_c p̄_c log(p_k,c + ε)``.

    Parameters
    ----------
    probs:
        ``(K, C, ...)`` per-fold class probabilities.
    eps:
        Added inside the logarithm (the authors use 1e-8).

    Returns
    -------
    ndarray
        ``(...)`` float32, in ``[H(p̄), -log ε]``.
    """
    n_folds, n_classes = _check(probs)
    mean = fold_mean(probs)
    log = np.empty_like(mean)
    scratch = np.empty(mean.shape[1:], dtype=np.float32)
    cross = np.zeros(mean.shape[1:], dtype=np.float32)
    for k in range(n_folds):
        _log_eps(np.asarray(probs[k], dtype=np.float32), eps, out=log)
        for c in range(n_classes):
            cross += np.multiply(mean[c], log[c], out=scratch)
    return np.multiply(cross, -1.0 / n_folds, out=cross)


def predictive_entropy(probs: NDArray[np.floating[Any]], *, eps: float = EPS) -> FloatMap:
    """The entropy of the fold mean, ``H(p̄) = -Σ_c p̄_c log(p̄_c + ε)``.

    Parameters
    ----------
    probs:
        ``(K, C, ...)`` per-fold class probabilities (pass ``p[None]`` for one distribution).

    Returns
    -------
    ndarray
        ``(...)`` float32, in ``[0, log C]``.
    """
    _check(probs)
    mean = fold_mean(probs)
    return _entropy_of(mean, eps, np.empty_like(mean), np.empty(mean.shape[1:], np.float32))


def mutual_information(probs: NDArray[np.floating[Any]], *, eps: float = EPS) -> FloatMap:
    """The mutual information ``H(p̄) - (1/K) Σ_k H(p_k)`` between prediction and fold.

    Parameters
    ----------
    probs:
        ``(K, C, ...)`` per-fold class probabilities.

    Returns
    -------
    ndarray
        ``(...)`` float32, in ``[0, H(p̄)]``; 0 where all folds agree.
    """
    return uncertainty_maps(probs, eps=eps).mutual_information


def _check(probs: NDArray[Any]) -> tuple[int, int]:
    """``(K, C)`` of a ``(K, C, ...)`` probability array, or ``ValueError``."""
    if probs.ndim < 2:
        raise ValueError(f"fold probabilities must be (K, C, ...), got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"fold probabilities must be floating point, got {probs.dtype}")
    n_folds, n_classes = probs.shape[:2]
    if n_folds < 1 or n_classes < 1:
        raise ValueError(f"need at least one fold and one class, got shape {probs.shape}")
    return int(n_folds), int(n_classes)


def _log_eps(values: NDArray[np.float32], eps: float, *, out: NDArray[np.float32]) -> None:
    """``out = log(values + eps)`` without a temporary."""
    np.add(values, np.float32(eps), out=out)
    np.log(out, out=out)


def _entropy_of(mean: NDArray[np.float32], eps: float, log: NDArray[np.float32],
                scratch: FloatMap) -> FloatMap:
    """``-Σ_c mean_c log(mean_c + eps)`` of a ``(C, ...)`` array, using the given buffers."""
    _log_eps(mean, eps, out=log)
    entropy = np.zeros(mean.shape[1:], dtype=np.float32)
    for c in range(mean.shape[0]):
        entropy -= np.multiply(mean[c], log[c], out=scratch)
    np.maximum(entropy, 0.0, out=entropy)  # -0.0 and rounding below 0 on one-hot pixels
    return entropy


__all__ = [
    "EPS",
    "FloatMap",
    "UncertaintyMaps",
    "fold_mean",
    "mutual_information",
    "predictive_entropy",
    "uga_uncertainty",
    "uncertainty_maps",
]
