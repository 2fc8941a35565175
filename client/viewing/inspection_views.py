"""The three views of an inspected item (AI²Seg): annotation, combined, prediction.

Each view is the item's pixels with instance outlines drawn on them:

- ``annotation``: the annotated instances' outlines, ``prediction``: the predicted ones';
  both colour-coded like the combined view;
- ``combined``: both outlines of every instance, consistent instances green, suspect ones
  red with their number drawn beside them, the selected one white.

An instance is suspect when its score is at least :data:`SUSPECT_SCORE`. Label arrays are
``(H, W)`` int32 over the item's pixels (0 = background); the image is ``(H, W, 3)`` uint8
RGB at the same resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from skimage.segmentation import find_boundaries

View = Literal["annotation", "combined", "prediction"]
VIEWS: tuple[View, ...] = ("annotation", "combined", "prediction")
SUSPECT_SCORE = 0.5
"""Score from which an instance counts as suspect (drawn red and numbered)."""

CONSISTENT = (57, 231, 95)
SUSPECT = (255, 45, 45)
SELECTED = (255, 255, 255)


@dataclass(frozen=True)
class ViewInstance:
    """What a view needs of one instance finding.

    ``annotation_id`` / ``prediction_id`` are its ids in the label arrays (``None``: not
    there); ``bbox`` is ``(x, y, width, height)`` in the item's pixels.
    """

    number: int
    annotation_id: int | None
    prediction_id: int | None
    score: float
    bbox: tuple[int, int, int, int]


def render_view(view: View, image: NDArray[np.uint8], annotation: NDArray[np.int32],
                prediction: NDArray[np.int32], instances: Sequence[ViewInstance], *,
                selected: int | None = None) -> NDArray[np.uint8]:
    """Draw one view; returns a new ``(H, W, 3)`` uint8 RGB image.

    Raises
    ------
    ValueError
        An unknown view, or arrays of different sizes.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    if image.shape[:2] != annotation.shape or annotation.shape != prediction.shape:
        raise ValueError(f"image {image.shape[:2]}, annotation {annotation.shape} and "
                         f"prediction {prediction.shape} must have the same size")
    out = np.array(image[..., :3], dtype=np.uint8, copy=True)
    colour_of_annotation = np.zeros(int(annotation.max(initial=0)) + 1, dtype=np.int8)
    colour_of_prediction = np.zeros(int(prediction.max(initial=0)) + 1, dtype=np.int8)
    palette = np.array([(0, 0, 0), CONSISTENT, SUSPECT, SELECTED], dtype=np.uint8)
    for instance in instances:
        code = 3 if instance.number == selected else 2 if instance.score >= SUSPECT_SCORE else 1
        if instance.annotation_id is not None and instance.annotation_id < len(
                colour_of_annotation):
            colour_of_annotation[instance.annotation_id] = code
        if instance.prediction_id is not None and instance.prediction_id < len(
                colour_of_prediction):
            colour_of_prediction[instance.prediction_id] = code
    layers = []
    if view in ("annotation", "combined"):
        layers.append((annotation, colour_of_annotation))
    if view in ("prediction", "combined"):
        layers.append((prediction, colour_of_prediction))
    for labels, colour_of in layers:
        edges = find_boundaries(labels, mode="inner") & (labels > 0)
        codes = colour_of[labels[edges]]
        out[edges] = palette[np.where(codes == 0, 1, codes)]  # unlisted: consistent
    if view == "combined":
        _draw_numbers(out, instances, selected)
    return out


def _draw_numbers(out: NDArray[np.uint8], instances: Sequence[ViewInstance],
                  selected: int | None) -> None:
    marked = [i for i in instances if i.score >= SUSPECT_SCORE or i.number == selected]
    if not marked:
        return
    canvas = Image.fromarray(out)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    height, width = out.shape[:2]
    for instance in marked:
        x, y, w, _ = instance.bbox
        text = str(instance.number)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tx = min(max(x + w, 0), max(width - (right - left), 0))
        ty = min(max(y - (bottom - top), 0), max(height - (bottom - top), 0))
        colour = SELECTED if instance.number == selected else SUSPECT
        draw.text((tx, ty), text, fill=colour, font=font, stroke_width=1,
                  stroke_fill=(0, 0, 0))
    out[...] = np.asarray(canvas)
