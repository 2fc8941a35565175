"""Frozen records the store hands out: plain values, never live ORM objects.

Every spatial field is in level-0 pixels of the slide unless its name says otherwise; every
resolution is in µm/px. Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

MppSource = Literal["slide", "user"]
"""Where a slide's µm/px came from: the file's metadata or a user's entry."""

PatchStatus = Literal["pending", "corrected", "skipped"]
"""Where a ranked patch stands in the pathologist's worklist."""

AdoptionOutcome = Literal["adopted", "refused", "held"]
"""A decision on a stored model version: made the site's current one, refused by the
held-out Dice gate, or held (kept, not current: waiting for the gate, or a federation
round's contribution)."""

Downsample = Literal["mean", "mode", "nearest"]
"""How a raster's pyramid levels are made: ``mean`` for float maps, ``mode`` or ``nearest``
for label masks."""


@dataclass(frozen=True, slots=True)
class SlideRecord:
    """A whole-slide image known to this site; its pixels and path never leave the site.

    Attributes
    ----------
    content_hash:
        SHA-256 of the slide's content, 64 lowercase hex digits; with ``site_id`` the
        slide's identity.
    width, height:
        Level-0 size in pixels.
    mpp_x, mpp_y:
        Level-0 resolution in µm/px; ``mpp_source`` says who gave it.
    metadata:
        Vendor properties worth keeping (JSON-compatible).
    """

    id: int
    site_id: str
    content_hash: str
    name: str
    path: Path
    vendor: str | None
    width: int
    height: int
    mpp_x: float
    mpp_y: float
    mpp_source: MppSource
    objective_power: float | None
    level_count: int
    metadata: dict[str, Any]
    added_at: datetime


@dataclass(frozen=True, slots=True)
class TilingRecord:
    """A grid of tiles cut from a slide at one resolution.

    Attributes
    ----------
    mpp:
        Resolution of the tiles in µm/px.
    tile_size, stride:
        Tile edge and step between tile origins, in pixels at ``mpp``.
    params:
        Tissue-detection parameters used (JSON-compatible).
    n_tiles:
        Number of tiles; the store guarantees exactly this many tile rows exist.
    """

    id: int
    slide_id: int
    mpp: float
    tile_size: int
    stride: int
    params: dict[str, Any]
    n_tiles: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TileRecord:
    """One tile of a tiling: grid position and level-0 box.

    ``x``, ``y``, ``width`` and ``height`` are level-0 pixels; the fractions are in [0, 1]
    (``None`` when the tiler did not measure them).
    """

    id: int
    tiling_id: int
    col: int
    row: int
    x: int
    y: int
    width: int
    height: int
    tissue_fraction: float | None
    background_fraction: float | None


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    """A model (or ensemble) version and where it came from.

    Attributes
    ----------
    kind:
        What the model is, e.g. ``"uga-ensemble"``, ``"ai2seg"``, ``"upgrade"``.
    parent_id:
        The version this one was trained from, if any.
    provenance:
        Lineage: rounds, sites, correction ids, hyper-parameters (JSON-compatible).
    weights_uri:
        Where the weights are kept (a local path or a URI), if anywhere.
    """

    id: int
    name: str
    kind: str
    parent_id: int | None
    provenance: dict[str, Any]
    weights_uri: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AdoptionRecord:
    """One decision on whether a model version is the site's current one.

    Attributes
    ----------
    model_version_id:
        The version decided on (the candidate).
    outcome:
        See :data:`AdoptionOutcome`; a version's newest decision is the one in force.
    dice, held_out:
        The candidate's pooled held-out Dice and the tiles it was scored on (``None`` and
        0 when it was not scored).
    current_id, current_dice:
        The version that was current when the decision was made, and its Dice on the same
        tiles (``None``: there was none, or it was not scored).
    margin:
        How much worse than ``current_dice`` the candidate was allowed to be.
    reason:
        Why, in words, for the site's operator.
    """

    id: int
    model_version_id: int
    kind: str
    outcome: AdoptionOutcome
    dice: float | None
    current_id: int | None
    current_dice: float | None
    margin: float | None
    held_out: int
    reason: str
    actor: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RankingRecord:
    """A ranking of a slide's patches by a strategy, with the model version it used."""

    id: int
    slide_id: int
    model_version_id: int | None
    strategy: str
    params: dict[str, Any]
    n_patches: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RankedPatchRecord:
    """One patch of a ranking: rank 1 is the most worth correcting.

    ``x``, ``y``, ``width`` and ``height`` are level-0 pixels; ``mpp`` is the resolution in
    µm/px the patch is shown and corrected at.
    """

    id: int
    ranking_id: int
    slide_id: int
    rank: int
    x: int
    y: int
    width: int
    height: int
    mpp: float
    score_sum: float
    score_mean: float
    status: PatchStatus
    claimed_by: str | None = None
    claimed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PatchBox:
    """Identifies the patch a correction is about: a slide, a level-0 box and a resolution.

    ``x``, ``y``, ``width`` and ``height`` are level-0 pixels; ``mpp`` is in µm/px.
    """

    slide_id: int
    x: int
    y: int
    width: int
    height: int
    mpp: float


@dataclass(frozen=True, slots=True)
class CorrectionRecord:
    """One version of a pathologist's correction of a patch; versions are never rewritten.

    Attributes
    ----------
    id:
        Id of this version's row.
    correction_id:
        Id of the patch's correction thread (shared by all its versions).
    version:
        1, 2, … contiguous per patch.
    parent_id, parent_version:
        The version this one was based on (``None`` for version 1).
    data:
        The correction itself (e.g. GeoJSON features), JSON-compatible.
    raster_id:
        A correction mask raster, if the correction has one.
    ranked_patch_id:
        The worklist entry that prompted this version, if any.
    """

    id: int
    correction_id: int
    patch: PatchBox
    version: int
    parent_id: int | None
    parent_version: int | None
    author: str
    data: dict[str, Any]
    raster_id: int | None
    ranked_patch_id: int | None
    created_at: datetime


InspectionSource = Literal["image-set", "slide-regions"]
"""What an inspection ran on: a set of images (one item per image) or a slide's regions."""

InstanceStateName = Literal["odd", "additional", "missing"]
"""An instance's AI²Seg state: annotated and predicted (odd), annotated only (additional),
predicted only (missing)."""


@dataclass(frozen=True, slots=True)
class InspectionRecord:
    """One AI²Seg inspection run; a new run is a new record, nothing is updated.

    Attributes
    ----------
    source:
        See :data:`InspectionSource`.
    model_version_id:
        The stored instance model it used, if it was recorded as a model version.
    params:
        How it ran: image folder or slide and annotation file, model folder or training
        profile, TTA transforms (JSON-compatible).
    alpha, gamma:
        The uncertainty weighting α and size scaling γ (both in [0, 1]) of the stored
        overall scores; any other pair is recomputed from the stored findings.
    n_items:
        Number of items (images or regions).
    """

    id: int
    name: str
    source: InspectionSource
    author: str
    model_version_id: int | None
    params: dict[str, Any]
    alpha: float
    gamma: float
    n_items: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InspectionItemRecord:
    """An inspected image or slide region.

    Attributes
    ----------
    name:
        The image's file name, or the region's name in the annotation file.
    x, y, width, height:
        The region's box in level-0 pixels of the slide (a whole image: its full size).
    mpp:
        Resolution in µm/px of the item's label rasters (the slide's level 0).
    annotation_raster_id, prediction_raster_id:
        ``(height, width)`` int32 instance label rasters covering the box (0 = background).
    overall:
        Mean instance score at the inspection's α and γ.
    """

    id: int
    inspection_id: int
    name: str
    slide_id: int
    x: int
    y: int
    width: int
    height: int
    mpp: float
    annotation_raster_id: int
    prediction_raster_id: int
    overall: float


@dataclass(frozen=True, slots=True)
class InstanceFindingRecord:
    """One instance of an inspected item: its state and what its score is computed from.

    Attributes
    ----------
    number:
        1..n within the item, the number the viewer draws.
    annotation_id, prediction_id:
        The instance's id in the annotation and prediction rasters (``None``: absent there).
    iou:
        IoU of the two (0 for ``additional`` and ``missing``).
    area:
        Pixels of the annotated instance (the predicted one's when ``missing``).
    certainty:
        In [0, 1], from the agreement of the test-time-augmented predictions.
    bbox:
        ``(x, y, width, height)`` around both instances, in pixels of the item's rasters.
    """

    item_id: int
    number: int
    state: InstanceStateName
    annotation_id: int | None
    prediction_id: int | None
    iou: float
    area: int
    certainty: float
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the append-only audit log.

    ``subject`` names what was acted on, as ``"<table>:<id>"`` (e.g. ``"slide:3"``).
    """

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RasterRecord:
    """A committed zarr raster (mask, prediction, uncertainty map…) of a slide.

    Attributes
    ----------
    kind:
        What it holds, e.g. ``"tissue-mask"``; with ``slide_id`` and ``version`` its identity.
    version:
        1, 2, … per (slide, kind); older versions stay readable.
    mpp:
        Resolution of level 0 of the raster in µm/px (level k is ``mpp * 2**k``).
    shape:
        Level-0 shape, ``(H, W)`` or ``(H, W, C)``.
    dtype:
        numpy dtype name, e.g. ``"uint8"``, ``"float16"``.
    path:
        Folder of the zarr group, relative to the raster root.
    levels:
        Number of pyramid levels.
    """

    id: int
    slide_id: int
    kind: str
    version: int
    mpp: float
    shape: tuple[int, ...]
    dtype: str
    path: str
    levels: int
    downsample: Downsample
    model_version_id: int | None
    created_at: datetime


__all__ = [
    "AdoptionOutcome",
    "AdoptionRecord",
    "AuditEvent",
    "CorrectionRecord",
    "Downsample",
    "InspectionItemRecord",
    "InspectionRecord",
    "InspectionSource",
    "InstanceFindingRecord",
    "InstanceStateName",
    "ModelVersionRecord",
    "MppSource",
    "PatchBox",
    "PatchStatus",
    "RankedPatchRecord",
    "RankingRecord",
    "RasterRecord",
    "SlideRecord",
    "TileRecord",
    "TilingRecord",
]
