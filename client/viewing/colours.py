"""Colours of the overlays: label palettes, the uncertainty colour map, and their legends.

A legend is what the viewer draws beside an overlay: a gradient with its range for a
continuous map, swatches for labels. The colours in a legend are exactly those the tiles are
painted with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

RGBA = NDArray[np.uint8]
"""An ``(H, W, 4)`` uint8 RGBA image."""

# Label 1, 2, … (0, background, is never painted). Distinct on H&E's pinks and purples and
# from the uncertainty map's inferno (black, purple, red, orange, yellow): greens and blues
# first.
_LABEL_COLOURS = ("#39e75f", "#2f9bff", "#ff3d7f", "#ffd400", "#b388ff", "#ff8a00",
                  "#00e5c0", "#ffffff")
LABEL_ALPHA = 140
"""Opacity of a painted label (0-255) before the viewer's own opacity slider."""
UNCERTAINTY_COLOUR_MAP = "inferno"


@dataclass(frozen=True)
class LegendStop:
    """A colour at a value of a continuous map."""

    value: float
    color: str


@dataclass(frozen=True)
class LegendEntry:
    """A label value, its name and colour."""

    value: int
    label: str
    color: str


@dataclass(frozen=True)
class Legend:
    """How to read an overlay: a gradient over ``[min, max]`` or a set of label swatches."""

    type: Literal["continuous", "categorical"]
    title: str
    min: float | None = None
    max: float | None = None
    stops: tuple[LegendStop, ...] = field(default_factory=tuple)
    entries: tuple[LegendEntry, ...] = field(default_factory=tuple)


def label_colour(value: int) -> str:
    """The ``#rrggbb`` colour label ``value`` (≥ 1) is painted with."""
    return _LABEL_COLOURS[(value - 1) % len(_LABEL_COLOURS)]


def label_palette(n_labels: int = 256, alpha: int = LABEL_ALPHA) -> NDArray[np.uint8]:
    """``(n_labels, 4)`` RGBA per label value; label 0 is transparent."""
    palette = np.zeros((n_labels, 4), dtype=np.uint8)
    for value in range(1, n_labels):
        palette[value, :3] = _hex_to_rgb(label_colour(value))
        palette[value, 3] = alpha
    return palette


def label_legend(title: str, names: tuple[str, ...]) -> Legend:
    """Swatches of the labels after the background (value 0)."""
    return Legend("categorical", title, entries=tuple(
        LegendEntry(value, name, label_colour(value))
        for value, name in enumerate(names) if value > 0))


@cache
def uncertainty_lut() -> NDArray[np.uint8]:
    """``(256, 4)`` RGBA of the uncertainty map from 0 to its maximum.

    The colour comes from matplotlib's ``inferno``; opacity rises over the lowest quarter,
    so confident regions stay clear and the tissue shows through them.
    """
    from matplotlib import colormaps

    rgba = colormaps[UNCERTAINTY_COLOUR_MAP](np.linspace(0.0, 1.0, 256))
    lut = np.rint(rgba * 255).astype(np.uint8)
    lut[:, 3] = np.rint(np.clip(np.linspace(0.0, 4.0, 256), 0.0, 1.0) * 220).astype(np.uint8)
    return lut


def uncertainty_legend(maximum: float, stops: int = 9) -> Legend:
    """The gradient of :func:`uncertainty_lut` over ``[0, maximum]``."""
    lut = uncertainty_lut()
    index = np.linspace(0, 255, stops).round().astype(int)
    return Legend("continuous", "Uncertainty (fold disagreement, nats)", 0.0, maximum,
                  stops=tuple(LegendStop(float(maximum * i / 255), _rgb_to_hex(lut[i, :3]))
                              for i in index))


def colour_labels(labels: NDArray[np.integer], palette: NDArray[np.uint8]) -> RGBA:
    """Paint an ``(H, W)`` label map with ``palette`` (values beyond it are clipped)."""
    index = np.clip(labels, 0, len(palette) - 1).astype(np.intp)
    return palette[index]


def colour_map(values: NDArray[np.floating], maximum: float, lut: NDArray[np.uint8]) -> RGBA:
    """Paint an ``(H, W)`` float map over ``[0, maximum]``; NaN is transparent."""
    scaled = np.nan_to_num(np.asarray(values, dtype=np.float32) / maximum, nan=-1.0)
    index = np.clip(np.rint(scaled * 255), 0, 255).astype(np.intp)
    out = lut[index]
    out[scaled < 0, 3] = 0
    return out


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _rgb_to_hex(rgb: NDArray[np.uint8]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb))
