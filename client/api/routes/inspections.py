"""``/api/inspections``: AI²Seg runs, their items by score at any α and γ, the three views
of an item, and decisions on items and instances.

Any role reads. A decision is a correction version of the item's box: a pathologist decides
on items whose latest decision is nobody else's, a reviewer on any (as the worklist's
patches; a refusal is 403 and audited). A stale ``base_version`` is a 409.
"""

from __future__ import annotations

import io
from typing import Literal

from fastapi import APIRouter, Request, Response
from PIL import Image

from pathloop.client.api import schemas
from pathloop.client.api.dependencies import (
    ERRORS,
    PNG,
    IdentityDep,
    Site,
    SiteDep,
    UserDep,
    deny,
    own_slide,
)
from pathloop.client.api.params import InspectionId, InstanceQuery, ItemId, WeightQuery
from pathloop.client.api.roles import patch_change_refusal
from pathloop.client.store import PatchBox
from pathloop.client.usecases import quality

router = APIRouter(prefix="/api/inspections", tags=["inspections"], responses=ERRORS)


@router.get("", response_model=list[schemas.InspectionSummary])
def list_inspections(site: SiteDep, user: UserDep) -> list[schemas.InspectionSummary]:
    """Every inspection run, newest first."""
    return [schemas.InspectionSummary(id=r.id, name=r.name, created_at=r.created_at,
                                      source=r.source, n_items=r.n_items, alpha=r.alpha,
                                      gamma=r.gamma)
            for r in site.store.list_inspections()]


@router.get("/{inspection_id}/items", response_model=list[schemas.InspectionItem])
def items(inspection_id: InspectionId, site: SiteDep, user: UserDep,
          alpha: WeightQuery = None, gamma: WeightQuery = None
          ) -> list[schemas.InspectionItem]:
    """The run's items, the most suspect first (overall score at α, γ descending)."""
    own = {s.id for s in site.store.list_slides(site.settings.site_id)}
    return [_item(scored) for scored in quality.rescore(site.store, inspection_id,
                                                         alpha=alpha, gamma=gamma)
            if scored.item.slide_id in own]


@router.get("/{inspection_id}/items/{item_id}", response_model=schemas.InspectionItemDetail)
def item(inspection_id: InspectionId, item_id: ItemId, site: SiteDep, user: UserDep,
         alpha: WeightQuery = None, gamma: WeightQuery = None
         ) -> schemas.InspectionItemDetail:
    """One item with its instances and their scores at α, γ."""
    scored = _own_item(site, inspection_id, item_id, alpha, gamma)
    return schemas.InspectionItemDetail(
        **_item(scored).model_dump(),
        instances=[schemas.InspectionInstance(
            number=i.finding.number, state=i.finding.state, score=i.score,
            iou=i.finding.iou, area=i.finding.area, certainty=i.finding.certainty,
            suspect=i.suspect, bbox=_box(i.finding.bbox), decision=i.decision)
            for i in scored.instances])


@router.get("/{inspection_id}/items/{item_id}/views/{view}.png", responses={200: PNG},
            response_class=Response)
def view(inspection_id: InspectionId, item_id: ItemId,
         view: Literal["annotation", "combined", "prediction"], site: SiteDep, user: UserDep,
         alpha: WeightQuery = None, gamma: WeightQuery = None,
         selected: InstanceQuery = None) -> Response:
    """The item's pixels with instance outlines: consistent green, suspect red (numbered in
    the combined view), the selected instance white."""
    _own_item(site, inspection_id, item_id, alpha, gamma)
    pixels = quality.item_view(site.settings, site.store, inspection_id, item_id, view,
                               alpha=alpha, gamma=gamma, selected=selected)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


@router.post("/{inspection_id}/items/{item_id}/decisions",
             response_model=schemas.InspectionDecisionSaved, status_code=201)
def decide(inspection_id: InspectionId, item_id: ItemId,
           body: schemas.InspectionDecisionRequest, request: Request, site: SiteDep,
           identity: IdentityDep) -> schemas.InspectionDecisionSaved:
    """Keep the annotation, accept the prediction or ask for re-annotation, for the item
    or one instance: the next correction version of the item's box."""
    scored = _own_item(site, inspection_id, item_id, None, None)
    record = scored.item
    history = site.store.correction_history(
        PatchBox(record.slide_id, record.x, record.y, record.width, record.height, record.mpp))
    reason = patch_change_refusal(identity, claimed_by=None,
                                  last_author=history[-1].author if history else None)
    if reason is not None:
        deny(site, request, identity, subject=f"inspection_item:{record.id}",
             reason=f"{reason}; only a reviewer may change it",
             details={"last_author": history[-1].author})
    saved = quality.decide(site.store, inspection_id, item_id, decision=body.decision,
                           instance=body.instance, base_version=body.base_version,
                           author=identity.user)
    site.tiles.forget_overlays(record.slide_id)
    return schemas.InspectionDecisionSaved(correction_id=saved.correction_id,
                                           version=saved.version)


def _own_item(site: Site, inspection_id: int, item_id: int, alpha: float | None,
              gamma: float | None) -> quality.ScoredItem:
    scored = quality.scored_item(site.store, inspection_id, item_id, alpha=alpha, gamma=gamma)
    own_slide(site, scored.item.slide_id)
    return scored


def _box(box: tuple[int, int, int, int]) -> schemas.Box:
    x, y, width, height = box
    return schemas.Box(x=x, y=y, width=width, height=height)


def _item(scored: quality.ScoredItem) -> schemas.InspectionItem:
    record = scored.item
    return schemas.InspectionItem(
        id=record.id, inspection_id=record.inspection_id, name=record.name,
        slide_id=record.slide_id, slide_name=scored.slide_name,
        box=_box((record.x, record.y, record.width, record.height)), mpp=record.mpp,
        overall=scored.overall, n_instances=len(scored.instances),
        n_suspect=scored.n_suspect, decision=scored.decision, version=scored.version)
