"""nnU-Net's intensity normalisation, applied to a batch of tiles in numpy.

nnU-Net normalises every channel of every image on its own when it preprocesses a case
(``DefaultPreprocessor._normalize``); the network has only ever seen such inputs. The
schemes below repeat its formulas (``nnunetv2/preprocessing/normalization/
default_normalization_schemes.py``) with ``use_mask_for_norm`` off, which is what nnU-Net
plans for 2D tiles:

``ZScoreNormalization``
    ``(x - mean(x)) / max(std(x), 1e-8)`` over the tile's pixels of that channel.
``NoNormalization``
    ``x`` as float32.
``RGBTo01Normalization``
    ``x / 255``.
``RescaleTo01Normalization``
    ``(x - min(x)) / max(max(x) - min(x), 1e-8)``.

Statistics are accumulated in float64 (nnU-Net uses float32); the results agree to about
1e-6.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

SUPPORTED_SCHEMES = (
    "ZScoreNormalization",
    "NoNormalization",
    "RGBTo01Normalization",
    "RescaleTo01Normalization",
)
_EPS = 1e-8


def normalize_batch(images: NDArray[np.generic], schemes: Sequence[str], *,
                    stats: NDArray[np.float64] | None = None) -> NDArray[np.float32]:
    """Normalise a batch of tiles channel by channel, as nnU-Net's preprocessing does.

    Parameters
    ----------
    images:
        ``(B, H, W, C)`` tiles (any real dtype, usually uint8), axis order batch, rows,
        columns, channel.
    schemes:
        One nnU-Net normalisation class name per channel (the plans'
        ``normalization_schemes``), from :data:`SUPPORTED_SCHEMES`.
    stats:
        ``(2, C')`` mean and standard deviation per channel (``C' >= `` the z-scored
        channels' indices + 1) used by ``ZScoreNormalization`` instead of each tile's own:
        slide inference normalises every window of a slide alike.

    Returns
    -------
    numpy.ndarray
        ``(B, C, H, W)`` float32, C-contiguous (ready for a network).

    Raises
    ------
    ValueError
        The channel count differs from ``len(schemes)`` or a scheme is unsupported.
    """
    if images.ndim != 4 or images.shape[3] != len(schemes):
        raise ValueError(f"expected (B, H, W, {len(schemes)}) images, got {images.shape}")
    unknown = sorted(set(schemes) - set(SUPPORTED_SCHEMES))
    if unknown:
        raise ValueError(f"unsupported normalisation schemes {unknown}")
    out = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
    for c, scheme in enumerate(schemes):
        channel = out[:, c]  # (B, H, W) view
        if scheme == "ZScoreNormalization" and stats is not None and c < stats.shape[1]:
            channel -= np.float32(stats[0, c])
            channel /= np.float32(max(float(stats[1, c]), _EPS))
        elif scheme == "ZScoreNormalization":
            mean = channel.mean(axis=(1, 2), dtype=np.float64, keepdims=True)
            std = channel.std(axis=(1, 2), dtype=np.float64, keepdims=True)
            channel -= mean.astype(np.float32)
            channel /= np.maximum(std, _EPS).astype(np.float32)
        elif scheme == "RGBTo01Normalization":
            channel /= np.float32(255.0)
        elif scheme == "RescaleTo01Normalization":
            low = channel.min(axis=(1, 2), keepdims=True)
            span = np.maximum(channel.max(axis=(1, 2), keepdims=True) - low, _EPS)
            channel -= low
            channel /= span
    return out


__all__ = ["SUPPORTED_SCHEMES", "normalize_batch"]
