"""What a site hands to QuPath: a slide's worklist, its corrections, an inspection's findings.

Each function returns a GeoJSON FeatureCollection in level-0 pixels of the slide (QuPath
overlays it on the slide it was opened with: *File → Import objects*); the caller writes it
(:func:`~pathloop.client.annotations.write_feature_collection`). Nothing here changes the
store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pathloop.client.annotations import Instance, InstanceSet
from pathloop.client.annotations.exports import (
    boxes_to_geojson,
    findings_to_geojson,
    mask_to_geojson,
)
from pathloop.client.errors import RecordNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store
from pathloop.client.usecases.inspection_review import item_labels, rescore

SUSPECT_AT = 0.5
"""Findings scoring this or more are exported as "Suspect" (the viewer's red)."""


def worklist_geojson(store: Store, slide: SlideRecord, *,
                     strategy: str | None = None) -> dict[str, Any]:
    """The slide's latest worklist (of ``strategy`` when given) as rectangles in rank order,
    each with its rank, its mean and summed uncertainty and its review status.

    Raises
    ------
    RecordNotFoundError
        The slide has not been ranked (with that strategy).
    """
    ranking = store.latest_ranking(slide.id, strategy)
    if ranking is None:
        raise RecordNotFoundError(f"slide {slide.id} has no worklist"
                                  + (f" ranked by {strategy!r}" if strategy else "")
                                  + " (run `pathloop rank` first)")
    patches = store.ranked_patches(ranking.id)
    collection = boxes_to_geojson([(p.x, p.y, p.width, p.height) for p in patches],
                                  scores=[p.score_mean for p in patches])
    for feature, patch in zip(collection["features"], patches, strict=True):
        _annotate(feature, score_sum=patch.score_sum, status=patch.status,
                  strategy=ranking.strategy)
    return collection


def corrections_geojson(settings: SiteSettings, store: Store,
                        slide: SlideRecord) -> dict[str, Any]:
    """The newest version of every corrected patch of the slide, its regions classified by
    the site's label names, each with the patch's version and author.

    A version without a mask (a "keep"/"skip" decision, a re-annotation request) gives no
    region. An empty collection when nothing of the slide was corrected.
    """
    features: list[dict[str, Any]] = []
    names = settings.federation.labels
    for record in store.latest_corrections():
        box = record.patch
        if box.slide_id != slide.id or record.raster_id is None:
            continue
        mask = np.asarray(store.rasters.open_raster(record.raster_id).read())
        if mask.ndim == 3:
            mask = mask[0]
        collection = mask_to_geojson(mask, origin=(box.x, box.y),
                                     scale=box.width / mask.shape[1], class_names=names)
        for feature in collection["features"]:
            _annotate(feature, version=record.version, author=record.author,
                      correction_id=record.correction_id)
        features.extend(collection["features"])
    return {"type": "FeatureCollection", "features": features}


def findings_geojson(store: Store, inspection_id: int, *, alpha: float | None = None,
                     gamma: float | None = None) -> dict[str, Any]:
    """Every instance of an inspection as an outline classified "Suspect" or "Consistent"
    (score ≥ :data:`SUSPECT_AT` at α, γ; default the run's), with its item, number, state,
    score, IoU and certainty. Annotated instances carry their annotated outline; ``missing``
    ones (predicted only) the prediction's.

    Raises
    ------
    RecordNotFoundError
        No such inspection.
    InputError
        α or γ outside [0, 1].
    """
    features: list[dict[str, Any]] = []
    next_id = 1
    for scored in rescore(store, inspection_id, alpha=alpha, gamma=gamma):
        item = scored.item
        annotation, prediction = item_labels(store, item)
        origin = (item.x, item.y)
        outlines = {
            "annotation": {i.id: i for i in InstanceSet.from_labels(
                annotation, origin=origin, source=item.name).instances},
            "prediction": {i.id: i for i in InstanceSet.from_labels(
                prediction, origin=origin, source=item.name).instances},
        }
        instances: list[Instance] = []
        findings: dict[int, dict[str, Any]] = {}
        for scored_instance in scored.instances:
            finding = scored_instance.finding
            source, label = (("annotation", finding.annotation_id)
                             if finding.annotation_id is not None
                             else ("prediction", finding.prediction_id))
            outline = outlines[source].get(label) if label is not None else None
            if outline is None:
                continue
            instances.append(Instance(next_id, outline.polygon))
            findings[next_id] = {
                "item": item.name, "slide_id": item.slide_id, "number": finding.number,
                "state": finding.state, "score": round(scored_instance.score, 4),
                "iou": round(finding.iou, 4), "certainty": round(finding.certainty, 4),
                "outline": source,
                "decision": scored_instance.decision,
            }
            next_id += 1
        features.extend(findings_to_geojson(instances, findings,
                                            suspect_at=SUSPECT_AT)["features"])
    return {"type": "FeatureCollection", "features": features}


def _annotate(feature: dict[str, Any], **properties: Any) -> None:
    """Add properties the way QuPath reads them: numbers as measurements, the rest as
    metadata (as :func:`~pathloop.client.annotations.geojson.feature` does)."""
    body = feature["properties"]
    for key, value in properties.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            body.setdefault("measurements", {})[key] = float(value)
        else:
            body.setdefault("metadata", {})[key] = str(value)


__all__ = ["SUSPECT_AT", "corrections_geojson", "findings_geojson", "worklist_geojson"]
