"""Weighted averaging of ensemble updates (pure numpy).

Arrays are averaged name by name; since every member's parameters carry their fold in the
name (``fold<k>/…``, see :mod:`pathloop.server.contract`), averaging is member-wise: fold
``k`` of the global ensemble is the weighted mean of the sites' fold ``k``. Updates are
added one at a time into running sums (in the arrays' own floating dtype, at least float32:
over 1,000 float32 updates the rounding stays near 1e-4 of a weight's size, far below what
one round of training moves it), so memory holds the sums and one update, whatever the
number of sites.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

Arrays = Mapping[str, NDArray[np.generic]]


class WeightedMean:
    """A running weighted mean of name → array mappings that all share one layout.

    Parameters
    ----------
    reference:
        Names, shapes and dtypes the result has (the current global model).
    """

    def __init__(self, reference: Arrays) -> None:
        self._dtypes = {name: array.dtype for name, array in reference.items()}
        self._sums = {name: np.zeros(array.shape, np.result_type(array.dtype, np.float32))
                      for name, array in reference.items()}
        self.total_weight = 0.0
        self.count = 0

    def add(self, update: Arrays, weight: float) -> None:
        """Add one update with a positive weight (e.g. its number of training patches).

        The update must have the reference's names and shapes (validate it first, see
        :func:`pathloop.server.validation.check_update`).
        """
        if not weight > 0:
            raise ValueError(f"weights must be positive, got {weight}")
        for name, total in self._sums.items():
            total += update[name] * total.dtype.type(weight)
        self.total_weight += weight
        self.count += 1

    def result(self) -> dict[str, NDArray[np.generic]]:
        """The weighted mean in the reference's dtypes; :class:`ValueError` if empty.

        The sums are divided in place (no second copy of the model): call it once, last.
        """
        if not self.count:
            raise ValueError("no update was added")
        out = {}
        for name, total in self._sums.items():
            total /= total.dtype.type(self.total_weight)
            out[name] = total.astype(self._dtypes[name], copy=False)
        self.count = 0  # consumed
        return out


def weighted_mean(updates: Iterable[tuple[Arrays, float]]) -> dict[str, NDArray[np.generic]]:
    """The weighted mean of ``(arrays, weight)`` pairs, member-wise by name."""
    iterator = iter(updates)
    try:
        first, weight = next(iterator)
    except StopIteration:
        raise ValueError("no update to aggregate") from None
    mean = WeightedMean(first)
    mean.add(first, weight)
    for arrays, weight in iterator:
        mean.add(arrays, weight)
    return mean.result()


__all__ = ["Arrays", "WeightedMean", "weighted_mean"]
