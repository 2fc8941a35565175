"""QuPath GeoJSON: features with a Polygon or MultiPolygon and a classification.

Read: a ``FeatureCollection``, a list of features, or one ``Feature``; each polygon (each
part of a MultiPolygon) with its holes is an instance. ``properties.classification.name`` is
the classification; ``properties.name`` is the instance id when every feature has a distinct
positive integer name and none is a MultiPolygon; ``measurements`` and ``metadata`` (QuPath's
two property maps) become the instance's properties. Features of other geometry types
(points, lines) have no area and are skipped with a warning.

Written: what QuPath opens (File › Import objects): a ``FeatureCollection`` of
``"type": "Feature"`` objects whose properties are ``objectType`` (``"annotation"`` or
``"detection"``), ``name`` (the instance id), ``classification`` ``{name, color: [r, g, b]}``,
numeric properties under ``measurements`` and the others, as text, under ``metadata``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from shapely.geometry import Polygon

from pathloop.client.annotations._shapes import Outline, build_set, positive_int
from pathloop.client.annotations.instances import Instance, InstanceSet
from pathloop.client.errors import InputError

log = logging.getLogger(__name__)

#: Classification colours QuPath shows; others get a colour derived from their name.
COLORS: dict[str, tuple[int, int, int]] = {
    "Suspect": (220, 40, 40),
    "Consistent": (40, 180, 60),
    "Worklist": (255, 200, 0),
    "Correction": (0, 160, 255),
}


def read_geojson(path: Path, data: bytes, *, image_size: tuple[int, int] | None,
                 mpp: float | None) -> InstanceSet:
    """The polygons of a GeoJSON document (see the module docstring)."""
    document = load_json(path, data)
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
    elif isinstance(document, dict) and document.get("type") == "Feature":
        features = [document]
    else:
        features = document
    if not isinstance(features, list):
        raise InputError(f"{path}: not GeoJSON (expected a FeatureCollection, a Feature or a "
                         "list of features)")
    outlines: list[Outline] = []
    skipped = 0
    for number, feature in enumerate(features, start=1):
        name = f"feature {number}"
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise InputError(f"{path}: {name} is not a Feature with a geometry")
        geometry = feature["geometry"]
        kind, rings = geometry.get("type"), geometry.get("coordinates")
        if kind not in ("Polygon", "MultiPolygon"):
            skipped += 1
            continue
        if not isinstance(rings, list):
            raise InputError(f"{path}: {name} has no coordinates list")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise InputError(f"{path}: {name} has properties that are not an object")
        polygons = [rings] if kind == "Polygon" else rings
        for part, polygon in enumerate(polygons, start=1):
            if not isinstance(polygon, list) or not polygon:
                raise InputError(f"{path}: {name} has a polygon without rings")
            outlines.append(Outline(
                name if len(polygons) == 1 else f"{name} part {part}", polygon[0], polygon[1:],
                classification=_classification(path, name, properties),
                properties={**_mapping(properties.get("metadata")),
                            **_mapping(properties.get("measurements"))},
                id=positive_int(properties.get("name")) if kind == "Polygon" else None))
    if skipped:
        log.warning("%s: skipped %d feature(s) without area (points, lines)", path, skipped)
    for outline in outlines:
        _check_ring_shapes(path, outline)
    return build_set(path, outlines, image_size=image_size, mpp=mpp)


def write_geojson(annotations: InstanceSet, file: IO[bytes]) -> None:
    """The instances as a QuPath FeatureCollection (see the module docstring)."""
    file.write(json.dumps(instances_to_geojson(annotations.instances)).encode())


def instances_to_geojson(instances: Iterable[Instance], *,
                         props: Mapping[int, Mapping[str, Any]] | None = None,
                         object_type: str = "annotation") -> dict[str, Any]:
    """A QuPath FeatureCollection of instances, ``props[id]`` added to an instance's own."""
    features = []
    for instance in instances:
        extra = {**instance.properties, **((props or {}).get(instance.id, {}))}
        features.append(feature(instance.polygon, instance.classification, extra,
                                name=str(instance.id), object_type=object_type))
    return {"type": "FeatureCollection", "features": features}


def feature(polygon: Polygon, classification: str | None, properties: Mapping[str, Any], *,
            name: str | None = None, object_type: str = "annotation") -> dict[str, Any]:
    """One QuPath feature: numeric properties as measurements, the rest as metadata."""
    body: dict[str, Any] = {"objectType": object_type}
    if name is not None:
        body["name"] = name
    if classification is not None:
        body["classification"] = {"name": classification, "color": list(color(classification))}
    measurements = {k: float(v) for k, v in properties.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)}
    metadata = {k: str(v) for k, v in properties.items() if k not in measurements}
    if measurements:
        body["measurements"] = measurements
    if metadata:
        body["metadata"] = metadata
    rings = [polygon.exterior, *polygon.interiors]
    return {"type": "Feature",
            "geometry": {"type": "Polygon",
                         "coordinates": [[[float(x), float(y)] for x, y in ring.coords]
                                         for ring in rings]},
            "properties": body}


def color(classification: str) -> tuple[int, int, int]:
    """The RGB colour a classification is drawn in (fixed ones in :data:`COLORS`)."""
    if classification in COLORS:
        return COLORS[classification]
    seed = sum((i + 1) * ord(c) for i, c in enumerate(classification))
    return (64 + seed * 37 % 192, 64 + seed * 59 % 192, 64 + seed * 83 % 192)


def load_json(path: Path, data: bytes) -> Any:
    """A JSON document, refused with :class:`InputError` naming the file when malformed."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InputError(f"{path}: malformed JSON ({error})") from None


def _classification(path: Path, name: str, properties: Mapping[str, Any]) -> str | None:
    value = properties.get("classification")
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"])
    raise InputError(f"{path}: {name} has a classification without a name")


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _check_ring_shapes(path: Path, outline: Outline) -> None:
    for ring in (outline.exterior, *outline.holes):
        if not isinstance(ring, Sequence) or isinstance(ring, str) or \
                any(not isinstance(p, list | tuple) or len(p) < 2 for p in ring):
            raise InputError(f"{path}: {outline.name} has a ring that is not a list of "
                             "[x, y] positions")
