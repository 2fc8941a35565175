"""Deep Zoom tiles of slides and overlays: open slides kept, encoded tiles cached.

:class:`TileService` keeps each slide open once (reads are serialised per slide, as not
every backend is safe to share between threads) and keeps the encoded JPEG/PNG bytes of the
tiles it served in an LRU cache bounded in bytes. Overlay tiles are cached under the
overlay's content version, so a new prediction or a saved correction is never shown stale.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store
from pathloop.client.viewing.overlays import SlideOverlays
from pathloop.client.workflows import open_stored_slide
from pathloop.client.wsi import DeepZoomGrid, Slide, read_deepzoom_tile

TILE_SIZE = 254
OVERLAP = 1
OVERLAY_REFRESH_SECONDS = 2.0
"""How long a slide's list of overlays is trusted before the store is asked again."""


class ByteCache:
    """A thread-safe LRU of bytes, bounded by their total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_make(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The cached bytes of ``key``, else ``make()`` (stored when they fit)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        data = make()
        if len(data) <= self.max_bytes:
            with self._lock:
                if key not in self._items:
                    self._items[key] = data
                    self._size += len(data)
                while self._size > self.max_bytes:
                    _, dropped = self._items.popitem(last=False)
                    self._size -= len(dropped)
        return data


@dataclass
class _OpenSlide:
    slide: Slide
    grid: DeepZoomGrid
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Overlays:
    overlays: SlideOverlays
    loaded_at: float


class TileService:
    """Deep Zoom tiles and overlay tiles of a site's slides."""

    def __init__(self, settings: SiteSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.cache = ByteCache(settings.api.tile_cache_mb << 20)
        self._slides: dict[int, _OpenSlide] = {}
        self._overlays: dict[int, _Overlays] = {}
        self._lock = threading.Lock()

    def grid(self, slide: SlideRecord) -> DeepZoomGrid:
        """The Deep Zoom geometry of a slide (its stored level-0 size)."""
        return DeepZoomGrid(slide.width, slide.height, TILE_SIZE, OVERLAP)

    def slide_tile(self, slide: SlideRecord, level: int, col: int, row: int) -> bytes:
        """One JPEG tile of the slide (``TileOutOfRangeError`` outside the pyramid)."""
        opened = self._open(slide)
        opened.grid.tile(level, col, row)  # out of range → 404 before anything is read

        def make() -> bytes:
            with opened.lock:
                pixels = read_deepzoom_tile(opened.slide, opened.grid, level, col, row)
            return encode_jpeg(pixels, self.settings.api.jpeg_quality)

        return self.cache.get_or_make(("slide", slide.id, level, col, row), make)

    def overlays(self, slide: SlideRecord, *, fresh: bool = False) -> SlideOverlays:
        """The slide's overlays, re-read from the store every few seconds (or now)."""
        with self._lock:
            known = self._overlays.get(slide.id)
        if (known is None or fresh
                or time.monotonic() - known.loaded_at > OVERLAY_REFRESH_SECONDS):
            known = _Overlays(SlideOverlays.load(self.store, slide,
                                                 self.settings.federation.labels),
                              time.monotonic())
            with self._lock:
                self._overlays[slide.id] = known
        return known.overlays

    def overlay_tile(self, slide: SlideRecord, kind: str, level: int, col: int, row: int
                     ) -> bytes:
        """One RGBA PNG tile of an overlay, on the slide's Deep Zoom grid."""
        overlays = self.overlays(slide)
        overlay = overlays.get(kind)
        tile = self.grid(slide).tile(level, col, row)
        return self.cache.get_or_make(
            ("overlay", slide.id, overlay.kind, overlay.version, level, col, row),
            lambda: encode_png(overlays.render(kind, tile)))

    def forget_overlays(self, slide_id: int) -> None:
        """Drop a slide's overlay list (after a save or a job changed it)."""
        with self._lock:
            self._overlays.pop(slide_id, None)

    def close(self) -> None:
        """Close every open slide."""
        with self._lock:
            opened, self._slides = list(self._slides.values()), {}
        for entry in opened:
            entry.slide.close()

    def _open(self, slide: SlideRecord) -> _OpenSlide:
        with self._lock:
            found = self._slides.get(slide.id)
            if found is None:
                found = _OpenSlide(open_stored_slide(self.settings, slide), self.grid(slide))
                self._slides[slide.id] = found
            return found


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """RGB uint8 pixels as a baseline JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_png(pixels: np.ndarray) -> bytes:
    """RGBA uint8 pixels as a PNG (fast compression: tiles are many and small)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
