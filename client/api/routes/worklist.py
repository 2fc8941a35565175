"""``/api/worklist`` and a patch's place in it: read, claim, release, skip."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from pathloop.client.api import convert, schemas
from pathloop.client.api.dependencies import ERRORS, SiteDep, UserDep, own_item, own_slide
from pathloop.client.api.params import PatchId, SlideFilter
from pathloop.client.usecases import review

router = APIRouter(prefix="/api", tags=["worklist"], responses=ERRORS)


@router.get("/worklist", response_model=list[schemas.WorklistItem])
def worklist(site: SiteDep, user: UserDep, slide_id: SlideFilter = None,
             status: Literal["pending", "corrected", "skipped"] | None = None,
             ) -> list[schemas.WorklistItem]:
    """The newest ranking's patches of each slide (or one), best first."""
    slides = ([own_slide(site, slide_id)] if slide_id is not None
              else site.store.list_slides(site.settings.site_id))
    items = []
    for slide in slides:
        ranking = site.store.latest_ranking(slide.id)
        if ranking is None:
            continue
        for patch in site.store.ranked_patches(ranking.id, status):
            items.append(convert.worklist_item(review.patch_state(site.store, patch.id),
                                               slide))
    return items


@router.get("/patches/{patch_id}", response_model=schemas.WorklistItem)
def get_patch(patch_id: PatchId, site: SiteDep, user: UserDep) -> schemas.WorklistItem:
    """One worklist patch."""
    return own_item(site, patch_id)


@router.post("/patches/{patch_id}/claim", response_model=schemas.WorklistItem)
def claim(patch_id: PatchId, site: SiteDep, user: UserDep,
          body: schemas.Claim | None = None) -> schemas.WorklistItem:
    """Take the patch (409 when someone else holds it, unless ``force``)."""
    own_item(site, patch_id)
    site.store.claim_patch(patch_id, user, force=bool(body and body.force))
    return own_item(site, patch_id)


@router.post("/patches/{patch_id}/release", response_model=schemas.WorklistItem)
def release(patch_id: PatchId, site: SiteDep, user: UserDep) -> schemas.WorklistItem:
    """Give the patch back."""
    own_item(site, patch_id)
    site.store.release_patch(patch_id, user)
    return own_item(site, patch_id)


@router.post("/patches/{patch_id}/skip", response_model=schemas.WorklistItem)
def skip(patch_id: PatchId, site: SiteDep, user: UserDep) -> schemas.WorklistItem:
    """Leave the patch out of the worklist."""
    own_item(site, patch_id)
    review.skip_patch(site.store, patch_id, author=user)
    return own_item(site, patch_id)
