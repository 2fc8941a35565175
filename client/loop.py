"""Use cases of the UGA loop: train, predict, rank, correct, retrain.

Like :mod:`pathloop.client.workflows`, each takes settings and an open store from the edge
and returns records. Models live in ``<data-dir>/models/<name>`` and are recorded as model
versions with their lineage (parent, corrections used).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import ConflictError, InputError, RecordNotFoundError
from pathloop.client.inference import SlidePrediction, predict_slide
from pathloop.client.ranking import (
    PatchSpec,
    RandomForegroundStrategy,
    RankingStrategy,
    SiteRanking,
    SiteSlide,
    SlideRanking,
    UncertaintyStrategy,
    rank_site,
    rank_slide,
)
from pathloop.client.segmentation import Case, SegmentationTask, TrainingProfile, export_dataset
from pathloop.client.settings import SiteSettings
from pathloop.client.store import (
    CorrectionRecord,
    ModelVersionRecord,
    PatchBox,
    SlideRecord,
    Store,
)
from pathloop.client.tiling import compute_tissue_mask
from pathloop.client.workflows import open_stored_slide

if TYPE_CHECKING:
    from pathloop.client.segmentation import Ensemble

logger = logging.getLogger(__name__)

MODEL_KIND = "uga-ensemble"
CORRECTION_RASTER = "correction"
CORRECTION_PREFIX = "corr"
STRATEGIES: dict[str, Callable[[], RankingStrategy]] = {
    "uga": UncertaintyStrategy, "random": RandomForegroundStrategy}


def model_dir(settings: SiteSettings, name: str) -> Path:
    """Where a model version's folds are kept."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise InputError(f"model name {name!r}: letters, digits, '.', '_' or '-' only")
    return settings.data_dir / "models" / name


def train_model(settings: SiteSettings, store: Store, cases: Iterable[Case], *,
                task: SegmentationTask, mpp: float, profile: TrainingProfile, name: str,
                parent: ModelVersionRecord | None = None,
                corrections: list[CorrectionRecord] | None = None,
                device: str = "cpu") -> ModelVersionRecord:
    """Train (or, with ``parent``, continue training) the fold ensemble; record the version.

    Parameters
    ----------
    cases:
        Training tiles: ``(H, W, 3)`` uint8 images with ``(H, W)`` uint8 label masks at
        ``mpp`` µm/px.
    parent:
        The model version to fine-tune from (fold ``k`` starts from the parent's fold ``k``).
    corrections:
        The corrections among ``cases``, recorded in the new version's lineage.

    Cases whose names start with ``corr`` (see :func:`correction_cases`) go into every
    fold's training set, so each fold learns from every correction.
    """
    from pathloop.client.segmentation import make_splits, train_ensemble

    target = model_dir(settings, name)
    if target.exists():
        raise InputError(f"model {name!r} already exists at {target}")
    work = settings.data_dir / "work" / name
    dataset = export_dataset(cases, work / "dataset", task, mpp=mpp)
    names = list(dataset.case_names)
    splits = make_splits(names, profile.n_folds,
                         always_train=[n for n in names if n.startswith(CORRECTION_PREFIX)])
    card = train_ensemble(dataset, target, profile=profile, device=device,
                          parent=Path(parent.weights_uri) if parent and parent.weights_uri
                          else None, splits=splits, work_dir=work / "nnunet")
    provenance = {
        "task": task.name, "mpp": mpp, "profile": profile.name,
        "training_cases": dataset.n_cases,
        "corrections": [c.id for c in corrections or []],
        "training_seconds": card.training_seconds,
    }
    return store.add_model_version(name=name, kind=MODEL_KIND,
                                   parent_id=parent.id if parent else None,
                                   provenance=provenance, weights_uri=str(target))


def load_ensemble(version: ModelVersionRecord, device: str = "cpu") -> Ensemble:
    """The fold ensemble of a stored model version (every fold checked and loaded once)."""
    from pathloop.client.segmentation import Ensemble

    if not version.weights_uri:
        raise RecordNotFoundError(f"model version {version.id} has no weights")
    return Ensemble.load(version.weights_uri, device=device)


def predict_stored_slide(settings: SiteSettings, store: Store, slide: SlideRecord,
                         ensemble: Ensemble, version: ModelVersionRecord, *,
                         progress: Callable[[int, int], None] | None = None
                         ) -> SlidePrediction:
    """Every fold's softmax over the slide's tissue → prediction and uncertainty rasters."""
    with open_stored_slide(settings, slide) as opened:
        tissue = compute_tissue_mask(opened, mpp=settings.tiling.thumbnail_mpp)
        return predict_slide(opened, tissue, ensemble, store.rasters, slide.id,
                             model_version_id=version.id, progress=progress)


def rank_stored_slide(settings: SiteSettings, store: Store, slide: SlideRecord, *,
                      spec: PatchSpec, k: int, strategy: str = "uga", seed: int = 0
                      ) -> SlideRanking:
    """Rank a predicted slide's patches and put the top ``k`` in its worklist.

    Patches already corrected on the slide are not offered again.
    """
    chosen = _strategy(strategy)
    with open_stored_slide(settings, slide) as opened:
        tissue = compute_tissue_mask(opened, mpp=settings.tiling.thumbnail_mpp)
        return rank_slide(store, slide.id, opened, strategy=chosen, k=k, spec=spec,
                          seed=seed, tissue=tissue, exclude=_corrected_boxes(store, [slide]))


def rank_stored_site(settings: SiteSettings, store: Store, slides: Sequence[SlideRecord], *,
                     spec: PatchSpec, k: int, strategy: str = "uga", seed: int = 0
                     ) -> SiteRanking:
    """Rank the patches of a site's predicted slides together; the top ``k`` go to the worklist.

    As the UGA paper ranked per centre: one pool of candidates across the slides, each slide
    opened in turn. Patches already corrected are not offered again.
    """
    chosen = _strategy(strategy)
    exclude = _corrected_boxes(store, slides)

    def opened_slides() -> Iterator[SiteSlide]:
        for record in slides:
            with open_stored_slide(settings, record) as opened:
                tissue = compute_tissue_mask(opened, mpp=settings.tiling.thumbnail_mpp)
                yield SiteSlide(record.id, opened, tissue)

    return rank_site(store, opened_slides(), strategy=chosen, k=k, spec=spec, seed=seed,
                     exclude=exclude)


def _strategy(name: str) -> RankingStrategy:
    if name not in STRATEGIES:
        raise InputError(f"strategy {name!r}: one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()


def _corrected_boxes(store: Store, slides: Sequence[SlideRecord]) -> list[PatchBox]:
    ids = {slide.id for slide in slides}
    return [c.patch for c in store.latest_corrections() if c.patch.slide_id in ids]


def patch_mask_shape(store: Store, box: PatchBox) -> tuple[int, int]:
    """``(H, W)`` of a patch's label mask: its box at ``box.mpp`` µm/px."""
    scale = box.mpp / store.get_slide(box.slide_id).mpp_x  # level-0 px per mask px
    return max(1, round(box.height / scale)), max(1, round(box.width / scale))


def save_correction_mask(store: Store, box: PatchBox, mask: NDArray[np.uint8], *,
                         author: str, ranked_patch_id: int | None = None,
                         base_version: int | None = None,
                         details: Mapping[str, Any] | None = None) -> CorrectionRecord:
    """Store a corrected label mask for a patch as a new correction version.

    ``mask`` is ``(H, W)`` uint8 labels covering ``box`` at ``box.mpp`` µm/px; ``details``
    (JSON) are kept in the version's data, e.g. how the mask was made.

    Raises
    ------
    InputError
        The mask's shape or dtype does not fit the patch.
    ConflictError
        ``base_version`` is not the patch's latest version; nothing is stored.
    """
    expected = patch_mask_shape(store, box)
    if mask.dtype != np.uint8 or mask.shape != expected:
        raise InputError(f"correction mask must be uint8 of shape {expected} (the patch at "
                         f"{box.mpp} µm/px), got {mask.dtype} {mask.shape}")
    # A stale save is refused before its raster is written (the save re-checks atomically).
    found = len(store.correction_history(box))
    if (base_version or 0) != found:
        raise ConflictError(f"correction of slide {box.slide_id} patch ({box.x}, {box.y}) is at "
                            f"version {found}, but this save was based on version "
                            f"{base_version or 0}")
    raster = store.rasters.save(mask, box.slide_id, CORRECTION_RASTER, mpp=box.mpp,
                                downsample="mode",
                                attributes={"x": box.x, "y": box.y})
    return store.save_correction(ranked_patch_id if ranked_patch_id is not None else box,
                                 data={"kind": "label-mask", **(details or {})},
                                 author=author, base_version=base_version,
                                 raster_id=raster.id)


def correction_cases(settings: SiteSettings, store: Store, corrections: list[CorrectionRecord]
                     ) -> Iterator[Case]:
    """Training tiles from corrections: the slide's pixels under each corrected mask."""
    for correction in corrections:
        if correction.raster_id is None:
            continue
        box = correction.patch
        mask = np.asarray(store.rasters.open_raster(correction.raster_id).read(0),
                          dtype=np.uint8)
        slide = store.get_slide(box.slide_id)
        with open_stored_slide(settings, slide) as opened:
            image = opened.read_region(box.x, box.y, mask.shape[1], mask.shape[0], box.mpp)
        yield Case(f"{CORRECTION_PREFIX}{correction.correction_id}v{correction.version}",
                   image, mask)


def folder_cases(images: Path, masks: Path) -> Iterator[Case]:
    """Training tiles from an image folder and a mask folder (files paired by stem).

    Images are read as RGB; masks as 8-bit label images of the same size.
    """
    from PIL import Image

    mask_of = {p.stem: p for p in masks.iterdir() if p.is_file()}
    pairs = [(p, mask_of.get(p.stem)) for p in sorted(images.iterdir()) if p.is_file()]
    missing = [p.name for p, m in pairs if m is None]
    if missing or not pairs:
        raise InputError(f"{masks}: no mask for {', '.join(missing[:5])}" if missing
                         else f"{images}: no images")
    for image_path, _ in pairs:
        mask_path = mask_of[image_path.stem]
        image = np.asarray(Image.open(image_path).convert("RGB"))
        mask = np.asarray(Image.open(mask_path))
        if mask.ndim != 2 or mask.shape != image.shape[:2]:
            raise InputError(f"{mask_path}: mask {mask.shape} does not match image "
                             f"{image.shape[:2]}")
        yield Case(re.sub(r"[^A-Za-z0-9_.-]", "_", image_path.stem), image,
                   (mask > 0).astype(np.uint8) if mask.max() == 255 else mask.astype(np.uint8))


def dice(prediction: NDArray[np.integer], truth: NDArray[np.integer], label: int = 1) -> float:
    """Dice of one label between two ``(H, W)`` label maps (1.0 when both are empty)."""
    p, t = prediction == label, truth == label
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total
