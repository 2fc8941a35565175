"""Records of the store turned into the API's bodies."""

from __future__ import annotations

from pathloop.client.api import schemas
from pathloop.client.api.errors import without_paths
from pathloop.client.api.jobs import Job
from pathloop.client.store import CorrectionRecord, SlideRecord
from pathloop.client.usecases.review import PatchState
from pathloop.client.viewing.colours import Legend, label_colour
from pathloop.client.viewing.overlays import Overlay
from pathloop.client.wsi import DeepZoomGrid


def slide_summary(slide: SlideRecord, counts: dict[str, int]) -> schemas.SlideSummary:
    return schemas.SlideSummary(
        id=slide.id, name=slide.name, width=slide.width, height=slide.height, mpp=slide.mpp_x,
        vendor=slide.vendor, objective_power=slide.objective_power,
        worklist=schemas.WorklistCounts(**counts))


def deepzoom(slide: SlideRecord, grid: DeepZoomGrid) -> schemas.DeepZoomInfo:
    base = f"/api/slides/{slide.id}"
    return schemas.DeepZoomInfo(
        dzi_url=f"{base}/slide.dzi", url_template=base + "/dz/{level}/{col}_{row}.jpeg",
        tile_size=grid.tile_size, overlap=grid.overlap, format="jpeg", width=slide.width,
        height=slide.height, levels=grid.level_count)


def legend(value: Legend) -> schemas.Legend:
    return schemas.Legend(
        type=value.type, title=value.title, min=value.min, max=value.max,
        stops=[schemas.LegendStop(value=s.value, color=s.color) for s in value.stops],
        entries=[schemas.LegendEntry(value=e.value, label=e.label, color=e.color)
                 for e in value.entries])


def overlay(slide: SlideRecord, value: Overlay) -> schemas.OverlayInfo:
    return schemas.OverlayInfo(
        kind=value.kind.value, title=value.title, version=value.version,
        url_template=f"/api/slides/{slide.id}/overlays/{value.kind.value}"
                     "/{level}/{col}_{row}.png",
        legend=legend(value.legend))


def labels(names: tuple[str, ...]) -> list[schemas.LabelInfo]:
    return [schemas.LabelInfo(value=i, name=name, color="#000000" if i == 0 else
                              label_colour(i)) for i, name in enumerate(names)]


def worklist_item(state: PatchState, slide: SlideRecord) -> schemas.WorklistItem:
    patch = state.patch
    return schemas.WorklistItem(
        id=patch.id, slide_id=patch.slide_id, slide_name=slide.name,
        ranking_id=patch.ranking_id, rank=patch.rank, x=patch.x, y=patch.y,
        width=patch.width, height=patch.height, mpp=patch.mpp,
        mask_width=state.mask_shape[1], mask_height=state.mask_shape[0],
        score_mean=patch.score_mean, score_sum=patch.score_sum, status=patch.status,
        claimed_by=patch.claimed_by, claimed_at=patch.claimed_at, version=state.version)


def correction_version(record: CorrectionRecord) -> schemas.CorrectionVersion:
    data = record.data
    action = data.get("action", "edit")
    if action not in ("edit", "revert", "accept-prediction", "keep-annotation"):
        action = "edit"
    reverted_to = data.get("reverted_to")
    return schemas.CorrectionVersion(
        version=record.version, author=record.author, created_at=record.created_at,
        action=action, parent_version=record.parent_version,
        reverted_to=reverted_to if isinstance(reverted_to, int) else None,
        has_mask=record.raster_id is not None)


def job(value: Job) -> schemas.JobInfo:
    return schemas.JobInfo(
        id=value.id, kind=value.kind, slide_id=value.slide_id, user=value.user,
        state=value.state, done=value.done, total=value.total, message=value.message,
        error=without_paths(value.error) if value.error else None,  # shown to every role
        result=dict(value.result), created_at=value.created_at,
        started_at=value.started_at, finished_at=value.finished_at)
