"""The site API's request and response bodies (its OpenAPI schema is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pathloop.client.api.params import MAX_ID
from pathloop.client.viewing.masks import MAX_MASK_PIXELS


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(_Body):
    status: Literal["ok"]
    site_id: str
    version: str


Role = Literal["pathologist", "reviewer", "operator", "admin"]


class Me(_Body):
    user: str
    role: Role


class WorklistCounts(_Body):
    pending: int = 0
    corrected: int = 0
    skipped: int = 0


class SlideSummary(_Body):
    id: int
    name: str
    width: int
    height: int
    mpp: float
    vendor: str | None
    objective_power: float | None
    worklist: WorklistCounts


class DeepZoomInfo(_Body):
    dzi_url: str
    url_template: str = Field(description="with {level}, {col} and {row} to fill in")
    tile_size: int
    overlap: int
    format: Literal["jpeg"]
    width: int
    height: int
    levels: int


class LegendStop(_Body):
    value: float
    color: str


class LegendEntry(_Body):
    value: int
    label: str
    color: str


class Legend(_Body):
    type: Literal["continuous", "categorical"]
    title: str
    min: float | None
    max: float | None
    stops: list[LegendStop]
    entries: list[LegendEntry]


class OverlayInfo(_Body):
    kind: Literal["tissue", "prediction", "uncertainty", "annotation", "corrections"]
    title: str
    url_template: str
    version: str = Field(description="changes whenever the overlay's content does")
    legend: Legend


class LabelInfo(_Body):
    value: int
    name: str
    color: str


class SlideDetail(SlideSummary):
    deepzoom: DeepZoomInfo
    overlays: list[OverlayInfo]
    labels: list[LabelInfo]


class WorklistItem(_Body):
    id: int
    slide_id: int
    slide_name: str
    ranking_id: int
    rank: int
    x: int
    y: int
    width: int
    height: int
    mpp: float
    mask_width: int
    mask_height: int
    score_mean: float
    score_sum: float
    status: Literal["pending", "corrected", "skipped"]
    claimed_by: str | None
    claimed_at: datetime | None
    version: int = Field(description="latest correction version; 0: never corrected")


class CorrectionVersion(_Body):
    version: int
    author: str
    created_at: datetime
    action: Literal["edit", "revert", "accept-prediction", "keep-annotation"]
    parent_version: int | None
    reverted_to: int | None
    has_mask: bool


class PngMask(_Body):
    format: Literal["png"]
    data: str = Field(description="base64 of an 8-bit grey PNG; pixel value = label")


class RleMask(_Body):
    format: Literal["rle"]
    width: int = Field(ge=1, le=8192)
    height: int = Field(ge=1, le=8192)
    values: list[Annotated[int, Field(ge=0, le=255)]] = Field(
        max_length=MAX_MASK_PIXELS, description="label of each run, row-major")
    counts: list[Annotated[int, Field(ge=1, le=MAX_MASK_PIXELS)]] = Field(
        max_length=MAX_MASK_PIXELS,
        description="length of each run; they add up to width×height")


class SaveMask(_Body):
    base_version: int = Field(ge=0, le=MAX_ID, description="the version the edit started from")
    mask: Annotated[PngMask | RleMask, Field(discriminator="format")]


class Revert(_Body):
    base_version: int = Field(ge=0, le=MAX_ID)
    to_version: int = Field(ge=0, le=MAX_ID, description="0: back to no correction")


class Based(_Body):
    base_version: int = Field(ge=0, le=MAX_ID)


class Claim(_Body):
    force: bool = False


class InspectionSummary(_Body):
    id: int
    name: str
    created_at: datetime
    source: Literal["image-set", "slide-regions"]
    n_items: int
    alpha: float = Field(description="the run's uncertainty weighting α, the default")
    gamma: float = Field(description="the run's size scaling γ, the default")


class Box(_Body):
    x: int
    y: int
    width: int
    height: int


InspectionDecision = Literal["keep-annotation", "accept-prediction", "re-annotate"]


class InspectionItem(_Body):
    id: int
    inspection_id: int
    name: str = Field(description="the image's file name or the region's name")
    slide_id: int
    slide_name: str
    box: Box = Field(description="level-0 pixels of the slide")
    mpp: float
    overall: float = Field(description="mean instance score at the asked α and γ")
    n_instances: int
    n_suspect: int = Field(description="instances whose score is at least 0.5")
    decision: InspectionDecision | None = Field(description="latest decision on the item")
    version: int = Field(description="latest correction version of the item's box: the "
                                     "base_version of the next decision")


class InspectionInstance(_Body):
    number: int
    state: Literal["odd", "additional", "missing"]
    score: float
    iou: float
    area: int
    certainty: float
    suspect: bool
    bbox: Box = Field(description="pixels of the item's views (x, y from its top-left)")
    decision: InspectionDecision | None


class InspectionItemDetail(InspectionItem):
    instances: list[InspectionInstance]


class InspectionDecisionRequest(_Body):
    decision: InspectionDecision
    instance: int | None = Field(None, ge=1, le=MAX_ID,
                                 description="an instance number; none: the whole item")
    base_version: int | None = Field(None, ge=0, le=MAX_ID,
                                     description="the version the decision was based on")


class InspectionDecisionSaved(_Body):
    correction_id: int
    version: int


class JobRequest(_Body):
    kind: Literal["tile", "predict", "rank", "train", "inspect"]
    slide_id: int | None = Field(None, ge=1, le=MAX_ID)
    params: dict[str, Any] = Field(default_factory=dict)


class JobInfo(_Body):
    id: str
    kind: Literal["tile", "predict", "rank", "train", "inspect"]
    slide_id: int | None
    user: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    done: int
    total: int
    message: str
    error: str | None
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TokenUser(_Body):
    user: str
    role: Role


class NewToken(_Body):
    user: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    role: Role = "pathologist"


class IssuedToken(_Body):
    user: str
    role: Role
    token: str = Field(description="shown this once; only its hash is kept")


class RevokedTokens(_Body):
    user: str
    revoked: int


class ErrorBody(_Body):
    detail: str
    kind: str
