"""``pathloop demo``: the site loop on sample slides the demo makes itself.

Each simulated site gets its own node folder (store and rasters), as it would in a
hospital; the slides come from :mod:`pathloop.client.sample`, never from real data. Later
stages of the loop (ensemble, ranking, federation, viewer) extend :func:`run_demo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pathloop.client.sample import SyntheticSlide, make_sample_sites, read_mask_region
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.workflows import TilingResult, ingest_slide, tile_slide

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
        return lines


def site_settings(workdir: Path, site_id: str) -> SiteSettings:
    """The settings of one simulated site node inside the demo folder."""
    return SiteSettings(site_id=site_id, data_dir=workdir / site_id,
                        slide_roots=(workdir / "samples",))


def run_demo(workdir: Path, *, n_sites: int = 3, slides_per_site: int = 2, size: int = 4096,
             seed: int = 0, progress: DemoProgress | None = None) -> DemoSummary:
    """Make sample slides for ``n_sites`` sites, ingest and tile them at each site's node."""
    workdir = workdir.expanduser().resolve()
    notify = progress or (lambda what, done, total: None)
    notify("making sample slides", 0, n_sites * slides_per_site)
    sites = make_sample_sites(workdir / "samples", n_sites=n_sites,
                              slides_per_site=slides_per_site, size=size, seed=seed)
    summary = DemoSummary(workdir)
    for site_id, slides in sites.items():
        settings = site_settings(workdir, site_id)
        summary.site_dirs[site_id] = settings.data_dir
        with Store.open(settings) as store:
            for sample in slides:
                ingested = ingest_slide(settings, store, sample.slide_path)

                label = f"{site_id}: tiling {sample.slide_path.name}"

                def step(done: int, total: int, label: str = label) -> None:
                    notify(label, done, total)

                result = tile_slide(settings, store, ingested.slide, progress=step)
                summary.rows.append(_row(site_id, sample, result, store))
    return summary


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
