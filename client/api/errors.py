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

Every error answer is JSON ``{"detail": <one line>, "kind": <error class name>}``.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pathloop.client.errors import (
    ConflictError,
    InputError,
    LimitError,
    PathloopError,
    PathOutsideRootsError,
    RecordNotFoundError,
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


def status_code(error: PathloopError) -> int:
    """The HTTP status of ``error``: its class's entry, else its nearest listed ancestor's."""
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def add_error_handlers(app: FastAPI) -> None:
    """Answer pathloop errors, invalid requests and HTTP errors as one-line JSON."""

    @app.exception_handler(PathloopError)
    async def pathloop_error(request: Request, error: PathloopError) -> JSONResponse:
        return JSONResponse({"detail": str(error), "kind": type(error).__name__},
                            status_code=status_code(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError
                              ) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(part) for part in item["loc"] if part != "body")
            problems.append(f"{where}: {item['msg']}")
        return JSONResponse({"detail": "; ".join(problems) or "invalid request",
                             "kind": "ValidationError"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        kind = "AuthenticationError" if error.status_code == 401 else "HTTPError"
        return JSONResponse({"detail": str(error.detail), "kind": kind},
                            status_code=error.status_code, headers=error.headers)
