"""How much of ``pathloop eval uga``'s result is chance: spreads over draws, paired differences.

Each draw retrains both strategies' ensembles with its own seed (and draws its own random
patches), so one strategy's Dice over the draws has a mean and a standard deviation, and
UGA − random within a draw is a paired difference: the training seed's luck is shared by
both arms of a draw and cancels out of it. With ``n`` draws the 95% interval of the mean
difference is Student's ``mean ± t(0.975, n−1) · sd / √n``; three draws give a wide one, and
the report says so rather than read a winner into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pathloop.client.experiments.uga_records import ArmResult, UgaEvalResult

OVERALL = "overall"
BASELINE_CENTRES = "baseline centres"


@dataclass(frozen=True)
class Spread:
    """One figure measured once per draw (draws in order)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        """Sample standard deviation (``nan`` for a single value)."""
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan

    def interval(self, confidence: float = 0.95) -> tuple[float, float] | None:
        """Student's t interval of the mean; ``None`` for a single value."""
        if self.n < 2:
            return None
        from scipy import stats

        half = float(stats.t.ppf(0.5 + confidence / 2, self.n - 1)) * self.sd / math.sqrt(self.n)
        return self.mean - half, self.mean + half

    def text(self, digits: int = 3) -> str:
        """``0.712 ± 0.004`` (``0.712`` for a single value)."""
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"


def centre_names(result: UgaEvalResult) -> list[str]:
    """The target centres in the order they ran."""
    names: list[str] = []
    for arm in result.arms:
        if arm.centre != BASELINE_CENTRES and arm.centre not in names:
            names.append(arm.centre)
    return names


def per_draw(result: UgaEvalResult, centre: str, arm: str, k: int
             ) -> dict[int | None, float]:
    """Dice of one strategy and ``k`` per draw (``None`` for the baseline and control),
    the mean over the centre's held-out images; ``overall`` pools every target centre's."""
    centres = centre_names(result) if centre == OVERALL else [centre]
    arms = [a for a in result.arms if a.centre in centres and a.arm == arm and a.k == k]
    draws = sorted({a.draw for a in arms}, key=lambda d: -1 if d is None else d)
    return {draw: _pooled([a for a in arms if a.draw == draw]) for draw in draws}


def arm_spread(result: UgaEvalResult, centre: str, arm: str, k: int) -> Spread | None:
    """One strategy's Dice over the draws; ``None`` when it did not run there."""
    values = per_draw(result, centre, arm, k)
    return Spread(tuple(values.values())) if values else None


def paired_difference(result: UgaEvalResult, centre: str, k: int) -> Spread | None:
    """UGA − random Dice per draw, over the draws both strategies ran in."""
    uga, drawn = per_draw(result, centre, "uga", k), per_draw(result, centre, "random", k)
    shared = [d for d in uga if d in drawn]
    return Spread(tuple(uga[d] - drawn[d] for d in shared)) if shared else None


def verdict(difference: Spread, confidence: float = 0.95) -> str:
    """What the paired differences support, in words."""
    interval = difference.interval(confidence)
    ahead = sum(v > 0 for v in difference.values)
    count = f"UGA ahead in {ahead} of {difference.n} draws"
    if interval is None:
        return f"{count}; one draw has no spread to judge by"
    low, high = interval
    level = f"{confidence:.0%}"
    if low > 0:
        return f"{count}; UGA better (the {level} interval lies above 0)"
    if high < 0:
        return f"{count}; random better (the {level} interval lies below 0)"
    return f"{count}; no difference shown (the {level} interval spans 0)"


def _pooled(arms: list[ArmResult]) -> float:
    return float(np.mean([value for arm in arms for value in arm.dice.values()]))


__all__ = ["BASELINE_CENTRES", "OVERALL", "Spread", "arm_spread", "centre_names",
           "paired_difference", "per_draw", "verdict"]
