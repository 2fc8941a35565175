"""Slide and raster records for the ranking tests.

Imported by the tests as ``ranking_records`` (a unique module name: test folders have no
``__init__.py``).
"""

from __future__ import annotations

import hashlib

import numpy as np

from pathloop.client.store import RasterRecord, SlideRecord, Store
from pathloop.client.wsi import Slide


def add_slide(store: Store, name: str, slide: Slide) -> SlideRecord:
    """Record ``slide`` in ``store`` under ``name``."""
    meta = slide.metadata
    record, _ = store.add_slide(
        content_hash=hashlib.sha256(name.encode()).hexdigest(), name=name,
        path=f"/slides/{name}", width=meta.width, height=meta.height, mpp_x=meta.mpp,
        mpp_y=meta.mpp)
    return record


def save_uncertainty(store: Store, slide_id: int, values: np.ndarray, mpp: float,
                     model_version_id: int | None = None) -> RasterRecord:
    """Store ``values`` (``(H, W)``) as the slide's float16 uncertainty raster at ``mpp``."""
    return store.rasters.save(values.astype(np.float16), slide_id, "uncertainty", mpp=mpp,
                              downsample="mean", model_version_id=model_version_id)
