"""Where tissue and tumour lie on a synthetic slide: small seeded maps, interpolated.

The layout is drawn once per slide on a coarse lattice (one node every ``spacing`` level-0
pixels, at most ~640 nodes a side, a few MB even for an 80,000 px slide) and stored as
*signed distances in pixels* to the tissue and the tumour boundaries. A pixel's distance is the
bilinear interpolation of the lattice plus two octaves of hashed boundary noise, so it is a
pure function of its level-0 coordinates. Because bilinear interpolation is a convex
combination, the largest lattice value around a tile bounds every pixel inside it: that is how
a tile is known to be bare glass without rendering it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pathloop.client.sample._noise import ValueNoise, derive_key, lerp_grid, lerp_points, split

# Salts of the random fields of a slide (any distinct integers; changing one changes slides).
_SALT_LAYOUT = 1
_SALT_EDGE_COARSE = 2
_SALT_EDGE_FINE = 3
_SALT_TUMOUR_EDGE = 4

Float64 = NDArray[np.float64]

_MAX_NODES = 640  # lattice nodes along the long side, at most
OVERHANG = 2048  # px: how far past the right and bottom edges edge tiles may reach
DECIDED = 1.0e4  # px: stand-in distance of tiles far from any boundary
DECIDED_MARGIN = 64.0  # px: a tile this far from a boundary needs no exact distance


@dataclass(frozen=True)
class Fields:
    """Signed distances (px, positive inside) to the tissue and tumour boundaries.

    Arrays are float32 of one shape: (h, w) for a tile, (n,) for points. Where a whole tile
    lies farther than ``DECIDED_MARGIN`` px from a boundary, the distance is not computed and the
    tile holds the constant ``+DECIDED`` or ``-DECIDED`` instead (the sign is all that is
    used that far from a boundary; soft edges must be narrower than ``DECIDED_MARGIN``).
    """

    tissue: NDArray[np.float32]
    tumour: NDArray[np.float32]


class Layout:
    """Tissue and tumour regions of one slide as interpolated signed-distance maps.

    Parameters
    ----------
    width, height : level-0 size in pixels.
    seed : slide seed.
    tissue_fraction : target fraction of the slide area covered by tissue, in (0, 0.9].
    tumour_fraction : target fraction of the *tissue* area that is tumour, in [0, 0.8].
    px_per_um : level-0 pixels per micrometre (1 / mpp), to size the boundary roughness.
    """

    def __init__(
        self,
        width: int,
        height: int,
        seed: int,
        tissue_fraction: float,
        tumour_fraction: float,
        px_per_um: float,
    ) -> None:
        self.spacing = _lattice_spacing(width, height)
        rng = np.random.default_rng([seed, _SALT_LAYOUT])
        s = self.spacing
        # The lattice's extent must not depend on the tiling (it shapes the random fields).
        ny = (height + OVERHANG) // s + 3
        nx = (width + OVERHANG) // s + 3
        # Node (j, i) sits at level-0 pixel (i * s, j * s).
        ys = (np.arange(ny, dtype=np.float64) * s)[:, None]
        xs = (np.arange(nx, dtype=np.float64) * s)[None, :]
        inside = (ys < height) & (xs < width)
        scale = float(np.sqrt(width * height))

        tissue = _tissue_field(rng, xs, ys, width, height, scale, s)
        threshold = float(np.quantile(tissue[inside], 1.0 - tissue_fraction))
        self._tissue_sd = _signed_distance(tissue - threshold, s)

        tumour = _tumour_field(rng, xs, ys, self._tissue_sd, inside, tumour_fraction, scale, s)
        in_tissue = inside & (self._tissue_sd > 0)
        if tumour_fraction > 0 and in_tissue.any():
            cut = float(np.quantile(tumour[in_tissue], 1.0 - tumour_fraction))
        else:
            cut = float(tumour.max()) + 1.0  # no tumour anywhere
        self._tumour_sd = _signed_distance(tumour - cut, s)

        # Boundary roughness in pixels; physical sizes so that it looks alike at any mpp.
        self._edge_noise = (
            (ValueNoise(derive_key(seed, _SALT_EDGE_COARSE), round(60 * px_per_um)),
             float(12 * px_per_um)),
            (ValueNoise(derive_key(seed, _SALT_EDGE_FINE), round(12 * px_per_um)),
             float(3 * px_per_um)),
        )
        self._tumour_noise = (
            ValueNoise(derive_key(seed, _SALT_TUMOUR_EDGE), round(40 * px_per_um)),
            float(15 * px_per_um),
        )
        self._tissue_noise_bound = sum(amplitude for _, amplitude in self._edge_noise)
        self._limit = (width + OVERHANG - 1, height + OVERHANG - 1)

    def tile(self, x0: int, y0: int, width: int, height: int) -> Fields:
        """Signed distances on pixels ``[y0, y0+height) x [x0, x0+width)``; (h, w) float32.

        The box must lie in ``[0, width + OVERHANG) x [0, height + OVERHANG)``.
        """
        tissue_side, tumour_side = self.sides(x0, y0, width, height)
        cx, wx = split(np.arange(x0, x0 + width, dtype=np.int64), self.spacing)
        cy, wy = split(np.arange(y0, y0 + height, dtype=np.int64), self.spacing)
        shape = (height, width)
        if tissue_side:
            tissue = np.full(shape, tissue_side * DECIDED, dtype=np.float32)
        else:
            tissue = lerp_grid(self._tissue_sd, cy, wy, cx, wx)
            for noise, amplitude in self._edge_noise:
                tissue = tissue + np.float32(amplitude) * noise.grid(x0, y0, width, height)
        if tumour_side:
            tumour = np.full(shape, tumour_side * DECIDED, dtype=np.float32)
        else:
            noise, amplitude = self._tumour_noise
            tumour = lerp_grid(self._tumour_sd, cy, wy, cx, wx)
            tumour = tumour + np.float32(amplitude) * noise.grid(x0, y0, width, height)
        return Fields(tissue, tumour)

    def points(self, xs: NDArray[np.int64], ys: NDArray[np.int64]) -> Fields:
        """Signed distances at integer pixel positions; (n,) float32, equal to :meth:`tile`.

        Positions outside ``[0, width + OVERHANG) x [0, height + OVERHANG)`` take the value
        of the nearest position inside.
        """
        xs = np.clip(xs, 0, self._limit[0])
        ys = np.clip(ys, 0, self._limit[1])
        cx, wx = split(xs, self.spacing)
        cy, wy = split(ys, self.spacing)
        tissue = lerp_points(self._tissue_sd, cy, wy, cx, wx)
        for noise, amplitude in self._edge_noise:
            tissue = tissue + np.float32(amplitude) * noise.points(xs, ys)
        noise, amplitude = self._tumour_noise
        tumour = lerp_points(self._tumour_sd, cy, wy, cx, wx)
        tumour = tumour + np.float32(amplitude) * noise.points(xs, ys)
        return Fields(tissue, tumour)

    def sides(self, x0: int, y0: int, width: int, height: int) -> tuple[int, int]:
        """Which side of the tissue and of the tumour boundary the whole box lies on.

        Returns ``(tissue, tumour)``, each +1 if every pixel of the box is more than
        ``DECIDED_MARGIN`` px inside, -1 if more than that outside, 0 if undecided. The box may
        reach outside the slide; it is clamped like :meth:`points`.
        """
        block = self._block(self._tissue_sd, x0, y0, width, height)
        tissue = _side(block, self._tissue_noise_bound, DECIDED_MARGIN)
        block = self._block(self._tumour_sd, x0, y0, width, height)
        tumour = _side(block, self._tumour_noise[1], DECIDED_MARGIN)
        return tissue, tumour

    def may_hold_tissue(self, x0: int, y0: int, width: int, height: int, reach: float) -> bool:
        """Whether any pixel of the box lies within ``reach`` px of tissue (never a false no)."""
        block = self._block(self._tissue_sd, x0, y0, width, height)
        return float(block.max()) + self._tissue_noise_bound + reach >= 0.0

    def _block(self, sd: NDArray[np.float32], x0: int, y0: int, width: int,
               height: int) -> NDArray[np.float32]:
        """Lattice nodes whose interpolation covers the (clamped) box: they bound its pixels."""
        s = self.spacing
        lx, ly = self._limit
        left, right = min(max(x0, 0), lx), min(max(x0 + width - 1, 0), lx)
        top, bottom = min(max(y0, 0), ly), min(max(y0 + height - 1, 0), ly)
        return sd[top // s : bottom // s + 2, left // s : right // s + 2]


def _side(block: NDArray[np.float32], noise_bound: float, margin: float) -> int:
    if float(block.min()) - noise_bound > margin:
        return 1
    if float(block.max()) + noise_bound < -margin:
        return -1
    return 0


def _lattice_spacing(width: int, height: int) -> int:
    """Power-of-two node spacing, 8-128 px, so that the long side has <= ~640 nodes."""
    spacing = 8
    while max(width, height) / spacing > _MAX_NODES and spacing < 128:
        spacing *= 2
    return spacing


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> Float64:
    field: Float64 = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=max(sigma, 0.5),
                                    mode="wrap")
    return field / max(float(field.std()), 1e-9)


def _ellipse_bump(xs: Float64, ys: Float64, cx: float, cy: float, rx: float, ry: float,
                  angle: float) -> Float64:
    """1 at the centre, 0 on the ellipse, negative outside (a cone)."""
    c, s = np.cos(angle), np.sin(angle)
    u = ((xs - cx) * c + (ys - cy) * s) / rx
    v = (-(xs - cx) * s + (ys - cy) * c) / ry
    return np.asarray(1.0 - np.sqrt(u * u + v * v), dtype=np.float64)


def _tissue_field(rng: np.random.Generator, xs: Float64, ys: Float64, width: int, height: int,
                  scale: float, spacing: int) -> Float64:
    """A few large rounded blobs with wavy edges, pushed away from the slide's edges."""
    shape = (ys.shape[0], xs.shape[1])
    field = np.full(shape, -10.0)
    for _ in range(int(rng.integers(2, 5))):
        radius = scale * rng.uniform(0.16, 0.3)
        aspect = rng.uniform(0.55, 1.0)
        bump = _ellipse_bump(xs, ys, width * rng.uniform(0.22, 0.78),
                             height * rng.uniform(0.22, 0.78), radius, radius * aspect,
                             rng.uniform(0, np.pi))
        field = np.maximum(field, bump)
    field = field + 0.22 * _smooth_noise(rng, shape, scale / (9 * spacing))
    field = field + 0.08 * _smooth_noise(rng, shape, scale / (30 * spacing))
    # Keep a glass margin of ~4% of the slide along every edge (and beyond the edges).
    margin = 0.04 * scale
    edge = np.minimum(np.minimum(xs, width - 1 - xs), np.minimum(ys, height - 1 - ys))
    return np.asarray(field - 3.0 * np.clip(1.0 - edge / margin, 0.0, None), dtype=np.float64)


def _tumour_field(rng: np.random.Generator, xs: Float64, ys: Float64,
                  tissue_sd: NDArray[np.float32], inside: NDArray[np.bool_], fraction: float,
                  scale: float, spacing: int) -> Float64:
    """Smaller blobs centred deep inside tissue, sized to cover about ``fraction`` of it."""
    shape = tissue_sd.shape
    field = np.full(shape, -10.0)
    deep = np.argwhere(inside & (tissue_sd > 0.03 * scale))
    if len(deep) == 0:
        deep = np.argwhere(inside & (tissue_sd > 0))
    count = int(rng.integers(1, 4))
    tissue_area = float((inside & (tissue_sd > 0)).sum()) * spacing * spacing
    base_radius = np.sqrt(max(fraction, 0.05) * tissue_area / (count * np.pi))
    for _ in range(count):
        if len(deep) == 0:
            break
        j, i = deep[int(rng.integers(len(deep)))]
        radius = base_radius * rng.uniform(0.8, 1.25)
        aspect = rng.uniform(0.5, 1.0)
        bump = _ellipse_bump(xs, ys, float(i * spacing), float(j * spacing), radius,
                             radius * aspect, rng.uniform(0, np.pi))
        field = np.maximum(field, bump)
    return field + 0.15 * _smooth_noise(rng, shape, base_radius / (3 * spacing))


def _signed_distance(level: Float64, spacing: int) -> NDArray[np.float32]:
    """``level / |grad level|`` in pixels: near the zero set, the distance to it.

    Far from the boundary (where the linearisation means nothing) it is clipped to
    +-8 lattice cells, which keeps the maps smooth and the tile bounds tight.
    """
    gy, gx = np.gradient(level, float(spacing))
    gradient = np.maximum(np.hypot(gx, gy), 1e-12)
    limit = 8.0 * spacing
    distance: NDArray[np.float32] = np.clip(level / gradient, -limit, limit).astype(np.float32)
    return distance
