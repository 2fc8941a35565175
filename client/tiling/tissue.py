"""Tissue detection on a low-resolution thumbnail.

Stained tissue is coloured and glass is grey, so tissue is found by Otsu's threshold on
saturation (as QuPath's and HistomicsTK's simple tissue detectors do), with very dark pixels
(scanner void, black borders) and tiny specks removed and small holes filled. An image with
no glass in view (a field of view cut from tissue) is tissue wherever it is coloured at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_holes, remove_small_objects

from pathloop.client.wsi import RGBImage, Slide

BoolMask = NDArray[np.bool_]

# The thumbnail's longer side is kept at or under this many pixels whatever the slide's size,
# so tissue detection uses bounded memory (~40 MB; a 40 mm wide section: ~20 µm/px).
MAX_THUMBNAIL_SIDE = 2048
# Saturation below this is never tissue, even when Otsu picks a lower threshold (blank slides).
_MIN_SATURATION = 0.05
# Pixels darker than this (max channel) are void or black borders, not tissue.
_DARK = 30
# Glass is grey (mean saturation 0.02-0.04: CMU, CAMELYON) or bright even when tinted (its
# darkest channel averages 213-239 on the demo's stained sites); the class below Otsu's
# threshold is glass when it is either. When it is neither there is no glass in view (a
# field of view cut from tissue: MoNuSeg's pale tissue is at least 0.11 saturated and at
# most 204 in its darkest channel) and Otsu only split pale from dark.
_GLASS_MAX_SATURATION = 0.08
_GLASS_MIN_DARKEST_CHANNEL = 210


@dataclass(frozen=True)
class TissueMask:
    """A boolean tissue mask over a whole slide.

    Attributes
    ----------
    mask:
        ``(height, width)`` bool, True on tissue.
    mpp:
        Resolution of ``mask`` in µm/px.
    base_mpp:
        Level-0 resolution of the slide in µm/px.
    """

    mask: BoolMask
    mpp: float
    base_mpp: float

    @property
    def scale(self) -> float:
        """Level-0 pixels per mask pixel."""
        return self.mpp / self.base_mpp

    def covered_fraction(self, x: int, y: int, width: int, height: int) -> float:
        """Fraction of a level-0 box ``(x, y, width, height)`` that lies on tissue."""
        scale = self.scale
        x0, y0 = max(0, int(x / scale)), max(0, int(y / scale))
        x1 = min(self.mask.shape[1], max(x0 + 1, math.ceil((x + width) / scale)))
        y1 = min(self.mask.shape[0], max(y0 + 1, math.ceil((y + height) / scale)))
        window = self.mask[y0:y1, x0:x1]
        return float(window.mean()) if window.size else 0.0

    @property
    def tissue_fraction(self) -> float:
        """Fraction of the slide covered by tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0


def detect_tissue(thumbnail: RGBImage, *, mpp: float, min_object_um2: float = 20_000.0,
                  max_hole_um2: float = 10_000.0) -> BoolMask:
    """Tissue mask of an RGB thumbnail.

    Parameters
    ----------
    thumbnail:
        ``(height, width, 3)`` uint8 RGB at ``mpp`` µm/px.
    mpp:
        Resolution of the thumbnail in µm/px (sets the object and hole size limits).
    min_object_um2, max_hole_um2:
        Tissue pieces smaller than this are dropped; holes smaller than this are filled.

    Returns
    -------
    ndarray
        ``(height, width)`` bool, True on tissue.
    """
    red, green, blue = thumbnail[..., 0], thumbnail[..., 1], thumbnail[..., 2]
    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    saturation = (high - low).astype(np.float32)
    saturation /= np.maximum(high, 1).astype(np.float32)
    threshold = _MIN_SATURATION
    if float(saturation.max()) - float(saturation.min()) > 1e-3:
        otsu = float(threshold_otsu(saturation))
        below = saturation <= otsu
        if below.any() and (
                float(saturation[below].mean()) <= _GLASS_MAX_SATURATION
                or float(low[below].mean()) >= _GLASS_MIN_DARKEST_CHANNEL):
            threshold = max(otsu, _MIN_SATURATION)
    del low
    tissue = (saturation > threshold) & (high > _DARK)
    pixel_area = mpp * mpp
    min_pixels = max(1, math.ceil(min_object_um2 / pixel_area))
    max_hole = max(1, math.ceil(max_hole_um2 / pixel_area))
    tissue = ndimage.binary_opening(tissue, iterations=1) if min(tissue.shape) > 4 else tissue
    tissue = remove_small_objects(tissue, max_size=min_pixels)
    tissue = remove_small_holes(tissue, max_size=max_hole)
    return np.asarray(tissue, dtype=bool)


def thumbnail_mpp(slide: Slide, wanted_mpp: float) -> float:
    """The thumbnail resolution: ``wanted_mpp``, coarsened so no side exceeds the cap."""
    meta = slide.metadata
    longest_um = max(meta.width, meta.height) * meta.mpp
    return max(wanted_mpp, longest_um / MAX_THUMBNAIL_SIDE, meta.mpp)


def compute_tissue_mask(slide: Slide, *, mpp: float = 8.0) -> TissueMask:
    """Read a thumbnail of ``slide`` near ``mpp`` µm/px and detect tissue on it."""
    used_mpp = thumbnail_mpp(slide, mpp)
    thumbnail = slide.thumbnail(used_mpp)
    return TissueMask(detect_tissue(thumbnail, mpp=used_mpp), used_mpp, slide.metadata.mpp)
