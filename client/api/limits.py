"""Request size limits, enforced before anything reads, parses or authenticates a body.

:class:`BodyLimit` is the outermost of the site API's middlewares (only Starlette's own
error catcher, which reads nothing, wraps it). A request whose ``Content-Length`` exceeds
the limit is answered 413 without reading a byte of its body; one that sends more than it
declared is cut off at the limit and answered 413; a body streamed with no length at all
(chunked) is refused with 411. FastAPI reads and parses a body before it resolves the
route's dependencies, token check included, so without this a caller with no token could
make the service hold a body of any size.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    """The body streamed past the limit."""


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413 (411 with no length, 400 for
    a malformed one)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        lengths = [value for name, value in headers if name.lower() == b"content-length"]
        if not lengths and any(name.lower() == b"transfer-encoding" for name, _ in headers):
            # A streamed body of unknown length: refused rather than read up to the limit.
            await _answer(send, 411, "a request body needs a Content-Length header")
            return
        if lengths:
            text = lengths[0].decode("latin-1").strip()
            if len(lengths) > 1 or not text.isdigit() or len(text) > 18:
                await _answer(send, 400, "the Content-Length header is not one whole number")
                return
            if int(text) > self.max_bytes:
                await _answer(send, 413, self._refusal())
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:  # the app answered before reading the rest: nothing left to say
                return
            await _answer(send, 413, self._refusal())

    def _refusal(self) -> str:
        return (f"the request body exceeds the site's limit of {self.max_bytes} bytes "
                "([api] max-body-mb)")


async def _answer(send: Send, status: int, detail: str) -> None:
    kind = {411: "LengthRequired", 413: "PayloadTooLarge"}.get(status, "BadRequest")
    body = json.dumps({"detail": detail, "kind": kind}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["BodyLimit"]
