"""AI²Seg inspections at the site: run one on an image set or a slide's annotated regions,
then review it (:mod:`pathloop.client.usecases.inspection_review`, re-exported here).

A run reads each item's annotation (an image's instance labels, or the nucleus instances
inside a slide region), predicts instances with the instance model and its test-time
augmentations, assigns every instance a state (odd, additional, missing) and stores the
findings with both label arrays as rasters, all in one transaction
(:meth:`~pathloop.client.store.Store.add_inspection`): an error or a cancel before the end
stores nothing. Label arrays are ``(H, W)`` int32, 0 = background, instance ids > 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pathloop.client.annotations import InstanceSet, read_annotations
from pathloop.client.errors import Cancelled, InputError
from pathloop.client.quality.inspection import assign_states, overall_score, score_instances
from pathloop.client.quality.instances import (
    predict_instances,
    train_instance_model,
    transforms_for,
)
from pathloop.client.segmentation import FoldPredictor, TrainingProfile
from pathloop.client.settings import SiteSettings
from pathloop.client.store import (
    InspectionItemInput,
    InspectionRecord,
    InspectionSource,
    SlideRecord,
    Store,
)
from pathloop.client.usecases.inspection_review import (
    DECISIONS,
    Decision,
    ScoredInstance,
    ScoredItem,
    decide,
    item_labels,
    item_view,
    rescore,
    scored_item,
)
from pathloop.client.usecases.slides import ingest_slide, open_stored_slide

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""Files of an image folder that are images to inspect (not their annotations)."""
REGION_CLASSES = ("region", "roi", "rectangle")
"""Classifications (any case) that mark an annotation file's outline as a region to
inspect rather than a nucleus."""
INSTANCE_MODEL_KIND = "ai2seg-instances"
"""Model-version kind of an instance model trained by an inspection run."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stages ``"reading"``, ``"training"``, ``"predicting"``."""


@dataclass(frozen=True)
class InstanceModel:
    """Where a run's instance predictions come from: a model folder, one to train (with
    ``profile`` into ``train_dir``), or a ready :class:`FoldPredictor` (tests)."""

    model_dir: Path | None = None
    profile: TrainingProfile | None = None
    train_dir: Path | None = None
    predictor: FoldPredictor | None = None
    device: str = "cpu"

    def describe(self) -> dict[str, Any]:
        """What the run's params record about the model."""
        if self.predictor is not None:
            return {"model": "given"}
        if self.profile is not None:
            return {"model": "trained", "profile": self.profile.name,
                    "model_dir": str(self.train_dir)}
        return {"model": str(self.model_dir)}


@dataclass(frozen=True)
class InspectionCase:
    """One item to inspect: a box of a stored slide with its annotation and prediction.

    Attributes
    ----------
    name:
        The image's file name or the region's name.
    box:
        ``(x, y, width, height)`` in level-0 pixels of the slide.
    annotation, prediction:
        ``(height, width)`` int32 instance labels over the box at the slide's µm/px.
    members:
        The test-time-augmented (and per-fold) predictions, de-augmented, same shape: the
        instances' certainty comes from their agreement (none: certainty 1).
    """

    slide: SlideRecord
    name: str
    box: tuple[int, int, int, int]
    annotation: NDArray[np.int32]
    prediction: NDArray[np.int32]
    members: tuple[NDArray[np.int32], ...] = ()


def record_inspection(store: Store, cases: Sequence[InspectionCase], *, name: str,
                      source: InspectionSource, author: str, alpha: float = 0.0,
                      gamma: float = 0.0, params: Mapping[str, Any] | None = None,
                      model_version_id: int | None = None) -> InspectionRecord:
    """Assign states, score at α and γ, and store the run with every item at once.

    Raises
    ------
    InputError
        α or γ outside [0, 1], no case, or a case whose arrays do not fit its box.
    """
    if not (0.0 <= alpha <= 1.0 and 0.0 <= gamma <= 1.0):
        raise InputError(f"alpha and gamma must lie in [0, 1], got {alpha}, {gamma}")
    if not cases:
        raise InputError(f"inspection {name!r} has nothing to inspect")
    items = []
    for case in cases:
        _check_case(case)
        states = assign_states(case.annotation, case.prediction, case.members)
        scores = score_instances(states, alpha=alpha, gamma=gamma) if states \
            else np.zeros(0, dtype=np.float64)
        items.append(InspectionItemInput(
            name=case.name, slide_id=case.slide.id, box=case.box,
            mpp=(case.slide.mpp_x + case.slide.mpp_y) / 2,
            annotation=case.annotation.astype(np.int32, copy=False),
            prediction=case.prediction.astype(np.int32, copy=False),
            overall=overall_score(scores), instances=states))
    return store.add_inspection(name=name, source=source, author=author,
                                params=dict(params or {}), alpha=alpha, gamma=gamma,
                                items=items, model_version_id=model_version_id)


def image_pairs(images: Path, annotations: Path | None = None) -> list[tuple[Path, Path]]:
    """Pair every image of a folder with its annotation file.

    An image ``name.png`` (or JPEG, TIFF) pairs with the one file of ``annotations``
    (default: the images' folder) named ``name.<ext>`` or ``name_<anything>.<ext>`` that is
    not an image of the set, e.g. CPM-15's ``image01_mask.txt`` or MoNuSeg's
    ``TCGA-….xml``.

    Raises
    ------
    InputError
        No image; an image with no annotation file or with several.
    """
    folder = Path(images)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    found = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not _is_derived(p.stem))
    if not found:
        raise InputError(f"{folder}: no image ({', '.join(IMAGE_SUFFIXES)}) to inspect")
    source = Path(annotations) if annotations is not None else folder
    if not source.is_dir():
        raise InputError(f"{source}: not a folder of annotations")
    candidates = sorted(p for p in source.iterdir() if p.is_file() and p not in found)
    pairs = []
    for image in found:
        matches = [p for p in candidates
                   if (p.stem == image.stem or p.stem.startswith(image.stem + "_"))
                   and not p.stem.endswith("_poly")]
        if len(matches) != 1:
            names = ", ".join(p.name for p in matches) or "none"
            raise InputError(f"{image.name}: expected one annotation file named "
                             f"{image.stem}[_…].<ext> in {source}, found {names}")
        pairs.append((image, matches[0]))
    return pairs


def _is_derived(stem: str) -> bool:
    # CPM-15 ships renderings of its masks beside the images (imageNN_poly.png).
    return stem.endswith("_poly") or stem.endswith("_mask")


def inspect_image_set(settings: SiteSettings, store: Store,
                      images: Path | Sequence[tuple[Path, Path]], *, mpp: float,
                      model: InstanceModel, annotations: Path | None = None,
                      annotation_format: str | None = None, alpha: float = 0.0,
                      gamma: float = 0.0, name: str | None = None, author: str = "system",
                      progress: Progress | None = None,
                      should_stop: Callable[[], bool] | None = None) -> InspectionRecord:
    """Inspect a set of images (each a whole item) against their own annotations.

    Each image is registered as a slide at ``mpp`` µm/px (it must lie inside the slide
    roots; a known image is reused), its annotation read (``annotation_format`` or sniffed)
    as instance labels of the image's size, the instances predicted with TTA, and the run
    stored at once (see :func:`record_inspection`).

    Parameters
    ----------
    images:
        A folder (paired with :func:`image_pairs`) or ``(image, annotation)`` pairs.
    mpp:
        µm/px of the images (plain images record none).
    model:
        A model folder, or a profile to train one on these very images first.

    Raises
    ------
    InputError
        Bad folders, files or parameters, each named.
    Cancelled
        ``should_stop`` said so; nothing is stored.
    """
    pairs = image_pairs(images, annotations) if isinstance(images, Path) else list(images)
    cases = []
    for done, (image_path, annotation_path) in enumerate(pairs):
        _stop(should_stop)
        _report(progress, "reading", done, len(pairs))
        slide = ingest_slide(settings, store, image_path, mpp=mpp).slide
        labels = read_annotations(annotation_path, format=annotation_format,
                                  image_size=(slide.width, slide.height), mpp=mpp
                                  ).to_labels((slide.height, slide.width))
        cases.append((slide, image_path.name, (0, 0, slide.width, slide.height), labels))
    _report(progress, "reading", len(pairs), len(pairs))
    params = {"images": str(images) if isinstance(images, Path) else
              [str(i) for i, _ in pairs], "mpp": mpp, **model.describe()}
    return _predict_and_record(settings, store, cases, model, source="image-set",
                               name=name or f"image set {Path(pairs[0][0]).parent.name}",
                               author=author, alpha=alpha, gamma=gamma, params=params,
                               progress=progress, should_stop=should_stop)


def inspect_slide_regions(settings: SiteSettings, store: Store, slide: SlideRecord,
                          annotations_file: Path, *, model: InstanceModel,
                          annotation_format: str | None = None, alpha: float = 0.0,
                          gamma: float = 0.0, name: str | None = None,
                          author: str = "system", progress: Progress | None = None,
                          should_stop: Callable[[], bool] | None = None) -> InspectionRecord:
    """Inspect a slide's annotated regions: one item per region outline of the file.

    The outlines classified as a region (:data:`REGION_CLASSES`, e.g. QuPath's "Region*",
    an ASAP group "ROI") give the boxes (their bounding rectangles, level-0 px); every other
    outline is a nucleus, and those inside a box (clipped to it) are its annotation.

    Raises
    ------
    InputError
        The file has no region outline (the classifications it has are named).
    Cancelled
        ``should_stop`` said so; nothing is stored.
    """
    mpp = (slide.mpp_x + slide.mpp_y) / 2
    found = read_annotations(annotations_file, format=annotation_format,
                             image_size=(slide.width, slide.height), mpp=mpp)
    regions = [i for i in found.instances if _is_region(i.classification)]
    if not regions:
        classes = sorted({i.classification or "none" for i in found.instances})
        raise InputError(f"{annotations_file}: no region outline to inspect (classified "
                         f"{' / '.join(REGION_CLASSES)}, any case); it has: "
                         f"{', '.join(classes) or 'no outline'}")
    nuclei = InstanceSet(tuple(i for i in found.instances if not _is_region(i.classification)),
                         found.image_size, found.mpp)
    cases = []
    for index, region in enumerate(regions, start=1):
        left, top, right, bottom = region.polygon.bounds
        x, y = max(0, int(np.floor(left))), max(0, int(np.floor(top)))
        width = min(slide.width, int(np.ceil(right))) - x
        height = min(slide.height, int(np.ceil(bottom))) - y
        labels = nuclei.crop((x, y, width, height)).to_labels((height, width))
        label = region.properties.get("name") or f"region {index}"
        cases.append((slide, str(label), (x, y, width, height), labels))
    params = {"slide_id": slide.id, "regions": str(annotations_file), **model.describe()}
    return _predict_and_record(settings, store, cases, model, source="slide-regions",
                               name=name or f"{slide.name} regions", author=author,
                               alpha=alpha, gamma=gamma, params=params, progress=progress,
                               should_stop=should_stop)


def _is_region(classification: str | None) -> bool:
    return classification is not None and classification.strip().lower().startswith(
        REGION_CLASSES)


_Case = tuple[SlideRecord, str, tuple[int, int, int, int], NDArray[np.int32]]


def _predict_and_record(settings: SiteSettings, store: Store, cases: Sequence[_Case],
                        model: InstanceModel, *, source: InspectionSource, name: str,
                        author: str, alpha: float, gamma: float, params: dict[str, Any],
                        progress: Progress | None, should_stop: Callable[[], bool] | None
                        ) -> InspectionRecord:
    if not (0.0 <= alpha <= 1.0 and 0.0 <= gamma <= 1.0):
        raise InputError(f"alpha and gamma must lie in [0, 1], got {alpha}, {gamma}")
    pixels = []
    for slide, _, (x, y, width, height), _ in cases:
        with open_stored_slide(settings, slide) as opened:
            pixels.append(opened.read_region(x, y, width, height,
                                             (slide.mpp_x + slide.mpp_y) / 2))
    predictor, version_id = _instance_model(store, cases, pixels, model, author=author,
                                            progress=progress, should_stop=should_stop)
    inspected = []
    for done, ((slide, label, box, annotation), image) in enumerate(
            zip(cases, pixels, strict=True)):
        _stop(should_stop)
        _report(progress, "predicting", done, len(cases))
        prediction, members = _predict(predictor, image, (slide.mpp_x + slide.mpp_y) / 2)
        inspected.append(InspectionCase(slide=slide, name=label, box=box,
                                        annotation=annotation, prediction=prediction,
                                        members=members))
    _report(progress, "predicting", len(cases), len(cases))
    _stop(should_stop)
    return record_inspection(store, inspected, name=name, source=source, author=author,
                             alpha=alpha, gamma=gamma, params=params,
                             model_version_id=version_id)


def _instance_model(store: Store, cases: Sequence[_Case], pixels: Sequence[NDArray[np.uint8]],
                    model: InstanceModel, *, author: str, progress: Progress | None,
                    should_stop: Callable[[], bool] | None
                    ) -> tuple[FoldPredictor, int | None]:
    from pathloop.client.segmentation import Ensemble

    if model.predictor is not None:
        return model.predictor, None
    if model.profile is None:
        if model.model_dir is None:
            raise InputError("give a model folder or a profile to train one")
        return Ensemble.load(model.model_dir, model.device), None
    if model.train_dir is None:
        raise InputError("training an instance model needs a folder to write it to")
    if model.train_dir.exists():
        raise InputError(f"{model.train_dir}: already exists; give a new folder for the "
                         "trained model (or use it with a model folder)")
    mpps = {round((slide.mpp_x + slide.mpp_y) / 2, 6) for slide, *_ in cases}
    if len(mpps) != 1:
        raise InputError(f"the items have several resolutions ({sorted(mpps)} µm/px); "
                         "an instance model trains at one")
    _report(progress, "training", 0, 1)
    training = [(f"{slide.id}-{index}", image, labels)
                for index, ((slide, _, _, labels), image) in enumerate(
                    zip(cases, pixels, strict=True))]
    card = train_instance_model(training, model.train_dir, profile=model.profile,
                                mpp=mpps.pop(), device=model.device,
                                should_stop=should_stop)
    _report(progress, "training", 1, 1)
    version = store.add_model_version(
        name=model.train_dir.name, kind=INSTANCE_MODEL_KIND, weights_uri=str(model.train_dir),
        provenance={"trained_on": [label for _, label, _, _ in cases],
                    "profile": model.profile.name, "n_folds": card.n_folds},
        actor=author)
    return Ensemble.load(model.train_dir, model.device), version.id


def _predict(predictor: FoldPredictor, image: NDArray[np.uint8], mpp: float
             ) -> tuple[NDArray[np.int32], tuple[NDArray[np.int32], ...]]:
    """The instance labels and TTA members of an image at ``mpp``, resampled to and from
    the model's resolution when it differs."""
    height, width = image.shape[:2]
    scale = mpp / predictor.mpp
    if abs(scale - 1.0) > 1e-3:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    predicted = predict_instances(predictor, image[None],
                                  transforms=transforms_for(*image.shape[:2]))[0]

    def back(labels: NDArray[np.int32]) -> NDArray[np.int32]:
        if labels.shape == (height, width):
            return labels
        resized = Image.fromarray(labels.astype(np.int32)).resize(
            (width, height), Image.Resampling.NEAREST)
        return np.asarray(resized, dtype=np.int32)

    return back(predicted.labels), tuple(back(m) for m in predicted.members)


def _stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("inspection cancelled; nothing was stored")


def _report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def _check_case(case: InspectionCase) -> None:
    x, y, width, height = case.box
    slide = case.slide
    if width <= 0 or height <= 0 or x < 0 or y < 0 or x + width > slide.width \
            or y + height > slide.height:
        raise InputError(f"{case.name}: box {case.box} is not inside slide {slide.id} "
                         f"({slide.width}×{slide.height} px)")
    for what, labels in (("annotation", case.annotation), ("prediction", case.prediction),
                         *(("a TTA member", m) for m in case.members)):
        if labels.shape != (height, width):
            raise InputError(f"{case.name}: {what} is {labels.shape[1]}×{labels.shape[0]} "
                             f"px but the box is {width}×{height} px")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0:
            raise InputError(f"{case.name}: {what} must hold non-negative integer "
                             f"instance ids, got {labels.dtype}")


__all__ = [
    "DECISIONS",
    "INSTANCE_MODEL_KIND",
    "Decision",
    "InspectionCase",
    "InstanceModel",
    "ScoredInstance",
    "ScoredItem",
    "decide",
    "image_pairs",
    "inspect_image_set",
    "inspect_slide_regions",
    "item_labels",
    "item_view",
    "record_inspection",
    "rescore",
    "scored_item",
]
