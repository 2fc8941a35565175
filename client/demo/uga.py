"""The UGA stage of ``pathloop demo``: baseline, uncertainty, worklists, corrections, retraining.

The paper's experiment on the demo's synthetic sites: a tiny 5-fold ensemble is trained on
site A (its slides' ground truth) and given to the other sites; each of them predicts its
first slide, ranks its patches by fold disagreement, has its top ``k`` "corrected" from
ground truth (the paper simulated pathologists the same way), retrains from the baseline
weights on the baseline tiles plus those corrections, and measures tumour Dice on its second,
held-out slide before and after. In the demo every site holds a copy of the (synthetic)
baseline training tiles; with real patients, each site's own training data stays local.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pathloop.client.ranking import PatchSpec
from pathloop.client.sample import SyntheticSlide, read_mask_region
from pathloop.client.segmentation import TINY, Case, SegmentationTask, TrainingProfile
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, PatchBox, SlideRecord, Store
from pathloop.client.usecases.loop import (
    dice,
    predict_stored_slide,
    rank_stored_slide,
    save_correction_mask,
)
from pathloop.client.usecases.models import correction_cases, load_ensemble, train_model
from pathloop.client.usecases.slides import open_stored_slide

TASK = SegmentationTask("tumour", {"background": 0, "tumour": 1})
MODEL_MPP = 2.0
TILE = 128  # baseline training tiles, px at MODEL_MPP (the tiny profile's patch)
PATCH = 128  # worklist patches, px at MODEL_MPP (256 µm: the demo's slides are small)
TUMOUR_LABEL = 2  # in the sample slides' label masks
DEMO_K = 12  # patches each site's simulated pathologist corrects
# Small enough for a laptop demo on 2 cores; real sites train with nnU-Net's own plans.
# 8 epochs (5 left it unsettled from run to run, see docs/demo.md).
DEMO_PROFILE = TINY.with_overrides(num_epochs=8)
# Fine-tuning from the baseline: a lower learning rate, and hue shifts as in the paper.
RETRAIN_PROFILE = TINY.with_overrides(num_epochs=3, initial_lr=3e-3, hue_shift=0.05)

Notify = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SiteOutcome:
    """One site's loop: how many patches were corrected, Dice before and after, and what
    it cost (predict, rank, correct, retrain and score, in seconds)."""

    site_id: str
    corrections: int
    mean_uncertainty_top: float
    dice_before: float
    dice_after: float
    seconds: float = 0.0


def ground_truth(sample: SyntheticSlide, x: int, y: int, width: int, height: int) -> NDArray[
        np.uint8]:
    """``(height, width)`` uint8 tumour mask at the model's µm/px for a level-0 origin."""
    step = round(MODEL_MPP / sample.mpp)
    w0 = min(width * step, sample.width - x)
    h0 = min(height * step, sample.height - y)
    out = np.zeros((height, width), np.uint8)
    labels = read_mask_region(sample.label_mask_path, x, y, w0, h0)[::step, ::step]
    out[: labels.shape[0], : labels.shape[1]] = labels == TUMOUR_LABEL
    return out


def baseline_cases(settings: SiteSettings, store: Store,
                   samples: list[tuple[SlideRecord, SyntheticSlide]]) -> Iterator[Case]:
    """Tiles of ``TILE`` px at the model's µm/px over the tissue of the given slides."""
    step = round(MODEL_MPP / samples[0][1].mpp)
    for record, sample in samples:
        with open_stored_slide(settings, record) as slide:
            for y in range(0, sample.height, TILE * step):
                for x in range(0, sample.width, TILE * step):
                    truth = ground_truth(sample, x, y, TILE, TILE)
                    image = slide.read_region(x, y, TILE, TILE, MODEL_MPP)
                    if (image.min(axis=2) < 220).mean() < 0.1:
                        continue  # glass
                    yield Case(f"s{record.id}x{x}y{y}", image, truth)


def train_baseline(settings: SiteSettings, store: Store,
                   samples: list[tuple[SlideRecord, SyntheticSlide]],
                   profile: TrainingProfile = DEMO_PROFILE) -> tuple[ModelVersionRecord,
                                                                     list[Case]]:
    """Train the baseline ensemble at one site; return it and its training tiles."""
    cases = list(baseline_cases(settings, store, samples))
    version = train_model(settings, store, iter(cases), task=TASK, mpp=MODEL_MPP,
                          profile=profile, name="baseline")
    return version, cases


def receive_model(store: Store, version: ModelVersionRecord, source: str) -> ModelVersionRecord:
    """Record a model version trained elsewhere (stand-in for the federation's broadcast)."""
    return store.add_model_version(name=version.name, kind=version.kind,
                                   provenance={"received_from": source, **version.provenance},
                                   weights_uri=version.weights_uri)


def slide_dice(settings: SiteSettings, store: Store, version: ModelVersionRecord,
               record: SlideRecord, sample: SyntheticSlide) -> float:
    """Tumour Dice of a model version over a whole slide at the model's µm/px.

    The slide's prediction by that version is reused when the store holds one (a federated
    round's worklist refresh makes it); otherwise the slide is predicted.
    """
    found = [r for r in store.rasters.list_rasters(record.id, "prediction")
             if r.model_version_id == version.id]
    if found:
        raster = found[-1]
    else:
        raster = predict_stored_slide(settings, store, record, load_ensemble(version),
                                      version).prediction
    predicted = store.rasters.open_raster(raster).read(0)
    truth = ground_truth(sample, 0, 0, predicted.shape[1], predicted.shape[0])
    return dice(predicted, truth)


def run_site(settings: SiteSettings, store: Store, baseline: ModelVersionRecord,
             base_cases: list[Case], pool: tuple[SlideRecord, SyntheticSlide],
             test: tuple[SlideRecord, SyntheticSlide], *, k: int,
             profile: TrainingProfile = RETRAIN_PROFILE) -> SiteOutcome:
    """Predict, rank, correct from ground truth, retrain, and measure one site."""
    started = time.perf_counter()
    ensemble = load_ensemble(baseline)
    pool_record, pool_sample = pool
    predict_stored_slide(settings, store, pool_record, ensemble, baseline)
    ranking = rank_stored_slide(settings, store, pool_record,
                                spec=PatchSpec(size=PATCH, mpp=MODEL_MPP), k=k)
    corrections = []
    for patch in store.ranked_patches(ranking.ranking.id):
        box = PatchBox(patch.slide_id, patch.x, patch.y, patch.width, patch.height, patch.mpp)
        truth = ground_truth(pool_sample, patch.x, patch.y, PATCH, PATCH)
        corrections.append(save_correction_mask(store, box, truth,
                                                author="simulated-pathologist",
                                                ranked_patch_id=patch.id))
    before = slide_dice(settings, store, baseline, *test)
    retrained = train_model(
        settings, store, [*base_cases, *correction_cases(settings, store, corrections)],
        task=TASK, mpp=MODEL_MPP, profile=profile, name=f"{settings.site_id}-uga-1",
        parent=baseline, corrections=corrections)
    after = slide_dice(settings, store, retrained, *test)
    top = float(np.mean([p.score_mean for p in ranking.selected])) if ranking.selected else 0.0
    return SiteOutcome(settings.site_id, len(corrections), top, before, after,
                       round(time.perf_counter() - started, 1))
