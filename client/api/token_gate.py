"""The token check at the door: an ``/api`` request without a valid token is answered 401
before anything reads, parses or validates its body.

FastAPI parses a route's JSON body before it resolves the route's dependencies, the token
check among them, so without this door a caller with no token had the service decode up to
``[api] max-body-mb`` of JSON and heard 400 or 422 about it. The routes' own token dependency
(:mod:`.dependencies`) still decides who the user is; this only turns strangers away first.
Only the :data:`OPEN_PATHS` (health and the API's own description) need no token.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/api/health", "/api/openapi.json", "/api/docs",
                        "/api/docs/oauth2-redirect"})
"""``/api`` paths anyone may call."""
NO_TOKEN = "a token is needed: send 'Authorization: Bearer <token>'"
BAD_TOKEN = "the token is not valid for this site"
IDENTITY_STATE = "identity"
"""The key of the request's state under which the gate leaves the identity it found."""


class TokenGate:
    """Answer 401 to ``/api`` requests (but :data:`OPEN_PATHS`) without a token of this site.

    Reads the site (its settings and tokens) from ``app.state.site``, which the app's
    lifespan sets; does nothing when ``[api] require-token = false``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or not path.startswith("/api/") or path in OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        site = scope["app"].state.site
        if not site.settings.api.require_token:
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope)
        identity = None if token is None else site.tokens.identity_for(token)
        if identity is None:
            await _refuse(send, NO_TOKEN if token is None else BAD_TOKEN)
            return
        # The routes' dependency reads it from the request's state (the token is hashed and
        # looked up once per request).
        scope.setdefault("state", {})[IDENTITY_STATE] = identity
        await self.app(scope, receive, send)


def _bearer_token(scope: Scope) -> str | None:
    """The credentials of an ``Authorization: Bearer <token>`` header, else None."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


async def _refuse(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail, "kind": "AuthenticationError"}).encode()
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["BAD_TOKEN", "IDENTITY_STATE", "NO_TOKEN", "OPEN_PATHS", "TokenGate"]
