"""Writing finished bands of blended maps into the slide's prediction rasters.

Five rasters are written side by side, all ``(H, W)`` at the model's µm/px with a pyramid:

=======================  =========  ==========  ===============================================
kind                     dtype      pyramid     value
=======================  =========  ==========  ===============================================
``prediction``           uint8      mode        argmax class of the fold mean (0 = background)
``probability``          float16    mean        ``1 - p̄_0``: probability of any foreground class
``uncertainty``          float16    mean        UGA uncertainty ``u``
``entropy``              float16    mean        predictive entropy ``H(p̄)``
``mutual-information``   float16    mean        ``H(p̄) - mean_k H(p_k)``
=======================  =========  ==========  ===============================================

Pixels that no window predicted (no tissue near them) or that lie off the tissue mask hold 0 in
every raster: background with probability 1 and no uncertainty. Zero rather than NaN keeps
pyramid means, overlays and patch sums finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from enum import StrEnum
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.inference.layout import InferenceLayout, Region
from pathloop.client.store import RasterRecord, RasterStore, RasterWriter
from pathloop.client.store.rasters import CHUNK
from pathloop.client.uncertainty import UncertaintyMaps


class MapKind(StrEnum):
    """Kinds of the rasters one prediction writes (the store's ``kind`` strings)."""

    PREDICTION = "prediction"
    PROBABILITY = "probability"
    UNCERTAINTY = "uncertainty"
    ENTROPY = "entropy"
    MUTUAL_INFORMATION = "mutual-information"



class MapStitcher:
    """Opens the five prediction rasters of a slide and writes regions into them.

    Use as a context manager: leaving normally commits every raster (pyramids are built
    then); an exception aborts them all, and nothing is recorded.

    Parameters
    ----------
    rasters:
        The store's raster store.
    slide_id:
        The slide the rasters belong to.
    layout:
        The inference layout: raster shape and resolution.
    model_version_id:
        The model version that predicted, recorded on every raster.
    attributes:
        JSON-compatible facts added to every raster's attributes.
    """

    def __init__(self, rasters: RasterStore, slide_id: int, layout: InferenceLayout, *,
                 model_version_id: int | None, attributes: Mapping[str, Any]) -> None:
        self._stack = ExitStack()
        chunk = CHUNK  # bands are CHUNK rows: with phase 0 every write is whole chunks
        self._writers: dict[MapKind, RasterWriter] = {}
        try:
            for kind in MapKind:
                labels = kind is MapKind.PREDICTION
                writer = rasters.create(
                    slide_id, kind.value, shape=layout.shape,
                    dtype=np.uint8 if labels else np.float16,
                    mpp=layout.mpp, downsample="mode" if labels else "mean",
                    chunk=chunk, model_version_id=model_version_id,
                    attributes={**attributes, "value": _MEANINGS[kind]},
                )
                self._writers[kind] = self._stack.enter_context(writer)
        except BaseException as error:
            self._stack.__exit__(type(error), error, error.__traceback__)  # abort the opened
            raise

    def __enter__(self) -> MapStitcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stack.__exit__(exc_type, exc, traceback)

    @property
    def records(self) -> dict[MapKind, RasterRecord]:
        """The committed records by kind (after the ``with`` block)."""
        return {kind: writer.record for kind, writer in self._writers.items()}

    def write(self, region: Region, maps: UncertaintyMaps,
              keep: NDArray[np.bool_] | None) -> None:
        """Write one region.

        Parameters
        ----------
        region:
            Where the region lies.
        maps:
            The region's maps: ``mean`` ``(C, h, w)`` and ``(h, w)`` measures, float32, with
            ``(h, w) == (region.height, region.width)``.
        keep:
            ``(h, w)`` bool, False where the pixel is off tissue or was not predicted (set
            to background and no uncertainty); ``None`` keeps every pixel as predicted.

        The measure maps of ``maps`` are modified in place.
        """
        values: dict[MapKind, NDArray[Any]] = {
            MapKind.PREDICTION: np.argmax(maps.mean, axis=0).astype(np.uint8),
            MapKind.PROBABILITY: np.clip(1.0 - maps.mean[0], 0.0, 1.0),
            MapKind.UNCERTAINTY: maps.uga,
            MapKind.ENTROPY: maps.entropy,
            MapKind.MUTUAL_INFORMATION: maps.mutual_information,
        }
        for kind, value in values.items():
            if keep is not None:
                value[~keep] = 0
            if kind is not MapKind.PREDICTION:
                value = value.astype(np.float16)
            self._writers[kind].write_region(region.y, region.x, value)


_MEANINGS = {
    MapKind.PREDICTION: "argmax class of the fold-mean probability (0 = background)",
    MapKind.PROBABILITY: "1 - mean probability of class 0: probability of any foreground class",
    MapKind.UNCERTAINTY: "UGA: -(1/K) sum_k sum_c mean_c log(p_k,c + 1e-8)",
    MapKind.ENTROPY: "predictive entropy of the fold mean, natural log",
    MapKind.MUTUAL_INFORMATION: "entropy of the mean minus the mean fold entropy, natural log",
}


__all__ = ["MapKind", "MapStitcher"]
