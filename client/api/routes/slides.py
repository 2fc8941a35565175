"""``/api/slides``: the site's slides with their worklist counts, overlays and labels."""

from __future__ import annotations

from fastapi import APIRouter, Request

from pathloop.client.api import convert, schemas
from pathloop.client.api.dependencies import ERRORS, IdentityDep, SiteDep, UserDep, viewed_slide
from pathloop.client.api.params import SlideId
from pathloop.client.store import SlideRecord, Store

router = APIRouter(prefix="/api/slides", tags=["slides"])


@router.get("", response_model=list[schemas.SlideSummary])
def list_slides(site: SiteDep, user: UserDep) -> list[schemas.SlideSummary]:
    """The site's slides, in the order they were added."""
    return [convert.slide_summary(slide, _counts(site.store, slide))
            for slide in site.store.list_slides(site.settings.site_id)]


@router.get("/{slide_id}", response_model=schemas.SlideDetail, responses=ERRORS)
def get_slide(slide_id: SlideId, request: Request, site: SiteDep, identity: IdentityDep
              ) -> schemas.SlideDetail:
    """A slide with its Deep Zoom pyramid, overlays and labels (the read is audited)."""
    slide = viewed_slide(site, request, identity, slide_id)
    overlays = site.tiles.overlays(slide, fresh=True)
    summary = convert.slide_summary(slide, _counts(site.store, slide))
    return schemas.SlideDetail(
        **summary.model_dump(), deepzoom=convert.deepzoom(slide, site.tiles.grid(slide)),
        overlays=[convert.overlay(slide, o) for o in overlays.overlays],
        labels=convert.labels(site.settings.federation.labels))


def _counts(store: Store, slide: SlideRecord) -> dict[str, int]:
    ranking = store.latest_ranking(slide.id)
    counts = {"pending": 0, "corrected": 0, "skipped": 0}
    if ranking is not None:
        for patch in store.ranked_patches(ranking.id):
            counts[patch.status] += 1
    return counts
