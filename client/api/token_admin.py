"""Issuing and revoking users' tokens, each change written to the audit log.

The one path for both the admin's HTTP routes (``/api/tokens``) and ``pathloop api token``
run by the service account on the site's machine. The event (``token.add`` /
``token.revoke``, subject ``user:<name>``) names who made the change, whose tokens changed,
their role and how (``api`` or ``cli``); never the token. The token file is written first: a
change that fails leaves no event, and an event always describes a change that was made.
"""

from __future__ import annotations

from typing import Literal

from pathloop.client.api.roles import Role
from pathloop.client.api.tokens import TokenStore, parse_role
from pathloop.client.store import Store

Via = Literal["api", "cli"]


def issue_token(tokens: TokenStore, store: Store, *, actor: str, user: str, role: Role | str,
                via: Via) -> str:
    """A new token for ``user`` with ``role`` (returned once), audited as ``token.add``."""
    role = parse_role(role)
    token = tokens.add(user, role)
    store.record_event(actor=actor, action="token.add", subject=f"user:{user}",
                       details={"role": role.value, "via": via})
    return token


def revoke_tokens(tokens: TokenStore, store: Store, *, actor: str, user: str, via: Via
                  ) -> int:
    """Drop every token of ``user``, audited as ``token.revoke``; how many there were."""
    role = tokens.role_of(user)
    count = tokens.revoke(user)
    store.record_event(actor=actor, action="token.revoke", subject=f"user:{user}",
                       details={"role": role.value if role else None, "tokens": count,
                                "via": via})
    return count
