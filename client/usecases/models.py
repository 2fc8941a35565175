"""Use cases of a site's models: train a fold ensemble, take a shipped one, load one.

Models live in ``<data-dir>/models/<name>`` and are recorded as model versions with their
lineage (parent, corrections used). Training cases come from a folder of tiles and masks
(:func:`folder_cases`) or from the pathologists' corrections (:func:`correction_cases`).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pathloop.client.errors import InputError, RecordNotFoundError
from pathloop.client.segmentation import Case, SegmentationTask, TrainingProfile, export_dataset
from pathloop.client.settings import Precision, SiteSettings
from pathloop.client.store import CorrectionRecord, ModelVersionRecord, Store
from pathloop.client.usecases.slides import open_stored_slide

if TYPE_CHECKING:
    from pathloop.client.segmentation import Ensemble, TrainingEvent

MODEL_KIND = "uga-ensemble"
CORRECTION_PREFIX = "corr"
"""Training cases from corrections are named ``corr<id>v<version>``; they train every fold."""


def model_dir(settings: SiteSettings, name: str) -> Path:
    """Where a model version's folds are kept."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise InputError(f"model name {name!r}: letters, digits, '.', '_' or '-' only")
    return settings.data_dir / "models" / name


def train_model(settings: SiteSettings, store: Store, cases: Iterable[Case], *,
                task: SegmentationTask, mpp: float, profile: TrainingProfile, name: str,
                parent: ModelVersionRecord | None = None,
                corrections: list[CorrectionRecord] | None = None,
                device: str = "cpu",
                progress: Callable[[TrainingEvent], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                held: str | None = None) -> ModelVersionRecord:
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
    held:
        Record the new version as held (kept, not current) for this reason, until a gate
        decides (:mod:`pathloop.client.usecases.adoption`); ``None``: current at once.

    progress:
        Called after the preparation and after each fold (see
        :func:`~pathloop.client.segmentation.train_ensemble`).
    should_stop:
        Asked throughout the training (every iteration) and last right before the model
        folder is put in place; once it answers true,
        :class:`~pathloop.client.errors.Cancelled` is raised.

    Cases whose names start with ``corr`` (see :func:`correction_cases`) go into every
    fold's training set, so each fold learns from every correction. The model version is
    recorded last; if anything fails or stops before, neither the model folder nor the
    work folder (the exported tiles, nnU-Net's files) is left behind.
    """
    from pathloop.client.segmentation import make_splits, train_ensemble

    target = model_dir(settings, name)
    if target.exists():
        raise InputError(f"model {name!r} already exists at {target}")
    work = settings.data_dir / "work" / name
    try:
        dataset = export_dataset(cases, work / "dataset", task, mpp=mpp)
        names = list(dataset.case_names)
        splits = make_splits(names, profile.n_folds,
                             always_train=[n for n in names if n.startswith(CORRECTION_PREFIX)])
        card = train_ensemble(dataset, target, profile=profile, device=device,
                              parent=Path(parent.weights_uri) if parent and parent.weights_uri
                              else None, splits=splits, work_dir=work / "nnunet",
                              progress=progress, should_stop=should_stop)
        provenance = {
            "task": task.name, "mpp": mpp, "profile": profile.name,
            "training_cases": dataset.n_cases,
            "corrections": [c.id for c in corrections or []],
            "training_seconds": card.training_seconds,
        }
        return store.add_model_version(name=name, kind=MODEL_KIND,
                                       parent_id=parent.id if parent else None,
                                       provenance=provenance, weights_uri=str(target),
                                       held=held)
    except BaseException:
        # Nothing recorded: a model folder no version points to would be an orphan.
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        raise


def load_ensemble(version: ModelVersionRecord, device: str = "cpu",
                  precision: Precision = "auto") -> Ensemble:
    """The fold ensemble of a stored model version (every fold checked and loaded once),
    predicting in ``precision`` (:data:`~pathloop.client.settings.Precision`)."""
    from pathloop.client.segmentation import Ensemble

    if not version.weights_uri:
        raise RecordNotFoundError(f"model version {version.id} has no weights")
    return Ensemble.load(version.weights_uri, device=device, precision=precision)


def import_model(settings: SiteSettings, store: Store, folder: Path, name: str
                 ) -> ModelVersionRecord:
    """Take a shipped model folder (the federation's initial model) as the site's current."""
    from pathloop.client.segmentation import Ensemble

    Ensemble.load(folder)  # every fold present and fitting its plans, or a clear error
    target = model_dir(settings, name)
    if target.exists():
        raise InputError(f"model {name!r} already exists at {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{name}.importing-{time.time_ns()}"
    try:
        # The copy is the site's own: its user's alone, whatever modes the shipped files had.
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("arrays.npz"),
                        copy_function=shutil.copyfile)
        for path in (staging, *staging.rglob("*")):
            path.chmod(0o700 if path.is_dir() else 0o600)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return store.add_model_version(name=name, kind=MODEL_KIND, weights_uri=str(target),
                                   provenance={"imported": True}, actor="site-operator")


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
