"""``/api/health`` and ``/api/me``: whether the service runs, and who is asking."""

from __future__ import annotations

from fastapi import APIRouter

from pathloop.client.api import schemas
from pathloop.client.api.dependencies import IdentityDep, SiteDep, service_version

router = APIRouter(prefix="/api", tags=["site"])


@router.get("/health", response_model=schemas.Health)
def health(site: SiteDep) -> schemas.Health:
    """Whether the service runs (no token needed; tells nothing about patients)."""
    return schemas.Health(status="ok", site_id=site.settings.site_id, version=service_version())


@router.get("/me", response_model=schemas.Me)
def me(identity: IdentityDep) -> schemas.Me:
    """Who the token belongs to, and their role."""
    return schemas.Me(user=identity.user, role=identity.role.value)
