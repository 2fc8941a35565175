"""Digital Slide Archive / HistomicsUI annotation JSON.

Read: a list of annotation documents (what DSA's REST API and HistomicsTK export), one
document ``{"annotation": {...}}``, or a bare annotation ``{"elements": [...]}``. Elements of
type ``polyline`` with ``closed: true`` or ``polygon`` (``points`` ``[[x, y, z], ...]``, level-0
px, optional ``holes``) and ``rectangle`` (``center``, ``width``, ``height``, ``rotation`` in
radians) are instances; open polylines, points, arrows, circles and ellipses are skipped with a
warning. The element's ``group`` (else its ``label.value``) is the classification;
``user.pathloop_id`` the instance id when every element has a distinct one.

Written: one annotation document (in a list) of closed polylines with their holes.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import IO, Any

from pathloop.client.annotations._shapes import Outline, build_set, positive_int
from pathloop.client.annotations.geojson import color, load_json
from pathloop.client.annotations.instances import InstanceSet
from pathloop.client.errors import InputError

log = logging.getLogger(__name__)


def read_dsa(path: Path, data: bytes, *, image_size: tuple[int, int] | None,
             mpp: float | None) -> InstanceSet:
    """The area elements of DSA annotation JSON (see the module docstring)."""
    document = load_json(path, data)
    documents = document if isinstance(document, list) else [document]
    outlines: list[Outline] = []
    skipped: dict[str, int] = {}
    for number, entry in enumerate(documents, start=1):
        annotation = entry.get("annotation", entry) if isinstance(entry, dict) else None
        if not isinstance(annotation, dict) or not isinstance(annotation.get("elements"), list):
            raise InputError(f"{path}: annotation document {number} has no 'elements' list")
        for element in annotation["elements"]:
            name = f"element {len(outlines) + sum(skipped.values()) + 1}"
            if not isinstance(element, dict):
                raise InputError(f"{path}: {name} is not an object")
            outline = _outline(path, name, element)
            if outline is None:
                kind = str(element.get("type"))
                skipped[kind] = skipped.get(kind, 0) + 1
            else:
                outlines.append(outline)
    if skipped:
        log.warning("%s: skipped elements without area: %s", path,
                    ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())))
    return build_set(path, outlines, image_size=image_size, mpp=mpp)


def write_dsa(annotations: InstanceSet, file: IO[bytes]) -> None:
    """One DSA annotation document of closed polylines (see the module docstring)."""
    elements = []
    for instance in annotations.instances:
        element: dict[str, Any] = {
            "type": "polyline", "closed": True,
            "points": [[float(x), float(y), 0.0] for x, y in
                       list(instance.polygon.exterior.coords)[:-1]],
            "user": {"pathloop_id": instance.id},
        }
        if instance.polygon.interiors:
            element["holes"] = [[[float(x), float(y), 0.0] for x, y in list(r.coords)[:-1]]
                                for r in instance.polygon.interiors]
        if instance.classification is not None:
            r, g, b = color(instance.classification)
            element.update(group=instance.classification,
                           label={"value": instance.classification},
                           lineColor=f"rgb({r},{g},{b})")
        elements.append(element)
    file.write(json.dumps([{"annotation": {"name": "pathloop", "elements": elements}}])
               .encode())


def _outline(path: Path, name: str, element: dict[str, Any]) -> Outline | None:
    kind = element.get("type")
    if "type" not in element:
        raise InputError(f"{path}: {name} has no 'type'")
    label = element.get("label")
    group = element.get("group") or (label.get("value") if isinstance(label, dict) else None)
    classification = str(group) if group else None
    user = element.get("user")
    pathloop_id = positive_int(user.get("pathloop_id")) if isinstance(user, dict) else None
    if kind == "rectangle":
        return Outline(name, _rectangle(path, name, element), classification=classification,
                       id=pathloop_id)
    if kind == "polygon" or (kind == "polyline" and element.get("closed") is True):
        points, holes = element.get("points"), element.get("holes") or []
        if not isinstance(points, list) or not isinstance(holes, list):
            raise InputError(f"{path}: {name} has no 'points' list")
        return Outline(name, points, holes, classification=classification, id=pathloop_id)
    return None


def _rectangle(path: Path, name: str, element: dict[str, Any]) -> list[tuple[float, float]]:
    try:
        cx, cy = float(element["center"][0]), float(element["center"][1])
        half_w, half_h = float(element["width"]) / 2, float(element["height"]) / 2
        angle = float(element.get("rotation", 0.0))
    except (KeyError, TypeError, ValueError, IndexError):
        raise InputError(f"{path}: {name} (rectangle) needs a numeric center, width and "
                         "height") from None
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + dx * cos - dy * sin, cy + dx * sin + dy * cos)
            for dx, dy in ((-half_w, -half_h), (half_w, -half_h), (half_w, half_h),
                           (-half_w, half_h))]
