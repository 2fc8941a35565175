"""``pathloop demo``: the site loop on sample slides the demo makes itself.

The stages: the sites (:mod:`~pathloop.client.demo.sites`: sample slides, each site's node
ingesting and tiling its own), the UGA loop (:mod:`~pathloop.client.demo.uga`), federated
rounds (:mod:`~pathloop.client.demo.rounds`). :func:`run_demo` runs them in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pathloop.client.demo import uga
from pathloop.client.demo.rounds import FEDERATION_MODES, RoundDice, run_federated_rounds
from pathloop.client.demo.sites import DemoRow, build_site, pairs, site_settings
from pathloop.client.demo.uga import TASK, SiteOutcome
from pathloop.client.errors import InputError
from pathloop.client.sample import SyntheticSlide, make_sample_sites
from pathloop.client.segmentation import TrainingProfile
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, Store

DemoProgress = Callable[[str, int, int], None]
"""Called with ``(what, done, total)``."""


@dataclass(frozen=True)
class DemoSummary:
    """What the demo did."""

    workdir: Path
    rows: list[DemoRow] = field(default_factory=list)
    site_dirs: dict[str, Path] = field(default_factory=dict)
    outcomes: list[SiteOutcome] = field(default_factory=list)
    rounds: list[RoundDice] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A short human report."""
        kept = sum(r.kept for r in self.rows)
        on_tissue = (sum(r.on_true_tissue * r.kept for r in self.rows) / kept) if kept else 0.0
        lines = [
            f"{len(self.site_dirs)} sites, {len(self.rows)} slides, {kept} tissue tiles recorded; "
            f"{on_tissue:.1%} of them lie at least 25% on ground-truth tissue.",
            f"Sample slides: {self.workdir / 'samples'}",
        ]
        lines += [f"Site {site}: store and rasters in {path}"
                  for site, path in self.site_dirs.items()]
        for outcome in self.outcomes:
            lines.append(
                f"{outcome.site_id}: {outcome.corrections} most uncertain patches corrected; "
                f"tumour Dice on its held-out slide {outcome.dice_before:.3f} → "
                f"{outcome.dice_after:.3f}")
        for round_dice in self.rounds:
            label = ("initial model" if round_dice.version == 0
                     else f"after round {round_dice.version}")
            per_site = ", ".join(f"{site} {d:.3f}" for site, d in round_dice.dice.items())
            lines.append(f"federation, global version {round_dice.version} ({label}): "
                         f"mean held-out Dice {round_dice.mean:.3f} ({per_site})")
        if self.rounds:
            lines.append(f"Federation (checkpoints, lineage, logs): {self.workdir / 'federation'}")
        return lines


def viewer_settings(summary: DemoSummary) -> SiteSettings:
    """The settings to serve the viewer with: the demo's first site that has a worklist.

    That site predicted, ranked and corrected its slides in the loop (the first site only
    trained the baseline). Its federation config is used when the rounds wrote one.
    """
    site_ids = list(summary.site_dirs)
    site_id = summary.outcomes[0].site_id if summary.outcomes else site_ids[0]
    config = summary.site_dirs[site_id] / "pathloop.toml"
    if config.is_file():
        return SiteSettings.from_file(config)
    settings = site_settings(summary.workdir, site_id)
    return settings.model_copy(update={"federation": settings.federation.model_copy(
        update={"labels": TASK.label_names})})


def run_demo(workdir: Path, *, n_sites: int = 3, slides_per_site: int = 2, size: int = 4096,
             seed: int = 0, loop: bool = True, k: int = 5, rounds: int = 2,
             federation: str = "simulation",
             profiles: tuple[TrainingProfile, TrainingProfile] | None = None,
             progress: DemoProgress | None = None) -> DemoSummary:
    """Make sample slides for ``n_sites`` sites, ingest and tile them at each site's node,
    then (``loop``) run the UGA loop: baseline at the first site, worklists, corrections
    and retraining at the others (:mod:`pathloop.client.demo.uga`), and ``rounds``
    federated rounds across all sites in Flower's ``simulation`` or a ``loopback``
    deployment (:mod:`pathloop.client.demo.rounds`).

    The sample slides are kept between runs; the site nodes' folders are made anew.
    ``profiles`` are the (baseline, retraining) training profiles.
    """
    workdir = workdir.expanduser().resolve()
    if federation not in FEDERATION_MODES:
        raise InputError(f"federation mode {federation!r}: one of {', '.join(FEDERATION_MODES)}")
    if loop and (n_sites < 2 or slides_per_site < 2):
        raise InputError("the demo's loop needs at least 2 sites with 2 slides each")
    notify = progress or (lambda what, done, total: None)
    notify("making sample slides", 0, n_sites * slides_per_site)
    sites = make_sample_sites(workdir / "samples", n_sites=n_sites,
                              slides_per_site=slides_per_site, size=size, seed=seed)
    summary = DemoSummary(workdir)
    for site_id, slides in sites.items():
        site_dir, rows = build_site(workdir, site_id, slides, notify)
        summary.site_dirs[site_id] = site_dir
        summary.rows.extend(rows)
    if loop:
        baseline = _run_loop(workdir, sites, summary, k, profiles, notify)
        if rounds:
            notify(f"{rounds} federated rounds across {len(sites)} sites (Flower, "
                   f"{federation})", 0, rounds)
            summary.rounds.extend(run_federated_rounds(workdir, sites, baseline,
                                                       rounds=rounds, rerank_k=k,
                                                       mode=federation))
    return summary


def _run_loop(workdir: Path, sites: dict[str, list[SyntheticSlide]], summary: DemoSummary,
              k: int, profiles: tuple[TrainingProfile, TrainingProfile] | None,
              notify: DemoProgress) -> ModelVersionRecord:
    base_profile, retrain_profile = profiles or (uga.DEMO_PROFILE, uga.RETRAIN_PROFILE)
    (first, first_slides), *others = sites.items()
    notify(f"{first}: training the baseline 5-fold ensemble", 0, len(sites))
    settings = site_settings(workdir, first)
    with Store.open(settings) as store:
        baseline, cases = uga.train_baseline(settings, store, pairs(store, first_slides),
                                             base_profile)
    for done, (site_id, slides) in enumerate(others, start=1):
        notify(f"{site_id}: predict, rank, correct, retrain", done, len(sites))
        settings = site_settings(workdir, site_id)
        with Store.open(settings) as store:
            received = uga.receive_model(store, baseline, first)
            pool, test = pairs(store, slides)[:2]
            summary.outcomes.append(uga.run_site(
                settings, store, received, cases, pool, test, k=k, profile=retrain_profile))
    return baseline


