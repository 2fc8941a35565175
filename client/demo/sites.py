"""The demo's simulated sites: each its own node folder, its sample slides ingested and tiled.

Each simulated site gets its own node folder (store and rasters), as it would in a hospital;
its slides come from :mod:`pathloop.client.sample`, never from real data, and each slide
with a ground truth gets an imperfect earlier annotation, as a site would have imported.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pathloop.client.demo.uga import MODEL_MPP, TUMOUR_LABEL, Notify
from pathloop.client.sample import SyntheticSlide, read_mask_region
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store
from pathloop.client.usecases.review import ANNOTATION_RASTER
from pathloop.client.usecases.slides import TilingResult, ingest_slide, tile_slide


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


def site_settings(workdir: Path, site_id: str) -> SiteSettings:
    """The settings of one simulated site node inside the demo folder."""
    return SiteSettings(site_id=site_id, data_dir=workdir / site_id,
                        slide_roots=(workdir / "samples",))


def pairs(store: Store, samples: list[SyntheticSlide]) -> list[tuple[SlideRecord,
                                                                     SyntheticSlide]]:
    """The stored slide record of each sample slide, in the samples' order."""
    by_name = {record.name: record for record in store.list_slides()}
    return [(by_name[sample.slide_path.name], sample) for sample in samples]


def build_site(workdir: Path, site_id: str, slides: list[SyntheticSlide], notify: Notify
               ) -> tuple[Path, list[DemoRow]]:
    """Make the site's node folder anew, ingest and tile its sample slides there; the folder
    and a row per slide."""
    settings = site_settings(workdir, site_id)
    rows = []
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    with Store.open(settings) as store:
        for sample in slides:
            ingested = ingest_slide(settings, store, sample.slide_path)

            label = f"{site_id}: tiling {sample.slide_path.name}"

            def step(done: int, total: int, label: str = label) -> None:
                notify(label, done, total)

            result = tile_slide(settings, store, ingested.slide, progress=step)
            rows.append(_row(site_id, sample, result, store))
            if sample.has_masks:
                _save_earlier_annotation(store, ingested.slide, sample)
    return settings.data_dir, rows


def _save_earlier_annotation(store: Store, slide: SlideRecord, sample: SyntheticSlide) -> None:
    """An imperfect earlier annotation of the slide's tumour, as a site would have imported
    (``pathloop annotate``): the ground truth at the model's µm/px, drawn a little too wide."""
    from scipy import ndimage

    step = max(1, round(MODEL_MPP / sample.mpp))
    band = step * max(1, 2048 // step)  # rows read at a time: memory stays bounded
    rows = [read_mask_region(sample.label_mask_path, 0, y, sample.width,
                             min(band, sample.height - y))[::step, ::step] == TUMOUR_LABEL
            for y in range(0, sample.height, band)]
    tumour = ndimage.binary_dilation(np.concatenate(rows), iterations=3)
    store.rasters.save(tumour.astype(np.uint8), slide.id, ANNOTATION_RASTER,
                       mpp=sample.mpp * step, downsample="mode",
                       attributes={"source": "demo: ground truth drawn 3 px too wide"})


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
