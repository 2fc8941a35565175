"""Sites built from real MoNuSeg tiles for the federation tests: each site a TCGA organ
with training and held-out tiles, a site config, and the federation's initial model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from pathloop.client.experiments.monuseg import MonusegImage, read_nucleus_mask
from pathloop.client.segmentation import (
    TINY,
    Case,
    SegmentationTask,
    TrainingProfile,
    export_dataset,
    train_ensemble,
)
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.models import import_model

NUCLEI = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})
SHORT = TINY.with_overrides(n_folds=2, num_epochs=1, iterations_per_epoch=3,
                            val_iterations_per_epoch=1)


def monuseg_cases(images: list[MonusegImage], prefix: str) -> list[Case]:
    """Two 256² tiles per image, at about 0.5 µm/px (the 1000² images halved)."""
    cases = []
    for image in images:
        rgb = tifffile.imread(image.image_path)[..., :3]
        mask = read_nucleus_mask(image, rgb.shape[:2])
        rgb = np.asarray(Image.fromarray(rgb).resize((500, 500), Image.Resampling.BILINEAR))
        mask = np.asarray(Image.fromarray(mask).resize((500, 500), Image.Resampling.NEAREST))
        for x in (0, 244):
            cases.append(Case(f"{prefix}{image.stem[5:12]}x{x}",
                              np.ascontiguousarray(rgb[:256, x:x + 256]),
                              np.ascontiguousarray(mask[:256, x:x + 256])))
    return cases


def write_tiles(cases: list[Case], folder: Path) -> tuple[Path, Path]:
    """PNG tiles and masks as a site's [federation] folders read them."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for case in cases:
        Image.fromarray(case.image).save(folder / "images" / f"{case.name}.png")
        Image.fromarray(case.mask).save(folder / "masks" / f"{case.name}.png")
    return folder / "images", folder / "masks"


def train_model(cases: list[Case], root: Path, profile: TrainingProfile = SHORT) -> Path:
    """A short tiny-profile ensemble trained on ``cases``; its model folder."""
    dataset = export_dataset(cases, root / "dataset", NUCLEI, mpp=0.5)
    train_ensemble(dataset, root / "model", profile=profile)
    return root / "model"


def make_site(root: Path, organ: str, images: list[MonusegImage], initial: Path) -> Path:
    """A site of ``organ``: 2 training images, 1 held out, ``initial`` as its model."""
    train_images, train_masks = write_tiles(monuseg_cases(images[:2], "t"), root / "train")
    held_images, held_masks = write_tiles(monuseg_cases(images[2:3], "h"), root / "held")
    config = root / "site.toml"
    config.write_text(
        f'site-id = "{organ}"\ndata-dir = "data"\n[federation]\n'
        f'training-images = "{train_images}"\ntraining-masks = "{train_masks}"\n'
        f'held-out-images = "{held_images}"\nheld-out-masks = "{held_masks}"\n'
        'mpp = 0.5\nlabels = ["background", "nucleus"]\n')
    settings = SiteSettings.from_file(config)
    with Store.open(settings) as store:
        import_model(settings, store, initial, "initial")
    return config
