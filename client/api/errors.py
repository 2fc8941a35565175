"""The web layer's view of errors: which HTTP status each error class answers with.

The core's errors (:mod:`pathloop.client.errors`, :mod:`pathloop.client.segmentation.errors`)
say what went wrong and where; this table says what that means to an HTTP client. A class
not in the table takes the status of its nearest listed ancestor (looked up along its MRO,
as Starlette's exception handlers are), so every :class:`PathloopError` has one::

    PathloopError              500   (ConfigError, StoreError, SchemaError, ModelError, …)
    ├── InputError             422   (SlideError, RegionError, MaskError, ProtocolError, …)
    │   ├── PathOutsideRootsError    403
    │   ├── SlideNotFoundError       404
    │   ├── UnsupportedSlideError    415
    │   └── TileOutOfRangeError      404
    ├── RecordNotFoundError    404
    ├── ConflictError          409
    └── LimitError             429   (too many jobs queued: the message names the limit)

Every error answer is JSON ``{"detail": <one line>, "kind": <error class name>}``, and says
what was wrong in terms of the request (the slide, the patch, the field), never where the site
keeps its files nor how its database is queried: a 5xx answer is a generic line with a
reference, its error (paths, SQL and all) goes to the service's log under that reference;
a 4xx answer has every filesystem path taken out (the full message is logged). A 403 is a
role refusal (:mod:`.dependencies`).
"""

from __future__ import annotations

import logging
import re
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pathloop.client.errors import (
    ConflictError,
    InputError,
    LimitError,
    PathloopError,
    PathOutsideRootsError,
    RecordNotFoundError,
    SlideError,
    SlideNotFoundError,
    TileOutOfRangeError,
    UnsupportedSlideError,
)

STATUS_CODES: dict[type, int] = {
    PathloopError: 500,
    InputError: 422,
    PathOutsideRootsError: 403,
    SlideNotFoundError: 404,
    UnsupportedSlideError: 415,
    TileOutOfRangeError: 404,
    RecordNotFoundError: 404,
    ConflictError: 409,
    LimitError: 429,
}


logger = logging.getLogger(__name__)

_PATH_REST = r"[^\s'\"(),;:]*"
_PATH = re.compile(r"(?<![\w.~-])/" + _PATH_REST)
"""An absolute POSIX path (not the ``/`` inside a word, as in µm/px)."""
_SQL_QUOTE = re.compile(r"\s*(\[SQL:.*|\[parameters:.*|\(Background on this error.*)",
                        re.DOTALL)


def status_code(error: PathloopError) -> int:
    """The HTTP status of ``error``: its class's entry, else its nearest listed ancestor's."""
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def public_detail(error: PathloopError, hidden: tuple[str, ...] = ()) -> str:
    """What a 4xx answer may say of ``error``: its message without filesystem paths.

    A slide's file is named by its reason only; a path under one of ``hidden`` (the site's
    data folder and slide roots, which may be relative) and any absolute path become
    ``<path>``.
    """
    if isinstance(error, PathOutsideRootsError):
        message = "the slide's file lies outside the configured slide roots"
    elif isinstance(error, SlideError):
        message = f"the slide's file: {error.reason}"
    else:
        message = str(error)
    return without_paths(message, hidden)


def without_paths(text: str, hidden: tuple[str, ...] = ()) -> str:
    """``text`` with paths under ``hidden`` and absolute paths as ``<path>``, and the
    database driver's quoted statement (``[SQL: …]``, SQLAlchemy's background link) cut."""
    text = _SQL_QUOTE.sub("", text)
    for root in sorted(hidden, key=len, reverse=True):
        if root:
            text = re.sub(re.escape(root) + _PATH_REST, "<path>", text)
    return _PATH.sub("<path>", text).strip()


def _hidden(request: Request) -> tuple[str, ...]:
    site = getattr(request.app.state, "site", None)
    if site is None:
        return ()
    return (str(site.settings.data_dir), *(str(r) for r in site.settings.slide_roots))


def _failed(request: Request, error: Exception) -> JSONResponse:
    """A generic 500 answer; the error, with its traceback, logged under a reference."""
    reference = secrets.token_hex(4)
    logger.error("%s %s failed (reference %s): %s: %s", request.method, request.url.path,
                 reference, type(error).__name__, error, exc_info=error)
    return JSONResponse({"detail": f"the site service failed; its log has the details "
                                   f"(reference {reference})", "kind": "ServerError"},
                        status_code=500)


def add_error_handlers(app: FastAPI) -> None:
    """Answer pathloop errors, invalid requests, HTTP errors and bugs as one-line JSON."""

    @app.exception_handler(PathloopError)
    async def pathloop_error(request: Request, error: PathloopError) -> JSONResponse:
        status = status_code(error)
        if status >= 500:
            return _failed(request, error)
        detail = public_detail(error, _hidden(request))
        if detail != str(error):
            logger.warning("%s %s: %d %s: %s", request.method, request.url.path, status,
                           type(error).__name__, error)
        return JSONResponse({"detail": detail, "kind": type(error).__name__},
                            status_code=status)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        return _failed(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError
                              ) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            if item["type"] == "json_invalid":  # located at ("body", character position)
                problems.append(f"body: {item['msg']} at character {item['loc'][-1]}")
                continue
            where = ".".join(str(part) for part in item["loc"] if part != "body")
            problems.append(f"{where}: {item['msg']}")
        return JSONResponse({"detail": "; ".join(problems) or "invalid request",
                             "kind": "ValidationError"}, status_code=422)

    # Starlette's class, which FastAPI's subclasses: the 400 FastAPI raises for a body it
    # cannot parse (not UTF-8) and routing's 404/405 answer in the same shape as ours.
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        kind = _HTTP_KINDS.get(error.status_code, "HTTPError")
        return JSONResponse({"detail": str(error.detail), "kind": kind},
                            status_code=error.status_code, headers=error.headers)


_HTTP_KINDS = {401: "AuthenticationError", 403: "PermissionDenied"}
