"""Nuclei of a synthetic slide: one candidate per grid cell, drawn from a stamp library.

The slide is cut into square cells (``_CELL_UM`` µm). Each cell may hold one nucleus whose
presence, position and shape (one of the stamps) come from hashes of ``(seed, cell)``, and
whether it is a normal or a tumour nucleus from the layout at the cell's centre. A tile draws every
nucleus whose cell lies within reach of it, so a nucleus that crosses a tile border is drawn
identically on both sides.

Shapes are precomputed once per slide: a library of anti-aliased nucleus stamps (normal:
round lymphocyte-like and elongated fibroblast-like; tumour: larger, darker, irregular, with
coarse chromatin and a nucleolus), stored as sparse pixel lists with *integer* coverage and
optical density, so that summing overlapping nuclei is exact and independent of drawing order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pathloop.client.sample._layout import Layout
from pathloop.client.sample._noise import derive_key, uniform
from pathloop.client.sample.morphology import SITE_MORPHOLOGIES, SiteMorphology

COVERAGE_ONE = 255  # integer coverage of a pixel fully inside a nucleus
DENSITY_ONE = 1 << 14  # integer unit of haematoxylin concentration (x coverage)

Stamp = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]
"""A stamp's pixel lists: dy, dx (int64), coverage and density (float64 holding integers)."""

_N_VARIANTS = 96  # stamps per class
_CELL_UM = 10.0
_SALTS = (11, 12, 13, 14)  # presence, jitter x, jitter y, variant
_SALT_STAMPS = 16


@dataclass(frozen=True)
class NucleiTile:
    """Nuclei drawn on one tile.

    Attributes
    ----------
    coverage : (h, w) float64, summed integer coverage; >= COVERAGE_ONE / 2 is nucleus.
    density : (h, w) float32, haematoxylin concentration added by nuclei (unitless).
    """

    coverage: NDArray[np.float64]
    density: NDArray[np.float32]


class NucleusStamps:
    """Sparse nucleus stamps of both classes, in level-0 pixels.

    Stamp ``k`` occupies entries ``offsets[k]:offsets[k+1]`` of ``dy, dx`` (pixel offsets from
    the nucleus centre, int64), ``coverage`` (0..255) and ``density`` (haematoxylin
    concentration x coverage, in units of 1 / DENSITY_ONE); both float64 holding integers.
    Stamps ``0..n-1`` are normal, ``n..2n-1`` tumour.
    """

    def __init__(self, seed: int, px_per_um: float, tumour_scale: float = 1.0) -> None:
        rng = np.random.default_rng([seed, _SALT_STAMPS])
        stamps = [_normal_stamp(rng, px_per_um) for _ in range(_N_VARIANTS)]
        stamps += [_tumour_stamp(rng, px_per_um, tumour_scale) for _ in range(_N_VARIANTS)]
        lengths = [len(s[0]) for s in stamps]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.dy = np.concatenate([s[0] for s in stamps]).astype(np.int64)
        self.dx = np.concatenate([s[1] for s in stamps]).astype(np.int64)
        self.coverage = np.concatenate([s[2] for s in stamps]).astype(np.float64)
        self.density = np.concatenate([s[3] for s in stamps]).astype(np.float64)
        self.reach = int(max(np.abs(self.dy).max(), np.abs(self.dx).max()))
        self.variants = _N_VARIANTS


class NucleusField:
    """Places and draws the nuclei of one slide.

    Parameters
    ----------
    layout : the slide's tissue and tumour layout.
    seed : slide seed.
    px_per_um : level-0 pixels per micrometre (1 / mpp).
    tile_size : side of the tiles that will be drawn, px.
    morphology : the site's nucleus densities and tumour nucleus size.
    """

    def __init__(self, layout: Layout, seed: int, px_per_um: float, tile_size: int,
                 morphology: SiteMorphology = SITE_MORPHOLOGIES[0]) -> None:
        self.layout = layout
        self.stamps = NucleusStamps(seed, px_per_um, morphology.tumour_nucleus_scale)
        # Probability that a cell holds a nucleus: normal, tumour.
        self._presence = (morphology.normal_presence, morphology.tumour_presence)
        self.cell = max(4, round(_CELL_UM * px_per_um))
        self.tile_size = tile_size
        self._keys = [derive_key(seed, salt) for salt in _SALTS]
        # Nuclei whose centre lies within ``reach`` of the tile are drawn on a canvas padded
        # by twice the reach, so no stamp pixel needs a bounds check; ``_flat`` is every
        # stamp pixel's offset on that canvas.
        self._pad = self.stamps.reach
        self._canvas = tile_size + 4 * self._pad
        self._flat = self.stamps.dy * self._canvas + self.stamps.dx

    def draw(self, x0: int, y0: int) -> NucleiTile:
        """Nuclei covering the tile whose top-left level-0 pixel is ``(x0, y0)``."""
        c, t, pad = self.cell, self.tile_size, self._pad
        cxs = np.arange((x0 - pad - c) // c, (x0 + t + pad) // c + 1, dtype=np.int64)
        cys = np.arange((y0 - pad - c) // c, (y0 + t + pad) // c + 1, dtype=np.int64)
        gx, gy = (a.ravel() for a in np.meshgrid(cxs, cys))
        tissue_side, tumour_side = self.layout.sides(
            int(cxs[0]) * c, int(cys[0]) * c, len(cxs) * c, len(cys) * c)
        if tissue_side < 0:
            return self._rasterise(x0, y0, *(np.zeros(0, np.int64),) * 3)

        if tumour_side and tissue_side:
            tumour = np.full(gx.shape, tumour_side > 0)
        else:
            centre = self.layout.points(gx * c + c // 2, gy * c + c // 2)
            tumour = (centre.tumour > 0) & (centre.tissue > 0)
        k_present, k_jx, k_jy, k_variant = self._keys
        normal_presence, tumour_presence = self._presence
        present = uniform(k_present, gx, gy) < np.where(tumour, tumour_presence, normal_presence)
        gx, gy, tumour = gx[present], gy[present], tumour[present]

        # Tumour nuclei sit near their cell's centre (packed sheets); others anywhere in it.
        jx, jy = uniform(k_jx, gx, gy), uniform(k_jy, gx, gy)
        spread = np.where(tumour, 0.45, 1.0).astype(np.float32)
        px = gx * c + ((0.5 + (jx - 0.5) * spread) * c).astype(np.int64)
        py = gy * c + ((0.5 + (jy - 0.5) * spread) * c).astype(np.int64)
        near = (px >= x0 - pad) & (px < x0 + t + pad) & (py >= y0 - pad) & (py < y0 + t + pad)
        if not tissue_side:
            near &= self.layout.points(px, py).tissue > 0
        n = self.stamps.variants
        variant = (uniform(k_variant, gx, gy) * n).astype(np.int64) + np.where(tumour, n, 0)
        return self._rasterise(x0, y0, px[near], py[near], variant[near])

    def _rasterise(self, x0: int, y0: int, px: NDArray[np.int64], py: NDArray[np.int64],
                   variant: NDArray[np.int64]) -> NucleiTile:
        st, t, pad, canvas = self.stamps, self.tile_size, self._pad, self._canvas
        starts = st.offsets[variant]
        lengths = st.offsets[variant + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return NucleiTile(np.zeros((t, t)), np.zeros((t, t), dtype=np.float32))
        # Expand every nucleus into its stamp's pixel list (a vectorised ragged gather).
        ends = np.cumsum(lengths)
        entry = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
        centres = (py - y0 + 2 * pad) * canvas + (px - x0 + 2 * pad)
        flat = np.repeat(centres, lengths) + self._flat[entry]
        size = canvas * canvas
        coverage = np.bincount(flat, weights=st.coverage[entry], minlength=size)
        density = np.bincount(flat, weights=st.density[entry], minlength=size)
        window = (slice(2 * pad, 2 * pad + t), slice(2 * pad, 2 * pad + t))
        return NucleiTile(coverage.astype(np.float64, copy=False).reshape(canvas, canvas)[window],
                          (density.reshape(canvas, canvas)[window]
                           * (1.0 / DENSITY_ONE)).astype(np.float32))


def _sparse(coverage: NDArray[np.float64], density: NDArray[np.float64]) -> Stamp:
    """Integer pixel lists of a stamp centred on its array's middle."""
    cov = np.round(np.clip(coverage, 0.0, 1.0) * COVERAGE_ONE)
    keep = cov > 0
    r = coverage.shape[0] // 2
    dy, dx = (a.astype(np.int64) for a in np.nonzero(keep))
    dens = np.round(density[keep] * cov[keep] / COVERAGE_ONE * DENSITY_ONE)
    return dy - r, dx - r, cov[keep], dens


def _shape(rng: np.random.Generator, a: float, b: float, irregularity: float,
           radius: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Anti-aliased coverage of a wavy rotated ellipse with semi-axes ``a, b`` px.

    Returns coverage (0..1) and the normalised radius (0 at the centre, 1 on the edge), both
    (2 radius + 1, 2 radius + 1) float64.
    """
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    angle = rng.uniform(0, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    u = (xx * c + yy * s) / a
    v = (-xx * s + yy * c) / b
    rho = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)
    edge = np.ones_like(rho)
    for harmonic in (2, 3, 5):
        edge += irregularity * rng.uniform(0.3, 1.0) / harmonic * np.cos(
            harmonic * theta + rng.uniform(0, 2 * np.pi))
    # Distance to the edge in pixels, roughly: (edge - rho) times the local radius.
    coverage = np.clip(0.5 + (edge - rho) * np.sqrt(a * b), 0.0, 1.0)
    return coverage, np.clip(rho / edge, 0.0, 1.0)


def _chromatin(rng: np.random.Generator, size: int, grain_px: float) -> NDArray[np.float64]:
    noise = rng.standard_normal((size, size))
    field: NDArray[np.float64] = ndimage.gaussian_filter(noise, sigma=grain_px)
    return field / max(float(field.std()), 1e-9)


def _normal_stamp(rng: np.random.Generator, px_per_um: float) -> Stamp:
    if rng.uniform() < 0.55:  # lymphocyte-like: small, round, dark
        a = rng.uniform(2.4, 3.4) * px_per_um
        b = a * rng.uniform(0.85, 1.0)
        darkness = rng.uniform(1.7, 2.2)
    else:  # fibroblast / endothelial-like: spindle, paler
        a = rng.uniform(4.5, 7.0) * px_per_um
        b = rng.uniform(1.3, 2.1) * px_per_um
        darkness = rng.uniform(1.3, 1.7)
    radius = int(np.ceil(max(a, b) * 1.15)) + 1
    coverage, rho = _shape(rng, a, b, 0.05, radius)
    texture = _chromatin(rng, 2 * radius + 1, 0.6 * px_per_um)
    density = darkness * (0.9 + 0.15 * rho**2 + 0.06 * texture)
    return _sparse(coverage, np.clip(density, 0.2, None))


def _tumour_stamp(rng: np.random.Generator, px_per_um: float, scale: float) -> Stamp:
    a = rng.uniform(4.5, 7.5) * px_per_um * scale
    b = a * rng.uniform(0.6, 0.95)
    darkness = rng.uniform(1.6, 2.3)
    radius = int(np.ceil(max(a, b) * 1.3)) + 1
    coverage, rho = _shape(rng, a, b, rng.uniform(0.12, 0.3), radius)
    # Coarse clumped chromatin, a darker nuclear rim and a nucleolus.
    texture = _chromatin(rng, 2 * radius + 1, 0.9 * px_per_um)
    density = darkness * (0.7 + 0.4 * rho**2 + 0.16 * texture)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    ny, nx = rng.uniform(-0.3, 0.3, size=2) * b
    nucleolus = np.hypot(yy - ny, xx - nx) < rng.uniform(0.8, 1.3) * px_per_um
    density = density + 0.9 * nucleolus
    return _sparse(coverage, np.clip(density, 0.2, None))
