"""Slide-level inference with a fold ensemble: Gaussian-weighted sliding windows into zarr.

:func:`predict_slide` writes the ``prediction``, ``probability``, ``uncertainty``,
``entropy`` and ``mutual-information`` rasters of a slide at the model's µm/px. It needs only
a :class:`~pathloop.client.segmentation.protocol.FoldPredictor`, never torch or nnunetv2.
"""

from pathloop.client.inference.layout import InferenceLayout, Region, TissueLookup
from pathloop.client.inference.prediction import (
    DEFAULT_STEP,
    Normalization,
    Progress,
    SlidePrediction,
    predict_slide,
)
from pathloop.client.inference.stitching import MapKind, MapStitcher
from pathloop.client.inference.windows import gaussian_importance, window_origins

__all__ = [
    "DEFAULT_STEP",
    "InferenceLayout",
    "MapKind",
    "MapStitcher",
    "Normalization",
    "Progress",
    "Region",
    "SlidePrediction",
    "TissueLookup",
    "gaussian_importance",
    "predict_slide",
    "window_origins",
]
