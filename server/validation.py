"""Checks on a site's update before it may enter the global model (pure numpy).

An update is refused — with a reason naming the first problem — when its array names differ
from the global model's, an array has another shape or dtype, holds NaN or infinity, or a
member moved too far: ``‖update_k − global_k‖ > max_relative_change · ‖global_k‖`` for
any member ``k`` (a scaled or garbage update; honest fine-tuning moves a member by a small
fraction of its norm). Metrics must be finite numbers among the contract's keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from pathloop.server.aggregation import Arrays
from pathloop.server.contract import SITE_METRICS, parse_member_key
from pathloop.server.errors import UpdateRejectedError

#: Default bound on a member's change relative to its global norm.
MAX_RELATIVE_CHANGE = 2.0


def check_update(update: Arrays, reference: Arrays, *,
                 max_relative_change: float = MAX_RELATIVE_CHANGE) -> dict[int, float]:
    """Validate an update against the global model; return each member's relative change.

    Raises
    ------
    UpdateRejectedError
        Names, shapes, dtypes, finiteness or the change bound are violated.
    """
    missing = sorted(set(reference) - set(update))
    extra = sorted(set(update) - set(reference))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} arrays (e.g. {missing[0]!r})")
        if extra:
            parts.append(f"{len(extra)} unexpected arrays (e.g. {extra[0]!r})")
        raise UpdateRejectedError("; ".join(parts))
    change: dict[int, float] = {}
    norm: dict[int, float] = {}
    for name, expected in reference.items():
        array = update[name]
        if array.shape != expected.shape:
            raise UpdateRejectedError(f"{name!r} has shape {array.shape}, expected "
                                      f"{expected.shape}")
        if array.dtype != expected.dtype:
            raise UpdateRejectedError(f"{name!r} has dtype {array.dtype}, expected "
                                      f"{expected.dtype}")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise UpdateRejectedError(f"{name!r} holds NaN or infinite values")
        fold, _ = parse_member_key(name)
        delta = np.asarray(array, np.float64) - np.asarray(expected, np.float64)
        change[fold] = change.get(fold, 0.0) + float(np.square(delta).sum())
        norm[fold] = norm.get(fold, 0.0) + float(np.square(np.asarray(expected, np.float64)).sum())
    relative = {fold: math.sqrt(change[fold]) / max(math.sqrt(norm[fold]), 1e-12)
                for fold in change}
    for fold, value in sorted(relative.items()):
        if value > max_relative_change:
            raise UpdateRejectedError(
                f"member fold{fold} changed by {value:.3g}× its global norm (bound "
                f"{max_relative_change})")
    return relative


def check_metrics(metrics: Mapping[str, object]) -> dict[str, float]:
    """The site's metrics as floats; refuses unknown keys and non-finite or non-numbers."""
    unknown = sorted(set(metrics) - SITE_METRICS)
    if unknown:
        raise UpdateRejectedError(f"unexpected metrics {unknown}")
    values = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise UpdateRejectedError(f"metric {key!r} is not a finite number: {value!r}")
        values[key] = float(value)
    return values


__all__ = ["MAX_RELATIVE_CHANGE", "check_metrics", "check_update"]
