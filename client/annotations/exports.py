"""GeoJSON that QuPath opens, for what a site hands back: corrections, findings, worklists.

Every function returns a FeatureCollection (a ``dict`` for :func:`json.dumps`, or for
:func:`write_feature_collection`) in level-0 px of the slide, so QuPath overlays it on the
slide it was opened with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from pathloop.client.annotations._files import write_atomically
from pathloop.client.annotations.geojson import feature, instances_to_geojson
from pathloop.client.annotations.instances import Instance, InstanceSet
from pathloop.client.errors import InputError

SUSPECT, CONSISTENT = "Suspect", "Consistent"


def mask_to_geojson(mask: NDArray[np.integer[Any]], *, origin: tuple[int, int] = (0, 0),
                    scale: float = 1.0, class_names: Sequence[str] | None = None,
                    ) -> dict[str, Any]:
    """A correction's ``(H, W)`` class mask as QuPath annotations, one per connected region.

    Parameters
    ----------
    mask:
        Class values (0 = background), e.g. a correction version's raster.
    origin:
        Level-0 ``(x, y)`` of the mask's top-left corner (the patch box's origin).
    scale:
        Level-0 px per mask px (the mask's µm/px over the slide's level-0 µm/px).
    class_names:
        Name of each class value (index = value); the classification of its regions.
    """
    from skimage.measure import label

    array = np.asarray(mask)
    if array.ndim != 2:
        raise InputError(f"a correction mask must be 2-D, got shape {array.shape}")
    features = []
    for value in (int(v) for v in np.unique(array) if v > 0):
        name = class_names[value] if class_names and value < len(class_names) else str(value)
        regions = InstanceSet.from_labels(label(array == value, connectivity=1))
        for instance in regions.instances:
            placed = shapely.transform(instance.polygon,
                                       lambda xy: xy * scale + np.array(origin, float))
            features.append(feature(placed, name, {"class_value": value}))
    return {"type": "FeatureCollection", "features": features}


def findings_to_geojson(instances: Iterable[Instance],
                        findings: Mapping[int, Mapping[str, Any]], *,
                        suspect_at: float = 0.5) -> dict[str, Any]:
    """Inspection findings as QuPath annotations classified "Suspect" or "Consistent".

    ``findings[id]`` holds the finding of the instance with that id: at least ``score`` in
    [0, 1], usually ``state`` and ``number`` too (all kept as properties). An instance scoring
    ``suspect_at`` or more is "Suspect". Instances without a finding are left out.
    """
    chosen = []
    for instance in instances:
        finding = findings.get(instance.id)
        if finding is None:
            continue
        if "score" not in finding:
            raise InputError(f"the finding of instance {instance.id} has no score")
        classification = SUSPECT if float(finding["score"]) >= suspect_at else CONSISTENT
        chosen.append(Instance(instance.id, instance.polygon, classification,
                               {**instance.properties, **finding}))
    return instances_to_geojson(chosen)


def boxes_to_geojson(boxes: Sequence[tuple[int, int, int, int]], *,
                     scores: Sequence[float] | None = None,
                     classification: str = "Worklist") -> dict[str, Any]:
    """Worklist boxes ``(x, y, w, h)`` (level-0 px, in rank order) as QuPath rectangles.

    Each box carries its ``rank`` (1 = first) and, when given, its ``score``.
    """
    if scores is not None and len(scores) != len(boxes):
        raise InputError(f"{len(boxes)} boxes but {len(scores)} scores")
    features = []
    for rank, (x, y, w, h) in enumerate(boxes, start=1):
        properties: dict[str, Any] = {"rank": rank}
        if scores is not None:
            properties["score"] = float(scores[rank - 1])
        features.append(feature(shapely.box(x, y, x + w, y + h), classification, properties,
                                name=f"rank {rank}"))
    return {"type": "FeatureCollection", "features": features}


def write_feature_collection(collection: Mapping[str, Any], path: Path | str) -> Path:
    """Write a FeatureCollection as a ``.geojson`` file atomically (mode 0o600)."""
    return write_atomically(Path(path), lambda file: file.write(json.dumps(collection)
                                                                .encode()))
