"""``/api/tokens``: the site's users and their tokens (admin role; every change audited)."""

from __future__ import annotations

from fastapi import APIRouter

from pathloop.client.api import schemas
from pathloop.client.api.dependencies import ERRORS, AdminDep, SiteDep
from pathloop.client.api.token_admin import issue_token, revoke_tokens

router = APIRouter(prefix="/api/tokens", tags=["tokens"], responses=ERRORS)


@router.get("", response_model=list[schemas.TokenUser])
def list_users(site: SiteDep, admin: AdminDep) -> list[schemas.TokenUser]:
    """Users holding a token and their roles, in the order they were added."""
    return [schemas.TokenUser(user=user, role=role.value)
            for user, role in site.tokens.roles().items()]


@router.post("", response_model=schemas.IssuedToken, status_code=201)
def issue(body: schemas.NewToken, site: SiteDep, admin: AdminDep) -> schemas.IssuedToken:
    """Make a token for a user (422 if they hold tokens of another role: revoke first)."""
    token = issue_token(site.tokens, site.store, actor=admin.user, user=body.user,
                        role=body.role, via="api")
    return schemas.IssuedToken(user=body.user, role=body.role, token=token)


@router.delete("/{user}", response_model=schemas.RevokedTokens)
def revoke(user: str, site: SiteDep, admin: AdminDep) -> schemas.RevokedTokens:
    """Revoke every token of a user; they are refused from their next request."""
    return schemas.RevokedTokens(user=user, revoked=revoke_tokens(
        site.tokens, site.store, actor=admin.user, user=user, via="api"))
