"""Rasters in zarr v3: chunked, multiscale, written atomically, recorded in the database.

A raster (tissue mask, prediction, uncertainty map, correction mask…) is a zarr group holding
one array per pyramid level (``"0"``, ``"1"``, …) and OME-NGFF-like ``multiscales`` metadata.
Writing goes to a staging folder under the raster root; on commit the pyramid is built from
the stored level 0 block by block, the tree is fsynced and renamed into its final folder
``slide-<id>/<kind>/<time>-<token>.zarr``, and only then is the record inserted (with its audit
event). A crash at any point leaves every committed raster readable and no record pointing to
a partial one; :meth:`RasterStore.sweep` (run when the store opens) removes the leftovers.

Layout of the metadata (NGFF 0.5 places ``multiscales`` under ``ome``; unlike NGFF, an
``(H, W, C)`` raster keeps its channel axis last)::

    {"ome": {"version": "0.5", "multiscales": [{"name": kind, "axes": [...],
             "datasets": [{"path": "0", "coordinateTransformations":
                            [{"type": "scale", "scale": [mpp, mpp]}]}, ...],
             "type": "mean"}]},
     "pathloop": {"slide_id": 1, "kind": "tissue-mask", "mpp": 8.0, ..., "attributes": {...}}}
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np
import zarr
from numpy.typing import ArrayLike, DTypeLike, NDArray
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pathloop.client.errors import StoreError
from pathloop.client.store import raster_records
from pathloop.client.store.db import read_session, write_session
from pathloop.client.store.models import utcnow
from pathloop.client.store.pyramid import build_level, level_shapes, multiscales
from pathloop.client.store.records import Downsample, RasterRecord
from pathloop.client.store.staging import Staged, StagingArea

_KIND = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CHUNK = 512
"""Default chunk edge in pixels (chunks are ``CHUNK × CHUNK [× C]``)."""


@dataclass(frozen=True)
class OpenRaster:
    """Read access to a committed raster.

    Attributes
    ----------
    record:
        The raster's record.
    levels:
        One read-only zarr array per pyramid level, level 0 first; shapes ``(H_k, W_k[, C])``.
    mpps:
        Resolution of each level in µm/px (``record.mpp * 2**k``).
    attributes:
        The caller's attributes given when the raster was written.
    """

    record: RasterRecord
    levels: tuple[zarr.Array, ...]
    mpps: tuple[float, ...]
    attributes: dict[str, Any]

    def read(self, level: int = 0) -> NDArray[Any]:
        """A whole level as a numpy array (mind the memory on level 0 of a big raster)."""
        return np.asarray(self.levels[level][...])


class RasterWriter:
    """Writes one raster block by block, then publishes it atomically on :meth:`commit`.

    Use as a context manager: leaving the block normally commits, an exception aborts.
    """

    def __init__(
        self,
        rasters: RasterStore,
        staged: Staged,
        *,
        slide_id: int,
        kind: str,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        mpp: float,
        downsample: Downsample,
        chunk: int,
        model_version_id: int | None,
        attributes: Mapping[str, Any],
        actor: str,
    ) -> None:
        self._rasters = rasters
        self._staged = staged
        self._values: dict[str, Any] = {
            "slide_id": slide_id,
            "kind": kind,
            "mpp": mpp,
            "shape": shape,
            "dtype": dtype.name,
            "path": staged.final_relative,
            "downsample": downsample,
            "model_version_id": model_version_id,
        }
        self._attributes = dict(attributes)
        self._actor = actor
        self._chunk = chunk
        self._group = zarr.open_group(staged.folder, mode="w", zarr_format=3)
        self._base = self._create_level(0, shape, dtype)
        self._record: RasterRecord | None = None
        self._closed = False
        self._published = False

    @property
    def shape(self) -> tuple[int, ...]:
        """Level-0 shape, ``(H, W)`` or ``(H, W, C)``."""
        return tuple(self._values["shape"])

    @property
    def record(self) -> RasterRecord:
        """The committed record (after :meth:`commit`)."""
        if self._record is None:
            raise StoreError("the raster is not committed")
        return self._record

    def write_region(self, y: int, x: int, block: ArrayLike) -> None:
        """Write ``block`` (``(h, w[, C])``) at row ``y``, column ``x`` of level 0.

        Blocks aligned on the chunk grid are written fastest. The block is cast to the
        raster's dtype when numpy deems it the same kind (e.g. float64 into float16).

        Raises
        ------
        ValueError
            The block does not fit in the raster or has another kind of dtype.
        """
        self._check_open()
        data = np.asarray(block)
        dtype = self._base.dtype
        if not np.can_cast(data.dtype, dtype, casting="same_kind"):
            raise ValueError(f"cannot store {data.dtype} values in a {dtype} raster")
        height, width = data.shape[:2]
        if (
            data.ndim != len(self.shape)
            or data.shape[2:] != self.shape[2:]
            or y < 0
            or x < 0
            or y + height > self.shape[0]
            or x + width > self.shape[1]
        ):
            raise ValueError(f"block {data.shape} at ({y}, {x}) does not fit in {self.shape}")
        self._base[y : y + height, x : x + width] = data.astype(dtype, copy=False)

    def commit(self) -> RasterRecord:
        """Build the pyramid, publish the folder and record it; return the record."""
        self._check_open()
        self._closed = True
        staging = self._rasters.staging
        published = False
        try:
            shapes = level_shapes(self.shape)
            source = self._base
            for level, shape in enumerate(shapes[1:], start=1):
                target = self._create_level(level, shape, self._base.dtype)
                build_level(source, target, self._values["downsample"], block=2 * self._chunk)
                source = target
            self._group.attrs.update(self._metadata(len(shapes)))
            staging.publish(self._staged)
            published = True
            with write_session(self._rasters.engine) as session:
                record = raster_records.add(
                    session, {**self._values, "levels": len(shapes)}, actor=self._actor
                )
        except BaseException as error:
            staging.discard(self._staged, published=published)
            if isinstance(error, OSError):
                raise StoreError(f"raster {self._values['path']}: write failed: {error}") from error
            raise
        staging.release(self._staged)
        self._record = record
        return record

    def commit_in(self, session: Session) -> RasterRecord:
        """Build the pyramid and publish the folder, recording it in the caller's
        ``session`` (part of a bigger transaction, e.g. an inspection with its rasters).

        The reservation stays held: after the caller's transaction commits, call
        :meth:`release`; when it rolls back, :meth:`discard` (a crash in between leaves a
        folder that no record names, which the next sweep removes).
        """
        self._check_open()
        self._closed = True
        shapes = level_shapes(self.shape)
        try:
            source = self._base
            for level, shape in enumerate(shapes[1:], start=1):
                target = self._create_level(level, shape, self._base.dtype)
                build_level(source, target, self._values["downsample"], block=2 * self._chunk)
                source = target
            self._group.attrs.update(self._metadata(len(shapes)))
            self._rasters.staging.publish(self._staged)
        except BaseException as error:
            self._rasters.staging.discard(self._staged, published=False)
            if isinstance(error, OSError):
                raise StoreError(f"raster {self._values['path']}: write failed: {error}") from error
            raise
        self._published = True
        self._record = raster_records.add(
            session, {**self._values, "levels": len(shapes)}, actor=self._actor
        )
        return self._record

    def release(self) -> None:
        """Drop the reservation of a raster recorded by :meth:`commit_in` whose transaction
        committed."""
        self._rasters.staging.release(self._staged)

    def discard(self) -> None:
        """Remove a raster published by :meth:`commit_in` whose transaction rolled back."""
        self._rasters.staging.discard(self._staged, published=self._published)
        self._record = None

    def abort(self) -> None:
        """Drop everything written so far (nothing was recorded)."""
        if not self._closed:
            self._closed = True
            self._rasters.staging.discard(self._staged, published=False)

    def __enter__(self) -> RasterWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if not self._closed:
                self.commit()
        else:
            self.abort()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the raster writer is closed")

    def _create_level(self, level: int, shape: tuple[int, ...], dtype: Any) -> zarr.Array:
        chunks = (self._chunk, self._chunk, *shape[2:])
        return self._group.create_array(
            str(level), shape=shape, chunks=chunks, dtype=dtype, fill_value=0
        )

    def _metadata(self, n_levels: int) -> dict[str, Any]:
        own = {key: value for key, value in self._values.items() if key != "path"}
        own.update(shape=list(self.shape), written_at=utcnow().isoformat())
        own["attributes"] = self._attributes
        multiscale = multiscales(
            self._values["kind"],
            self._values["mpp"],
            self.shape,
            n_levels,
            self._values["downsample"],
        )
        return {"ome": {"version": "0.5", "multiscales": [multiscale]}, "pathloop": own}


class RasterStore:
    """The site's rasters: zarr groups under ``root`` recorded in the store's database.

    Built by :meth:`pathloop.client.store.Store.open` (available as ``store.rasters``), which
    also sweeps leftovers of crashed writers.

    Parameters
    ----------
    root:
        The raster folder (``SiteSettings.raster_dir``).
    engine:
        The store's database engine.
    """

    def __init__(self, root: Path, engine: Engine) -> None:
        self.root = root
        self.engine = engine
        self.staging = StagingArea(root)
        root.mkdir(parents=True, exist_ok=True)

    def create(
        self,
        slide_id: int,
        kind: str,
        *,
        shape: tuple[int, ...],
        dtype: DTypeLike,
        mpp: float,
        downsample: Downsample,
        chunk: int = CHUNK,
        model_version_id: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        actor: str = "system",
    ) -> RasterWriter:
        """Start writing a new version of a slide's raster; see :class:`RasterWriter`.

        Parameters
        ----------
        kind:
            What the raster holds, lowercase ``[a-z0-9._-]``, e.g. ``"tissue-mask"``.
        shape:
            Level-0 shape ``(H, W)`` or ``(H, W, C)``; unwritten pixels read as 0.
        dtype:
            Any numpy dtype zarr stores (``bool``, ``uint8``, ``float16``, ``float32``…).
        mpp:
            Level-0 resolution in µm/px.
        downsample:
            ``"mode"`` or ``"nearest"`` for label masks, ``"mean"`` for float maps.
        chunk:
            Chunk edge in pixels.
        attributes:
            JSON-compatible facts kept in the group's attributes.

        Raises
        ------
        RecordNotFoundError
            The slide or model version does not exist.
        ValueError
            A bad kind, shape, resolution or method.
        """
        if not _KIND.match(kind):
            raise ValueError(f"raster kind must match {_KIND.pattern}, got {kind!r}")
        shape = tuple(int(n) for n in shape)
        if len(shape) not in (2, 3) or min(shape) <= 0:
            raise ValueError(f"raster shape must be (H, W) or (H, W, C) > 0, got {shape}")
        if not mpp > 0 or chunk <= 0:
            raise ValueError(f"mpp and chunk must be positive, got {mpp}, {chunk}")
        if downsample not in ("mean", "mode", "nearest"):
            raise ValueError(f"unknown downsampling method {downsample!r}")
        with read_session(self.engine) as session:
            raster_records.check_owner(session, slide_id, model_version_id)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        final = f"slide-{slide_id}/{kind}/{stamp}-{uuid.uuid4().hex[:12]}.zarr"
        staged = self.staging.reserve(final)
        try:
            return RasterWriter(
                self,
                staged,
                slide_id=slide_id,
                kind=kind,
                shape=shape,
                dtype=np.dtype(dtype),
                mpp=float(mpp),
                downsample=downsample,
                chunk=chunk,
                model_version_id=model_version_id,
                attributes=attributes or {},
                actor=actor,
            )
        except BaseException:
            self.staging.discard(staged, published=False)
            raise

    def save(
        self,
        array: ArrayLike,
        slide_id: int,
        kind: str,
        *,
        mpp: float,
        downsample: Downsample,
        chunk: int = CHUNK,
        model_version_id: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        actor: str = "system",
    ) -> RasterRecord:
        """Write a whole in-memory array (``(H, W)`` or ``(H, W, C)``) as a new raster version.

        Parameters are those of :meth:`create`; the dtype is the array's.
        """
        data = np.asarray(array)
        writer = self.create(
            slide_id,
            kind,
            shape=data.shape,
            dtype=data.dtype,
            mpp=mpp,
            downsample=downsample,
            chunk=chunk,
            model_version_id=model_version_id,
            attributes=attributes,
            actor=actor,
        )
        with writer:
            writer.write_region(0, 0, data)
        return writer.record

    def save_in(
        self,
        session: Session,
        array: ArrayLike,
        slide_id: int,
        kind: str,
        *,
        mpp: float,
        downsample: Downsample,
        attributes: Mapping[str, Any] | None = None,
        actor: str = "system",
    ) -> RasterWriter:
        """Write a whole in-memory array as a new raster version recorded in ``session``.

        Returns the writer, committed in ``session`` (its record is ``writer.record``): the
        caller calls ``writer.release()`` once its transaction commits, ``writer.discard()``
        when it does not (see :meth:`RasterWriter.commit_in`).
        """
        data = np.asarray(array)
        writer = self.create(slide_id, kind, shape=data.shape, dtype=data.dtype, mpp=mpp,
                             downsample=downsample, attributes=attributes, actor=actor)
        try:
            writer.write_region(0, 0, data)
        except BaseException:
            writer.abort()
            raise
        writer.commit_in(session)
        return writer

    def open_raster(self, raster: RasterRecord | int) -> OpenRaster:
        """Read access to a committed raster, given its record or id."""
        record = raster if isinstance(raster, RasterRecord) else self.get(raster)
        folder = self.root / record.path
        try:
            group = zarr.open_group(folder, mode="r", zarr_format=3)
            levels = [group[str(k)] for k in range(record.levels)]
        except (FileNotFoundError, KeyError) as error:
            raise StoreError(f"raster {record.id}: {folder} is missing or damaged") from error
        arrays = tuple(level for level in levels if isinstance(level, zarr.Array))
        if len(arrays) != record.levels or arrays[0].shape != record.shape:
            raise StoreError(f"raster {record.id}: {folder} does not match its record")
        own = cast(dict[str, Any], group.attrs.get("pathloop", {}))
        return OpenRaster(
            record=record,
            levels=arrays,
            mpps=tuple(record.mpp * 2**k for k in range(record.levels)),
            attributes=dict(own.get("attributes", {})),
        )

    def get(self, raster_id: int) -> RasterRecord:
        """The record of a raster, or :class:`RecordNotFoundError`."""
        with read_session(self.engine) as session:
            return raster_records.get(session, raster_id)

    def latest(self, slide_id: int, kind: str) -> RasterRecord | None:
        """The newest version of a slide's raster of this kind, if any."""
        with read_session(self.engine) as session:
            return raster_records.latest(session, slide_id, kind)

    def list_rasters(self, slide_id: int, kind: str | None = None) -> list[RasterRecord]:
        """A slide's rasters (of one kind when given), by kind then version."""
        with read_session(self.engine) as session:
            return raster_records.all_of(session, slide_id, kind)

    def sweep(self) -> int:
        """Remove leftovers of writers that died; return how many were found."""

        def is_recorded(path: str) -> bool:
            with read_session(self.engine) as session:
                return raster_records.is_recorded(session, path)

        return self.staging.sweep(is_recorded)
