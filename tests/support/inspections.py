"""A small stored inspection from hand-made label arrays, for API and browser tests.

:func:`fill_inspection` writes two plain images (PNG) into a folder inside the site's slide
roots, registers them as slides and stores an image-set inspection of both, whose instances
take every state: odd ones that agree well (consistent) and badly (suspect), additional
ones (annotated, not predicted) and missing ones (predicted, not annotated). The TTA members
disagree on some instances, so α changes the scores and the order of the two images: at
the run's α = γ = 0 ``inspect-02.png`` comes first (overall ≈ 0.78 against 0.75), at α = 1
``inspect-01.png`` (≈ 0.63 against 0.22).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pathloop.client.settings import SiteSettings
from pathloop.client.store import InspectionRecord, Store
from pathloop.client.usecases.quality import InspectionCase, record_inspection
from pathloop.client.usecases.slides import ingest_slide

MPP = 0.5
SIZE = (96, 128)  # (height, width) of both images
AUTHOR = "inspection-fixture"


def _disk(labels: NDArray[np.int32], label: int, cy: int, cx: int, radius: int) -> None:
    rows, cols = np.ogrid[: labels.shape[0], : labels.shape[1]]
    labels[(rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2] = label


def _image(labels: NDArray[np.int32], seed: int) -> NDArray[np.uint8]:
    """H&E-ish pixels: pink glass, purple nuclei where ``labels`` has instances."""
    rng = np.random.default_rng(seed)
    image = np.empty((*labels.shape, 3), dtype=np.uint8)
    image[...] = (236, 200, 222)
    image[labels > 0] = (110, 60, 150)
    noise = rng.integers(-8, 9, size=image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _first_image() -> tuple[NDArray[np.int32], NDArray[np.int32], tuple[NDArray[np.int32], ...]]:
    """Three annotated nuclei: 1 predicted alike (consistent), 2 predicted shifted
    (suspect), 3 not predicted (additional); one predicted nucleus not annotated (missing)
    that half the members see."""
    annotation = np.zeros(SIZE, dtype=np.int32)
    prediction = np.zeros(SIZE, dtype=np.int32)
    _disk(annotation, 1, 20, 20, 9)
    _disk(prediction, 11, 20, 21, 9)
    _disk(annotation, 2, 20, 70, 10)
    _disk(prediction, 12, 27, 79, 8)
    _disk(annotation, 3, 70, 20, 8)
    _disk(prediction, 13, 70, 60, 11)
    unsure = prediction.copy()
    unsure[unsure == 13] = 0  # half the members do not see the missing nucleus
    return annotation, prediction, (prediction, prediction, unsure, unsure)


def _second_image() -> tuple[NDArray[np.int32], NDArray[np.int32], tuple[NDArray[np.int32], ...]]:
    """One nucleus predicted alike (consistent) and three predicted ones not annotated
    (missing) that only one member of four sees: the most suspect image at α = 0, the least
    at α = 1."""
    annotation = np.zeros(SIZE, dtype=np.int32)
    prediction = np.zeros(SIZE, dtype=np.int32)
    _disk(annotation, 1, 25, 25, 10)
    _disk(prediction, 21, 25, 26, 10)
    for label, (cy, cx) in enumerate(((25, 90), (70, 50), (72, 105)), start=22):
        _disk(prediction, label, cy, cx, 8)
    unsure = prediction.copy()
    unsure[unsure > 21] = 0
    return annotation, prediction, (prediction, unsure, unsure, unsure)


def fill_inspection(settings: SiteSettings, store: Store, folder: Path, *,
                    name: str = "fixture inspection") -> InspectionRecord:
    """Write and register the two images in ``folder`` (inside ``settings.slide_roots``)
    and store their inspection at α = γ = 0; returns its record."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for index, (annotation, prediction, members) in enumerate(
            (_first_image(), _second_image()), start=1):
        path = folder / f"inspect-{index:02d}.png"
        Image.fromarray(_image(annotation, index)).save(path)
        slide = ingest_slide(settings, store, path, mpp=MPP).slide
        cases.append(InspectionCase(slide=slide, name=path.name,
                                    box=(0, 0, SIZE[1], SIZE[0]), annotation=annotation,
                                    prediction=prediction, members=members))
    return record_inspection(store, cases, name=name, source="image-set", author=AUTHOR,
                             params={"images": str(folder), "fixture": True})
