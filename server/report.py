"""The central team's view of a federation: global versions, sites, Dice per site per round.

Read from the checkpoint folder alone (lineage and ``evaluations.jsonl``); site names come
from the names the central team registered SuperNodes under (``sites.json``), node ids
otherwise. Nothing here needs the SuperLink to be running.

Sites gate what they adopt: a site that found a global version worse on its held-out tiles
keeps its current model and says so in its evaluation (``adopted`` 0 and its running count
``num-refused``); the report lists those refusals per version and each site's count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pathloop.server.checkpoints import CheckpointStore, GlobalVersion
from pathloop.server.contract import MetricKey
from pathloop.server.federation import read_evaluations

REPORT_PNG = "dice_per_round.png"
REPORT_MD = "federation_report.md"
#: The columns of a version's row in the report and in ``pathloop server status``.
VERSION_COLUMNS = ("version", "parent", "strategy", "sites", "patches", "corrections",
                   "rejected", "mean Dice")


@dataclass(frozen=True)
class FederationSummary:
    """Every global version with its lineage, and each site's Dice of each version."""

    versions: list[GlobalVersion]
    dice: dict[int, dict[str, float]]  # version → site → held-out Dice
    errors: list[dict[str, Any]]  # evaluations a site could not make
    names: Mapping[int, str]
    refused_by: dict[int, list[str]] = field(default_factory=dict)  # version → sites
    refusals: dict[str, int] = field(default_factory=dict)  # site → its newest num-refused

    def site(self, node_id: int) -> str:
        return self.names.get(node_id, str(node_id))

    @property
    def sites(self) -> list[str]:
        return sorted({site for row in self.dice.values() for site in row})

    def mean_dice(self, version: int) -> float | None:
        row = self.dice.get(version)
        return sum(row.values()) / len(row) if row else None

    def version_row(self, v: GlobalVersion) -> list[str]:
        """One version's cells under :data:`VERSION_COLUMNS`."""
        mean = self.mean_dice(v.version)
        return [str(v.version), "—" if v.parent is None else str(v.parent), v.strategy,
                ", ".join(sorted(self.site(c.node_id) for c in v.contributions)) or "—",
                str(sum(c.examples for c in v.contributions)),
                str(sum(c.corrections for c in v.contributions)), str(len(v.rejected)),
                "—" if mean is None else f"{mean:.3f}"]


def summarize(checkpoint_dir: Path, names: Mapping[int, str] | None = None
              ) -> FederationSummary:
    """The federation recorded in ``checkpoint_dir`` (the newest evaluation of a version by
    a site counts, so a re-evaluated version shows its last score)."""
    names = dict(names or {})
    versions = CheckpointStore(checkpoint_dir).versions()
    dice: dict[int, dict[str, float]] = {}
    errors: list[dict[str, Any]] = []
    adopted: dict[int, dict[str, bool]] = {}
    refusals: dict[str, int] = {}
    for row in read_evaluations(checkpoint_dir):
        site = names.get(int(row["node_id"]), str(row["node_id"]))
        if "error" in row:
            errors.append({**row, "site": site})
            continue
        if MetricKey.DICE in row:
            dice.setdefault(int(row["version"]), {})[site] = float(row[MetricKey.DICE])
        if MetricKey.ADOPTED in row:
            adopted.setdefault(int(row["version"]), {})[site] = bool(row[MetricKey.ADOPTED])
        if MetricKey.REFUSED in row:
            refusals[site] = int(row[MetricKey.REFUSED])
    refused_by = {version: sorted(site for site, kept in row.items() if not kept)
                  for version, row in sorted(adopted.items()) if not all(row.values())}
    return FederationSummary(versions, dice, errors, names, refused_by, refusals)


def markdown(summary: FederationSummary) -> str:
    """The versions' lineage and the Dice table as Markdown."""
    lines = ["# Federation report", "", "| " + " | ".join(VERSION_COLUMNS) + " |",
             "|" + "---|" * len(VERSION_COLUMNS)]
    lines += ["| " + " | ".join(summary.version_row(v)) + " |" for v in summary.versions]
    sites = summary.sites
    if sites:
        lines += ["", "## Held-out Dice per site", "",
                  "| version | " + " | ".join(sites) + " |",
                  "|---|" + "---|" * len(sites)]
        for version in sorted(summary.dice):
            row = summary.dice[version]
            lines.append(f"| {version} | " + " | ".join(
                f"{row[s]:.3f}" if s in row else "—" for s in sites) + " |")
    if summary.refused_by or any(summary.refusals.values()):
        lines += ["", "## Versions sites refused to adopt", "",
                  "A site keeps its current model when a version scores worse on its held-out "
                  "tiles than that model by more than the site's margin.", ""]
        lines += [f"- version {version}: {', '.join(sites)}"
                  for version, sites in summary.refused_by.items()]
        lines += ["", "| site | versions refused |", "|---|---|"]
        lines += [f"| {site} | {count} |" for site, count in sorted(summary.refusals.items())]
    rejected = [(v.version, r) for v in summary.versions for r in v.rejected]
    if rejected:
        lines += ["", "## Rejected updates", ""]
        lines += [f"- version {version}: {summary.site(int(r['node_id']))}: {r['reason']}"
                  for version, r in rejected]
    return "\n".join(lines) + "\n"


def plot_dice(summary: FederationSummary, path: Path) -> Path:
    """Dice per site per round (global version), with the sites' mean, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    versions = sorted(summary.dice)
    for site in summary.sites:
        points = [(v, summary.dice[v][site]) for v in versions if site in summary.dice[v]]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=site)
    means = [(v, mean) for v in versions if (mean := summary.mean_dice(v)) is not None]
    axes.plot([m[0] for m in means], [m[1] for m in means], color="black", linestyle="--",
              marker="s", label="mean of sites")
    axes.set_xlabel("global version (round)")
    axes.set_ylabel("held-out Dice")
    axes.set_title("Held-out Dice per site per round")
    if versions:
        axes.set_xticks(versions)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_report(summary: FederationSummary, folder: Path) -> tuple[Path, Path]:
    """``federation_report.md`` and ``dice_per_round.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REPORT_MD).write_text(markdown(summary) + f"\n![Dice per round]({REPORT_PNG})\n")
    return folder / REPORT_MD, plot_dice(summary, folder / REPORT_PNG)


__all__ = ["VERSION_COLUMNS", "FederationSummary", "markdown", "plot_dice", "summarize",
           "write_report"]
