"""Running the site service: uvicorn over the API app, and the viewer's address.

Used by ``pathloop serve`` and at the end of ``pathloop demo``. The service binds the
configured host (``127.0.0.1`` by default) and runs until interrupted.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pathloop.client.api import TokenStore, create_app
from pathloop.client.api.roles import Role
from pathloop.client.api.token_admin import issue_token
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store

logger = logging.getLogger(__name__)

FIRST_USER = "admin"
"""Who gets a token (role admin) when a site is served for the first time from a terminal."""


def viewer_url(settings: SiteSettings, token: str | None, *, port: int | None = None) -> str:
    """The address the pathologist opens; the token travels in the fragment, which browsers
    never send to a server or write into its logs."""
    host = settings.api.host
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port or settings.api.port}/"
    return f"{url}#token={token}" if token else url


def first_token(settings: SiteSettings, *, actor: str) -> str | None:
    """A new admin token for :data:`FIRST_USER` when nobody has one yet (else ``None``),
    made by ``actor`` (audited)."""
    tokens = TokenStore.for_data_dir(settings.data_dir)
    if not settings.api.require_token or tokens.users():
        return None
    with Store.open(settings) as store:
        return issue_token(tokens, store, actor=actor, user=FIRST_USER, role=Role.ADMIN,
                           via="cli")


def serve(settings: SiteSettings, *, host: str | None = None, port: int | None = None,
          viewer_dir: Path | None = None) -> None:
    """Run the site service in the foreground until it is interrupted."""
    import uvicorn

    api = settings.api.model_copy(update={k: v for k, v in
                                          (("host", host), ("port", port)) if v is not None})
    settings = settings.model_copy(update={"api": api})
    if api.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("the site service binds %s: reachable from the network; put it behind "
                       "TLS (see docs/site-operator.md)", api.host)
    if not api.require_token:
        logger.warning("[api] require-token is false: anyone who reaches %s:%d can edit",
                       api.host, api.port)
    app = create_app(settings, viewer_dir=viewer_dir)
    uvicorn.run(app, host=api.host, port=api.port, log_level="warning",
                proxy_headers=False, server_header=False)
