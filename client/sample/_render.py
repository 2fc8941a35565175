"""Rendering one level-0 tile of a synthetic H&E slide, and its ground truth.

A tile's pixels are a pure function of their level-0 coordinates (plus the slide's seed and
parameters): layout fields, hashed textures and nuclei never depend on which tile is asked
for, so tiles can be rendered in any order, independently, and agree along their borders.

Colour model (Beer–Lambert): ``OD = c_H * haematoxylin + c_E * eosin`` and
``RGB = glass * exp(-OD)``, where ``glass`` is the site's background colour with a faint
speckle that repeats every 64 px (so a tile of bare glass is always the same tile and can be
encoded once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pathloop.client.sample._layout import DECIDED, DECIDED_MARGIN, Layout
from pathloop.client.sample._noise import ValueNoise, derive_key
from pathloop.client.sample._nuclei import COVERAGE_ONE, NucleusField
from pathloop.client.sample.morphology import SITE_MORPHOLOGIES, SiteMorphology
from pathloop.client.sample.stains import SiteStain

GLASS_PERIOD = 64  # px; tile sizes must be multiples of it
LABEL_BACKGROUND, LABEL_TISSUE, LABEL_TUMOUR = 0, 1, 2

_EDGE_PX = 1.5  # width of the anti-aliased tissue edge, level-0 px
TEXTURE_PERIOD = 1024  # px: period of the fine stroma and cytoplasm textures
_SALT_GLASS = 20
_SALT_TEXTURE = 21
_SALT_PATCHES = 22


@dataclass(frozen=True)
class RenderedTile:
    """One rendered level-0 tile.

    Attributes
    ----------
    rgb : (T, T, 3) uint8, the H&E image.
    labels : (T, T) uint8, 0 glass, 1 normal tissue, 2 tumour.
    nuclei : (T, T) uint8, 1 where a nucleus was drawn, else 0.
    """

    rgb: NDArray[np.uint8]
    labels: NDArray[np.uint8]
    nuclei: NDArray[np.uint8]


@dataclass(frozen=True)
class SlideParameters:
    """Everything that determines a synthetic slide's pixels (sizes in level-0 px)."""

    width: int
    height: int
    seed: int
    stain: SiteStain
    mpp: float
    tile_size: int
    tissue_fraction: float
    tumour_fraction: float
    morphology: SiteMorphology = SITE_MORPHOLOGIES[0]


class TileRenderer:
    """Renders level-0 tiles of one synthetic slide.

    Parameters
    ----------
    params : the slide's parameters; ``tile_size`` must be a multiple of ``GLASS_PERIOD``.
    """

    def __init__(self, params: SlideParameters) -> None:
        self.params = params
        self.tile_size = params.tile_size
        px_per_um = 1.0 / params.mpp
        self.layout = Layout(params.width, params.height, params.seed, params.tissue_fraction,
                             params.tumour_fraction, px_per_um)
        self.nuclei = NucleusField(self.layout, params.seed, px_per_um, params.tile_size,
                                   params.morphology)
        self._tumour_tint = np.float32(params.morphology.tumour_tint)
        glass = _glass_tile(params.stain, params.seed, params.tile_size)
        self.background_rgb: NDArray[np.uint8] = (glass + 0.5).astype(np.uint8)
        """(T, T, 3) uint8: what every tile without tissue looks like."""
        self._glass = np.ascontiguousarray(glass.transpose(2, 0, 1))  # (3, T, T) float32
        stain = params.stain
        self._haematoxylin = (np.asarray(stain.haematoxylin, np.float32)
                              * np.float32(stain.haematoxylin_strength))
        self._eosin = np.asarray(stain.eosin, np.float32) * np.float32(stain.eosin_strength)
        # Stroma patches are hashed (no repeat); the fine textures repeat every
        # TEXTURE_PERIOD px, which no eye catches under the nuclei and saves most of the work.
        self._patches = ValueNoise(derive_key(params.seed, _SALT_PATCHES), round(80 * px_per_um))
        self._eosin_texture, self._haematoxylin_texture = _periodic_textures(params.seed,
                                                                             px_per_um)
        self._tumour_edge_px = np.float32(min(8.0 * px_per_um, DECIDED_MARGIN))

    def is_background(self, x0: int, y0: int) -> bool:
        """Whether the tile at level-0 ``(x0, y0)`` is bare glass (no need to render it)."""
        t = self.tile_size
        return not self.layout.may_hold_tissue(x0, y0, t, t, reach=_EDGE_PX)

    def render(self, x0: int, y0: int) -> RenderedTile:
        """Render the tile whose top-left level-0 pixel is ``(x0, y0)`` (multiples of 64)."""
        t = self.tile_size
        fields = self.layout.tile(x0, y0, t, t)
        in_tissue = fields.tissue > 0
        tumour = in_tissue & (fields.tumour > 0)
        labels = in_tissue.astype(np.uint8)  # LABEL_TISSUE where tissue ...
        labels += tumour  # ... and LABEL_TUMOUR where tumour

        drawn = self.nuclei.draw(x0, y0)
        nuclei = ((drawn.coverage >= (COVERAGE_ONE + 1) // 2) & in_tissue).astype(np.uint8)

        f32 = np.float32
        if fields.tissue[0, 0] == DECIDED:  # deep inside tissue: no edge to draw
            tissue: NDArray[np.float32] | None = None
        else:
            tissue = np.clip(fields.tissue / f32(_EDGE_PX) + f32(0.5), f32(0), f32(1))
        tumourness = np.clip(fields.tumour / self._tumour_edge_px + f32(0.5), f32(0), f32(1))
        fine_eosin = _periodic_window(self._eosin_texture, x0, y0, t)
        fine_haematoxylin = _periodic_window(self._haematoxylin_texture, x0, y0, t)
        eosin = (f32(0.4) - f32(0.1) * tumourness) * (
            fine_eosin + f32(0.25) * self._patches.grid(x0, y0, t, t))
        haematoxylin = (self._tumour_tint * tumourness + fine_haematoxylin
                        + np.minimum(drawn.density, f32(4.0)))
        if tissue is not None:
            eosin *= tissue
            haematoxylin *= tissue
        rgb = np.empty((t, t, 3), dtype=np.uint8)
        for channel in range(3):  # planar: broadcasting over a trailing axis of 3 is slow
            plane = haematoxylin * -self._haematoxylin[channel]
            plane -= eosin * self._eosin[channel]
            np.exp(plane, out=plane)
            plane *= self._glass[channel]
            plane += f32(0.5)
            rgb[..., channel] = plane
        return RenderedTile(rgb, labels, nuclei)


def _periodic_textures(seed: int, px_per_um: float) -> tuple[NDArray[np.float32], ...]:
    """(P, P) float32 eosin factor (~1 +- 0.2: fibres, grain) and haematoxylin (~0.12)."""
    rng = np.random.default_rng([seed, _SALT_TEXTURE])
    shape = (TEXTURE_PERIOD, TEXTURE_PERIOD)

    def smooth(sigma: tuple[float, float]) -> NDArray[np.float64]:
        field: NDArray[np.float64] = ndimage.gaussian_filter(rng.standard_normal(shape), sigma,
                                                             mode="wrap")
        return field / max(float(field.std()), 1e-9)

    fibres = 0.6 * smooth((0.7 * px_per_um, 4.0 * px_per_um)) + 0.4 * smooth(
        (2.5 * px_per_um, 2.5 * px_per_um))
    grain = smooth((0.7 * px_per_um, 0.7 * px_per_um))
    eosin = 1.0 + 0.16 * fibres + 0.07 * grain
    haematoxylin = 0.12 + 0.025 * smooth((1.2 * px_per_um, 1.2 * px_per_um))
    return eosin.astype(np.float32), haematoxylin.astype(np.float32)


def _periodic_window(texture: NDArray[np.float32], x0: int, y0: int,
                     size: int) -> NDArray[np.float32]:
    """The (size, size) window at level-0 ``(x0, y0)`` of a texture tiled over the plane."""
    period = texture.shape[0]
    ox, oy = x0 % period, y0 % period
    if ox + size <= period and oy + size <= period:
        return texture[oy : oy + size, ox : ox + size]
    rows = (oy + np.arange(size)) % period
    cols = (ox + np.arange(size)) % period
    window: NDArray[np.float32] = texture[rows[:, None], cols[None, :]]
    return window


def _glass_tile(stain: SiteStain, seed: int, tile_size: int) -> NDArray[np.float32]:
    """(T, T, 3) float32 glass: background colour with a faint 64-px-periodic speckle."""
    rng = np.random.default_rng([seed, _SALT_GLASS])
    shape = (GLASS_PERIOD, GLASS_PERIOD)
    speckle = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0, mode="wrap")
    speckle *= stain.glass_noise / max(float(speckle.std()), 1e-9)
    glass = np.asarray(stain.background, np.float64)[None, None, :] + speckle[..., None]
    reps = tile_size // GLASS_PERIOD
    return np.tile(np.clip(glass, 0.0, 255.0), (reps, reps, 1)).astype(np.float32)
