"""From the coordinates a file gives to valid instances: checks, repair, clipping, ids.

Every reader hands its outlines to :func:`build_set`, so the same rules apply to every
format: numeric coordinates, at most :data:`MAX_VERTICES` per outline and
:data:`MAX_INSTANCES` per file; an outline of fewer than 3 vertices or no area is skipped with
a warning; a self-intersecting one is repaired (``shapely.make_valid``, largest piece kept)
with a warning naming the file and the instance; with a known image size, an outline partly
outside the image is clipped to it with a warning, and one wholly outside is an error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon

from pathloop.client.annotations.instances import Instance, InstanceSet, largest_polygon
from pathloop.client.errors import InputError

log = logging.getLogger(__name__)

MAX_VERTICES = 1_000_000
"""The most vertices one outline may have."""
MAX_INSTANCES = 1_000_000
"""The most instances one file may hold."""


@dataclass
class Outline:
    """An outline as a file gives it, before checks.

    ``name`` says which one it is in messages (e.g. ``"region 12"``); ``id`` is the file's own
    id when it has one (kept only when every outline of the file has a distinct one).
    """

    name: str
    exterior: Sequence[Sequence[Any]]
    holes: Sequence[Sequence[Sequence[Any]]] = ()
    classification: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


def coordinates(path: Path, name: str, points: Sequence[Sequence[Any]]) -> np.ndarray:
    """``(N, 2)`` float64 (x, y) of a point list, refused when not finite numbers."""
    if len(points) > MAX_VERTICES:
        raise InputError(f"{path}: {name} has {len(points)} vertices, more than the "
                         f"{MAX_VERTICES} limit")
    try:
        array = np.array([(float(p[0]), float(p[1])) for p in points], np.float64)
    except (TypeError, ValueError, IndexError, KeyError):
        raise InputError(f"{path}: {name} has a vertex without numeric x and y") from None
    if array.size and not np.isfinite(array).all():
        raise InputError(f"{path}: {name} has a vertex that is not a finite number")
    return array.reshape(-1, 2)


def build_set(path: Path, outlines: Sequence[Outline], *,
              image_size: tuple[int, int] | None, mpp: float | None,
              offset: float = 0.0) -> InstanceSet:
    """Checked, repaired instances of ``outlines`` (``offset`` added to every coordinate).

    Raises
    ------
    InputError
        Too many outlines, a non-numeric coordinate, or an outline wholly outside a known
        image.
    """
    if len(outlines) > MAX_INSTANCES:
        raise InputError(f"{path}: {len(outlines)} instances, more than the {MAX_INSTANCES} "
                         "limit")
    built: list[tuple[Outline, Polygon]] = []
    skipped: list[str] = []
    repaired: list[str] = []
    clipped: list[str] = []
    for outline in outlines:
        polygon = _polygon(path, outline, offset, repaired)
        if polygon is None:
            skipped.append(outline.name)
            continue
        if image_size is not None:
            polygon = _inside(path, outline.name, polygon, image_size, clipped)
        built.append((outline, polygon))
    for names, what in ((skipped, "skipped as without area (fewer than 3 vertices, or no "
                                  "area left after repair)"),
                        (repaired, "repaired as self-intersecting (shapely.make_valid, "
                                   "largest piece kept)"),
                        (clipped, "clipped to the image")):
        if names:
            log.warning("%s: %d outline(s) %s: %s%s", path, len(names), what,
                        ", ".join(names[:10]), ", …" if len(names) > 10 else "")
    ids = [o.id for o, _ in built]
    keep_ids = all(i is not None and i > 0 for i in ids) and len(set(ids)) == len(ids)
    instances = tuple(
        Instance(outline.id if keep_ids and outline.id is not None else number, polygon,
                 outline.classification, outline.properties)
        for number, (outline, polygon) in enumerate(built, start=1))
    return InstanceSet(instances, image_size, mpp)


def _polygon(path: Path, outline: Outline, offset: float, repaired: list[str]
             ) -> Polygon | None:
    exterior = coordinates(path, outline.name, outline.exterior) + offset
    if len(exterior) < 3:
        return None
    holes = [coordinates(path, outline.name, hole) + offset for hole in outline.holes]
    polygon = Polygon(exterior, [h for h in holes if len(h) >= 3])
    if polygon.is_valid:
        return polygon if polygon.area > 0 else None
    repaired.append(f"{outline.name} ({shapely.is_valid_reason(polygon)})")
    return largest_polygon(shapely.make_valid(polygon))


def _inside(path: Path, name: str, polygon: Polygon, image_size: tuple[int, int],
            clipped: list[str]) -> Polygon:
    width, height = image_size
    minx, miny, maxx, maxy = polygon.bounds
    if minx >= 0 and miny >= 0 and maxx <= width and maxy <= height:
        return polygon
    inside = largest_polygon(shapely.clip_by_rect(polygon, 0, 0, width, height))
    if inside is None:
        raise InputError(f"{path}: {name} lies outside the {width}×{height} px image "
                         f"(x {minx:.0f}…{maxx:.0f}, y {miny:.0f}…{maxy:.0f})")
    clipped.append(name)
    return inside


def positive_int(value: Any) -> int | None:
    """``value`` as an id when it is a positive integer (or its decimal text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and value > 0:
        return int(value)
    return None
