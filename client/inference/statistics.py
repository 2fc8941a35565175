"""One set of intensity statistics per slide, for networks that z-score their inputs.

nnU-Net z-scores each training case (a whole training tile) channel by channel. Z-scoring
each inference window on its own instead would make a window's input depend on what else
the window holds (a window half on glass is stretched differently from one on tissue), the
very position-dependence sliding windows remove. :func:`tissue_statistics` estimates each
channel's mean and standard deviation once per slide from windows spread evenly over the
slide's tissue, and every window is normalised with them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pathloop.client.inference.layout import InferenceLayout, TissueLookup
from pathloop.client.wsi import Slide

SAMPLE_WINDOWS = 64
"""Windows read to estimate a slide's statistics."""


def tissue_statistics(slide: Slide, layout: InferenceLayout, lookup: TissueLookup, *,
                      n_windows: int = SAMPLE_WINDOWS) -> NDArray[np.float64] | None:
    """``(2, 3)`` float64: per-channel mean and standard deviation of tissue windows.

    The windows are the lattice's tissue windows taken at even intervals in reading order:
    the same for a slide whatever the work order. ``None`` when the slide has no tissue.
    """
    rows = layout.window_rows()
    cols = layout.window_cols(0, layout.raster_width)
    if rows.size == 0 or cols.size == 0:
        return None
    on_tissue = layout.on_tissue(lookup, rows, cols)
    where = np.flatnonzero(on_tissue)
    if where.size == 0:
        return None
    chosen = where[np.linspace(0, where.size - 1, min(n_windows, where.size)).round()
                   .astype(np.intp)]
    total = np.zeros(3, np.float64)
    squares = np.zeros(3, np.float64)
    count = 0
    height, width = layout.patch
    for index in np.unique(chosen):
        y, x = int(rows[index // cols.size]), int(cols[index % cols.size])
        pixels = slide.read_region(round(x * layout.factor), round(y * layout.factor),
                                   width, height, layout.mpp).reshape(-1, 3).astype(np.float64)
        total += pixels.sum(axis=0)
        squares += np.square(pixels).sum(axis=0)
        count += pixels.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return np.stack([mean, std])


__all__ = ["SAMPLE_WINDOWS", "tissue_statistics"]
