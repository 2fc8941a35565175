"""Slide-level inference with a fold ensemble, stitched chunk by chunk into zarr rasters.

:func:`predict_slide` writes the ``prediction``, ``probability``, ``uncertainty``,
``entropy`` and ``mutual-information`` rasters of a slide at the model's µm/px. It needs only
a :class:`~pathloop.client.segmentation.protocol.FoldPredictor`, never torch or nnunetv2.
"""

from pathloop.client.inference.layout import InferenceBlock, InferenceLayout
from pathloop.client.inference.prediction import Progress, SlidePrediction, predict_slide
from pathloop.client.inference.stitching import MapKind, MapStitcher

__all__ = [
    "InferenceBlock",
    "InferenceLayout",
    "MapKind",
    "MapStitcher",
    "Progress",
    "SlidePrediction",
    "predict_slide",
]
