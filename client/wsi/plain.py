"""Plain images (PNG, JPEG) as one-level slides: the image sets of nucleus datasets.

Nucleus datasets such as CPM-15 ship small PNG tiles, not pyramids; OpenSlide reads neither
PNG nor JPEG. :class:`PlainImageSource` decodes the whole image once with PIL and serves it
as level 0. A plain image holds no trustworthy resolution (a PNG's ``pHYs`` is a print
density), so its µm/px must come from the user.

The pixel count is checked from the header before anything is decoded: a small file that
claims billions of pixels (a decompression bomb) is refused, never allocated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pathloop.client.errors import CorruptSlideError, UnsupportedSlideError
from pathloop.client.wsi.metadata import SlideMetadata
from pathloop.client.wsi.reader import RGBImage, resize

MAX_PLAIN_IMAGE_PIXELS = 100_000_000
"""Largest plain image accepted, in pixels (about 300 MB decoded as RGB): beyond this a
site's scans come as pyramidal slides, and a PNG claiming more is most likely a bomb."""

PLAIN_IMAGE_MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
"""File signatures of the formats this backend reads: PNG and JPEG."""


def is_plain_image(head: bytes) -> bool:
    """Whether a file's first bytes are a PNG or JPEG signature."""
    return head.startswith(PLAIN_IMAGE_MAGICS)


class PlainImageSource:
    """One decoded PNG or JPEG held as level 0 ``(H, W, 3)`` uint8 RGB."""

    def __init__(self, path: Path, *, max_pixels: int = MAX_PLAIN_IMAGE_PIXELS) -> None:
        try:
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:  # from the header: nothing decoded yet
                    raise UnsupportedSlideError(
                        path, f"plain image of {width}×{height} = {width * height} pixels "
                              f"exceeds the limit of {max_pixels} (store it as a "
                              "pyramidal TIFF instead)")
                self._format = image.format or "unknown"
                image.load()
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except UnsupportedSlideError:
            raise
        except Image.DecompressionBombError as error:  # PIL's own, coarser bound
            raise UnsupportedSlideError(
                path, f"plain image exceeds the limit of {max_pixels} pixels ({error})"
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise CorruptSlideError(path, f"image cannot be decoded ({error})") from None
        self._pixels = np.ascontiguousarray(pixels)

    def metadata(self, path: Path, mpp_override: float | None) -> SlideMetadata:
        height, width = self._pixels.shape[:2]
        return SlideMetadata(
            path=path,
            backend="plain-image",
            vendor=self._format.lower(),
            level_dimensions=((width, height),),
            level_downsamples=(1.0,),
            mpp_x=mpp_override,
            mpp_y=mpp_override,
            mpp_source="user" if mpp_override is not None else None,
            objective_power=None,
        )

    def read_level(self, level: int, x: int, y: int, width: int, height: int,
                   size: tuple[int, int] | None = None) -> RGBImage:
        if level != 0:
            raise IndexError(f"a plain image has only level 0, not {level}")
        out = np.full((height, width, 3), 255, dtype=np.uint8)  # outside the image: glass
        rows, cols = self._pixels.shape[:2]
        top, left = max(y, 0), max(x, 0)
        bottom, right = min(y + height, rows), min(x + width, cols)
        if bottom > top and right > left:
            out[top - y: bottom - y, left - x: right - x] = self._pixels[top:bottom, left:right]
        return out if size is None else resize(out, *size)

    def associated_image(self, name: str) -> RGBImage:
        raise KeyError(name)

    def close(self) -> None:
        """Drop the decoded pixels."""
        self._pixels = np.zeros((0, 0, 3), dtype=np.uint8)
