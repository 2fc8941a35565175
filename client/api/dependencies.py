"""What the routes share: the site (settings, store, tiles, jobs, tokens), the user behind a
token, the checks that a slide or patch belongs to this site, and the documented responses.

Routes address slides and patches by id and never take a file path; a slide of another site
in a shared database is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pathloop.client.api import convert, schemas
from pathloop.client.api.jobs import JobRunner
from pathloop.client.api.tiles import TileService
from pathloop.client.api.tokens import TokenStore
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store
from pathloop.client.usecases import review

LOCAL_USER = "local"
"""The user of every request when tokens are turned off."""


@dataclass
class Site:
    """What the routes share: the settings, the store, tiles, jobs and tokens."""

    settings: SiteSettings
    store: Store
    tiles: TileService
    jobs: JobRunner
    tokens: TokenStore


def service_version() -> str:
    """The installed pathloop's version (``unknown`` when it is not installed)."""
    try:
        return version("pathloop")
    except PackageNotFoundError:
        return "unknown"


_bearer = HTTPBearer(auto_error=False)


async def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


SiteDep = Annotated[Site, Depends(_site)]


async def _user(site: SiteDep,
          credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
          ) -> str:
    if not site.settings.api.require_token:
        return LOCAL_USER
    if credentials is None:
        raise HTTPException(401, "a token is needed: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    user = site.tokens.user_for(credentials.credentials)
    if user is None:
        raise HTTPException(401, "the token is not valid for this site",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


UserDep = Annotated[str, Depends(_user)]
PNG = {"content": {"image/png": {}}, "description": "PNG image"}
JPEG = {"content": {"image/jpeg": {}}, "description": "JPEG image"}
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": schemas.ErrorBody} for code in (404, 409, 422)}
"""The error answers a route documents (401 is documented for the whole app)."""


def own_slide(site: Site, slide_id: int) -> SlideRecord:
    """A slide of this site (another site's slide in a shared database is not found)."""
    return site.tiles.slide_record(slide_id)


def own_state(site: Site, patch_id: int) -> review.PatchState:
    """A patch of one of this site's slides, with its mask size and latest version."""
    state = review.patch_state(site.store, patch_id)
    own_slide(site, state.patch.slide_id)
    return state


def own_item(site: Site, patch_id: int) -> schemas.WorklistItem:
    """A patch of one of this site's slides as the worklist shows it."""
    state = own_state(site, patch_id)
    return convert.worklist_item(state, own_slide(site, state.patch.slide_id))
