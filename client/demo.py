"""``pathloop demo``: the site loop on sample slides the demo makes itself.

Each simulated site gets its own node folder (store and rasters), as it would in a
hospital; the slides come from :mod:`pathloop.client.sample`, never from real data. The
stages: tiling, the UGA loop (:mod:`~pathloop.client.demo_loop`), federated rounds
(:mod:`~pathloop.client.demo_federation`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pathloop.client.errors import InputError
from pathloop.client.sample import SyntheticSlide, make_sample_sites, read_mask_region
from pathloop.client.segmentation import TrainingProfile
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, SlideRecord, Store
from pathloop.client.usecases.slides import TilingResult, ingest_slide, tile_slide

if TYPE_CHECKING:
    from pathloop.client.demo_federation import RoundDice
    from pathloop.client.demo_loop import SiteOutcome

#: How the demo runs its federated rounds (see :mod:`pathloop.client.demo_federation`).
FEDERATION_MODES = ("simulation", "loopback")

DemoProgress = Callable[[str, int, int], None]
"""Called with ``(what, done, total)``."""


@dataclass(frozen=True)
class DemoRow:
    """One sample slide after ingestion and tiling."""

    site_id: str
    slide_name: str
    width: int
    height: int
    mpp: float
    tissue_fraction: float
    kept: int
    dropped_background: int
    seconds: float
    on_true_tissue: float
    """Fraction of kept tiles at least 25% on ground-truth tissue (the tiling threshold)."""


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


def site_settings(workdir: Path, site_id: str) -> SiteSettings:
    """The settings of one simulated site node inside the demo folder."""
    return SiteSettings(site_id=site_id, data_dir=workdir / site_id,
                        slide_roots=(workdir / "samples",))


def viewer_settings(summary: DemoSummary) -> SiteSettings:
    """The settings to serve the viewer with: the demo's first site that has a worklist.

    That site predicted, ranked and corrected its slides in the loop (the first site only
    trained the baseline). Its federation config is used when the rounds wrote one.
    """
    from pathloop.client.demo_loop import TASK

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
    and retraining at the others (:mod:`pathloop.client.demo_loop`), and ``rounds``
    federated rounds across all sites in Flower's ``simulation`` or a ``loopback``
    deployment (:mod:`pathloop.client.demo_federation`).

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
        settings = site_settings(workdir, site_id)
        summary.site_dirs[site_id] = settings.data_dir
        shutil.rmtree(settings.data_dir, ignore_errors=True)
        with Store.open(settings) as store:
            for sample in slides:
                ingested = ingest_slide(settings, store, sample.slide_path)

                label = f"{site_id}: tiling {sample.slide_path.name}"

                def step(done: int, total: int, label: str = label) -> None:
                    notify(label, done, total)

                result = tile_slide(settings, store, ingested.slide, progress=step)
                summary.rows.append(_row(site_id, sample, result, store))
                if sample.has_masks:
                    _save_earlier_annotation(store, ingested.slide, sample)
    if loop:
        baseline = _run_loop(workdir, sites, summary, k, profiles, notify)
        if rounds:
            from pathloop.client.demo_federation import run_federated_rounds

            notify(f"{rounds} federated rounds across {len(sites)} sites (Flower, "
                   f"{federation})", 0, rounds)
            summary.rounds.extend(run_federated_rounds(workdir, sites, baseline,
                                                       rounds=rounds, rerank_k=k,
                                                       mode=federation))
    return summary


def _run_loop(workdir: Path, sites: dict[str, list[SyntheticSlide]], summary: DemoSummary,
              k: int, profiles: tuple[TrainingProfile, TrainingProfile] | None,
              notify: DemoProgress) -> ModelVersionRecord:
    from pathloop.client import demo_loop

    base_profile, retrain_profile = profiles or (demo_loop.DEMO_PROFILE,
                                                 demo_loop.RETRAIN_PROFILE)
    (first, first_slides), *others = sites.items()
    notify(f"{first}: training the baseline 5-fold ensemble", 0, len(sites))
    settings = site_settings(workdir, first)
    with Store.open(settings) as store:
        baseline, cases = demo_loop.train_baseline(settings, store,
                                                   pairs(store, first_slides), base_profile)
    for done, (site_id, slides) in enumerate(others, start=1):
        notify(f"{site_id}: predict, rank, correct, retrain", done, len(sites))
        settings = site_settings(workdir, site_id)
        with Store.open(settings) as store:
            received = demo_loop.receive_model(store, baseline, first)
            pool, test = pairs(store, slides)[:2]
            summary.outcomes.append(demo_loop.run_site(
                settings, store, received, cases, pool, test, k=k, profile=retrain_profile))
    return baseline


def _save_earlier_annotation(store: Store, slide: SlideRecord, sample: SyntheticSlide) -> None:
    """An imperfect earlier annotation of the slide's tumour, as a site would have imported
    (``pathloop annotate``): the ground truth at the model's µm/px, drawn a little too wide."""
    from scipy import ndimage

    from pathloop.client.demo_loop import MODEL_MPP, TUMOUR_LABEL
    from pathloop.client.usecases.review import ANNOTATION_RASTER

    step = max(1, round(MODEL_MPP / sample.mpp))
    band = step * max(1, 2048 // step)  # rows read at a time: memory stays bounded
    rows = [read_mask_region(sample.label_mask_path, 0, y, sample.width,
                             min(band, sample.height - y))[::step, ::step] == TUMOUR_LABEL
            for y in range(0, sample.height, band)]
    tumour = ndimage.binary_dilation(np.concatenate(rows), iterations=3)
    store.rasters.save(tumour.astype(np.uint8), slide.id, ANNOTATION_RASTER,
                       mpp=sample.mpp * step, downsample="mode",
                       attributes={"source": "demo: ground truth drawn 3 px too wide"})


def pairs(store: Store, samples: list[SyntheticSlide]) -> list[tuple[SlideRecord,
                                                                     SyntheticSlide]]:
    """The stored slide record of each sample slide, in the samples' order."""
    by_name = {record.name: record for record in store.list_slides()}
    return [(by_name[sample.slide_path.name], sample) for sample in samples]


def _row(site_id: str, sample: SyntheticSlide, result: TilingResult, store: Store) -> DemoRow:
    hits = []
    for tile in store.iter_tiles(result.tiling.id):
        width = min(tile.width, sample.width - tile.x)
        height = min(tile.height, sample.height - tile.y)
        labels = read_mask_region(sample.label_mask_path, tile.x, tile.y, width, height)
        hits.append(np.count_nonzero(labels) >= 0.25 * tile.width * tile.height)
    slide = result.slide
    return DemoRow(site_id, slide.name, slide.width, slide.height, slide.mpp_x,
                   result.tissue_fraction, result.kept, result.dropped_background,
                   result.seconds, float(np.mean(hits)) if hits else 0.0)
