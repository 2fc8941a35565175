"""``/api/worklist`` and a patch's place in it: read, claim, release, skip.

Any role reads, and claims a patch nobody holds; taking over another's claim (``force``),
and releasing or skipping a patch another user claimed or corrected, need a reviewer.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request

from pathloop.client.api import convert, schemas
from pathloop.client.api.dependencies import (
    ERRORS,
    IdentityDep,
    SiteDep,
    UserDep,
    deny,
    may_change_patch,
    own_item,
    own_slide,
    own_state,
)
from pathloop.client.api.params import PatchId, SlideFilter
from pathloop.client.api.roles import Role
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
def claim(patch_id: PatchId, request: Request, site: SiteDep, identity: IdentityDep,
          body: schemas.Claim | None = None) -> schemas.WorklistItem:
    """Take the patch (409 when someone else holds it; ``force`` takes it over: reviewer)."""
    own_item(site, patch_id)
    force = bool(body and body.force)
    if force and not identity.role.includes(Role.REVIEWER):
        deny(site, request, identity, subject=f"ranked_patch:{patch_id}",
             reason="taking over another's claim needs the reviewer role",
             details={"needs": Role.REVIEWER.value})
    site.store.claim_patch(patch_id, identity.user, force=force)
    return own_item(site, patch_id)


@router.post("/patches/{patch_id}/release", response_model=schemas.WorklistItem)
def release(patch_id: PatchId, request: Request, site: SiteDep, identity: IdentityDep
            ) -> schemas.WorklistItem:
    """Give the patch back (a reviewer may release another user's claim)."""
    state = own_state(site, patch_id)
    may_change_patch(site, request, identity, state, correction=False)
    site.store.release_patch(patch_id, identity.user,
                             force=identity.role.includes(Role.REVIEWER))
    return own_item(site, patch_id)


@router.post("/patches/{patch_id}/skip", response_model=schemas.WorklistItem)
def skip(patch_id: PatchId, request: Request, site: SiteDep, identity: IdentityDep
         ) -> schemas.WorklistItem:
    """Leave the patch out of the worklist."""
    state = own_state(site, patch_id)
    may_change_patch(site, request, identity, state)
    review.skip_patch(site.store, patch_id, author=identity.user)
    return own_item(site, patch_id)
