"""Slide access: the only package that imports openslide or tiffslide.

Open a slide with :func:`open_slide`, read regions at a resolution in µm/px with
:meth:`Slide.read_region`; never address a bare pyramid level from outside this package.
Deep Zoom tiles for viewers: :class:`DeepZoomGrid` and :func:`read_deepzoom_tile`.
"""

from pathloop.client.wsi.deepzoom import (
    DeepZoomGrid,
    DeepZoomTile,
    read_deepzoom_level,
    read_deepzoom_tile,
)
from pathloop.client.wsi.memory import in_memory_slide
from pathloop.client.wsi.metadata import SlideMetadata
from pathloop.client.wsi.opening import open_slide, resolve_within_roots, sha256_of_file
from pathloop.client.wsi.reader import LevelSource, RGBImage, Slide

__all__ = [
    "DeepZoomGrid",
    "DeepZoomTile",
    "LevelSource",
    "RGBImage",
    "Slide",
    "SlideMetadata",
    "in_memory_slide",
    "open_slide",
    "read_deepzoom_level",
    "read_deepzoom_tile",
    "resolve_within_roots",
    "sha256_of_file",
]
