"""The report of ``pathloop eval uga``: a markdown table of Dice and a PNG plot.

Rows are the target centres and ``overall`` (every held-out image of the target centres
pooled); columns the baseline, the control (continued without new patches) and ``+k`` UGA
and random patches. Random figures are the mean over the seeds drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pathloop.client.experiments.uga_records import ArmResult, UgaEvalResult

REPORT_NAME = "uga_eval.md"
PLOT_NAME = "uga_eval.png"
OVERALL = "overall"


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
    for k in sorted({a.k for a in result.arms if a.k}):
        cols += [Column("uga", k), Column("random", k)]
    return cols


def centre_names(result: UgaEvalResult) -> list[str]:
    """The target centres in the order they ran."""
    names: list[str] = []
    for arm in result.arms:
        if arm.centre != "baseline centres" and arm.centre not in names:
            names.append(arm.centre)
    return names


def dice_of(result: UgaEvalResult, centre: str, column: Column) -> float | None:
    """Mean Dice of a column on a centre (pooled images for ``overall``; seeds averaged)."""
    centres = centre_names(result) if centre == OVERALL else [centre]
    arms = [a for a in result.arms if a.centre in centres and a.arm == column.arm
            and a.k == column.k]
    if not arms:
        return None
    seeds = sorted({a.seed for a in arms}, key=lambda s: -1 if s is None else s)
    per_seed = [_pooled([a for a in arms if a.seed == seed]) for seed in seeds]
    return float(np.mean(per_seed))


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
    lines = [
        "# UGA on MoNuSeg: Dice of the nucleus ensemble before and after corrected patches",
        "",
        f"Baseline centres: {', '.join(config['baseline_centres'])} "
        f"({len(result.centres['baseline']['train'])} training images). Target centres: "
        f"{', '.join(config['target_centres'])}; per centre {config['n_pool']} pool images, "
        "the others held out. Patches of "
        f"{config['patch_size']} px at {config['model_mpp']} µm/px "
        f"({config['patch_size'] * config['model_mpp']:.0f} µm), ranked across the centre's "
        "pool by mean UGA uncertainty or drawn at random among foreground patches "
        f"(seeds {', '.join(str(s) for s in config['random_seeds'])}); the top patches get "
        f"their expert masks. Networks: {config['baseline_profile']['n_folds']} folds of "
        "nnU-Net, baseline profile "
        f"`{config['baseline_profile']['name']}` ({config['baseline_profile']['num_epochs']} "
        f"epochs), retraining {config['retrain_profile']['num_epochs']} epochs from the "
        f"baseline at learning rate {config['retrain_profile']['initial_lr']}.",
        "",
        "Nucleus Dice, mean over held-out images (overall: all target centres' held-out "
        "images pooled):",
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
        cells = [_cell(dice_of(result, centre, c)) for c in cols]
        name = f"**{centre}**" if centre == OVERALL else centre
        lines.append(f"| {name} | {held} | {candidates} | " + " | ".join(cells) + " |")
    in_domain = [a for a in result.arms if a.centre == "baseline centres"]
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
        label = arm.arm if arm.seed is None else f"{arm.arm} (seed {arm.seed})"
        lines.append(f"| {arm.centre} | {label} | {len(arm.selected)} | "
                     f"{np.mean(scores):.4f} | {np.mean(nuclei):.3f} |")
    lines += ["", "## Per image", "",
              "| centre | model | k | seed | Dice per held-out image | training s |",
              "|---|---|---|---|---|---|"]
    for arm in result.arms:
        values = ", ".join(f"{v:.3f}" for v in arm.dice.values())
        lines.append(f"| {arm.centre} | {arm.arm} | {arm.k} | "
                     f"{'' if arm.seed is None else arm.seed} | {values} | "
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
    ks = sorted({a.k for a in result.arms if a.k})
    figure, axes = plt.subplots(1, len(centres), figsize=(3.6 * len(centres), 3.4),
                                sharey=True, squeeze=False)
    for axis, centre in zip(axes[0], centres, strict=True):
        base = dice_of(result, centre, Column("baseline", 0))
        for arm, colour, label in (("uga", "tab:red", "UGA"),
                                   ("random", "tab:blue", "random")):
            values = [base, *(dice_of(result, centre, Column(arm, k)) for k in ks)]
            axis.plot([0, *ks], values, marker="o", color=colour, label=label)
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


def _pooled(arms: Sequence[ArmResult]) -> float:
    return float(np.mean([value for arm in arms for value in arm.dice.values()]))


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _largest_selections(arms: Sequence[ArmResult]) -> list[ArmResult]:
    largest: dict[tuple[str, str, int | None], ArmResult] = {}
    for arm in arms:
        key = (arm.centre, arm.arm, arm.seed)
        if arm.selected and (key not in largest or arm.k > largest[key].k):
            largest[key] = arm
    return list(largest.values())


__all__ = ["OVERALL", "PLOT_NAME", "REPORT_NAME", "Column", "columns", "dice_of", "markdown",
           "write_plot", "write_report"]
