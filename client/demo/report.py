"""The demo's result: one table of held-out Dice per site and stage, and what each stage cost.

Every figure is tumour Dice of a model on the site's held-out slide (its second slide,
never trained on, never corrected), predicted by sliding windows and compared with the
slide's ground truth at the model's µm/px. Stages, left to right: the baseline trained at
the first site; the baseline retrained on the site's own corrected patches (sites other than
the first); the global model after each federated round. The same table is written as
``demo-summary.json``; :meth:`DemoResults.findings` says in words what rose and what did not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_NAME = "demo-summary.json"
#: A change in Dice smaller than this is reported as no change.
NOTICEABLE = 0.01


@dataclass(frozen=True)
class SiteResult:
    """One site's row of the table.

    Attributes
    ----------
    site_id, stain, morphology : the site and how its slides look.
    baseline : Dice of the baseline on the held-out slide.
    corrected : Dice after retraining on the site's own corrections (``None`` at the
        baseline's site, which corrects nothing).
    corrections : patches its simulated pathologist corrected.
    correction_seconds : predicting, ranking, correcting and retraining at the site.
    rounds : Dice of the global model after round 1, 2, …
    """

    site_id: str
    stain: str
    morphology: str
    baseline: float
    corrected: float | None = None
    corrections: int = 0
    correction_seconds: float | None = None
    rounds: tuple[float, ...] = ()


@dataclass(frozen=True)
class DemoResults:
    """The demo's table, its costs, and how it was made.

    Attributes
    ----------
    seed : the ``--seed`` the sample slides and every random choice derive from.
    k : patches corrected per site.
    sites : one row per site, the baseline's site first.
    seconds : wall time per stage, in the order they ran.
    round_seconds : wall time of each federated round (round → seconds).
    """

    seed: int
    k: int
    sites: tuple[SiteResult, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    round_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def n_rounds(self) -> int:
        return max((len(s.rounds) for s in self.sites), default=0)

    @property
    def wall_seconds(self) -> float:
        return round(sum(self.seconds.values()), 1)

    def mean_baseline(self) -> float:
        return sum(s.baseline for s in self.sites) / len(self.sites)

    def mean_after_round(self, round_number: int) -> float | None:
        """Mean over sites of the global model's Dice after ``round_number``."""
        values = [s.rounds[round_number - 1] for s in self.sites
                  if len(s.rounds) >= round_number]
        return sum(values) / len(values) if len(values) == len(self.sites) else None

    def findings(self) -> list[str]:
        """What the table shows, in words: each site's corrections and the federation."""
        lines = []
        for site in self.sites:
            if site.corrected is None:
                continue
            change = site.corrected - site.baseline
            lines.append(f"{site.site_id}: {site.corrections} corrected patches "
                         f"{_verdict(change)} held-out Dice ({site.baseline:.3f} → "
                         f"{site.corrected:.3f}, {change:+.3f}).")
        if self.n_rounds:
            last = self.mean_after_round(self.n_rounds)
            if last is not None:
                change = last - self.mean_baseline()
                lines.append(f"federation: after {self.n_rounds} rounds the global model "
                             f"{_verdict(change)} the sites' mean held-out Dice "
                             f"({self.mean_baseline():.3f} → {last:.3f}, {change:+.3f}).")
        return lines

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sites"] = [asdict(s) | {"rounds": list(s.rounds)} for s in self.sites]
        data["round_seconds"] = {str(k): v for k, v in self.round_seconds.items()}
        data["mean"] = {"baseline": self.mean_baseline(),
                        "rounds": [self.mean_after_round(r)
                                   for r in range(1, self.n_rounds + 1)]}
        data["wall_seconds"] = self.wall_seconds
        data["findings"] = self.findings()
        data["scored_on"] = ("tumour Dice on each site's held-out slide (its second slide), "
                             "whole slide at the model's µm/px")
        return data

    def write(self, folder: Path) -> Path:
        """Write ``demo-summary.json`` into ``folder``; its path."""
        path = folder / SUMMARY_NAME
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path


def _verdict(change: float) -> str:
    if change >= NOTICEABLE:
        return "raised"
    if change <= -NOTICEABLE:
        return "lowered"
    return "did not change"


__all__ = ["NOTICEABLE", "SUMMARY_NAME", "DemoResults", "SiteResult"]
