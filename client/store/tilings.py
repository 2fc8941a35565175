"""Tilings and their tiles: a tiling and all of its tiles are committed together or not at all.

Tiles are inserted with Core ``insert()`` and executemany over plain dicts, in batches, so a
tiling of ~200,000 tiles takes seconds, never one ORM object per tile; memory is bounded by
one batch whatever the number of tiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, cast

from sqlalchemy import Engine, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.store import audit, slides
from pathloop.client.store.db import read_session
from pathloop.client.store.models import Tile, Tiling, utcnow
from pathloop.client.store.records import TileRecord, TilingRecord

_BATCH = 10_000
_REQUIRED = ("col", "row", "x", "y", "width", "height")
_OPTIONAL = ("tissue_fraction", "background_fraction")
_Row = tuple[Any, ...]
# In TileRecord's field order.
_TILE_COLUMNS = (
    Tile.id,
    Tile.tiling_id,
    Tile.col,
    Tile.row,
    Tile.x,
    Tile.y,
    Tile.width,
    Tile.height,
    Tile.tissue_fraction,
    Tile.background_fraction,
)


def add(
    session: Session,
    slide_id: int,
    *,
    mpp: float,
    tile_size: int,
    stride: int,
    params: Mapping[str, Any] | None,
    tiles: Iterable[Mapping[str, Any] | object],
    actor: str,
) -> TilingRecord:
    """Insert a tiling and stream its tiles into it, in ``session``'s transaction.

    Parameters
    ----------
    tiles:
        Mappings or objects (e.g. ``TileSpec``) with ``col``, ``row``, ``x``, ``y``,
        ``width``, ``height`` (level-0 pixels) and optionally ``tissue_fraction`` and
        ``background_fraction``; consumed once, lazily.

    Raises
    ------
    RecordNotFoundError
        The slide does not exist.
    ValueError
        A parameter is not positive or a tile lacks a field.
    """
    if not (mpp > 0 and tile_size > 0 and stride > 0):
        raise ValueError(f"mpp, tile_size, stride must be positive: {mpp}, {tile_size}, {stride}")
    slides.require(session, slide_id)
    tiling_id = session.execute(
        insert(Tiling)
        .values(
            slide_id=slide_id,
            mpp=mpp,
            tile_size=tile_size,
            stride=stride,
            params=dict(params or {}),
            n_tiles=0,
            created_at=utcnow(),
        )
        .returning(Tiling.id)
    ).scalar_one()
    rows = (_tile_row(tiling_id, tile) for tile in tiles)
    n_tiles = 0
    connection = session.connection()
    while batch := list(islice(rows, _BATCH)):
        try:
            connection.execute(insert(Tile), batch)
        except IntegrityError:
            raise ValueError(f"tiling of slide {slide_id}: two tiles share a (row, col)") from None
        n_tiles += len(batch)
    session.execute(update(Tiling).where(Tiling.id == tiling_id).values(n_tiles=n_tiles))
    audit.append(
        session,
        actor=actor,
        action="tiling.add",
        subject=audit.subject("tiling", tiling_id),
        details={"slide_id": slide_id, "mpp": mpp, "tile_size": tile_size, "n_tiles": n_tiles},
    )
    return get(session, tiling_id)


def _tile_row(tiling_id: int, tile: Mapping[str, Any] | object) -> dict[str, Any]:
    row: dict[str, Any] = {"tiling_id": tiling_id}
    if isinstance(tile, Mapping):
        try:
            for key in _REQUIRED:
                row[key] = int(tile[key])
        except KeyError as missing:
            raise ValueError(f"tile {tile!r} lacks {missing}") from None
        for key in _OPTIONAL:
            value = tile.get(key)
            row[key] = None if value is None else float(value)
    else:
        try:
            for key in _REQUIRED:
                row[key] = int(getattr(tile, key))
        except AttributeError as error:
            raise ValueError(f"tile {tile!r} lacks a field: {error}") from None
        for key in _OPTIONAL:
            value = getattr(tile, key, None)
            row[key] = None if value is None else float(value)
    return row


def get(session: Session, tiling_id: int) -> TilingRecord:
    """The tiling with this id, or :class:`RecordNotFoundError`."""
    row = session.get(Tiling, tiling_id)
    if row is None:
        raise RecordNotFoundError(f"tiling {tiling_id} not found")
    return to_record(row)


def latest(
    session: Session, slide_id: int, *, mpp: float | None = None, tile_size: int | None = None
) -> TilingRecord | None:
    """The newest tiling of a slide (at ``mpp`` and ``tile_size`` when given), if any."""
    slides.require(session, slide_id)
    query = select(Tiling).where(Tiling.slide_id == slide_id)
    if mpp is not None:
        query = query.where(Tiling.mpp == mpp)
    if tile_size is not None:
        query = query.where(Tiling.tile_size == tile_size)
    row = session.scalars(query.order_by(Tiling.id.desc()).limit(1)).one_or_none()
    return None if row is None else to_record(row)


def iter_tiles(engine: Engine, tiling_id: int, batch: int = _BATCH) -> Iterator[TileRecord]:
    """Stream a tiling's tiles in row-major order, one short read transaction per batch.

    Tilings are immutable once committed, so paging by (row, col) sees a consistent set and no
    connection stays checked out while the caller works on a batch.

    Raises
    ------
    RecordNotFoundError
        No tiling has this id (raised at once, not on the first ``next``).
    """
    with read_session(engine) as session:
        get(session, tiling_id)
    return _pages(engine, tiling_id, batch)


def _pages(engine: Engine, tiling_id: int, batch: int) -> Iterator[TileRecord]:
    last: tuple[int, int] | None = None
    while True:
        query = select(*_TILE_COLUMNS).where(Tile.tiling_id == tiling_id)
        if last is not None:
            query = query.where(tuple_(Tile.row, Tile.col) > tuple_(*last))
        query = query.order_by(Tile.row, Tile.col).limit(batch)
        with read_session(engine) as session:
            rows = [TileRecord(*cast(_Row, values)) for values in session.execute(query)]
        yield from rows
        if len(rows) < batch:
            return
        last = (rows[-1].row, rows[-1].col)


def to_record(row: Tiling) -> TilingRecord:
    """The frozen record of a tiling row."""
    return TilingRecord(
        id=row.id,
        slide_id=row.slide_id,
        mpp=row.mpp,
        tile_size=row.tile_size,
        stride=row.stride,
        params=dict(row.params),
        n_tiles=row.n_tiles,
        created_at=row.created_at,
    )
