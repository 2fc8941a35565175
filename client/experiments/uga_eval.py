"""``pathloop eval uga``: the UGA paper's experiment on real annotated nuclei (MoNuSeg).

The protocol of seed 004 (Camelyon17 there, MoNuSeg here), run through the site node's own
use cases — slides ingested into a store, the fold ensemble trained through nnU-Net, every
fold's softmax stitched into rasters, patches ranked into worklists, corrections saved as
versioned masks, retraining with lineage:

1. **Centres** are MoNuSeg's organs (:mod:`pathloop.client.experiments.monuseg`). A
   baseline ensemble is trained on the images of the baseline centres (their MoNuSeg
   training images, whole, at ``model_mpp``).
2. For each **target centre**, its first ``n_pool`` training images are the pool a
   pathologist would be shown; the rest of its images (the remaining training images and its
   MoNuSeg test image) are held out. The baseline predicts the pool; its patches are ranked
   across the centre by mean UGA uncertainty, and, as the baseline strategy, drawn at random
   among foreground patches. The top ``k`` of each (``k`` in ``ks``; the top 5 are the
   first 5 of the top 10) get their expert masks as corrections, the paper's simulated
   pathologist.
3. Each selection trains a new ensemble from the baseline's weights on the baseline's data
   plus the corrected patches (flip and hue augmentation). The comparison is repeated over
   **draws**: draw ``d`` draws the random patches with seed ``d`` and trains both
   strategies' ensembles with training seed ``d``, so every draw yields a paired difference
   UGA − random and the spread over draws says how much of a difference is chance. A
   **control** continues the baseline the same way without new patches, separating the
   patches' effect from the extra training.
4. Every model is scored by nucleus Dice on its centre's held-out images (the mean over
   images; the overall figure pools every held-out image of the target centres). The
   baseline is also scored on the baseline centres' test images (in-domain reference).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pathloop.client.errors import InputError
from pathloop.client.experiments.monuseg import (
    MONUSEG_MPP,
    MonusegImage,
    by_organ,
    list_images,
    read_nucleus_mask,
)
from pathloop.client.experiments.uga_records import (
    ArmResult,
    SelectedPatch,
    UgaEvalConfig,
    UgaEvalResult,
)
from pathloop.client.ranking import PatchCandidate, PatchSpec
from pathloop.client.segmentation import Case, SegmentationTask
from pathloop.client.settings import SiteSettings, TilingSettings
from pathloop.client.store import CorrectionRecord, ModelVersionRecord, PatchBox, Store
from pathloop.client.usecases.loop import (
    dice,
    predict_stored_slide,
    rank_stored_site,
    save_correction_mask,
)
from pathloop.client.usecases.models import correction_cases, load_ensemble, train_model
from pathloop.client.usecases.slides import ingest_slide, open_stored_slide

NUCLEI = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})
ANNOTATOR = "expert-annotation"
RESULT_NAME = "uga_eval.json"
Notify = Callable[[str, int, int], None]


@dataclass
class _Centre:
    name: str
    pool: list[MonusegImage]
    held_out: list[MonusegImage]


def run_uga_eval(monuseg: Path, workdir: Path, config: UgaEvalConfig = UgaEvalConfig(), *,
                 device: str = "cpu", progress: Notify | None = None) -> UgaEvalResult:
    """Run the experiment; its store, models and ``uga_eval.json`` go to ``workdir`` (new or
    empty but for a ``logs`` folder).

    Raises
    ------
    InputError
        ``monuseg`` is not a MoNuSeg folder, a centre is unknown or too small, the centres
        overlap, or ``workdir`` already holds a run.
    """
    started = time.perf_counter()
    notify = progress or (lambda message, done, total: None)
    images = list_images(monuseg)
    baseline_images, centres = _split(images, config)
    if workdir.exists() and any(p.name != "logs" for p in workdir.iterdir()):
        raise InputError(f"{workdir}: not empty; give a new folder for the experiment")
    settings = SiteSettings(site_id="uga-eval", data_dir=workdir / "site",
                            slide_roots=(monuseg.resolve(),),
                            tiling=TilingSettings(thumbnail_mpp=2.0))
    arms: list[ArmResult] = []
    candidates: dict[str, int] = {}
    n_models = 1 + int(config.control) + len(centres) * len(config.ks) * 2 * len(config.draws)
    trained = 0
    with Store.open(settings) as store:
        data = _Data(settings, store, config.model_mpp, images)
        notify(f"training the baseline on {len(baseline_images)} images", trained, n_models)
        base_cases = [data.case(image) for image in baseline_images]
        baseline = train_model(settings, store, base_cases, task=NUCLEI, mpp=config.model_mpp,
                               profile=config.baseline_profile, name="baseline", device=device)
        trained += 1
        in_domain = [i for i in data.images if i.split == "test"
                     and i.organ in config.baseline_centres]
        arms.append(ArmResult("baseline centres", "baseline", 0, None, baseline.id,
                              data.score(baseline, in_domain, device)))
        for centre in centres:
            arms.append(ArmResult(centre.name, "baseline", 0, None, baseline.id,
                                  data.score(baseline, centre.held_out, device)))
        if config.control:
            notify("continuing the baseline without new patches", trained, n_models)
            control = _retrain(data, config, base_cases, baseline, "continued", [],
                               config.draws[0], device)
            trained += 1
            for centre in centres:
                arms.append(ArmResult(centre.name, "continued", 0, None, control.id,
                                      data.score(control, centre.held_out, device),
                                      training_seconds=_seconds(control)))
        for centre in centres:
            selections, candidates[centre.name] = _select(data, config, centre, baseline,
                                                          device)
            for (arm, draw, k), patches in selections.items():
                notify(f"{centre.name}: draw {draw}, retraining with {k} {arm} patches",
                       trained, n_models)
                corrections = [data.correct(patch) for patch in patches]
                name = f"{centre.name}-{arm}-draw{draw}-{k}"
                version = _retrain(data, config, base_cases, baseline, name, corrections,
                                   draw, device)
                trained += 1
                arms.append(ArmResult(centre.name, arm, k, draw, version.id,
                                      data.score(version, centre.held_out, device),
                                      [data.describe(p) for p in patches],
                                      _seconds(version)))
    notify("done", n_models, n_models)
    result = UgaEvalResult(
        config=config.to_json(),
        centres={c.name: {"pool": [i.stem for i in c.pool],
                          "held_out": [i.stem for i in c.held_out]} for c in centres}
        | {"baseline": {"train": [i.stem for i in baseline_images], "held_out": []}},
        arms=arms, candidates=candidates, seconds=round(time.perf_counter() - started, 1))
    result.write(workdir / RESULT_NAME)
    return result


class _Data:
    """The experiment's slides in the store, their expert masks and the corrections made."""

    def __init__(self, settings: SiteSettings, store: Store, model_mpp: float,
                 images: list[MonusegImage]) -> None:
        self.settings, self.store, self.model_mpp = settings, store, model_mpp
        self.images = images
        self.records = {i.stem: ingest_slide(settings, store, i.image_path, site_id=i.organ,
                                             mpp=MONUSEG_MPP).slide for i in self.images}
        self._image_of = {self.records[i.stem].id: i for i in self.images}
        self._truth: dict[str, NDArray[np.uint8]] = {}
        self._corrections: dict[PatchBox, CorrectionRecord] = {}

    def truth(self, image: MonusegImage) -> NDArray[np.uint8]:
        """The expert nucleus mask at the model's µm/px, ``(H, W)`` uint8."""
        if image.stem not in self._truth:
            record = self.records[image.stem]
            full = read_nucleus_mask(image, (record.height, record.width))
            size = (round(record.width * MONUSEG_MPP / self.model_mpp),
                    round(record.height * MONUSEG_MPP / self.model_mpp))
            self._truth[image.stem] = np.asarray(
                Image.fromarray(full).resize(size, Image.Resampling.NEAREST))
        return self._truth[image.stem]

    def case(self, image: MonusegImage) -> Case:
        """A whole image at the model's µm/px with its expert mask, as a training case."""
        truth = self.truth(image)
        with open_stored_slide(self.settings, self.records[image.stem]) as slide:
            pixels = slide.read_region(0, 0, truth.shape[1], truth.shape[0], self.model_mpp)
        return Case(image.stem, pixels, truth)

    def patch_truth(self, patch: PatchCandidate) -> NDArray[np.uint8]:
        """The expert mask under a patch at its µm/px (zeros past the image's edge)."""
        assert patch.slide_id is not None
        truth = self.truth(self._image_of[patch.slide_id])
        scale = patch.mpp / MONUSEG_MPP
        x, y = round(patch.x / scale), round(patch.y / scale)
        w, h = round(patch.width / scale), round(patch.height / scale)
        out = np.zeros((h, w), np.uint8)
        window = truth[y:y + h, x:x + w]
        out[: window.shape[0], : window.shape[1]] = window
        return out

    def correct(self, patch: PatchCandidate) -> CorrectionRecord:
        """The expert mask saved as the patch's correction (once per patch)."""
        assert patch.slide_id is not None
        box = PatchBox(patch.slide_id, patch.x, patch.y, patch.width, patch.height, patch.mpp)
        if box not in self._corrections:
            self._corrections[box] = save_correction_mask(
                self.store, box, self.patch_truth(patch), author=ANNOTATOR)
        return self._corrections[box]

    def describe(self, patch: PatchCandidate) -> SelectedPatch:
        assert patch.slide_id is not None
        return SelectedPatch(self._image_of[patch.slide_id].stem, patch.x, patch.y,
                             round(patch.score_mean, 5),
                             round(float(self.patch_truth(patch).mean()), 4))

    def score(self, version: ModelVersionRecord, images: Sequence[MonusegImage],
              device: str) -> dict[str, float]:
        """Nucleus Dice of a model version on each image (predicted through the store)."""
        ensemble = load_ensemble(version, device)
        scores = {}
        for image in images:
            record = self.records[image.stem]
            prediction = predict_stored_slide(self.settings, self.store, record, ensemble,
                                              version)
            predicted = np.asarray(self.store.rasters.open_raster(prediction.prediction).read(0))
            truth = self.truth(image)
            if predicted.shape != truth.shape:
                raise InputError(f"{image.stem}: prediction {predicted.shape} and expert mask "
                                 f"{truth.shape} differ")
            scores[image.stem] = round(dice(predicted, truth), 4)
        return scores


def _select(data: _Data, config: UgaEvalConfig, centre: _Centre,
            baseline: ModelVersionRecord, device: str
            ) -> tuple[dict[tuple[str, int, int], list[PatchCandidate]], int]:
    """Predict the pool with the baseline; rank it by UGA and at random (one ranking per
    draw); the top-k selections by (strategy, draw, k), each draw's pair together."""
    ensemble = load_ensemble(baseline, device)
    pool = [data.records[i.stem] for i in centre.pool]
    for record in pool:
        predict_stored_slide(data.settings, data.store, record, ensemble, baseline)
    spec = PatchSpec(size=config.patch_size, mpp=config.model_mpp, stride=config.patch_stride,
                     filter_mpp=config.model_mpp * 4)
    k_max = max(config.ks)
    uga = rank_stored_site(data.settings, data.store, pool, spec=spec, k=k_max, strategy="uga")
    if uga.n_candidates < k_max:
        raise InputError(f"centre {centre.name}: {uga.n_candidates} candidate patches, fewer "
                         f"than k={k_max}")
    selections: dict[tuple[str, int, int], list[PatchCandidate]] = {}
    for draw in config.draws:
        drawn = rank_stored_site(data.settings, data.store, pool, spec=spec, k=k_max,
                                  strategy="random", seed=draw)
        for k in sorted(config.ks):
            selections["uga", draw, k] = uga.selected[:k]
            selections["random", draw, k] = drawn.selected[:k]
    return selections, uga.n_candidates


def _retrain(data: _Data, config: UgaEvalConfig, base_cases: list[Case],
             baseline: ModelVersionRecord, name: str, corrections: list[CorrectionRecord],
             seed: int, device: str) -> ModelVersionRecord:
    cases = [*base_cases, *correction_cases(data.settings, data.store, corrections)]
    profile = config.retrain_profile.with_overrides(seed=seed)
    return train_model(data.settings, data.store, cases, task=NUCLEI, mpp=config.model_mpp,
                       profile=profile, name=name, parent=baseline,
                       corrections=corrections, device=device)


def _split(images: list[MonusegImage], config: UgaEvalConfig
           ) -> tuple[list[MonusegImage], list[_Centre]]:
    groups = by_organ(images)
    known = ", ".join(sorted(groups))
    for organ in (*config.baseline_centres, *config.target_centres):
        if organ not in groups:
            raise InputError(f"centre {organ!r}: not a MoNuSeg organ (known: {known})")
    overlap = set(config.baseline_centres) & set(config.target_centres)
    if overlap:
        raise InputError(f"centres {sorted(overlap)} are both baseline and target centres")
    if not config.ks or min(config.ks) < 1:
        raise InputError(f"ks must be positive patch counts, got {config.ks}")
    if not config.draws or len(set(config.draws)) < len(config.draws) or min(config.draws) < 0:
        raise InputError(f"draws must be distinct seeds >= 0, got {config.draws}")
    baseline = [i for organ in config.baseline_centres for i in groups[organ]
                if i.split == "train"]
    centres = []
    for organ in config.target_centres:
        train = [i for i in groups[organ] if i.split == "train"]
        if len(train) < config.n_pool or len(groups[organ]) <= config.n_pool:
            raise InputError(f"centre {organ!r}: {len(groups[organ])} images, too few for a "
                             f"pool of {config.n_pool} and a held-out set")
        pool = train[: config.n_pool]
        centres.append(_Centre(organ, pool, [i for i in groups[organ] if i not in pool]))
    return baseline, centres


def _seconds(version: ModelVersionRecord) -> float:
    return float(version.provenance.get("training_seconds", 0.0))


__all__ = ["run_uga_eval"]
