"""Every annotation format in and out, as instances in level-0 pixels of a slide or image.

Formats (:data:`FORMATS`): Aperio ImageScope XML, ASAP XML, QuPath GeoJSON, DSA/HistomicsUI
JSON, CPM-15 ASCII masks and label images (PNG, TIFF, ``.npy``, ``.npz``). Inside, an
:class:`InstanceSet` holds one shapely polygon per instance and turns into, or comes from, an
``(H, W)`` int32 label array. :mod:`~pathloop.client.annotations.exports` builds the GeoJSON
QuPath opens for corrections, inspection findings and worklist boxes.
"""

from pathloop.client.annotations.exports import (
    boxes_to_geojson,
    findings_to_geojson,
    mask_to_geojson,
    write_feature_collection,
)
from pathloop.client.annotations.formats import (
    FORMATS,
    read_annotations,
    sniff_format,
    write_annotations,
)
from pathloop.client.annotations.geojson import instances_to_geojson
from pathloop.client.annotations.instances import (
    MAX_LABEL_PIXELS,
    Instance,
    InstanceSet,
    rasterize,
)

__all__ = [
    "FORMATS",
    "MAX_LABEL_PIXELS",
    "Instance",
    "InstanceSet",
    "boxes_to_geojson",
    "findings_to_geojson",
    "instances_to_geojson",
    "mask_to_geojson",
    "rasterize",
    "read_annotations",
    "sniff_format",
    "write_annotations",
    "write_feature_collection",
]
