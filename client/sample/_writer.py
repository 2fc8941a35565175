"""Streaming a synthetic slide and its masks into TIFF files, tile by tile.

The slide is written as an Aperio-style SVS: a tiled JPEG level 0 whose ImageDescription
carries ``MPP`` and ``AppMag`` (OpenSlide's aperio driver and tiffslide read both, and the
generic TIFF resolution tags are written too), then a strip thumbnail, then the lower levels
as further tiled pages (NewSubfileType 0, as Aperio writes them: tifffile, and so tiffslide,
stops collecting levels at a page marked "reduced").

Level 0 is consumed by ``TiffWriter.write`` from a generator; the generator hands tissue tiles
to a thread pool (numpy, libjpeg and zlib release the GIL) and keeps a bounded number in
flight, feeds each finished tile to the pyramid builder and the two mask pages, and yields
its JPEG bytes. Glass tiles are never rendered: they reuse one pre-encoded JPEG and one
pre-compressed mask tile. Each mask page is written by its own thread from a bounded queue.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
from numpy.typing import NDArray
from tifffile import TiffWriter

from pathloop.client.sample._pyramid import Encoder, PyramidBuilder, level_sizes, reduce
from pathloop.client.sample._render import TileRenderer

_HEADER = "Aperio Image Library (pathloop synthetic slide)"
_MASK_DEFLATE_LEVEL = 5  # libdeflate: ~0.25 ms and ~2 kB for a 256 px nuclei tile
_QUEUE_TILES = 512  # mask tiles waiting for their writer thread, at most
_BIGTIFF_BYTES = 2**31  # raw sizes above this are written as BigTIFF


@dataclass(frozen=True)
class _Tile:
    """A rendered level-0 tile, encoded: JPEG, reduced preview, deflated masks."""

    rgb: NDArray[np.uint8]
    reduced: NDArray[np.uint8]
    jpeg: bytes
    labels: bytes
    nuclei: bytes


class _MaskPage:
    """One tiled uint8 TIFF page written by a background thread from queued tile bytes."""

    _DONE = object()

    def __init__(self, path: Path, width: int, height: int, tile: int, mpp: float,
                 description: str) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_TILES)
        self._error: BaseException | None = None
        self._ended = False
        kwargs: dict[str, Any] = dict(
            shape=(height, width), dtype=np.uint8, tile=(tile, tile), compression="zlib",
            photometric="minisblack", description=description, metadata=None,
            resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
        bigtiff = width * height >= _BIGTIFF_BYTES
        self._thread = threading.Thread(target=self._run, args=(path, bigtiff, kwargs),
                                        name=f"mask-writer:{path.name}", daemon=True)
        self._thread.start()

    def _run(self, path: Path, bigtiff: bool, kwargs: dict[str, Any]) -> None:
        try:
            with TiffWriter(path, bigtiff=bigtiff) as tif:
                tif.write(self._items(), **kwargs)
        except BaseException as error:  # handed to the producer in finish()
            self._error = error
            while self._queue.get() is not self._DONE:  # keep the producer from blocking
                pass

    def _items(self) -> Iterator[bytes]:
        while (item := self._queue.get()) is not self._DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def put(self, data: bytes) -> None:
        self._queue.put(data)

    def finish(self) -> None:
        """Wait for the page to be written; re-raise the writer's error if it failed."""
        self._ended = True
        self._queue.put(self._DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Unless finished, make the writer thread fail and end (the file stays incomplete)."""
        if self._ended:
            return
        self._ended = True
        self._queue.put(RuntimeError("slide writing was interrupted"))
        self._queue.put(self._DONE)
        self._thread.join()


def default_workers() -> int:
    """Threads rendering tiles: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def write_slide_files(renderer: TileRenderer, slide_path: Path, label_path: Path | None,
                      nuclei_path: Path | None, *, name: str, jpeg_quality: int,
                      workers: int) -> None:
    """Write the slide (and the masks whose path is given) of ``renderer`` to those paths.

    Files are written in place; the caller writes to temporary names and renames.
    """
    p = renderer.params
    t = p.tile_size
    sizes = level_sizes(p.width, p.height)

    def encode(rgb: NDArray[np.uint8]) -> bytes:
        return _jpeg(rgb, jpeg_quality)

    with ExitStack() as stack:
        pyramid = PyramidBuilder(sizes, t, renderer.background_rgb, encode, slide_path.parent)
        stack.callback(pyramid.close)
        bigtiff = p.width * p.height * 3 >= _BIGTIFF_BYTES
        slide = stack.enter_context(TiffWriter(slide_path, bigtiff=bigtiff))
        masks: list[_MaskPage] = []

        @stack.callback
        def _abort_masks() -> None:  # on any failure; a no-op for finished masks
            for mask in masks:
                mask.abort()

        for path, what in ((label_path, "labels: 0 glass, 1 normal tissue, 2 tumour"),
                           (nuclei_path, "nuclei: 1 nucleus, 0 otherwise")):
            if path is not None:
                masks.append(_MaskPage(path, p.width, p.height, t, p.mpp,
                                       f"pathloop synthetic slide {name}, {what}"))
        pool = stack.enter_context(ThreadPoolExecutor(workers)) if workers > 1 else None
        common: dict[str, Any] = dict(photometric="rgb", compression="jpeg",
                                      subsampling=(2, 2), metadata=None,
                                      resolutionunit="CENTIMETER", subfiletype=0)
        magnification = 10.0 / p.mpp
        slide.write(
            _level0(renderer, pyramid, masks, pool, encode, lookahead=4 * workers),
            shape=(p.height, p.width, 3), dtype=np.uint8, tile=(t, t),
            description=(f"{_HEADER}\r\n{p.width}x{p.height} [0,0 {p.width}x{p.height}] "
                         f"({t}x{t}) JPEG/RGB Q={jpeg_quality}|AppMag = {magnification:g}"
                         f"|MPP = {p.mpp:.6g}|Filename = {_safe(name)}"
                         f"|Stain = {_safe(p.stain.name)}|Seed = {p.seed}"),
            resolution=(1e4 / p.mpp, 1e4 / p.mpp), **common)
        for mask in masks:
            mask.finish()

        thumbnail = pyramid.smallest
        slide.write(thumbnail, description=(f"{_HEADER}\r\n{p.width}x{p.height} -> "
                                            f"{thumbnail.shape[1]}x{thumbnail.shape[0]} - "),
                    rowsperstrip=16, compressionargs={"level": 90},
                    resolution=_resolution(p.mpp, p.width, thumbnail.shape[1]), **common)
        for level, (width, height) in enumerate(sizes[1:], start=1):
            slide.write(pyramid.level_tiles(level), shape=(height, width, 3), dtype=np.uint8,
                        tile=(t, t),
                        description=(f"{_HEADER}\r\n{p.width}x{p.height} [0,0 {p.width}x"
                                     f"{p.height}] ({t}x{t}) -> {width}x{height} JPEG/RGB "
                                     f"Q={jpeg_quality}"),
                        resolution=_resolution(p.mpp, p.width, width), **common)


def _level0(renderer: TileRenderer, pyramid: PyramidBuilder, masks: list[_MaskPage],
            pool: ThreadPoolExecutor | None, encode: Encoder, lookahead: int) -> Iterator[bytes]:
    """Level-0 JPEG tiles, row-major; feeds the pyramid and the masks on the way."""
    t = renderer.tile_size
    glass_jpeg: bytes = encode(renderer.background_rgb)
    zero_mask: bytes = _constant_tile(0, t)
    with_masks = bool(masks)
    pending: deque[tuple[int, int, Future[_Tile] | _Tile | None]] = deque()

    def finish(column: int, row: int, job: Future[_Tile] | _Tile | None) -> bytes:
        if job is None:
            for mask in masks:
                mask.put(zero_mask)
            pyramid.add_tile(column, row, None, pyramid.glass_block, bare=True)
            return glass_jpeg
        tile: _Tile = job.result() if isinstance(job, Future) else job
        if with_masks:
            masks[0].put(tile.labels)
            masks[1].put(tile.nuclei)
        pyramid.add_tile(column, row, tile.rgb, tile.reduced, bare=False)
        return tile.jpeg

    for row in range(pyramid.rows0):
        for column in range(pyramid.columns0):
            x0, y0 = column * t, row * t
            job: Future[_Tile] | _Tile | None = None
            if not renderer.is_background(x0, y0):
                if pool is None:
                    job = _render(renderer, x0, y0, encode, with_masks)
                else:
                    job = pool.submit(_render, renderer, x0, y0, encode, with_masks)
            pending.append((column, row, job))
            while len(pending) > lookahead:
                yield finish(*pending.popleft())
    while pending:
        yield finish(*pending.popleft())


def _render(renderer: TileRenderer, x0: int, y0: int, encode: Encoder,
            with_masks: bool) -> _Tile:
    tile = renderer.render(x0, y0)
    labels = _deflate_labels(tile.labels) if with_masks else b""
    nuclei = _deflate(tile.nuclei) if with_masks else b""
    return _Tile(tile.rgb, reduce(tile.rgb), encode(tile.rgb), labels, nuclei)


def _jpeg(rgb: NDArray[np.uint8], quality: int) -> bytes:
    """JPEG as tifffile itself would write a tile: YCbCr, 4:2:0 subsampled."""
    return bytes(imagecodecs.jpeg_encode(rgb, level=quality, colorspace="RGB",
                                         outcolorspace="YCBCR", subsampling=(2, 2)))


def _deflate(mask: NDArray[np.uint8]) -> bytes:
    """A mask tile as TIFF's Adobe Deflate wants it (a zlib stream), via libdeflate."""
    return bytes(imagecodecs.deflate_encode(mask.tobytes(), level=_MASK_DEFLATE_LEVEL))


@functools.cache
def _constant_tile(value: int, size: int) -> bytes:
    return _deflate(np.full((size, size), value, dtype=np.uint8))


def _deflate_labels(labels: NDArray[np.uint8]) -> bytes:
    """Like :func:`_deflate`; the many tiles of a single label reuse one encoding."""
    first = int(labels[0, 0])
    if first == labels.min() == labels.max():
        return _constant_tile(first, labels.shape[0])
    return _deflate(labels)


def _resolution(mpp: float, width0: int, width: int) -> tuple[float, float]:
    """Pixels per cm of a level ``width`` px wide (level 0 is ``width0`` px at ``mpp``)."""
    per_cm = 1e4 / mpp * width / width0
    return per_cm, per_cm


def _safe(text: str) -> str:
    """Text fit for an Aperio description: ASCII, no field separator."""
    return text.encode("ascii", "replace").decode("ascii").replace("|", "_")
