"""Aggregation of ensemble updates, with the defences one site cannot defeat (pure numpy).

Arrays are aggregated name by name; since every member's parameters carry their fold in the
name (``fold<k>/…``, see :mod:`pathloop.server.contract`), aggregation is member-wise: fold
``k`` of the global ensemble comes from the sites' fold ``k`` only. A round goes:

1. **Weights** (:func:`capped_weights`): each site's reported training patches, capped at
   ``max_examples`` and at ``max_ratio`` × the median count of the *other* sites, in
   float64. Whatever one site reports, its share of the round is at most
   ``max_ratio·m / (max_ratio·m + Σ_others n_j)`` (``m`` the others' median), e.g.
   one half with four honest sites of equal size and the default ratio 4.
2. **Clipping** (:func:`clip_scale`): a site's change of member ``k``,
   ``d_k = u_k − g_k`` (site minus global), is scaled down to at most
   ``clip · ‖g_k‖`` — the same FlatClip Flower's differential-privacy wrappers apply
   (``flwr.supercore.differential_privacy.clip_inputs_inplace``), but per member and
   relative to the member's own norm rather than one absolute norm for the whole model.
3. **Rule** (:func:`aggregate`): the global member moves by the weighted mean of the clipped
   changes (FedAvg), or by a coordinate-wise robust reducer of them (Flower's trimmed mean
   or median, passed in by the strategy, unweighted as in Flower's FedTrimmedAvg and
   FedMedian).

Bounds these give (for one member ``k``: ``Δ`` its move, new global minus ``g_k``; ``w_p``
a site's capped weight divided by the round's total; ``d̄_h`` the mean change of the other,
honest sites, weighted for the mean rule and plain for the robust rules):

- mean: ``‖Δ − d̄_h‖ ≤ w_p · (clip·‖g_k‖ + ‖d̄_h‖)`` for any one site ``p`` whatever it
  sends (``Δ − d̄_h = w_p (d_p − d̄_h)``), and ``‖Δ‖ ≤ clip·‖g_k‖`` (a convex combination);
- trimmed mean cutting ``t ≥ f`` updates per tail, or median with ``f < n/2``: with ``f``
  poisoned sites every coordinate of ``Δ`` lies between the smallest and largest honest
  change at that coordinate, so ``‖Δ − d̄_h‖ ≤ ‖max_h d_h − min_h d_h‖`` (the honest
  sites' coordinate-wise spread), whatever the poisoned sites send.

The mean is ``(1 − Σ c_i) · g_k + Σ c_i · u_i`` (``c_i`` a site's share of the round times
its clipping factor, in float64 and never above 1), accumulated in place: memory holds one
member's result and one scratch array, no weight, however large, overflows float32, and it
costs one multiply-add pass per update, as a plain weighted mean does. The robust reducers
need every site's change of a member at once, ``n ×`` one member, and partition a copy of
it (``np.partition`` / ``np.median``): about ``2 n ×`` one member (float32) at peak, on top
of the replies Flower already holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.server.contract import parse_member_key

Arrays = Mapping[str, NDArray[np.generic]]

#: A coordinate-wise reducer: ``(n_sites, *shape)`` float32 changes → ``shape``.
Reducer = Callable[[NDArray[np.floating]], NDArray[np.floating]]


@dataclass(frozen=True)
class Defences:
    """How a round's updates are weighed, clipped and combined (the run config's keys).

    Attributes
    ----------
    clip_relative_change:
        A member's change is scaled down to at most this × the global member's norm.
    max_examples:
        Cap on a site's weight (its reported training patches).
    max_examples_ratio:
        Cap on a site's weight relative to the median count of the other sites.
    rule:
        ``"mean"`` (weighted), ``"trimmed-mean"`` or ``"median"`` (coordinate-wise).
    trim_fraction:
        Share of the updates ``"trimmed-mean"`` cuts from each tail, in ``[0, 0.5)``.
    """

    clip_relative_change: float = 0.2
    max_examples: float = 1_000_000
    max_examples_ratio: float = 4.0
    rule: str = "mean"
    trim_fraction: float = 0.2


def capped_weights(counts: Sequence[float], *, max_examples: float,
                   max_ratio: float) -> NDArray[np.float64]:
    """Each site's averaging weight: its count, capped absolutely and relative to the others.

    ``w_i = min(n_i, max_examples, max_ratio · median_{j≠i} n_j)`` in float64 (one site
    alone: ``min(n_i, max_examples)``). The median of the *others* keeps a site that reports
    an absurd count from raising its own cap, even in a round of two sites.

    Parameters
    ----------
    counts:
        Positive finite example counts, one per accepted site, in reply order.
    max_examples:
        Absolute cap on any site's weight.
    max_ratio:
        Cap relative to the median count of the other sites of the round (≥ 1).
    """
    values = np.asarray(counts, dtype=np.float64)
    if not values.size:
        raise ValueError("no example counts to weigh")
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError(f"example counts must be positive and finite, got {counts}")
    weights = np.minimum(values, float(max_examples))
    if values.size > 1:
        others = [median(np.delete(values, i).tolist()) for i in range(values.size)]
        weights = np.minimum(weights, float(max_ratio) * np.asarray(others))
    return weights


def clip_scale(relative_change: float, clip: float) -> float:
    """The factor a member's change is scaled by so that it is at most ``clip`` × the
    global member's norm: ``min(1, clip / relative_change)`` (1 for no change)."""
    if relative_change <= clip:
        return 1.0
    return clip / relative_change


def aggregate(reference: Arrays, updates: Sequence[Arrays],
              weights: Sequence[float] | NDArray[np.float64],
              scales: Sequence[Mapping[int, float]], *, reducer: Reducer | None = None
              ) -> dict[str, NDArray[np.generic]]:
    """The new global model: each member moved by the aggregate of the sites' clipped changes.

    Parameters
    ----------
    reference:
        The global model the round started from (name → array, names ``fold<k>/…``).
    updates:
        The accepted sites' models, validated against ``reference`` (same names, shapes,
        dtypes, finite).
    weights:
        Each site's weight (:func:`capped_weights`); unused by a ``reducer``.
    scales:
        Per site, each member's clipping factor in ``(0, 1]`` (:func:`clip_scale`).
    reducer:
        ``None`` for the weighted mean, else a coordinate-wise robust rule over the stacked
        changes (``(n_sites, *shape)`` → ``shape``).

    Returns
    -------
    dict
        Name → array in the reference's shapes and dtypes.
    """
    if not updates:
        raise ValueError("no update to aggregate")
    if not len(updates) == len(weights) == len(scales):
        raise ValueError(f"{len(updates)} updates, {len(weights)} weights and "
                         f"{len(scales)} clipping factors")
    if not all(w > 0 and math.isfinite(w) for w in weights):
        raise ValueError(f"weights must be positive and finite, got {list(weights)}")
    total = math.fsum(float(w) for w in weights)
    shares = [float(w) / total for w in weights]  # float64, each at most 1
    out: dict[str, NDArray[np.generic]] = {}
    for name, base in reference.items():
        fold = parse_member_key(name)[0]
        work = np.result_type(base.dtype, np.float32)
        if reducer is None:
            out[name] = _clipped_mean(base, [u[name] for u in updates],
                                      [share * scale[fold] for share, scale
                                       in zip(shares, scales, strict=True)], work)
            continue
        stacked = np.empty((len(updates), *base.shape), work)  # filled row by row
        for row, (update, scale) in enumerate(zip(updates, scales, strict=True)):
            np.subtract(update[name], base, out=stacked[row], dtype=work)
            if scale[fold] < 1.0:
                stacked[row] *= work.type(scale[fold])
        moved = np.asarray(reducer(stacked), dtype=work)
        del stacked
        moved += base
        out[name] = moved.astype(base.dtype, copy=False)
    return out


def _clipped_mean(base: NDArray[np.generic], updates: Sequence[NDArray[np.generic]],
                  coefficients: Sequence[float], work: np.dtype[Any]) -> NDArray[np.generic]:
    """``base + Σ c_i (u_i − base)``, the weighted mean of the clipped changes added to the
    global member (``c_i`` = site ``i``'s share of the round × its clipping factor).

    Computed as ``(1 − Σ c_i) · base + Σ c_i · u_i`` with the coefficients in float64 (each
    at most 1): one multiply-add pass over each update into one accumulator and one scratch
    array, as a plain in-place weighted mean costs, rather than forming every change.
    """
    accumulator = np.multiply(base, work.type(1.0 - math.fsum(coefficients)), dtype=work)
    scratch = np.empty_like(accumulator)
    for update, coefficient in zip(updates, coefficients, strict=True):
        np.multiply(update, work.type(coefficient), out=scratch, dtype=work)
        accumulator += scratch
    return accumulator.astype(base.dtype, copy=False)


__all__ = ["Arrays", "Defences", "Reducer", "aggregate", "capped_weights", "clip_scale"]
