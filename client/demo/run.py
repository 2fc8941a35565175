"""``pathloop demo``: the site loop on sample slides the demo makes itself.

The stages: the sites (:mod:`~pathloop.client.demo.sites`: sample slides, each site's node
ingesting and tiling its own), the UGA loop (:mod:`~pathloop.client.demo.uga`), federated
rounds (:mod:`~pathloop.client.demo.rounds`). :func:`run_demo` runs them in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pathloop.client.demo import uga
from pathloop.client.demo.report import DemoResults, SiteResult
from pathloop.client.demo.rounds import (
    DEMO_ROUNDS,
    FEDERATION_MODES,
    GlobalScores,
    RoundDice,
    run_federated_rounds,
    score_global_versions,
)
from pathloop.client.demo.sites import DemoRow, build_site, pairs, site_settings
from pathloop.client.demo.uga import TASK, SiteOutcome
from pathloop.client.errors import InputError
from pathloop.client.sample import SyntheticSlide, make_sample_sites
from pathloop.client.segmentation import Case, TrainingProfile
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, Store

DemoProgress = Callable[[str, int, int], None]
"""Called with ``(what, done, total)``."""


@dataclass
class DemoSummary:
    """What the demo did.

    ``results`` is the table of held-out Dice per site and stage (``None`` without the
    loop); ``rounds`` the federation's own per-round report (the sites' tile-level Dice, as
    the central team sees it in ``pathloop server status``).
    """

    workdir: Path
    rows: list[DemoRow] = field(default_factory=list)
    site_dirs: dict[str, Path] = field(default_factory=dict)
    outcomes: list[SiteOutcome] = field(default_factory=list)
    rounds: list[RoundDice] = field(default_factory=list)
    results: DemoResults | None = None
    summary_path: Path | None = None

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
        if self.results is not None:
            lines += self.results.findings()
        if self.rounds:
            lines.append(f"Federation (checkpoints, lineage, logs): {self.workdir / 'federation'}")
        if self.summary_path is not None:
            lines.append(f"This table as JSON: {self.summary_path}")
        return lines


class _Stages:
    """Wall time of each stage, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 1)


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
             seed: int = 0, loop: bool = True, k: int | None = None, rounds: int | None = None,
             federation: str = "simulation", aggregation_rule: str = "mean",
             profiles: tuple[TrainingProfile, TrainingProfile] | None = None,
             progress: DemoProgress | None = None) -> DemoSummary:
    """Make sample slides for ``n_sites`` sites, ingest and tile them at each site's node,
    then (``loop``) run the UGA loop: baseline at the first site, worklists, corrections
    and retraining at the others (:mod:`pathloop.client.demo.uga`), and ``rounds``
    federated rounds across all sites in Flower's ``simulation`` or a ``loopback``
    deployment (:mod:`pathloop.client.demo.rounds`). Every model is scored on each site's
    held-out slide; the table goes to ``demo-summary.json`` in ``workdir``.

    ``k`` patches are corrected per site (``None``: :data:`~pathloop.client.demo.uga.DEMO_K`);
    ``rounds`` ``None`` runs :data:`~pathloop.client.demo.rounds.DEMO_ROUNDS`.
    ``aggregation_rule`` is the server's rule (``mean``, ``trimmed-mean``, ``median``).
    ``seed`` draws the sample slides and seeds the training. The sample slides are kept
    between runs; the site nodes' folders are made anew. ``profiles`` are the (baseline,
    retraining) training profiles.
    """
    workdir = workdir.expanduser().resolve()
    if federation not in FEDERATION_MODES:
        raise InputError(f"federation mode {federation!r}: one of {', '.join(FEDERATION_MODES)}")
    from pathloop.server.settings import AGGREGATION_RULES

    if aggregation_rule not in AGGREGATION_RULES:
        raise InputError(f"aggregation rule {aggregation_rule!r}: one of "
                         f"{', '.join(AGGREGATION_RULES)}")
    if loop and (n_sites < 2 or slides_per_site < 2):
        raise InputError("the demo's loop needs at least 2 sites with 2 slides each")
    notify = progress or (lambda what, done, total: None)
    k = uga.DEMO_K if k is None else k
    rounds = DEMO_ROUNDS if rounds is None else rounds
    stages = _Stages()
    summary = DemoSummary(workdir)
    with stages("sample slides, ingestion and tiling"):
        notify("making sample slides", 0, n_sites * slides_per_site)
        sites = make_sample_sites(workdir / "samples", n_sites=n_sites,
                                  slides_per_site=slides_per_site, size=size, seed=seed)
        for site_id, slides in sites.items():
            site_dir, rows = build_site(workdir, site_id, slides, notify)
            summary.site_dirs[site_id] = site_dir
            summary.rows.extend(rows)
    if not loop:
        return summary
    base_profile, retrain_profile = profiles or (uga.DEMO_PROFILE, uga.RETRAIN_PROFILE)
    baseline, base_cases, received, baseline_dice = _baseline(
        workdir, sites, base_profile.with_overrides(seed=seed), stages, notify)
    others = list(sites.items())[1:]
    for done, (site_id, slides) in enumerate(others, start=1):
        notify(f"{site_id}: predict, rank, correct {k} patches, retrain", done, len(others))
        with stages(f"{site_id}: predict, rank, correct, retrain"):
            settings = site_settings(workdir, site_id)
            with Store.open(settings) as store:
                pool, test = pairs(store, slides)[:2]
                summary.outcomes.append(uga.run_site(
                    settings, store, received[site_id], base_cases, pool, test, k=k,
                    profile=retrain_profile.with_overrides(seed=seed)))
    scores = GlobalScores({}, {})
    if rounds:
        notify(f"{rounds} federated rounds across {len(sites)} sites (Flower, {federation})",
               0, rounds)
        with stages(f"federation: {rounds} rounds"):
            summary.rounds.extend(run_federated_rounds(workdir, sites, baseline, rounds=rounds,
                                                       rerank_k=k, mode=federation, seed=seed,
                                                       aggregation_rule=aggregation_rule))
        with stages("scoring the global versions"):
            scores = score_global_versions(workdir, sites)
    summary.results = _results(sites, seed, k, baseline_dice, summary.outcomes, scores, stages)
    summary.summary_path = summary.results.write(workdir)
    return summary


def _baseline(workdir: Path, sites: dict[str, list[SyntheticSlide]],
              profile: TrainingProfile, stages: _Stages, notify: DemoProgress
              ) -> tuple[ModelVersionRecord, list[Case], dict[str, ModelVersionRecord],
                         dict[str, float]]:
    """Train the baseline on the first site's first slide; give it to every site and score
    it on their held-out slides.

    Returns the baseline, its training tiles (the other sites retrain on them beside their
    corrections), its record in each site's store, and its held-out Dice per site."""
    first, first_slides = next(iter(sites.items()))
    notify(f"{first}: training the baseline 5-fold ensemble", 0, 1)
    with stages(f"{first}: baseline training"):
        settings = site_settings(workdir, first)
        with Store.open(settings) as store:
            baseline, cases = uga.train_baseline(settings, store,
                                                 pairs(store, first_slides)[:1], profile)
    dice: dict[str, float] = {}
    received: dict[str, ModelVersionRecord] = {}
    with stages("baseline scoring at every site"):
        for done, (site_id, slides) in enumerate(sites.items()):
            notify(f"scoring the baseline on {site_id}'s held-out slide", done, len(sites))
            settings = site_settings(workdir, site_id)
            with Store.open(settings) as store:
                received[site_id] = (baseline if site_id == first
                                     else uga.receive_model(store, baseline, first))
                dice[site_id] = uga.slide_dice(settings, store, received[site_id],
                                               *pairs(store, slides)[1])
    return baseline, cases, received, dice


def _results(sites: dict[str, list[SyntheticSlide]], seed: int, k: int,
             baseline: dict[str, float], outcomes: list[SiteOutcome], scores: GlobalScores,
             stages: _Stages) -> DemoResults:
    by_site = {o.site_id: o for o in outcomes}
    rows = []
    for site_id, slides in sites.items():
        outcome = by_site.get(site_id)
        rows.append(SiteResult(
            site_id, slides[0].stain.name, slides[0].morphology.name, baseline[site_id],
            corrected=None if outcome is None else outcome.dice_after,
            corrections=0 if outcome is None else outcome.corrections,
            correction_seconds=None if outcome is None else outcome.seconds,
            rounds=tuple(scores.dice[v][site_id] for v in sorted(scores.dice))))
    return DemoResults(seed, k, tuple(rows), dict(stages.seconds), dict(scores.round_seconds))


