"""MoNuSeg's instance-annotated images cut into 256² crops, as AI²Seg (seed 000) used them.

Only images whose nuclei are given as contours (ImageScope XML) have instances: MoNuSeg's 7
test images (``test/<stem>.xml``) and the training images with ``train/annotations/<stem>.xml``
(13 in ``../shared/data``; the paper had 37 images, 592 crops). Each 1000² image is cut into
4 × 4 crops of 256² at a stride of 248 px (offsets 0, 248, 496, 744), so the crops cover the
image and neighbours overlap by 8 px. A nucleus is rasterised with its own id (a later
contour overwrites an earlier one where they overlap); in a crop, pieces of nuclei cut by
the crop's edge smaller than ``min_piece`` pixels are dropped from the annotation (no
network can be asked to find a sliver of a few pixels, and the paper's crops would count
them as clean instances every model misses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pathloop.client.errors import InputError
from pathloop.client.experiments.monuseg import MONUSEG_MPP, read_contours

CROP_SIZE = 256
CROPS_PER_SIDE = 4
MIN_PIECE = 20
"""Pixels a nucleus cut by a crop's edge must keep to stay in the crop's annotation."""


@dataclass(frozen=True)
class Crop:
    """One crop of a MoNuSeg image and its clean instance annotation.

    Attributes
    ----------
    name:
        ``<stem>_x<x>_y<y>`` (a valid dataset case name).
    image:
        The MoNuSeg image's stem.
    x, y:
        Top-left corner in the image's pixels (0.25 µm/px).
    pixels:
        ``(256, 256, 3)`` uint8 RGB.
    labels:
        ``(256, 256)`` int32 clean instances (0 background, the nucleus's number in the
        XML file as id).
    """

    name: str
    image: str
    x: int
    y: int
    pixels: NDArray[np.uint8]
    labels: NDArray[np.int32]


def annotated_images(root: Path) -> list[tuple[str, Path, Path]]:
    """``(stem, tif, xml)`` of every MoNuSeg image with instance contours, sorted by stem.

    Raises
    ------
    InputError
        ``root`` is not a MoNuSeg folder, or holds no image with contours.
    """
    test, annotations = root / "test", root / "train" / "annotations"
    if not test.is_dir() or not (root / "train" / "images").is_dir():
        raise InputError(f"{root}: not a MoNuSeg folder (expected train/images/ and test/)")
    found = []
    for xml in sorted(test.glob("*.xml")):
        found.append((xml.stem, xml.with_suffix(".tif"), xml))
    if annotations.is_dir():
        for xml in sorted(annotations.glob("*.xml")):
            found.append((xml.stem, root / "train" / "images" / f"{xml.stem}.tif", xml))
    missing = [str(tif) for _, tif, _ in found if not tif.is_file()]
    if missing:
        raise InputError(f"contours without their image: {', '.join(missing[:3])}")
    if not found:
        raise InputError(f"{root}: no image with instance contours (test/*.xml, "
                         "train/annotations/*.xml)")
    return sorted(found)


def instance_labels(xml: Path, shape: tuple[int, int]) -> NDArray[np.int32]:
    """The contours of an ImageScope XML file as ``(H, W)`` int32 instances (ids 1..n)."""
    from skimage.draw import polygon

    labels = np.zeros(shape, np.int32)
    for number, contour in enumerate(read_contours(xml), start=1):
        rows, cols = polygon(contour[:, 1], contour[:, 0], shape=shape)
        labels[rows, cols] = number
    return labels


def crop_offsets(size: int, crop: int = CROP_SIZE, per_side: int = CROPS_PER_SIDE
                 ) -> list[int]:
    """``per_side`` offsets of ``crop``-wide windows that cover ``size`` pixels evenly."""
    if size < crop:
        raise InputError(f"an image side of {size} px is smaller than a {crop} px crop")
    if per_side == 1:
        return [0]
    return [round(i * (size - crop) / (per_side - 1)) for i in range(per_side)]


def load_crops(root: Path, *, max_images: int | None = None,
               min_piece: int = MIN_PIECE) -> list[Crop]:
    """Every crop of the instance-annotated images (the first ``max_images`` by stem).

    Raises
    ------
    InputError
        See :func:`annotated_images`; an image that is not RGB.
    """
    crops = []
    for stem, tif, xml in annotated_images(root)[:max_images]:
        try:
            with Image.open(tif) as opened:
                pixels = np.asarray(opened.convert("RGB"))
        except OSError as error:
            raise InputError(f"{tif}: unreadable image ({error})") from None
        labels = instance_labels(xml, pixels.shape[:2])
        rows = crop_offsets(pixels.shape[0])
        cols = crop_offsets(pixels.shape[1])
        for y in rows:
            for x in cols:
                window = labels[y:y + CROP_SIZE, x:x + CROP_SIZE]
                crops.append(Crop(f"{stem}_x{x}_y{y}", stem, x, y,
                                  np.ascontiguousarray(pixels[y:y + CROP_SIZE,
                                                              x:x + CROP_SIZE]),
                                  drop_small_pieces(window, min_piece)))
    return crops


def drop_small_pieces(labels: NDArray[np.int32], min_piece: int) -> NDArray[np.int32]:
    """A copy of ``labels`` without the instances smaller than ``min_piece`` pixels."""
    sizes = np.bincount(labels.ravel())
    small = sizes < min_piece
    small[0] = False
    return np.where(small[labels], 0, labels).astype(np.int32)


def image_names(crops: Sequence[Crop]) -> list[str]:
    """The images the crops come from, in order of first appearance."""
    return list(dict.fromkeys(c.image for c in crops))


__all__ = ["CROPS_PER_SIDE", "CROP_SIZE", "MIN_PIECE", "MONUSEG_MPP", "Crop",
           "annotated_images", "crop_offsets", "drop_small_pieces", "image_names",
           "instance_labels", "load_crops"]
