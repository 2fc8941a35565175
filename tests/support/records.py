"""Slide and raster records put straight into a store (the slide file is never opened)."""

from __future__ import annotations

import hashlib

import numpy as np

from pathloop.client.store import RasterRecord, SlideRecord, Store
from pathloop.client.wsi import Slide


def add_slide(store: Store, name: str, width: int, height: int, mpp: float) -> SlideRecord:
    """Record a slide of ``width × height`` px at ``mpp`` µm/px under ``name``."""
    record, _ = store.add_slide(
        content_hash=hashlib.sha256(name.encode()).hexdigest(), name=name,
        path=f"/slides/{name}", width=width, height=height, mpp_x=mpp, mpp_y=mpp)
    return record


def add_open_slide(store: Store, name: str, slide: Slide) -> SlideRecord:
    """Record an open ``slide`` in ``store`` under ``name``."""
    meta = slide.metadata
    return add_slide(store, name, meta.width, meta.height, meta.mpp)


def save_uncertainty(store: Store, slide_id: int, values: np.ndarray, mpp: float,
                     model_version_id: int | None = None) -> RasterRecord:
    """Store ``values`` (``(H, W)``) as the slide's float16 uncertainty raster at ``mpp``."""
    return store.rasters.save(values.astype(np.float16), slide_id, "uncertainty", mpp=mpp,
                              downsample="mean", model_version_id=model_version_id)
