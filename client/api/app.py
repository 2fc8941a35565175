"""The site API's app factory: the routes, token authentication, errors and the viewer.

:func:`create_app` builds a FastAPI app over one site's settings. It opens the store, the
tile service and the job runner when the app starts and closes them when it stops. Every
``/api`` route but ``/api/health`` needs a user's token (``Authorization: Bearer …``) unless
``[api] require-token = false``; no CORS headers are ever sent; routes address slides and
patches by id and never take a file path. The built viewer is served at ``/``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pathloop.client.api import convert, schemas
from pathloop.client.api.job_kinds import JOB_FUNCTIONS
from pathloop.client.api.jobs import FINAL_STATES, Job, JobRunner
from pathloop.client.api.tiles import TileService
from pathloop.client.api.tokens import TokenStore
from pathloop.client.errors import PathloopError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import CorrectionRecord, SlideRecord, Store
from pathloop.client.usecases import review
from pathloop.client.viewing.masks import decode_png, decode_rle, encode_png

logger = logging.getLogger(__name__)

DEFAULT_VIEWER_DIR = Path(__file__).resolve().parents[2] / "viewer" / "dist"
"""The viewer built beside the code (``make viewer``)."""
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

        jobs = JobRunner(settings, store, JOB_FUNCTIONS, on_finish=forget)
        app.state.site = Site(settings, store, tiles, jobs, token_store)
        try:
            yield
        finally:
            jobs.shutdown()
            tiles.close()
            store.close()

    app = FastAPI(title="pathloop site API", version=_version(), lifespan=lifespan,
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json",
                  responses={401: {"model": schemas.ErrorBody}})
    app.add_middleware(_SecurityHeaders)
    _add_error_handlers(app)
    _add_routes(app)
    folder = viewer_dir or settings.api.viewer_dir or DEFAULT_VIEWER_DIR
    if (folder / "index.html").is_file():
        app.mount("/", StaticFiles(directory=folder, html=True), name="viewer")
    else:
        @app.get("/", include_in_schema=False)
        def viewer_missing() -> JSONResponse:
            return JSONResponse({"detail": f"the viewer is not built ({folder}): run "
                                           "`make viewer`", "kind": "ViewerMissing"}, 404)
    return app


def _version() -> str:
    try:
        return version("pathloop")
    except PackageNotFoundError:
        return "unknown"


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


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PathloopError)
    async def pathloop_error(request: Request, error: PathloopError) -> JSONResponse:
        return JSONResponse({"detail": str(error), "kind": type(error).__name__},
                            status_code=error.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError
                              ) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(part) for part in item["loc"] if part != "body")
            problems.append(f"{where}: {item['msg']}")
        return JSONResponse({"detail": "; ".join(problems) or "invalid request",
                             "kind": "ValidationError"}, status_code=422)


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
_PNG = {"content": {"image/png": {}}, "description": "PNG image"}
_JPEG = {"content": {"image/jpeg": {}}, "description": "JPEG image"}
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": schemas.ErrorBody} for code in (404, 409, 422)}


def _add_routes(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        kind = "AuthenticationError" if error.status_code == 401 else "HTTPError"
        return JSONResponse({"detail": str(error.detail), "kind": kind},
                            status_code=error.status_code, headers=error.headers)

    @app.get("/api/health", response_model=schemas.Health, tags=["site"])
    def health(site: SiteDep) -> schemas.Health:
        """Whether the service runs (no token needed; tells nothing about patients)."""
        return schemas.Health(status="ok", site_id=site.settings.site_id, version=_version())

    @app.get("/api/me", response_model=schemas.Me, tags=["site"])
    def me(user: UserDep) -> schemas.Me:
        """Who the token belongs to."""
        return schemas.Me(user=user)

    # --- slides -----------------------------------------------------------------------------

    @app.get("/api/slides", response_model=list[schemas.SlideSummary], tags=["slides"])
    def list_slides(site: SiteDep, user: UserDep) -> list[schemas.SlideSummary]:
        """The site's slides, in the order they were added."""
        return [convert.slide_summary(slide, _counts(site.store, slide))
                for slide in site.store.list_slides(site.settings.site_id)]

    @app.get("/api/slides/{slide_id}", response_model=schemas.SlideDetail, tags=["slides"],
             responses=_ERRORS)
    def get_slide(slide_id: int, site: SiteDep, user: UserDep) -> schemas.SlideDetail:
        """A slide with its Deep Zoom pyramid, overlays and labels."""
        slide = _own_slide(site, slide_id)
        overlays = site.tiles.overlays(slide, fresh=True)
        summary = convert.slide_summary(slide, _counts(site.store, slide))
        return schemas.SlideDetail(
            **summary.model_dump(), deepzoom=convert.deepzoom(slide, site.tiles.grid(slide)),
            overlays=[convert.overlay(slide, o) for o in overlays.overlays],
            labels=convert.labels(site.settings.federation.labels))

    @app.get("/api/slides/{slide_id}/slide.dzi", tags=["slides"], responses=_ERRORS,
             response_class=Response)
    def get_dzi(slide_id: int, site: SiteDep, user: UserDep) -> Response:
        """The slide's Deep Zoom descriptor (XML)."""
        slide = _own_slide(site, slide_id)
        return Response(site.tiles.grid(slide).dzi_xml("jpeg"), media_type="application/xml")

    @app.get("/api/slides/{slide_id}/dz/{level}/{col}_{row}.jpeg", tags=["slides"],
             responses={200: _JPEG, **_ERRORS}, response_class=Response)
    async def get_tile(slide_id: int, level: int, col: int, row: int, site: SiteDep,
                       user: UserDep) -> Response:
        """One Deep Zoom tile; 404 outside the pyramid."""
        slide = site.tiles.slide_record(slide_id)
        # A cached tile is answered on the event loop; a miss is made in a worker thread.
        data = (site.tiles.cached_slide_tile(slide, level, col, row)
                or await run_in_threadpool(site.tiles.slide_tile, slide, level, col, row))
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/slides/{slide_id}/overlays/{kind}/{level}/{col}_{row}.png",
             tags=["slides"], responses={200: _PNG, **_ERRORS}, response_class=Response)
    def get_overlay_tile(slide_id: int, kind: str, level: int, col: int, row: int,
                         site: SiteDep, user: UserDep) -> Response:
        """One overlay tile (RGBA PNG) on the slide's Deep Zoom grid."""
        data = site.tiles.overlay_tile(_own_slide(site, slide_id), kind, level, col, row)
        return Response(data, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=60"})

    # --- worklist and corrections -----------------------------------------------------------

    @app.get("/api/worklist", response_model=list[schemas.WorklistItem], tags=["worklist"],
             responses=_ERRORS)
    def worklist(site: SiteDep, user: UserDep, slide_id: int | None = None,
                 status: Literal["pending", "corrected", "skipped"] | None = None,
                 ) -> list[schemas.WorklistItem]:
        """The newest ranking's patches of each slide (or one), best first."""
        slides = ([_own_slide(site, slide_id)] if slide_id is not None
                  else site.store.list_slides(site.settings.site_id))
        items = []
        for slide in slides:
            ranking = site.store.latest_ranking(slide.id)
            if ranking is None:
                continue
            for patch in site.store.ranked_patches(ranking.id, status):
                items.append(convert.worklist_item(review.patch_state(site.store, patch.id),
                                                   slide))
        return items

    @app.get("/api/patches/{patch_id}", response_model=schemas.WorklistItem,
             tags=["worklist"], responses=_ERRORS)
    def get_patch(patch_id: int, site: SiteDep, user: UserDep) -> schemas.WorklistItem:
        """One worklist patch."""
        return _item(site, patch_id)

    @app.post("/api/patches/{patch_id}/claim", response_model=schemas.WorklistItem,
              tags=["worklist"], responses=_ERRORS)
    def claim(patch_id: int, site: SiteDep, user: UserDep,
              body: schemas.Claim | None = None) -> schemas.WorklistItem:
        """Take the patch (409 when someone else holds it, unless ``force``)."""
        _item(site, patch_id)
        site.store.claim_patch(patch_id, user, force=bool(body and body.force))
        return _item(site, patch_id)

    @app.post("/api/patches/{patch_id}/release", response_model=schemas.WorklistItem,
              tags=["worklist"], responses=_ERRORS)
    def release(patch_id: int, site: SiteDep, user: UserDep) -> schemas.WorklistItem:
        """Give the patch back."""
        _item(site, patch_id)
        site.store.release_patch(patch_id, user)
        return _item(site, patch_id)

    @app.post("/api/patches/{patch_id}/skip", response_model=schemas.WorklistItem,
              tags=["worklist"], responses=_ERRORS)
    def skip(patch_id: int, site: SiteDep, user: UserDep) -> schemas.WorklistItem:
        """Leave the patch out of the worklist."""
        _item(site, patch_id)
        review.skip_patch(site.store, patch_id, author=user)
        return _item(site, patch_id)

    @app.get("/api/patches/{patch_id}/mask", tags=["corrections"],
             responses={200: _PNG, **_ERRORS}, response_class=Response)
    def get_mask(patch_id: int, site: SiteDep, user: UserDep,
                 source: review.MaskSource = "latest",
                 version: Annotated[int | None, Query(ge=0)] = None) -> Response:
        """The patch's label mask (8-bit grey PNG, pixel = label)."""
        _item(site, patch_id)
        mask = review.patch_mask(site.store, patch_id, source, version)
        return Response(encode_png(mask), media_type="image/png")

    @app.get("/api/patches/{patch_id}/versions",
             response_model=list[schemas.CorrectionVersion], tags=["corrections"],
             responses=_ERRORS)
    def versions(patch_id: int, site: SiteDep, user: UserDep
                 ) -> list[schemas.CorrectionVersion]:
        """Every version of the patch's correction, oldest first."""
        _item(site, patch_id)
        return [convert.correction_version(r)
                for r in review.patch_history(site.store, patch_id)]

    @app.post("/api/patches/{patch_id}/versions", response_model=schemas.CorrectionVersion,
              status_code=201, tags=["corrections"], responses=_ERRORS)
    def save(patch_id: int, body: schemas.SaveMask, site: SiteDep, user: UserDep
             ) -> schemas.CorrectionVersion:
        """Save an edited mask as the next version (409 if ``base_version`` is stale)."""
        state = _own_state(site, patch_id)
        n_labels = len(site.settings.federation.labels)
        if isinstance(body.mask, schemas.PngMask):
            mask = decode_png(body.mask.data, shape=state.mask_shape, n_labels=n_labels)
        else:
            mask = decode_rle(width=body.mask.width, height=body.mask.height,
                              values=body.mask.values, counts=body.mask.counts,
                              shape=state.mask_shape, n_labels=n_labels)
        record = review.save_patch_mask(site.store, patch_id, mask, author=user,
                                        base_version=body.base_version)
        return _saved(site, state, record)

    @app.post("/api/patches/{patch_id}/revert", response_model=schemas.CorrectionVersion,
              status_code=201, tags=["corrections"], responses=_ERRORS)
    def revert(patch_id: int, body: schemas.Revert, site: SiteDep, user: UserDep
               ) -> schemas.CorrectionVersion:
        """Save an earlier version again as the next one (0: withdraw the correction)."""
        state = _own_state(site, patch_id)
        record = review.revert_patch(site.store, patch_id, to_version=body.to_version,
                                     base_version=body.base_version, author=user)
        return _saved(site, state, record)

    @app.post("/api/patches/{patch_id}/accept-prediction",
              response_model=schemas.CorrectionVersion, status_code=201,
              tags=["corrections"], responses=_ERRORS)
    def accept(patch_id: int, body: schemas.Based, site: SiteDep, user: UserDep
               ) -> schemas.CorrectionVersion:
        """Save the model's prediction under the patch as the next version."""
        state = _own_state(site, patch_id)
        record = review.accept_prediction(site.store, patch_id,
                                          base_version=body.base_version, author=user)
        return _saved(site, state, record)

    @app.post("/api/patches/{patch_id}/keep-annotation",
              response_model=schemas.CorrectionVersion, status_code=201,
              tags=["corrections"], responses=_ERRORS)
    def keep(patch_id: int, body: schemas.Based, site: SiteDep, user: UserDep
             ) -> schemas.CorrectionVersion:
        """Save the slide's existing annotation under the patch as the next version."""
        state = _own_state(site, patch_id)
        record = review.keep_annotation(site.store, patch_id,
                                        base_version=body.base_version, author=user)
        return _saved(site, state, record)

    # --- jobs -------------------------------------------------------------------------------

    @app.get("/api/jobs", response_model=list[schemas.JobInfo], tags=["jobs"])
    def list_jobs(site: SiteDep, user: UserDep) -> list[schemas.JobInfo]:
        """Background jobs, newest first."""
        return [convert.job(j) for j in site.jobs.list()]

    @app.post("/api/jobs", response_model=schemas.JobInfo, status_code=202, tags=["jobs"],
              responses=_ERRORS)
    def submit_job(body: schemas.JobRequest, site: SiteDep, user: UserDep
                   ) -> schemas.JobInfo:
        """Queue a job (tile, predict, rank or train); it runs after those before it."""
        if body.slide_id is not None:
            _own_slide(site, body.slide_id)
        return convert.job(site.jobs.submit(body.kind, slide_id=body.slide_id,
                                            params=body.params, user=user))

    @app.get("/api/jobs/{job_id}", response_model=schemas.JobInfo, tags=["jobs"],
             responses=_ERRORS)
    def get_job(job_id: str, site: SiteDep, user: UserDep) -> schemas.JobInfo:
        """One job's state and progress."""
        return convert.job(site.jobs.get(job_id))

    @app.post("/api/jobs/{job_id}/cancel", response_model=schemas.JobInfo, tags=["jobs"],
              responses=_ERRORS)
    def cancel_job(job_id: str, site: SiteDep, user: UserDep) -> schemas.JobInfo:
        """Stop a job (at its next progress step when it is running)."""
        return convert.job(site.jobs.cancel(job_id))

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"], responses=_ERRORS,
             response_class=StreamingResponse)
    async def job_events(job_id: str, site: SiteDep, user: UserDep) -> StreamingResponse:
        """Server-sent events: the job's JSON at every change, until it ends."""
        first = site.jobs.get(job_id)

        async def stream() -> AsyncIterator[str]:
            job: Job | None = None
            current = first
            while True:
                if current != job:
                    job = current
                    yield f"event: job\ndata: {convert.job(job).model_dump_json()}\n\n"
                    if job.state in FINAL_STATES:
                        return
                else:
                    yield ": keep-alive\n\n"
                current = await asyncio.to_thread(site.jobs.wait_change, job_id, job, 15.0)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})


def _own_slide(site: Site, slide_id: int) -> SlideRecord:
    """A slide of this site (another site's slide in a shared database is not found)."""
    return site.tiles.slide_record(slide_id)


def _counts(store: Store, slide: SlideRecord) -> dict[str, int]:
    ranking = store.latest_ranking(slide.id)
    counts = {"pending": 0, "corrected": 0, "skipped": 0}
    if ranking is not None:
        for patch in store.ranked_patches(ranking.id):
            counts[patch.status] += 1
    return counts


def _own_state(site: Site, patch_id: int) -> review.PatchState:
    """A patch of one of this site's slides, with its mask size and latest version."""
    state = review.patch_state(site.store, patch_id)
    _own_slide(site, state.patch.slide_id)
    return state


def _item(site: Site, patch_id: int) -> schemas.WorklistItem:
    state = _own_state(site, patch_id)
    return convert.worklist_item(state, _own_slide(site, state.patch.slide_id))


def _saved(site: Site, state: review.PatchState, record: CorrectionRecord
           ) -> schemas.CorrectionVersion:
    site.tiles.forget_overlays(state.patch.slide_id)
    return convert.correction_version(record)

