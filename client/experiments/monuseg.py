"""MoNuSeg as "centres": its images grouped by organ, with their expert nucleus masks.

MoNuSeg (Kumar et al., IEEE TMI 2017/2020) holds 1000×1000 H&E tiles scanned at 40×
(0.25 µm/px) from TCGA slides of 7 organs and 18 hospitals. An image's organ follows from
the tissue source site (TSS) code in its name, ``TCGA-<TSS>-…``: :data:`ORGAN_OF_TSS` maps the
codes MoNuSeg uses. Expected layout (as published, read in place)::

    <root>/train/images/<stem>.tif          RGB
    <root>/train/masks/<stem>.png           binary nucleus mask (0/1 or 0/255)
    <root>/train/annotations/<stem>.xml     contours, for some training images
    <root>/test/<stem>.tif                  RGB
    <root>/test/<stem>.xml                  Aperio ImageScope XML, one <Region> per nucleus

The TIFFs carry no resolution tags: :data:`MONUSEG_MPP` is supplied when they are opened. The
contour files are read by :mod:`pathloop.client.annotations` (ImageScope XML).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pathloop.client.annotations import Instance, InstanceSet, rasterize, read_annotations
from pathloop.client.errors import InputError

MONUSEG_MPP = 0.25  # 40× scans

#: TCGA tissue source site → organ, for the sites MoNuSeg's images come from.
ORGAN_OF_TSS: dict[str, str] = {
    **dict.fromkeys(("A7", "AR", "E2", "AC"), "breast"),
    **dict.fromkeys(("B0", "HE", "2Z"), "kidney"),
    **dict.fromkeys(("18", "21", "38", "49", "50", "44"), "lung"),
    **dict.fromkeys(("CH", "G9", "EJ"), "prostate"),
    **dict.fromkeys(("DK", "G2", "CU"), "bladder"),
    **dict.fromkeys(("AY", "NH", "A6"), "colon"),
    **dict.fromkeys(("KB", "RD"), "stomach"),
    "FG": "brain",
}
_TCGA = re.compile(r"^TCGA-([A-Z0-9]{2})-")
_CENTRE = 0.5  # ImageScope vertices are pixel centres (see annotations.imagescope)


@dataclass(frozen=True)
class MonusegImage:
    """One MoNuSeg image and where its expert annotation is.

    Attributes
    ----------
    stem:
        The TCGA name without extension, e.g. ``"TCGA-18-5592-01Z-00-DX1"``.
    tss:
        Its tissue source site code (``"18"``).
    organ:
        The organ (the image's "centre" in the UGA experiment).
    split:
        ``"train"`` or ``"test"`` in MoNuSeg's own split.
    image_path:
        The RGB TIFF.
    annotation_path:
        A binary mask PNG (training images) or contour XML (test images).
    contours_path:
        The nucleus contours (ImageScope XML) where MoNuSeg has them: every test image and
        13 of the 30 training images; ``None`` for the others.
    """

    stem: str
    tss: str
    organ: str
    split: Literal["train", "test"]
    image_path: Path
    annotation_path: Path
    contours_path: Path | None = None


def list_images(root: Path) -> list[MonusegImage]:
    """Every annotated image under a MoNuSeg folder, sorted by split then name.

    Raises
    ------
    InputError
        The folder does not look like MoNuSeg, an image has no annotation, or a name is not a
        TCGA code of a known tissue source site.
    """
    train, test = root / "train" / "images", root / "test"
    if not train.is_dir() or not test.is_dir():
        raise InputError(f"{root}: not a MoNuSeg folder (expected train/images/ and test/)")
    found: list[MonusegImage] = []
    splits: tuple[tuple[Literal["train", "test"], Path], ...] = (("train", train), ("test", test))
    for split, folder in splits:
        for path in sorted(folder.glob("*.tif")):
            annotation = (root / "train" / "masks" / f"{path.stem}.png" if split == "train"
                          else path.with_suffix(".xml"))
            if not annotation.is_file():
                raise InputError(f"{path}: no annotation (expected {annotation})")
            contours = (root / "train" / "annotations" / f"{path.stem}.xml"
                        if split == "train" else annotation)
            found.append(MonusegImage(path.stem, *_organ(path), split, path, annotation,
                                      contours if contours.is_file() else None))
    if not found:
        raise InputError(f"{root}: no MoNuSeg images found")
    return found


def by_organ(images: Sequence[MonusegImage]) -> dict[str, list[MonusegImage]]:
    """Images grouped by organ, training images first within each organ."""
    groups: dict[str, list[MonusegImage]] = {}
    for image in images:
        groups.setdefault(image.organ, []).append(image)
    return groups


def read_nucleus_mask(image: MonusegImage, shape: tuple[int, int]) -> NDArray[np.uint8]:
    """The expert nucleus mask, ``(H, W)`` uint8 (1 = nucleus) at :data:`MONUSEG_MPP`.

    ``shape`` is the image's ``(H, W)``; a PNG mask of another size, or an unreadable or
    malformed annotation, raises :class:`InputError` naming the file.
    """
    path = image.annotation_path
    if path.suffix == ".png":
        try:
            mask = np.asarray(Image.open(path))
        except OSError as error:
            raise InputError(f"{path}: unreadable mask ({error})") from None
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.shape != shape:
            raise InputError(f"{path}: mask is {mask.shape[1]}×{mask.shape[0]}, the image "
                             f"{shape[1]}×{shape[0]}")
        return (mask > 0).astype(np.uint8)
    return (read_instances(image, shape).to_labels(shape) > 0).astype(np.uint8)


def read_instances(image: MonusegImage, shape: tuple[int, int] | None = None) -> InstanceSet:
    """The image's nucleus instances from its contour XML, in level-0 px.

    ``shape`` is the image's ``(H, W)`` when known: contours reaching outside it are clipped.

    Raises
    ------
    InputError
        The image has no contour file (17 training images), or it is malformed.
    """
    if image.contours_path is None:
        raise InputError(f"{image.image_path}: MoNuSeg has no nucleus contours for this "
                         "image (only a binary mask)")
    size = None if shape is None else (shape[1], shape[0])
    return read_annotations(image.contours_path, format="imagescope-xml", image_size=size,
                            mpp=MONUSEG_MPP)


def read_contours(path: Path) -> list[NDArray[np.float64]]:
    """Nucleus contours of an ImageScope XML file: ``(N, 2)`` float (x, y) level-0 px each.

    The outlines as :func:`~pathloop.client.annotations.read_annotations` reads them
    (self-intersections repaired), in the file's own vertex coordinates.

    Raises
    ------
    InputError
        The file is not well-formed XML or a vertex lacks numeric ``X``/``Y``.
    """
    instances = read_annotations(path, format="imagescope-xml").instances
    return [np.asarray(i.polygon.exterior.coords)[:-1] - _CENTRE for i in instances]


def rasterize_contours(contours: Sequence[NDArray[np.float64]], shape: tuple[int, int]
                       ) -> NDArray[np.uint8]:
    """Fill ``(N, 2)`` (x, y) contours as :func:`read_contours` gives them into an
    ``(H, W)`` uint8 mask (1 inside): a pixel is inside when its centre is."""
    from shapely.geometry import Polygon

    instances = [Instance(n, Polygon(c + _CENTRE)) for n, c in enumerate(contours, start=1)]
    return (rasterize(instances, shape) > 0).astype(np.uint8)


def _organ(path: Path) -> tuple[str, str]:
    match = _TCGA.match(path.stem)
    if match is None or match.group(1) not in ORGAN_OF_TSS:
        raise InputError(f"{path}: not named by a TCGA code of a known MoNuSeg tissue source "
                         "site")
    return match.group(1), ORGAN_OF_TSS[match.group(1)]


__all__ = [
    "MONUSEG_MPP",
    "ORGAN_OF_TSS",
    "MonusegImage",
    "by_organ",
    "list_images",
    "rasterize_contours",
    "read_contours",
    "read_instances",
    "read_nucleus_mask",
]
