"""Coordinate-hashed randomness: pure functions of integer level-0 pixel coordinates.

Every random quantity of a synthetic slide that varies across the slide is drawn from a hash
of ``(key, coordinates)`` instead of a sequential generator, so any tile can be rendered on
its own and two tiles sharing a border agree on it. Interpolation is written as plain
elementwise ``+ - *`` in one fixed order (no BLAS, no ``exp``), so the grid and the point
versions give bit-identical results wherever they are evaluated: labels thresholded on these
fields do not depend on the tiling.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_MASK64 = (1 << 64) - 1


def derive_key(seed: int, salt: int) -> int:
    """A 32-bit hash key for one random field of one slide (splitmix64 of seed and salt)."""
    z = (seed * 0x9E3779B97F4A7C15 + (salt + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & 0xFFFFFFFF


def _fmix32(h: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """MurmurHash3's 32-bit finaliser: every input bit flips about half the output bits."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def hash2(key: int, ix: NDArray[np.int64], iy: NDArray[np.int64]) -> NDArray[np.uint32]:
    """Hash integer coordinates (any broadcastable shapes) under ``key``; uint32, same shape."""
    hx = _fmix32(ix.astype(np.uint32) ^ np.uint32(key))
    return _fmix32(hx ^ (iy.astype(np.uint32) * np.uint32(0x9E3779B1)))


def uniform(key: int, ix: NDArray[np.int64], iy: NDArray[np.int64]) -> NDArray[np.float32]:
    """Uniform numbers in ``[0, 1)`` (float32, 24 random bits) hashed from coordinates."""
    return (hash2(key, ix, iy) >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


def lerp_grid(
    values: NDArray[np.float32],
    iy: NDArray[np.int64],
    wy: NDArray[np.float32],
    ix: NDArray[np.int64],
    wx: NDArray[np.float32],
) -> NDArray[np.float32]:
    """Bilinear interpolation of ``values`` on the outer product of rows and columns.

    Parameters
    ----------
    values : (ny, nx) float32 lattice.
    iy, wy : (h,) lattice row below each output row and the weight of the row above.
    ix, wx : (w,) likewise for columns.

    Returns
    -------
    (h, w) float32, bit-identical to :func:`lerp_points` at the same positions.
    """
    a = values[:, ix]
    rows = a + wx[None, :] * (values[:, ix + 1] - a)
    r0 = rows[iy]
    return r0 + wy[:, None] * (rows[iy + 1] - r0)


def lerp_points(
    values: NDArray[np.float32],
    iy: NDArray[np.int64],
    wy: NDArray[np.float32],
    ix: NDArray[np.int64],
    wx: NDArray[np.float32],
) -> NDArray[np.float32]:
    """Bilinear interpolation of ``values`` at ``n`` scattered points; (n,) float32."""
    a0 = values[iy, ix]
    r0 = a0 + wx * (values[iy, ix + 1] - a0)
    a1 = values[iy + 1, ix]
    r1 = a1 + wx * (values[iy + 1, ix + 1] - a1)
    return r0 + wy * (r1 - r0)


def split(coords: NDArray[np.int64], spacing: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Lattice cell index and linear in-cell weight of integer pixel coordinates."""
    cell = coords // spacing
    weight = (coords - cell * spacing).astype(np.float32) / np.float32(spacing)
    return cell, weight


def _smooth(w: NDArray[np.float32]) -> NDArray[np.float32]:
    return w * w * (np.float32(3.0) - np.float32(2.0) * w)


class ValueNoise:
    """Smooth lattice noise in ``[-1, 1]``: hashed values every ``spacing`` px, interpolated.

    Parameters
    ----------
    key : hash key (:func:`derive_key`).
    spacing : lattice spacing in level-0 pixels.
    """

    def __init__(self, key: int, spacing: int) -> None:
        self.key = key
        self.spacing = max(1, int(spacing))

    def _lattice(self, iy: NDArray[np.int64], ix: NDArray[np.int64]) -> NDArray[np.float32]:
        u = uniform(self.key, ix[None, :], iy[:, None])
        return u * np.float32(2.0) - np.float32(1.0)

    def grid(self, x0: int, y0: int, width: int, height: int) -> NDArray[np.float32]:
        """Noise on pixels ``[y0, y0+height) x [x0, x0+width)``; (height, width) float32."""
        cx, wx = split(np.arange(x0, x0 + width, dtype=np.int64), self.spacing)
        cy, wy = split(np.arange(y0, y0 + height, dtype=np.int64), self.spacing)
        bx, by = int(cx[0]), int(cy[0])
        lattice = self._lattice(
            np.arange(by, int(cy[-1]) + 2, dtype=np.int64),
            np.arange(bx, int(cx[-1]) + 2, dtype=np.int64),
        )
        return lerp_grid(lattice, cy - by, _smooth(wy), cx - bx, _smooth(wx))

    def points(self, xs: NDArray[np.int64], ys: NDArray[np.int64]) -> NDArray[np.float32]:
        """Noise at integer pixel positions; (n,) float32, equal to :meth:`grid` there."""
        if xs.size == 0:
            return np.zeros(0, dtype=np.float32)
        cx, wx = split(xs, self.spacing)
        cy, wy = split(ys, self.spacing)
        bx, by = int(cx.min()), int(cy.min())
        lattice = self._lattice(
            np.arange(by, int(cy.max()) + 2, dtype=np.int64),
            np.arange(bx, int(cx.max()) + 2, dtype=np.int64),
        )
        return lerp_points(lattice, cy - by, _smooth(wy), cx - bx, _smooth(wx))
