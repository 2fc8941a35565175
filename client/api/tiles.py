"""Deep Zoom tiles of slides and overlays: open slides kept, encoded tiles cached.

:class:`TileService` keeps each slide open once (reads are serialised per slide unless its
backend is safe to share between threads, as OpenSlide is), cuts the coarse levels from one
low-resolution read of the slide, and keeps the encoded JPEG/PNG bytes of the
tiles it served in an LRU cache bounded in bytes. Overlay tiles are cached under the
overlay's content version, so a new prediction or a saved correction is never shown stale.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store
from pathloop.client.usecases.slides import open_stored_slide
from pathloop.client.viewing.overlays import SlideOverlays
from pathloop.client.wsi import DeepZoomGrid, Slide, read_deepzoom_level, read_deepzoom_tile

TILE_SIZE = 254
OVERLAP = 1
OVERVIEW_SIDE = 2048
"""Deep Zoom levels up to this many px a side are cut from one read of the slide."""
THREAD_SAFE_BACKENDS = frozenset({"openslide"})
OVERLAY_REFRESH_SECONDS = 2.0
"""How long a slide's list of overlays is trusted before the store is asked again."""


class ByteCache:
    """A thread-safe LRU of bytes, bounded by their total size.

    Concurrent misses of one key are made once: the first caller makes the bytes, the others
    wait for them (a tile asked for by 16 viewers at once is rendered once, not 16 times).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._making: dict[Hashable, Future[bytes]] = {}
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """The cached bytes of ``key``, or ``None`` (never waits, never makes)."""
        with self._lock:
            return self._hit(key)

    def _hit(self, key: Hashable) -> bytes | None:
        """Look ``key`` up with the lock held, counting a hit."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return found

    def get_or_make(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The cached bytes of ``key``, else ``make()`` (stored when they fit)."""
        with self._lock:
            found = self._hit(key)
            if found is not None:
                return found
            pending = self._making.get(key)
            if pending is None:
                self.misses += 1
                future: Future[bytes] = Future()
                self._making[key] = future
        if pending is not None:
            return pending.result()
        try:
            data = make()
        except BaseException as error:
            with self._lock:
                del self._making[key]
            future.set_exception(error)
            raise
        with self._lock:
            del self._making[key]
            if len(data) <= self.max_bytes:
                self._items[key] = data
                self._size += len(data)
                while self._size > self.max_bytes:
                    _, dropped = self._items.popitem(last=False)
                    self._size -= len(dropped)
        future.set_result(data)
        return data


class _Overview:
    """A slide's coarse Deep Zoom levels, all cut from one low-resolution read.

    Every level whose whole image fits in ``OVERVIEW_SIDE`` px a side is derived from one
    read of the slide at the finest such level (each coarser level Lanczos-halved from the
    next finer one; at most ``OVERVIEW_SIDE``² px kept per open slide). A viewer opening a
    slide asks for all of them at once, and each of their tiles would otherwise read a
    large part of the slide (on a single-level slide, at its full resolution). The tiles of
    a level are crops of one image at the level's own scale, so they join seamlessly; a
    direct read scales each tile by exactly ``2**k`` instead, which differs from the level's
    rounded-up size by up to half a pixel across a tile.
    """

    def __init__(self, slide: Slide, grid: DeepZoomGrid) -> None:
        self.grid = grid
        self.level = max(level for level, size in enumerate(grid.level_dimensions)
                         if max(size) <= OVERVIEW_SIDE)
        self._images = {self.level: Image.fromarray(read_deepzoom_level(slide, grid,
                                                                        self.level))}
        self._lock = threading.Lock()

    def covers(self, level: int) -> bool:
        return level <= self.level

    def tile(self, level: int, col: int, row: int) -> np.ndarray:
        """The tile's pixels, ``(out_height, out_width, 3)``."""
        tile = self.grid.tile(level, col, row)
        image = self._image(level)
        scale = self.grid.downsample(level)
        left, top = round(tile.x / scale), round(tile.y / scale)
        return np.asarray(image.crop((left, top, left + tile.out_width,
                                      top + tile.out_height)), dtype=np.uint8)

    def _image(self, level: int) -> Image.Image:
        """The whole level, each made from the next finer one (2× steps, as a pyramid)."""
        with self._lock:
            finest = min(k for k in self._images if k >= level)
            for k in range(finest - 1, level - 1, -1):
                self._images[k] = self._images[k + 1].resize(
                    self.grid.level_dimensions[k], Image.Resampling.LANCZOS, reducing_gap=2.0)
            return self._images[level]


@dataclass
class _OpenSlide:
    slide: Slide
    grid: DeepZoomGrid
    lock: threading.Lock | None  # None: the backend reads safely from many threads
    overview: _Overview | None = None
    overview_lock: threading.Lock = field(default_factory=threading.Lock)

    def read_tile(self, level: int, col: int, row: int) -> np.ndarray:
        with self.overview_lock:
            if self.overview is None:
                with self.lock or nullcontext():
                    self.overview = _Overview(self.slide, self.grid)
        if self.overview.covers(level):
            return self.overview.tile(level, col, row)
        with self.lock or nullcontext():
            return read_deepzoom_tile(self.slide, self.grid, level, col, row)


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
        self._records: dict[int, SlideRecord] = {}
        self._overlays: dict[int, _Overlays] = {}
        self._lock = threading.Lock()

    def grid(self, slide: SlideRecord) -> DeepZoomGrid:
        """The Deep Zoom geometry of a slide (its stored level-0 size)."""
        return DeepZoomGrid(slide.width, slide.height, TILE_SIZE, OVERLAP)

    def slide_record(self, slide_id: int) -> SlideRecord:
        """A slide of this site, from memory after the first look-up (records never change).

        Raises
        ------
        RecordNotFoundError
            No such slide, or another site's (in a shared database).
        """
        with self._lock:
            found = self._records.get(slide_id)
        if found is None:
            found = self.store.get_slide(slide_id)
            if found.site_id != self.settings.site_id:
                raise RecordNotFoundError(f"slide {slide_id} not found")
            with self._lock:
                self._records[slide_id] = found
        return found

    def cached_slide_tile(self, slide: SlideRecord, level: int, col: int, row: int
                          ) -> bytes | None:
        """The tile's JPEG if it is cached (no reading, no waiting), else ``None``."""
        return self.cache.get(("slide", slide.id, level, col, row))

    def slide_tile(self, slide: SlideRecord, level: int, col: int, row: int) -> bytes:
        """One JPEG tile of the slide (``TileOutOfRangeError`` outside the pyramid)."""
        opened = self._open(slide)
        opened.grid.tile(level, col, row)  # out of range → 404 before anything is read
        return self.cache.get_or_make(
            ("slide", slide.id, level, col, row),
            lambda: encode_jpeg(opened.read_tile(level, col, row),
                                self.settings.api.jpeg_quality))

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
                opened = open_stored_slide(self.settings, slide)
                safe = opened.metadata.backend in THREAD_SAFE_BACKENDS
                found = _OpenSlide(opened, self.grid(slide), None if safe else threading.Lock())
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
