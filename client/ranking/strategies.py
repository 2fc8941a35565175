"""Ranking strategies: which candidate patches go to the pathologist, best first.

A strategy is anything with a ``name`` and a ``select`` method (:class:`RankingStrategy`);
the UGA strategy and the random-foreground baseline of the paper are here, others (diversity,
cherry-picking…) plug in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from pathloop.client.ranking.patches import PatchCandidate


class RankingStrategy(Protocol):
    """Chooses and orders patches for the worklist."""

    @property
    def name(self) -> str:
        """Short kebab-case name, stored with the ranking (e.g. ``"uncertainty-mean"``)."""
        ...

    def select(self, candidates: Sequence[PatchCandidate], k: int,
               rng: np.random.Generator) -> list[PatchCandidate]:
        """At most ``k`` of ``candidates``, best first.

        Parameters
        ----------
        candidates:
            Scored foreground patches, in a deterministic order (slide, then grid order).
        k:
            How many to pick (fewer when there are fewer candidates).
        rng:
            The only source of randomness a strategy may use, so a seed reproduces it.
        """
        ...


@dataclass(frozen=True)
class UncertaintyStrategy:
    """UGA: the patches with the highest uncertainty, by mean (the paper) or sum.

    Ties are broken by slide, then top-to-bottom, then left-to-right, so the order is fully
    deterministic; ``rng`` is not used.
    """

    by: Literal["mean", "sum"] = "mean"

    @property
    def name(self) -> str:
        """``"uncertainty-mean"`` or ``"uncertainty-sum"``."""
        return f"uncertainty-{self.by}"

    def select(self, candidates: Sequence[PatchCandidate], k: int,
               rng: np.random.Generator) -> list[PatchCandidate]:
        """The ``k`` candidates with the highest score, highest first."""
        def key(patch: PatchCandidate) -> tuple[float, int, int, int]:
            score = patch.score_mean if self.by == "mean" else patch.score_sum
            return (-score, patch.slide_id or 0, patch.y, patch.x)

        return sorted(candidates, key=key)[: max(k, 0)]


@dataclass(frozen=True)
class RandomForegroundStrategy:
    """The baseline: ``k`` foreground patches drawn uniformly without replacement."""

    @property
    def name(self) -> str:
        """``"random-foreground"``."""
        return "random-foreground"

    def select(self, candidates: Sequence[PatchCandidate], k: int,
               rng: np.random.Generator) -> list[PatchCandidate]:
        """``k`` candidates in the order ``rng`` draws them."""
        count = min(max(k, 0), len(candidates))
        order = rng.permutation(len(candidates))[:count]
        return [candidates[int(index)] for index in order]


__all__ = ["RandomForegroundStrategy", "RankingStrategy", "UncertaintyStrategy"]
