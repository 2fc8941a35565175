"""What the routes share: the site (settings, store, tiles, jobs, tokens), the user and role
behind a token, the role checks, the checks that a slide or patch belongs to this site, and
the documented responses.

Routes address slides and patches by id and never take a file path; a slide of another site
in a shared database is not found. Every refusal for want of a role (403) is written to the
audit log as ``access.denied``: who, which request, which object, which role it needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, NoReturn

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pathloop.client.api import convert, schemas
from pathloop.client.api.jobs import JobRunner
from pathloop.client.api.roles import Identity, Role, patch_change_refusal
from pathloop.client.api.tiles import TileService
from pathloop.client.api.token_gate import BAD_TOKEN, IDENTITY_STATE, NO_TOKEN
from pathloop.client.api.tokens import TokenStore
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store
from pathloop.client.usecases import review

LOCAL = Identity("local", Role.ADMIN)
"""Who every request is when tokens are turned off: the one local user, who may do all."""


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


async def _identity(request: Request, site: SiteDep, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Identity:
    if not site.settings.api.require_token:
        return LOCAL
    found: Identity | None = getattr(request.state, IDENTITY_STATE, None)
    if found is not None:  # the token gate already looked the token up
        return found
    if credentials is None:
        raise HTTPException(401, NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    identity = site.tokens.identity_for(credentials.credentials)
    if identity is None:
        raise HTTPException(401, BAD_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    return identity


IdentityDep = Annotated[Identity, Depends(_identity)]
"""The user and role of the request (every role may view: a pathologist's routes need no
more than this)."""


async def _user(identity: IdentityDep) -> str:
    return identity.user


UserDep = Annotated[str, Depends(_user)]
"""The name of the request's user (any role)."""


def deny(site: Site, request: Request, identity: Identity, *, subject: str, reason: str,
         details: dict[str, Any] | None = None) -> NoReturn:
    """Refuse the request with 403, after writing the attempt to the audit log."""
    site.store.record_event(
        actor=identity.user, action="access.denied", subject=subject,
        details={"request": f"{request.method} {request.url.path}",
                 "role": identity.role.value, "reason": reason, **(details or {})})
    raise HTTPException(403, f"{identity.user} ({identity.role}) may not do this: {reason}")


def _requiring(role: Role) -> Any:
    def check(request: Request, site: SiteDep, identity: IdentityDep) -> Identity:
        if not identity.role.includes(role):
            deny(site, request, identity, subject=f"route:{request.url.path}",
                 reason=f"it needs the {role} role", details={"needs": role.value})
        return identity

    return Depends(check)


# The request's identity once it is known to hold that role (else 403, audited).
OperatorDep = Annotated[Identity, _requiring(Role.OPERATOR)]
AdminDep = Annotated[Identity, _requiring(Role.ADMIN)]


def may_change_patch(site: Site, request: Request, identity: Identity,
                     state: review.PatchState, *, correction: bool = True) -> None:
    """Refuse (403, audited) a change of a patch that ``identity``'s role does not allow:
    a pathologist changes no patch another user claimed, nor (``correction``: a change that
    saves a version or sets its status) one whose latest correction is another's."""
    last_author = None
    if correction and state.version > 0 and not identity.role.includes(Role.REVIEWER):
        last_author = review.patch_history(site.store, state.patch.id)[-1].author
    reason = patch_change_refusal(identity, claimed_by=state.patch.claimed_by,
                                  last_author=last_author)
    if reason is not None:
        deny(site, request, identity, subject=f"ranked_patch:{state.patch.id}",
             reason=f"{reason}; only a reviewer may change it",
             details={"claimed_by": state.patch.claimed_by, "last_author": last_author})


PNG = {"content": {"image/png": {}}, "description": "PNG image"}
JPEG = {"content": {"image/jpeg": {}}, "description": "JPEG image"}
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": schemas.ErrorBody} for code in (403, 404, 409, 422)}
"""The error answers a route documents (401 is documented for the whole app)."""


def own_slide(site: Site, slide_id: int) -> SlideRecord:
    """A slide of this site (another site's slide in a shared database is not found)."""
    return site.tiles.slide_record(slide_id)


def viewed_slide(site: Site, request: Request, identity: Identity, slide_id: int
                 ) -> SlideRecord:
    """A slide of this site, its opening recorded in the audit log as ``slide.view``.

    The slide's detail and its Deep Zoom descriptor are what a viewer opens once per slide;
    its tiles (hundreds per minute of panning) are not logged one by one.
    """
    slide = own_slide(site, slide_id)
    site.store.record_event(actor=identity.user, action="slide.view",
                            subject=f"slide:{slide.id}",
                            details={"request": f"{request.method} {request.url.path}"})
    return slide


def own_state(site: Site, patch_id: int) -> review.PatchState:
    """A patch of one of this site's slides, with its mask size and latest version."""
    state = review.patch_state(site.store, patch_id)
    own_slide(site, state.patch.slide_id)
    return state


def own_item(site: Site, patch_id: int) -> schemas.WorklistItem:
    """A patch of one of this site's slides as the worklist shows it."""
    state = own_state(site, patch_id)
    return convert.worklist_item(state, own_slide(site, state.patch.slide_id))
