"""Instances as polygons in level-0 pixels, and their label arrays.

Coordinates are level-0 pixels of the image or slide with pixel ``(col, row)`` covering the
square ``[col, col + 1) × [row, row + 1)``: the convention of QuPath and GeoJSON, in which a
polygon's area is its pixel count. A polygon covers a pixel when it contains the pixel's
centre ``(col + 0.5, row + 0.5)``; :meth:`InstanceSet.from_labels` traces each instance along
its pixel edges, so no centre ever lies on an outline and the round trip
``from_labels(x).to_labels()`` is pixel-exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from pathloop.client.errors import InputError

log = logging.getLogger(__name__)

MAX_LABEL_PIXELS = 2**28
"""The largest label array built or read (268 M px, 1 GiB as int32): a guard against sizes
that would exhaust the node's memory, e.g. rasterising a whole slide at level 0."""

LabelArray = NDArray[np.int32]


@dataclass(frozen=True)
class Instance:
    """One annotated object (a nucleus, a region).

    Attributes
    ----------
    id:
        > 0, unique within its :class:`InstanceSet`; its value in label arrays.
    polygon:
        Its outline in level-0 px, valid (repaired on reading when it was not); holes allowed.
    classification:
        QuPath classification, ASAP group or DSA group, when the file gives one.
    properties:
        Anything else the file attached (read-only), e.g. an inspection finding's score.
    """

    id: int
    polygon: Polygon
    classification: str | None = None
    properties: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.id <= 0:
            raise ValueError(f"instance id {self.id}: must be > 0")
        if not isinstance(self.properties, MappingProxyType):
            object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))


@dataclass(frozen=True)
class InstanceSet:
    """The instances of one image or slide.

    Attributes
    ----------
    instances:
        In file order; ids unique.
    image_size:
        ``(width, height)`` in px when known.
    mpp:
        µm/px of the level-0 coordinates when known.
    """

    instances: tuple[Instance, ...]
    image_size: tuple[int, int] | None = None
    mpp: float | None = None

    def __post_init__(self) -> None:
        ids = [instance.id for instance in self.instances]
        if len(set(ids)) != len(ids):
            raise ValueError("instance ids must be unique within an InstanceSet")

    def __len__(self) -> int:
        return len(self.instances)

    def to_labels(self, shape: tuple[int, int] | None = None,
                  origin: tuple[int, int] = (0, 0)) -> LabelArray:
        """The instances drawn into an ``(H, W)`` int32 label array (0 = background).

        ``shape`` defaults to the image size (or the instances' extent when unknown); the
        array's pixel ``(0, 0)`` is level-0 pixel ``origin`` = ``(x, y)``. A pixel belongs to
        an instance when the polygon contains its centre; holes stay background. Where
        instances overlap, the later one in :attr:`instances` wins.

        Raises
        ------
        InputError
            The array would exceed :data:`MAX_LABEL_PIXELS`.
        """
        if shape is None:
            shape = self._default_shape(origin)
        return rasterize(self.instances, shape, origin=origin)

    @classmethod
    def from_labels(cls, labels: NDArray[np.integer[Any]], *, mpp: float | None = None,
                    origin: tuple[int, int] = (0, 0),
                    classification: str | None = None,
                    source: str = "label array") -> InstanceSet:
        """One instance per non-zero id of an ``(H, W)`` integer label array.

        Each outline follows the pixel edges of its instance (vertices on integer corners,
        collinear ones dropped), shifted by ``origin`` = ``(x, y)`` level-0 px. Holes become
        polygon interiors, so they round-trip too. An instance in several pieces (including
        pieces touching only at a corner) keeps its largest piece; the others are dropped
        with a warning naming ``source`` and the ids, since an :class:`Instance` is one
        polygon.
        """
        array = np.asarray(labels)
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"a label array must be 2-D integers, got {array.ndim}-D "
                             f"{array.dtype}")
        if array.size and int(array.min()) < 0:
            raise InputError("a label array holds negative ids")
        if array.size and int(array.max()) > np.iinfo(np.int32).max:
            raise InputError(f"a label array holds id {int(array.max())}, beyond int32")
        instances = tuple(Instance(int(label), polygon, classification)
                          for label, polygon in _trace(array, origin, source))
        size = (array.shape[1], array.shape[0]) if origin == (0, 0) else None
        return cls(instances, size, mpp)

    def crop(self, box: tuple[int, int, int, int]) -> InstanceSet:
        """The instances inside ``box`` = ``(x, y, w, h)``, clipped and re-origined to it.

        An instance the box cuts into several pieces keeps its largest piece.
        """
        x, y, w, h = box
        kept = []
        for instance in self.instances:
            clipped = shapely.clip_by_rect(instance.polygon, x, y, x + w, y + h)
            polygon = largest_polygon(clipped)
            if polygon is None:
                continue
            moved = shapely.transform(polygon, lambda xy: xy - np.array([x, y], float))
            kept.append(Instance(instance.id, moved, instance.classification,
                                 instance.properties))
        return InstanceSet(tuple(kept), (w, h), self.mpp)

    def _default_shape(self, origin: tuple[int, int]) -> tuple[int, int]:
        if self.image_size is not None:
            return self.image_size[1] - origin[1], self.image_size[0] - origin[0]
        if not self.instances:
            return 0, 0
        bounds = shapely.total_bounds([i.polygon for i in self.instances])
        return (max(0, int(np.ceil(bounds[3])) - origin[1]),
                max(0, int(np.ceil(bounds[2])) - origin[0]))


def rasterize(instances: Iterable[Instance], shape: tuple[int, int], *,
              origin: tuple[int, int] = (0, 0), scale: float = 1.0,
              values: Mapping[int, int] | None = None,
              dtype: type[np.integer[Any]] = np.int32) -> NDArray[Any]:
    """Draw instances into an ``(H, W)`` array of ``dtype``.

    A pixel ``(col, row)`` of the array is level-0 point ``origin + (col + 0.5, row + 0.5) /
    scale`` (``scale`` = array px per level-0 px, < 1 to draw at a coarser resolution). Each
    instance writes ``values[id]`` (default: its id) where its polygon, holes excluded,
    contains the pixel centre; later instances overwrite earlier ones.

    Raises
    ------
    InputError
        ``shape`` exceeds :data:`MAX_LABEL_PIXELS`.
    """
    from skimage.draw import polygon as fill

    height, width = shape
    if height * width > MAX_LABEL_PIXELS:
        raise InputError(f"a {width}×{height} px label array is larger than the "
                         f"{MAX_LABEL_PIXELS} px limit (use a coarser resolution)")
    out = np.zeros(shape, dtype)
    offset = np.array(origin, float)
    for instance in instances:
        value = instance.id if values is None else values[instance.id]
        rings = [np.asarray(instance.polygon.exterior.coords)]
        rings += [np.asarray(ring.coords) for ring in instance.polygon.interiors]
        # Pixel centres sit at integers in skimage's convention: shift by half a pixel.
        scaled = [(ring - offset) * scale - 0.5 for ring in rings]
        rows, cols = fill(scaled[0][:, 1], scaled[0][:, 0], shape)
        if len(rows) == 0:
            continue
        if len(scaled) > 1:
            top, left = rows.min(), cols.min()
            inside = np.zeros((rows.max() - top + 1, cols.max() - left + 1), bool)
            inside[rows - top, cols - left] = True
            for hole in scaled[1:]:
                hole_rows, hole_cols = fill(hole[:, 1], hole[:, 0], shape)
                keep = ((hole_rows >= top) & (hole_rows < top + inside.shape[0])
                        & (hole_cols >= left) & (hole_cols < left + inside.shape[1]))
                inside[hole_rows[keep] - top, hole_cols[keep] - left] = False
            local_rows, local_cols = np.nonzero(inside)
            rows, cols = local_rows + top, local_cols + left
        out[rows, cols] = value
    return out


def largest_polygon(geometry: shapely.Geometry) -> Polygon | None:
    """The largest polygon of a geometry (``None`` when it holds no area)."""
    if isinstance(geometry, Polygon):
        return geometry if not geometry.is_empty and geometry.area > 0 else None
    parts = [g for g in getattr(geometry, "geoms", ())
             if isinstance(g, Polygon | MultiPolygon)]
    polygons = [p for part in parts
                for p in (part.geoms if isinstance(part, MultiPolygon) else (part,))]
    polygons = [p for p in polygons if p.area > 0]
    return max(polygons, key=lambda p: p.area) if polygons else None


def _trace(labels: NDArray[np.integer[Any]], origin: tuple[int, int], source: str
           ) -> list[tuple[int, Polygon]]:
    """``(id, outline)`` per non-zero id of ``labels``, in id order."""
    from scipy.ndimage import find_objects

    if labels.size > MAX_LABEL_PIXELS:
        raise InputError(f"a label array of {labels.size} px is larger than the "
                         f"{MAX_LABEL_PIXELS} px limit")
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids.size and ids[0] != 0:  # no background: index 0 must be an instance too
        ids, inverse = np.concatenate([[0], ids]), inverse + 1
    compact = inverse.reshape(labels.shape)
    traced = []
    pieces: list[str] = []
    for index, box in enumerate(find_objects(compact), start=1):
        if box is None:
            continue
        mask = compact[box] == index
        outline = _outline(mask, box[1].start + origin[0], box[0].start + origin[1])
        polygon = largest_polygon(outline)
        if polygon is None:
            continue
        if not isinstance(outline, Polygon):
            pieces.append(f"{ids[index]} ({int(mask.sum()) - round(polygon.area)} px)")
        traced.append((int(ids[index]), polygon))
    if pieces:
        log.warning("%s: %d instance(s) in several pieces kept their largest piece, the "
                    "others dropped: %s%s", source, len(pieces), ", ".join(pieces[:10]),
                    ", …" if len(pieces) > 10 else "")
    return traced


def _outline(mask: NDArray[np.bool_], x0: int, y0: int) -> shapely.Geometry:
    """The union of a mask's pixel squares, as runs of each row, at offset ``(x0, y0)``."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    rows, cols = np.nonzero(np.diff(padded, axis=1))
    starts, ends = cols[0::2], cols[1::2]
    run_rows = rows[0::2]
    boxes = shapely.box(starts + x0, run_rows + y0, ends + x0, run_rows + 1 + y0)
    return shapely.simplify(shapely.union_all(boxes), 0.0)


__all__ = ["MAX_LABEL_PIXELS", "Instance", "InstanceSet", "largest_polygon", "rasterize"]
