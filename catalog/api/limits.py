"""Request-body caps: a body larger than the limit is refused with 413 before or while it arrives."""

from __future__ import annotations

import json

from .errors import BodyTooLarge


class BodyLimit:
    """ASGI middleware: ``limit_for(path)`` bytes at most per request body (Content-Length checked
    first; a chunked body is counted as it streams)."""

    def __init__(self, app, limit_for):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _refuse(send, limit)
                    return
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


async def _refuse(send, limit: int) -> None:
    exc = BodyTooLarge(limit)
    body = json.dumps({"error": {"code": exc.code, "message": exc.message, "field": exc.field}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
