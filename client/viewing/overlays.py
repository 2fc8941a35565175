"""The overlays a slide can show in the viewer and their Deep Zoom tiles (RGBA).

:meth:`SlideOverlays.load` looks up a slide's newest tissue mask, prediction, uncertainty map
and annotation rasters and the masks of its current corrections; :meth:`SlideOverlays.render`
paints one tile of one overlay on the slide's own Deep Zoom grid, transparent where there is
nothing to show. Each overlay has a ``version`` that changes whenever its content does, so
tiles can be cached under it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.store import OpenRaster, SlideRecord, Store
from pathloop.client.viewing.colours import (
    RGBA,
    Legend,
    colour_labels,
    colour_map,
    label_legend,
    label_palette,
    uncertainty_legend,
    uncertainty_lut,
)
from pathloop.client.viewing.sampling import TileBox, intersects, sample_raster


class OverlayKind(StrEnum):
    """What an overlay shows (and the raster kind it is read from)."""

    TISSUE = "tissue"
    PREDICTION = "prediction"
    UNCERTAINTY = "uncertainty"
    ANNOTATION = "annotation"
    CORRECTIONS = "corrections"


_RASTER_KIND = {
    OverlayKind.TISSUE: "tissue-mask",
    OverlayKind.PREDICTION: "prediction",
    OverlayKind.UNCERTAINTY: "uncertainty",
    OverlayKind.ANNOTATION: "annotation",
}
_TITLES = {
    OverlayKind.TISSUE: "Tissue",
    OverlayKind.PREDICTION: "Prediction",
    OverlayKind.UNCERTAINTY: "Uncertainty",
    OverlayKind.ANNOTATION: "Annotation",
    OverlayKind.CORRECTIONS: "Corrections",
}
_TISSUE_RGBA = np.array([[0, 0, 0, 0], [0, 200, 140, 70]], dtype=np.uint8)


@dataclass(frozen=True)
class Overlay:
    """One overlay of a slide: what it is, its content version, and how to read it."""

    kind: OverlayKind
    title: str
    version: str
    legend: Legend


@dataclass(frozen=True)
class CorrectionMask:
    """The current mask of one corrected patch: its level-0 corner and its raster."""

    x: int
    y: int
    width: int
    height: int
    raster: OpenRaster


class SlideOverlays:
    """Everything that can be drawn over one slide, read from the store once.

    Parameters
    ----------
    slide:
        The slide.
    rasters:
        The newest raster of each overlay kind that has one.
    corrections:
        The current masks of the slide's corrected patches.
    labels:
        Label names, value 0 (background) first.
    """

    def __init__(self, slide: SlideRecord, rasters: dict[OverlayKind, OpenRaster],
                 corrections: tuple[CorrectionMask, ...], labels: tuple[str, ...]) -> None:
        self.slide = slide
        self.rasters = rasters
        self.corrections = corrections
        self.labels = labels
        self._palette = label_palette()
        self._uncertainty_max = self._max_uncertainty()
        self.overlays = tuple(self._describe(kind) for kind in OverlayKind
                              if kind in rasters or (kind is OverlayKind.CORRECTIONS
                                                     and corrections))

    @classmethod
    def load(cls, store: Store, slide: SlideRecord, labels: tuple[str, ...]) -> SlideOverlays:
        """The slide's newest rasters and its current correction masks."""
        rasters = {}
        for kind, raster_kind in _RASTER_KIND.items():
            record = store.rasters.latest(slide.id, raster_kind)
            if record is not None:
                rasters[kind] = store.rasters.open_raster(record)
        corrections = tuple(
            CorrectionMask(c.patch.x, c.patch.y, c.patch.width, c.patch.height,
                           store.rasters.open_raster(c.raster_id))
            for c in store.latest_corrections()
            if c.patch.slide_id == slide.id and c.raster_id is not None)
        return cls(slide, rasters, corrections, labels)

    def get(self, kind: str) -> Overlay:
        """The overlay of this kind, or :class:`RecordNotFoundError`."""
        for overlay in self.overlays:
            if overlay.kind == kind:
                return overlay
        shown = ", ".join(o.kind for o in self.overlays) or "none"
        raise RecordNotFoundError(f"slide {self.slide.id} has no {kind!r} overlay "
                                  f"(it has: {shown})")

    def render(self, kind: str, box: TileBox) -> RGBA:
        """One ``(out_height, out_width, 4)`` RGBA tile of an overlay."""
        overlay = self.get(kind)
        mpp = self.slide.mpp_x
        if overlay.kind is OverlayKind.CORRECTIONS:
            return self._render_corrections(box)
        raster = self.rasters[overlay.kind]
        if overlay.kind is OverlayKind.UNCERTAINTY:
            values = sample_raster(raster, box, slide_mpp=mpp, fill=np.nan)
            return colour_map(values, self._uncertainty_max, uncertainty_lut())
        labels = sample_raster(raster, box, slide_mpp=mpp)
        if overlay.kind is OverlayKind.TISSUE:
            return colour_labels((labels > 0).astype(np.uint8), _TISSUE_RGBA)
        return colour_labels(labels, self._palette)

    def _render_corrections(self, box: TileBox) -> RGBA:
        out = np.zeros((box.out_height, box.out_width, 4), dtype=np.uint8)
        for mask in self.corrections:
            if not intersects(box, mask.x, mask.y, mask.width, mask.height):
                continue
            labels = sample_raster(mask.raster, box, slide_mpp=self.slide.mpp_x,
                                   origin=(mask.x, mask.y))
            inside = _inside(box, mask)
            painted = colour_labels(labels, self._palette)
            painted[..., 3] = np.where(labels > 0, 200, 0)
            # The patch's outline, so a corrected patch shows even where it is all background.
            painted[inside & ~_erode(inside)] = (255, 255, 255, 230)
            out = np.where(inside[..., None], painted, out)
        return out

    def _describe(self, kind: OverlayKind) -> Overlay:
        if kind is OverlayKind.CORRECTIONS:
            digest = hashlib.sha256(",".join(str(m.raster.record.id)
                                             for m in self.corrections).encode())
            return Overlay(kind, _TITLES[kind], digest.hexdigest()[:12],
                           label_legend("Corrections", self.labels))
        raster = self.rasters[kind]
        version = f"r{raster.record.id}"
        if kind is OverlayKind.UNCERTAINTY:
            legend = uncertainty_legend(self._uncertainty_max)
        elif kind is OverlayKind.TISSUE:
            legend = Legend("categorical", "Tissue")
        else:
            legend = label_legend(_TITLES[kind], self.labels)
        return Overlay(kind, _TITLES[kind], version, legend)

    def _max_uncertainty(self) -> float:
        """Top of the uncertainty scale: ``log C`` nats, the entropy of a uniform guess."""
        prediction = self.rasters.get(OverlayKind.UNCERTAINTY)
        n_classes = 2 if prediction is None else int(prediction.attributes.get("n_classes", 2))
        return math.log(max(2, n_classes))


def _inside(box: TileBox, mask: CorrectionMask) -> np.ndarray:
    """Tile pixels whose centres lie inside the patch's box."""
    xs = box.x + (np.arange(box.out_width) + 0.5) * (box.width / box.out_width)
    ys = box.y + (np.arange(box.out_height) + 0.5) * (box.height / box.out_height)
    cols = (xs >= mask.x) & (xs < mask.x + mask.width)
    rows = (ys >= mask.y) & (ys < mask.y + mask.height)
    return rows[:, None] & cols[None, :]


def _erode(inside: np.ndarray) -> np.ndarray:
    """``inside`` shrunk by one pixel (a pixel stays if its 4 neighbours are inside)."""
    padded = np.pad(inside, 1, mode="edge")
    return (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
            & padded[1:-1, :-2] & padded[1:-1, 2:])
