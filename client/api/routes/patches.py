"""A worklist patch's correction: its mask, its versions, and the saves that add one
(edit, revert or withdraw, accept the prediction, keep the annotation).

A pathologist saves on patches nobody else claimed or corrected last; a reviewer on any
(:func:`~pathloop.client.api.dependencies.may_change_patch`; a refusal is 403 and audited).
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

from fastapi import APIRouter, Request, Response

from pathloop.client.api import convert, schemas
from pathloop.client.api.dependencies import (
    ERRORS,
    PNG,
    IdentityDep,
    Site,
    SiteDep,
    UserDep,
    may_change_patch,
    own_item,
    own_state,
)
from pathloop.client.api.params import PatchId, VersionQuery
from pathloop.client.api.roles import Identity
from pathloop.client.store import CorrectionRecord, Store
from pathloop.client.usecases import review
from pathloop.client.viewing.masks import decode_png, decode_rle, encode_png

router = APIRouter(prefix="/api/patches/{patch_id}", tags=["corrections"], responses=ERRORS)


@router.get("/mask", responses={200: PNG}, response_class=Response)
def get_mask(patch_id: PatchId, site: SiteDep, user: UserDep,
             source: review.MaskSource = "latest",
             version: VersionQuery = None) -> Response:
    """The patch's label mask (8-bit grey PNG, pixel = label)."""
    own_item(site, patch_id)
    mask = review.patch_mask(site.store, patch_id, source, version)
    return Response(encode_png(mask), media_type="image/png")


@router.get("/versions", response_model=list[schemas.CorrectionVersion])
def versions(patch_id: PatchId, site: SiteDep, user: UserDep
             ) -> list[schemas.CorrectionVersion]:
    """Every version of the patch's correction, oldest first."""
    own_item(site, patch_id)
    return [convert.correction_version(r)
            for r in review.patch_history(site.store, patch_id)]


@router.post("/versions", response_model=schemas.CorrectionVersion, status_code=201)
def save(patch_id: PatchId, body: schemas.SaveMask, request: Request, site: SiteDep,
         identity: IdentityDep) -> schemas.CorrectionVersion:
    """Save an edited mask as the next version (409 if ``base_version`` is stale)."""
    state = own_state(site, patch_id)
    may_change_patch(site, request, identity, state)
    n_labels = len(site.settings.federation.labels)
    if isinstance(body.mask, schemas.PngMask):
        mask = decode_png(body.mask.data, shape=state.mask_shape, n_labels=n_labels)
    else:
        mask = decode_rle(width=body.mask.width, height=body.mask.height,
                          values=body.mask.values, counts=body.mask.counts,
                          shape=state.mask_shape, n_labels=n_labels)
    record = review.save_patch_mask(site.store, patch_id, mask, author=identity.user,
                                    base_version=body.base_version)
    return _saved(site, state, record)


@router.post("/revert", response_model=schemas.CorrectionVersion, status_code=201)
def revert(patch_id: PatchId, body: schemas.Revert, request: Request, site: SiteDep,
           identity: IdentityDep) -> schemas.CorrectionVersion:
    """Save an earlier version again as the next one (0: withdraw the correction)."""
    return _append(site, request, patch_id, identity, body.base_version,
                   partial(review.revert_patch, to_version=body.to_version))


@router.post("/accept-prediction", response_model=schemas.CorrectionVersion, status_code=201)
def accept(patch_id: PatchId, body: schemas.Based, request: Request, site: SiteDep,
           identity: IdentityDep) -> schemas.CorrectionVersion:
    """Save the model's prediction under the patch as the next version."""
    return _append(site, request, patch_id, identity, body.base_version,
                   review.accept_prediction)


@router.post("/keep-annotation", response_model=schemas.CorrectionVersion, status_code=201)
def keep(patch_id: PatchId, body: schemas.Based, request: Request, site: SiteDep,
         identity: IdentityDep) -> schemas.CorrectionVersion:
    """Save the slide's existing annotation under the patch as the next version."""
    return _append(site, request, patch_id, identity, body.base_version,
                   review.keep_annotation)


class _Action(Protocol):
    """A review use case that appends a version to a patch's correction."""

    def __call__(self, store: Store, patch_id: PatchId, *, base_version: int, author: str
                 ) -> CorrectionRecord: ...


def _append(site: Site, request: Request, patch_id: PatchId, identity: Identity,
            base_version: int, action: _Action) -> schemas.CorrectionVersion:
    state = own_state(site, patch_id)
    may_change_patch(site, request, identity, state)
    return _saved(site, state, action(site.store, patch_id, base_version=base_version,
                                      author=identity.user))


def _saved(site: Site, state: review.PatchState, record: CorrectionRecord
           ) -> schemas.CorrectionVersion:
    site.tiles.forget_overlays(state.patch.slide_id)
    return convert.correction_version(record)
