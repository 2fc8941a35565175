"""Bounded path and query parameters: record ids and tile indices the service can hold.

The store keeps ids as signed 64-bit integers (SQLite and PostgreSQL alike): an id beyond
that range in a URL made the database driver raise, a 500, where the caller deserves to hear
what was wrong. Every id and index a route takes is bounded here, so an out-of-range value is
refused with a 422 that names the parameter before any route code runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ID = 2**63 - 1
"""Largest record id: the store's integers are signed 64-bit."""
MAX_TILE_INDEX = 2**31 - 1
"""Largest Deep Zoom level, column or row accepted (in magnitude): far beyond any slide's
grid, and small enough that index × tile size stays well inside 64 bits. Within it, a tile
outside the pyramid (a negative index too) is a 404."""

SlideId = Annotated[int, Path(ge=1, le=MAX_ID, description="a slide of this site")]
PatchId = Annotated[int, Path(ge=1, le=MAX_ID, description="a worklist patch of this site")]
TileIndex = Annotated[int, Path(ge=-MAX_TILE_INDEX, le=MAX_TILE_INDEX)]
SlideFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="only this slide")]
InspectionId = Annotated[int, Path(ge=1, le=MAX_ID, description="an inspection run")]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="an item of the inspection")]
WeightQuery = Annotated[float | None, Query(ge=0.0, le=1.0,
                                            description="in [0, 1]; default the run's")]
InstanceQuery = Annotated[int | None, Query(ge=1, le=MAX_ID,
                                            description="the selected instance's number")]
VersionQuery = Annotated[int | None, Query(ge=0, le=MAX_ID,
                                           description="a correction version; default latest")]

__all__ = ["MAX_ID", "MAX_TILE_INDEX", "InspectionId", "InstanceQuery", "ItemId", "PatchId",
           "SlideFilter", "SlideId", "TileIndex", "VersionQuery", "WeightQuery"]
