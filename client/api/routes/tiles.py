"""A slide's Deep Zoom descriptor, its tiles and its overlay tiles (under ``/api/slides``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from pathloop.client.api.dependencies import (
    ERRORS,
    JPEG,
    PNG,
    IdentityDep,
    SiteDep,
    UserDep,
    own_slide,
    viewed_slide,
)
from pathloop.client.api.params import SlideId, TileIndex

router = APIRouter(prefix="/api/slides/{slide_id}", tags=["slides"])


@router.get("/slide.dzi", responses=ERRORS, response_class=Response)
def get_dzi(slide_id: SlideId, request: Request, site: SiteDep, identity: IdentityDep
            ) -> Response:
    """The slide's Deep Zoom descriptor (XML; the read is audited, its tiles' are not)."""
    slide = viewed_slide(site, request, identity, slide_id)
    return Response(site.tiles.grid(slide).dzi_xml("jpeg"), media_type="application/xml")


@router.get("/dz/{level}/{col}_{row}.jpeg", responses={200: JPEG, **ERRORS},
            response_class=Response)
async def get_tile(slide_id: SlideId, level: TileIndex, col: TileIndex, row: TileIndex,
                   site: SiteDep, user: UserDep) -> Response:
    """One Deep Zoom tile; 404 outside the pyramid."""
    slide = site.tiles.slide_record(slide_id)
    # A cached tile is answered on the event loop; a miss is made in a worker thread.
    data = (site.tiles.cached_slide_tile(slide, level, col, row)
            or await run_in_threadpool(site.tiles.slide_tile, slide, level, col, row))
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.get("/overlays/{kind}/{level}/{col}_{row}.png", responses={200: PNG, **ERRORS},
            response_class=Response)
def get_overlay_tile(slide_id: SlideId, kind: str, level: TileIndex, col: TileIndex,
                     row: TileIndex, site: SiteDep, user: UserDep) -> Response:
    """One overlay tile (RGBA PNG) on the slide's Deep Zoom grid."""
    data = site.tiles.overlay_tile(own_slide(site, slide_id), kind, level, col, row)
    return Response(data, media_type="image/png",
                    headers={"Cache-Control": "private, max-age=60"})
