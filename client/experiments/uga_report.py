"""The report of ``pathloop eval uga``: markdown tables of Dice and a PNG plot.

Rows are the target centres and ``overall`` (every held-out image of the target centres
pooled); columns the baseline, the control (continued without new patches) and ``+k`` UGA
and random patches, as mean ± sd over the draws. A second table gives the paired difference
UGA − random per draw, its mean ± sd, 95% interval and what it supports
(:mod:`~pathloop.client.experiments.uga_stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pathloop.client.experiments.uga_records import ArmResult, UgaEvalResult
from pathloop.client.experiments.uga_stats import (
    BASELINE_CENTRES,
    OVERALL,
    Spread,
    arm_spread,
    centre_names,
    paired_difference,
    verdict,
)

REPORT_NAME = "uga_eval.md"
PLOT_NAME = "uga_eval.png"


@dataclass(frozen=True)
class Column:
    """One column of the table: an arm and a patch count."""

    arm: str
    k: int

    @property
    def title(self) -> str:
        """``baseline``, ``continued`` or e.g. ``+5 UGA``."""
        if self.arm in ("baseline", "continued"):
            return self.arm
        return f"+{self.k} {'UGA' if self.arm == 'uga' else 'random'}"


def columns(result: UgaEvalResult) -> list[Column]:
    """The table's columns in order: baseline, continued, then +k UGA and random per k."""
    cols = [Column("baseline", 0)]
    if any(a.arm == "continued" for a in result.arms):
        cols.append(Column("continued", 0))
    for k in _ks(result):
        cols += [Column("uga", k), Column("random", k)]
    return cols


def spread_of(result: UgaEvalResult, centre: str, column: Column) -> Spread | None:
    """A column's Dice on a centre over the draws (``overall``: images pooled)."""
    return arm_spread(result, centre, column.arm, column.k)


def dice_of(result: UgaEvalResult, centre: str, column: Column) -> float | None:
    """A column's mean Dice on a centre over the draws (``overall``: images pooled)."""
    spread = spread_of(result, centre, column)
    return None if spread is None else spread.mean


def write_report(result: UgaEvalResult, out_dir: Path) -> tuple[Path, Path]:
    """Write ``uga_eval.md`` and ``uga_eval.png`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = write_plot(result, out_dir / PLOT_NAME)
    report = out_dir / REPORT_NAME
    report.write_text(markdown(result, plot.name))
    return report, plot


def markdown(result: UgaEvalResult, plot_name: str = PLOT_NAME) -> str:
    """The report as markdown text."""
    cols = columns(result)
    config = result.config
    draws = config["draws"]
    lines = [
        "# UGA on MoNuSeg: Dice of the nucleus ensemble before and after corrected patches",
        "",
        f"Baseline centres: {', '.join(config['baseline_centres'])} "
        f"({len(result.centres['baseline']['train'])} training images). Target centres: "
        f"{', '.join(config['target_centres'])}; per centre {config['n_pool']} pool images, "
        "the others held out. Patches of "
        f"{config['patch_size']} px at {config['model_mpp']} µm/px "
        f"({config['patch_size'] * config['model_mpp']:.0f} µm), ranked across the centre's "
        "pool by mean UGA uncertainty or drawn at random among foreground patches; the top "
        f"patches get their expert masks. {len(draws)} draws ({', '.join(map(str, draws))}): "
        "draw d draws the random patches with seed d and retrains both strategies with "
        f"training seed d. Networks: {config['baseline_profile']['n_folds']} folds of "
        "nnU-Net, baseline profile "
        f"`{config['baseline_profile']['name']}` ({config['baseline_profile']['num_epochs']} "
        f"epochs), retraining {config['retrain_profile']['num_epochs']} epochs from the "
        f"baseline at learning rate {config['retrain_profile']['initial_lr']}.",
        "",
        "Nucleus Dice, the mean over held-out images (overall: all target centres' held-out "
        "images pooled), as mean ± sd over the draws (baseline and control: one model "
        "each):",
        "",
        "| centre | held-out images | candidate patches | "
        + " | ".join(c.title for c in cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for centre in [*centre_names(result), OVERALL]:
        held = (sum(len(result.centres[c]["held_out"]) for c in centre_names(result))
                if centre == OVERALL else len(result.centres[centre]["held_out"]))
        candidates = (sum(result.candidates.values()) if centre == OVERALL
                      else result.candidates.get(centre, 0))
        cells = [_cell(spread_of(result, centre, c)) for c in cols]
        name = f"**{centre}**" if centre == OVERALL else centre
        lines.append(f"| {name} | {held} | {candidates} | " + " | ".join(cells) + " |")
    lines += _paired_table(result)
    in_domain = [a for a in result.arms if a.centre == BASELINE_CENTRES]
    if in_domain:
        lines += ["", "In-domain reference, baseline on the baseline centres' test images: "
                  + ", ".join(f"{stem} {value:.3f}" for stem, value in in_domain[0].dice.items())
                  + "."]
    lines += ["", f"![Dice per centre]({plot_name})", "", "## Patches added", "",
              "| centre | strategy | patches | mean uncertainty | nucleus fraction |",
              "|---|---|---|---|---|"]
    for arm in _largest_selections(result.arms):
        scores = [p.score_mean for p in arm.selected]
        nuclei = [p.nucleus_fraction for p in arm.selected]
        label = "UGA (every draw)" if arm.arm == "uga" else f"random (draw {arm.draw})"
        lines.append(f"| {arm.centre} | {label} | {len(arm.selected)} | "
                     f"{np.mean(scores):.4f} | {np.mean(nuclei):.3f} |")
    lines += ["", "## Per image", "",
              "| centre | model | k | draw | Dice per held-out image | training s |",
              "|---|---|---|---|---|---|"]
    for arm in result.arms:
        values = ", ".join(f"{v:.3f}" for v in arm.dice.values())
        lines.append(f"| {arm.centre} | {arm.arm} | {arm.k} | "
                     f"{'' if arm.draw is None else arm.draw} | {values} | "
                     f"{arm.training_seconds:.0f} |")
    lines += ["", f"Whole run: {result.seconds / 60:.1f} min.", ""]
    return "\n".join(lines)


def write_plot(result: UgaEvalResult, path: Path) -> Path:
    """Dice against patches added, UGA and random, one panel per centre and overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # nnU-Net's logger sets a seaborn style with large fonts when it is imported.
    with plt.style.context("default"):
        _draw(plt, result, path)
    return path


def _draw(plt: Any, result: UgaEvalResult, path: Path) -> None:
    centres = [*centre_names(result), OVERALL]
    ks = _ks(result)
    figure, axes = plt.subplots(1, len(centres), figsize=(3.6 * len(centres), 3.4),
                                sharey=True, squeeze=False)
    for axis, centre in zip(axes[0], centres, strict=True):
        base = dice_of(result, centre, Column("baseline", 0))
        for arm, colour, label in (("uga", "tab:red", "UGA"),
                                   ("random", "tab:blue", "random")):
            spreads = [spread_of(result, centre, Column(arm, k)) for k in ks]
            means = [base, *(np.nan if s is None else s.mean for s in spreads)]
            sds = [0.0, *(0.0 if s is None or s.n < 2 else s.sd for s in spreads)]
            axis.errorbar([0, *ks], means, yerr=sds, marker="o", color=colour, capsize=3,
                          label=f"{label} (mean ± sd)")
        control = dice_of(result, centre, Column("continued", 0))
        if control is not None:
            axis.axhline(control, color="grey", linestyle="--", linewidth=1,
                         label="continued, no patches")
        axis.set_title(centre)
        axis.set_xlabel("corrected patches added")
        axis.set_xticks([0, *ks])
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("nucleus Dice (held-out)")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _paired_table(result: UgaEvalResult) -> list[str]:
    lines = ["", "Paired difference UGA − random in Dice, per draw (both arms of a draw share "
             "the training seed), its mean ± sd and 95% t interval:", "",
             "| centre | k | per draw | mean ± sd | 95% interval | what it supports |",
             "|---|---|---|---|---|---|"]
    for k in _ks(result):
        for centre in [*centre_names(result), OVERALL]:
            difference = paired_difference(result, centre, k)
            if difference is None:
                continue
            interval = difference.interval()
            bounds = "–" if interval is None else f"[{interval[0]:+.3f}, {interval[1]:+.3f}]"
            name = f"**{centre}**" if centre == OVERALL else centre
            per_draw = ", ".join(f"{v:+.3f}" for v in difference.values)
            mean = f"{difference.mean:+.3f}" + ("" if difference.n < 2
                                                else f" ± {difference.sd:.3f}")
            lines.append(f"| {name} | {k} | {per_draw} | {mean} | {bounds} | "
                         f"{verdict(difference)} |")
    return lines


def _ks(result: UgaEvalResult) -> list[int]:
    return sorted({a.k for a in result.arms if a.k})


def _cell(spread: Spread | None) -> str:
    return "–" if spread is None else spread.text()


def _largest_selections(arms: Sequence[ArmResult]) -> list[ArmResult]:
    """Per centre, the largest selection of UGA (the same in every draw: shown once) and of
    each random draw."""
    largest: dict[tuple[str, str, int | None], ArmResult] = {}
    for arm in arms:
        key = (arm.centre, arm.arm, None if arm.arm == "uga" else arm.draw)
        if arm.selected and (key not in largest or arm.k > largest[key].k):
            largest[key] = arm
    return list(largest.values())


__all__ = ["OVERALL", "PLOT_NAME", "REPORT_NAME", "Column", "columns", "dice_of", "markdown",
           "spread_of", "write_plot", "write_report"]
