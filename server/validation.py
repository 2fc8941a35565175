"""Checks on a site's update before it may enter the global model (pure numpy).

An update is refused — with a reason naming the first problem — when its array names differ
from the global model's, an array has another shape or dtype, holds NaN or infinity, or a
member moved too far: ``‖update_k − global_k‖ > max_relative_change · ‖global_k‖`` for
any member ``k`` (a scaled or garbage update; honest fine-tuning moves a member by a small
fraction of its norm). Metrics must be finite numbers among the contract's keys.

A round's aggregate passes the same checks before it is checkpointed
(:func:`check_aggregate`): it is refused when non-finite (an arithmetic fault) or when a
member moved beyond the bound (implausible after clipping, which keeps each site's change
far below it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from pathloop.server.aggregation import Arrays
from pathloop.server.contract import SITE_METRICS, parse_member_key
from pathloop.server.errors import AggregateRejectedError, UpdateRejectedError

#: Default bound on a member's change relative to its global norm.
MAX_RELATIVE_CHANGE = 2.0


class UpdateValidator:
    """Checks updates against one global model (its member norms computed once).

    Parameters
    ----------
    reference:
        The global model the round started from.
    max_relative_change:
        Bound on ``‖update_k − global_k‖ / ‖global_k‖`` for every member ``k``.
    """

    def __init__(self, reference: Arrays, *,
                 max_relative_change: float = MAX_RELATIVE_CHANGE) -> None:
        self.reference = reference
        self.max_relative_change = max_relative_change
        self._members = {name: parse_member_key(name)[0] for name in reference}
        squares: dict[int, float] = {}
        for name, array in reference.items():
            fold = self._members[name]
            squares[fold] = squares.get(fold, 0.0) + _sum_of_squares(np.asarray(array))
        self._norms = {fold: math.sqrt(value) for fold, value in squares.items()}

    def check(self, update: Arrays) -> dict[int, float]:
        """Validate an update; return each member's relative change.

        Raises
        ------
        UpdateRejectedError
            Names, shapes, dtypes, finiteness or the change bound are violated.
        """
        reference = self.reference
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
        for name, expected in reference.items():
            array = update[name]
            if array.shape != expected.shape:
                raise UpdateRejectedError(f"{name!r} has shape {array.shape}, expected "
                                          f"{expected.shape}")
            if array.dtype != expected.dtype:
                raise UpdateRejectedError(f"{name!r} has dtype {array.dtype}, expected "
                                          f"{expected.dtype}")
            # One pass: a NaN or infinity anywhere makes the sum of squares non-finite.
            squares = _sum_of_squares(np.subtract(array, expected))
            if not math.isfinite(squares):
                if not np.isfinite(array).all():
                    raise UpdateRejectedError(f"{name!r} holds NaN or infinite values")
                squares = math.inf  # finite values too far apart for float32
            fold = self._members[name]
            change[fold] = change.get(fold, 0.0) + squares
        relative = {fold: math.sqrt(value) / max(self._norms[fold], 1e-12)
                    for fold, value in change.items()}
        for fold, value in sorted(relative.items()):
            if value > self.max_relative_change:
                raise UpdateRejectedError(
                    f"member fold{fold} changed by {value:.3g}× its global norm (bound "
                    f"{self.max_relative_change})")
        return relative


def check_update(update: Arrays, reference: Arrays, *,
                 max_relative_change: float = MAX_RELATIVE_CHANGE) -> dict[int, float]:
    """Validate one update against the global model (see :class:`UpdateValidator`)."""
    return UpdateValidator(reference, max_relative_change=max_relative_change).check(update)


def check_aggregate(aggregate: Arrays, validator: UpdateValidator) -> dict[int, float]:
    """Check a round's aggregate as an update (:meth:`UpdateValidator.check`); return each
    member's relative change.

    Raises
    ------
    AggregateRejectedError
        The aggregate holds NaN or infinity, has other names, shapes or dtypes than the
        global model, or moved a member beyond the validator's bound.
    """
    try:
        return validator.check(aggregate)
    except UpdateRejectedError as error:
        raise AggregateRejectedError(f"aggregate refused: {error.reason}") from None


def _sum_of_squares(array: np.ndarray) -> float:
    flat = array.reshape(-1)
    if np.issubdtype(flat.dtype, np.floating):
        return float(np.dot(flat, flat))  # BLAS, no temporary
    return float(np.square(flat.astype(np.float64)).sum())


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


__all__ = ["MAX_RELATIVE_CHANGE", "UpdateValidator", "check_aggregate", "check_metrics",
           "check_update"]
