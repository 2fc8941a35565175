"""The site API's app factory: lifespan, middleware, error handlers, routes and the viewer.

:func:`create_app` builds a FastAPI app over one site's settings. It opens the store, the
tile service and the job runner when the app starts and closes them when it stops. Every
``/api`` route but ``/api/health`` needs a user's token (``Authorization: Bearer …``) unless
``[api] require-token = false``, and a request without one is refused before its body is
read (:mod:`.token_gate`); no CORS headers are ever sent; routes (:mod:`.routes`, one
router per resource) address slides and patches by id and never take a file path. Errors
answer with the status :mod:`.errors` maps them to. Bodies over ``[api] max-body-mb`` are
refused before anything reads them (:mod:`.limits`). The built viewer is served at ``/``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pathloop.client.api import schemas
from pathloop.client.api.dependencies import Site, service_version
from pathloop.client.api.errors import add_error_handlers
from pathloop.client.api.job_kinds import JOB_KINDS
from pathloop.client.api.jobs import Job, JobRunner
from pathloop.client.api.limits import BodyLimit
from pathloop.client.api.routes import ROUTERS
from pathloop.client.api.tiles import TileService
from pathloop.client.api.token_gate import TokenGate
from pathloop.client.api.tokens import TokenStore
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store

logger = logging.getLogger(__name__)

DEFAULT_VIEWER_DIR = Path(__file__).resolve().parents[2] / "viewer" / "dist"
"""The viewer built beside the code (``make viewer``)."""


def create_app(settings: SiteSettings, *, tokens: TokenStore | None = None,
               viewer_dir: Path | None = None) -> FastAPI:
    """The site API and viewer for ``settings``.

    Parameters
    ----------
    tokens:
        The users' tokens; default the token file in the data folder.
    viewer_dir:
        The built viewer; default ``[api] viewer-dir``, else ``viewer/dist`` beside the code.
    """
    token_store = tokens or TokenStore.for_data_dir(settings.data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.open(settings)
        tiles = TileService(settings, store)

        def forget(job: Job) -> None:
            if job.slide_id is not None:
                tiles.forget_overlays(job.slide_id)

        jobs = JobRunner(settings, store, JOB_KINDS, on_finish=forget)
        app.state.site = Site(settings, store, tiles, jobs, token_store)
        try:
            yield
        finally:
            jobs.shutdown()
            tiles.close()
            store.close()

    app = FastAPI(title="pathloop site API", version=service_version(), lifespan=lifespan,
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json",
                  responses=_ANY_ROUTE_ERRORS)
    # Innermost: strangers are turned away (401) before FastAPI parses any body.
    app.add_middleware(TokenGate)
    app.add_middleware(_SecurityHeaders)
    # Added last, so outermost of ours: bodies are measured before anything reads them.
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_mb * 2**20)
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    folder = viewer_dir or settings.api.viewer_dir or DEFAULT_VIEWER_DIR
    if (folder / "index.html").is_file():
        app.mount("/", StaticFiles(directory=folder, html=True), name="viewer")
    else:
        @app.get("/", include_in_schema=False)
        def viewer_missing() -> JSONResponse:
            logger.warning("the viewer is not built (%s): run `make viewer`", folder)
            return JSONResponse({"detail": "the viewer is not built: run `make viewer` (the "
                                           "service's log names its folder)",
                                 "kind": "ViewerMissing"}, 404)
    return app


_ANY_ROUTE_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": schemas.ErrorBody,
          "description": "The request cannot be read: a body that is not UTF-8 JSON, or a "
                         "malformed Content-Length"},
    401: {"model": schemas.ErrorBody, "description": "No token, or not one of this site's"},
    411: {"model": schemas.ErrorBody, "description": "A body sent without a Content-Length"},
    413: {"model": schemas.ErrorBody,
          "description": "A body larger than the site's limit ([api] max-body-mb)"},
}
"""Answers any route may give, whatever it does (documented once for the whole app)."""


class _SecurityHeaders:
    """No sniffing, no framing, no referrer; API answers are never cached by proxies.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per
    request, a large share of a cached tile's time.
    """

    _COMMON = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in self._COMMON if h[0] not in present]
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
