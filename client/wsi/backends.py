"""The slide backends: OpenSlide first, tiffslide as the fallback.

This module and :mod:`pathloop.client.wsi.opening` are the only places that import
openslide or tiffslide (enforced by import-linter).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openslide
import tiffslide
from PIL import Image

from pathloop.client.wsi.metadata import SlideMetadata
from pathloop.client.wsi.reader import RGBImage, resize, resize_image

# TIFF writers put 72 or 96 dpi in files that have no real resolution; a slide scanned at
# 350 µm/px does not exist. Such values from generic TIFFs count as "no resolution".
_PLACEHOLDER_DPI = (72.0, 96.0, 300.0)
_INCH_UM = 25_400.0


def _rgba_to_rgb(rgba: np.ndarray) -> RGBImage:
    """Composite OpenSlide's premultiplied ``(h, w, 4)`` RGBA over white.

    Opaque regions come back as a (non-contiguous) view of the RGBA buffer.
    """
    rgb = rgba[..., :3]
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return rgb  # a view: copying the planes out costs more than the tile's decode
    over_white = rgb.astype(np.uint16) + (255 - alpha)[..., None]
    return np.minimum(over_white, 255).astype(np.uint8)


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number > 0 else None


def _is_placeholder_resolution(mpp: float) -> bool:
    return any(abs(mpp - _INCH_UM / dpi) < 1e-3 for dpi in _PLACEHOLDER_DPI)


def _metadata(
    path: Path,
    backend: str,
    prefix: str,
    properties: Mapping[str, Any],
    level_dimensions: tuple[tuple[int, int], ...],
    level_downsamples: tuple[float, ...],
    associated: tuple[str, ...],
    mpp_override: float | None,
) -> SlideMetadata:
    props = {str(k): str(v) for k, v in properties.items() if v is not None}
    vendor = props.get(f"{prefix}.vendor")
    mpp_x = _float(props.get(f"{prefix}.mpp-x"))
    mpp_y = _float(props.get(f"{prefix}.mpp-y"))
    if vendor in (None, "generic-tiff") and mpp_x is not None and _is_placeholder_resolution(mpp_x):
        mpp_x = mpp_y = None
    if mpp_override is not None:
        mpp_x = mpp_y = mpp_override
        source: str | None = "user"
    else:
        source = "slide" if mpp_x is not None and mpp_y is not None else None
    return SlideMetadata(
        path=path,
        backend=backend,
        vendor=vendor,
        level_dimensions=tuple((int(w), int(h)) for w, h in level_dimensions),
        level_downsamples=tuple(float(d) for d in level_downsamples),
        mpp_x=mpp_x,
        mpp_y=mpp_y if mpp_x is not None else None,
        mpp_source=source,  # type: ignore[arg-type]
        objective_power=_float(props.get(f"{prefix}.objective-power")),
        associated_images=associated,
        properties=props,
    )


class OpenSlideSource:
    """Level reads through OpenSlide (every format OpenSlide knows, DICOM included)."""

    def __init__(self, path: Path) -> None:
        self._slide = openslide.OpenSlide(str(path))

    def metadata(self, path: Path, mpp_override: float | None) -> SlideMetadata:
        slide = self._slide
        return _metadata(path, "openslide", "openslide", slide.properties,
                         slide.level_dimensions, slide.level_downsamples,
                         tuple(slide.associated_images), mpp_override)

    def read_level(self, level: int, x: int, y: int, width: int, height: int,
                   size: tuple[int, int] | None = None) -> RGBImage:
        image = self._slide.read_region((x, y), level, (width, height))
        rgba = np.asarray(image)
        if size is None:
            return _rgba_to_rgb(rgba)
        # Resampled as an image: PIL drops the alpha of an opaque read in C, where numpy
        # would first copy the RGB planes out of the RGBA buffer (3× the time, 512² px).
        rgb = image.convert("RGB") if rgba[..., 3].min() == 255 \
            else Image.fromarray(_rgba_to_rgb(rgba))
        return np.asarray(resize_image(rgb, *size), dtype=np.uint8)

    def associated_image(self, name: str) -> RGBImage:
        return np.asarray(self._slide.associated_images[name].convert("RGB"))

    def close(self) -> None:
        self._slide.close()


class TiffSlideSource:
    """Level reads through tiffslide, for TIFF variants OpenSlide refuses."""

    def __init__(self, path: Path) -> None:
        self._slide = tiffslide.TiffSlide(str(path))

    def metadata(self, path: Path, mpp_override: float | None) -> SlideMetadata:
        slide = self._slide
        return _metadata(path, "tiffslide", "tiffslide", slide.properties,
                         slide.level_dimensions, slide.level_downsamples,
                         tuple(slide.associated_images), mpp_override)

    def read_level(self, level: int, x: int, y: int, width: int, height: int,
                   size: tuple[int, int] | None = None) -> RGBImage:
        pixels = self._read(level, x, y, width, height)
        return pixels if size is None else resize(pixels, *size)

    def _read(self, level: int, x: int, y: int, width: int, height: int) -> RGBImage:
        pixels = self._slide.read_region((x, y), level, (width, height), as_array=True)
        pixels = np.asarray(pixels)
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        pixels = pixels[..., :3].astype(np.uint8, copy=False)
        # tiffslide pads outside the slide with black: make it white like OpenSlide's glass.
        level_ds = self._slide.level_downsamples[level]
        level_w, level_h = self._slide.level_dimensions[level]
        inside_w = min(width, max(0, level_w - int(x / level_ds)))
        inside_h = min(height, max(0, level_h - int(y / level_ds)))
        if inside_w < width or inside_h < height or x < 0 or y < 0:
            pixels = pixels.copy()
            pixels[inside_h:, :] = 255
            pixels[:, inside_w:] = 255
            if x < 0:
                pixels[:, : min(width, int(-x / level_ds))] = 255
            if y < 0:
                pixels[: min(height, int(-y / level_ds))] = 255
        return np.ascontiguousarray(pixels)

    def associated_image(self, name: str) -> RGBImage:
        return np.asarray(self._slide.associated_images[name].convert("RGB"))

    def close(self) -> None:
        self._slide.close()
