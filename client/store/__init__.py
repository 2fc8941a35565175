"""The local store of a site node: records in SQLite/PostgreSQL, rasters in zarr v3.

Open it once at the edge and pass it down::

    with Store.open(settings) as store:
        slide, created = store.add_slide(content_hash=..., name=..., path=..., ...)
        tiling = store.add_tiling(slide.id, mpp=1.0, tile_size=256, stride=256, tiles=grid)
        with store.rasters.create(slide.id, "tissue-mask", shape=(h, w), dtype="uint8",
                                  mpp=8.0, downsample="mode") as writer:
            writer.write_region(0, 0, block)

Everything handed out is a frozen record (:mod:`pathloop.client.store.records`); the schema
is made only by the Alembic migrations, applied when the store opens.
"""

from pathloop.client.store.rasters import OpenRaster, RasterStore, RasterWriter
from pathloop.client.store.records import (
    AdoptionOutcome,
    AdoptionRecord,
    AuditEvent,
    CorrectionRecord,
    Downsample,
    InspectionItemRecord,
    InspectionRecord,
    InspectionSource,
    InstanceFindingRecord,
    InstanceStateName,
    ModelVersionRecord,
    MppSource,
    PatchBox,
    PatchStatus,
    RankedPatchRecord,
    RankingRecord,
    RasterRecord,
    SlideRecord,
    TileRecord,
    TilingRecord,
)
from pathloop.client.store.store import InspectionItemInput, Store

__all__ = [
    "AdoptionOutcome",
    "AdoptionRecord",
    "AuditEvent",
    "CorrectionRecord",
    "Downsample",
    "InspectionItemInput",
    "InspectionItemRecord",
    "InspectionRecord",
    "InspectionSource",
    "InstanceFindingRecord",
    "InstanceStateName",
    "ModelVersionRecord",
    "MppSource",
    "OpenRaster",
    "PatchBox",
    "PatchStatus",
    "RankedPatchRecord",
    "RankingRecord",
    "RasterRecord",
    "RasterStore",
    "RasterWriter",
    "SlideRecord",
    "Store",
    "TileRecord",
    "TilingRecord",
]
