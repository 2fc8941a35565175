"""Use cases of slides: describe, ingest, find, open again and tile.

``pathloop slides add|info`` and ``pathloop tile`` (and the site API's tile job). A slide is
read only from inside the configured slide roots; the store keeps its record, its tissue mask
raster and its tiles.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.settings import SiteSettings, TilingSettings
from pathloop.client.store import SlideRecord, Store, TilingRecord
from pathloop.client.tiling import Tile, TileGrid, compute_tissue_mask, iter_tissue_tiles
from pathloop.client.wsi import (
    Slide,
    SlideMetadata,
    open_slide,
    resolve_within_roots,
    sha256_of_file,
)

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with ``(done, total)`` as long work advances."""


@dataclass(frozen=True)
class IngestResult:
    """A slide after ingestion; ``created`` is False when it was already in the store."""

    slide: SlideRecord
    created: bool


@dataclass(frozen=True)
class TilingResult:
    """What tiling one slide did.

    Attributes
    ----------
    slide, tiling:
        The records written.
    grid_tiles:
        Tiles in the whole grid.
    candidates:
        Tiles on the tissue mask, read from the slide.
    kept:
        Tiles kept after the black/white rule (persisted).
    tissue_fraction:
        Fraction of the slide under the tissue mask.
    seconds:
        Wall time.
    """

    slide: SlideRecord
    tiling: TilingRecord
    grid_tiles: int
    candidates: int
    kept: int
    tissue_fraction: float
    seconds: float

    @property
    def dropped_background(self) -> int:
        """Tissue-mask tiles dropped as more than 70% black or white."""
        return self.candidates - self.kept


def describe_slide(settings: SiteSettings, path: Path, *, mpp: float | None = None
                   ) -> SlideMetadata:
    """Metadata of a slide file inside the slide roots (nothing is stored)."""
    resolved = resolve_within_roots(path, settings.slide_roots)
    with open_slide(resolved, mpp=mpp) as slide:
        return slide.metadata


def ingest_slide(settings: SiteSettings, store: Store, path: Path, *,
                 site_id: str | None = None, mpp: float | None = None) -> IngestResult:
    """Validate a slide file and record it in the store.

    The file must lie inside the configured slide roots, open, decode and have a resolution
    (its own or ``mpp``); otherwise a :class:`~pathloop.client.errors.SlideError` names the
    file and the reason and nothing is stored. Adding the same content twice returns the
    existing record.
    """
    resolved = resolve_within_roots(path, settings.slide_roots)
    with open_slide(resolved, mpp=mpp) as slide:
        metadata = slide.metadata
        metadata.mpp  # noqa: B018 - raises MissingResolutionError before anything is stored
    content_hash = sha256_of_file(resolved)
    record, created = store.add_slide(
        site_id=site_id or settings.site_id,
        content_hash=content_hash,
        name=resolved.name,
        path=str(resolved),
        width=metadata.width,
        height=metadata.height,
        mpp_x=metadata.mpp_x or metadata.mpp,
        mpp_y=metadata.mpp_y or metadata.mpp,
        mpp_source=metadata.mpp_source or "slide",
        vendor=metadata.vendor,
        objective_power=metadata.objective_power,
        level_count=metadata.level_count,
        metadata=metadata.summary(),
    )
    logger.info("slide %s %s as %s", resolved.name, "added" if created else "known", record.id)
    return IngestResult(record, created)


MAX_RECORD_ID = 2**63 - 1
"""The largest id the store's integer keys hold; a larger one names no record."""


def find_slide(store: Store, reference: str, *, site_id: str | None = None) -> SlideRecord:
    """A stored slide by id, content-hash prefix (≥ 8 characters) or file path."""
    if reference.isdigit():
        if int(reference) > MAX_RECORD_ID:
            raise RecordNotFoundError(f"slide {reference}: no such slide in the store")
        return store.get_slide(int(reference))
    matches = [s for s in store.list_slides(site_id)
               if (len(reference) >= 8 and s.content_hash.startswith(reference.lower()))
               or Path(s.path) == Path(reference).expanduser().resolve()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RecordNotFoundError(f"{reference}: no such slide in the store "
                                  "(add it with `pathloop slides add`)")
    raise RecordNotFoundError(f"{reference}: matches {len(matches)} slides; use the slide id")


def open_stored_slide(settings: SiteSettings, record: SlideRecord) -> Slide:
    """Open a stored slide's file again (roots re-checked, the user's µm/px re-applied)."""
    resolved = resolve_within_roots(record.path, settings.slide_roots)
    user_mpp = record.mpp_x if record.mpp_source == "user" else None
    return open_slide(resolved, mpp=user_mpp)


def tile_slide(settings: SiteSettings, store: Store, slide: SlideRecord, *,
               tiling: TilingSettings | None = None,
               progress: Progress | None = None) -> TilingResult:
    """Detect tissue, save the tissue mask raster, and persist the slide's tissue tiles.

    Tiles are streamed one at a time; the tiling and all its tile records are stored in one
    transaction, so a crash leaves the previous tiling in place and no partial one.
    ``progress`` is called with ``(read, candidates)`` after every tile read and once more
    right before anything is stored; it may raise to cancel, and nothing is stored then.
    """
    params = tiling or settings.tiling
    started = time.perf_counter()
    with open_stored_slide(settings, slide) as opened:
        meta = opened.metadata
        tissue = compute_tissue_mask(opened, mpp=params.thumbnail_mpp)
        grid = TileGrid(meta.width, meta.height, meta.mpp, params.mpp, params.tile_size,
                        params.step)
        seen = _Seen(progress)
        tiles = iter_tissue_tiles(opened, grid, tissue,
                                  min_tissue_fraction=params.min_tissue_fraction,
                                  max_background_fraction=params.max_background_fraction,
                                  progress=seen)
        # Read every tile before opening the write transaction, so the database is not
        # locked while pixels are decoded; the rows are kept compact (48 bytes a tile).
        rows = _TileRows.collect(tiles)
        if progress is not None:
            progress(seen.done, seen.total)  # the last moment a cancel leaves no trace
        store.rasters.save(tissue.mask.astype(np.uint8), slide.id, "tissue-mask",
                           mpp=tissue.mpp, downsample="mode")
        record = store.add_tiling(
            slide.id, mpp=params.mpp, tile_size=params.tile_size, stride=params.step,
            params={"thumbnail_mpp": tissue.mpp,
                    "min_tissue_fraction": params.min_tissue_fraction,
                    "max_background_fraction": params.max_background_fraction},
            tiles=rows.dicts(),
        )
    return TilingResult(slide, record, len(grid), seen.total, record.n_tiles,
                        tissue.tissue_fraction, time.perf_counter() - started)


class _Seen:
    """Remembers how many candidate tiles were read and forwards progress."""

    def __init__(self, progress: Progress | None) -> None:
        self.done = self.total = 0
        self._progress = progress

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self._progress is not None:
            self._progress(done, total)


class _TileRows:
    """Tile records packed in flat arrays (48 bytes a tile) until they are stored."""

    _INT = ("col", "row", "x", "y", "width", "height")
    _FLOAT = ("tissue_fraction", "background_fraction")

    def __init__(self) -> None:
        self._ints = array("q")
        self._floats = array("d")

    @classmethod
    def collect(cls, tiles: Iterator[Tile]) -> _TileRows:
        rows = cls()
        for tile in tiles:
            spec = tile.spec
            rows._ints.extend((spec.col, spec.row, spec.x, spec.y, spec.width, spec.height))
            rows._floats.extend((tile.tissue_fraction, tile.background_fraction))
        return rows

    def dicts(self) -> Iterator[dict[str, float | int]]:
        n_int, n_float = len(self._INT), len(self._FLOAT)
        for i in range(len(self._ints) // n_int):
            row: dict[str, float | int] = dict(
                zip(self._INT, self._ints[i * n_int:(i + 1) * n_int], strict=True))
            row.update(zip(self._FLOAT, self._floats[i * n_float:(i + 1) * n_float],
                           strict=True))
            yield row
