"""Request body limit, enforced before parsing (declared length) and while reading (chunked)."""

from __future__ import annotations

import json

from fastapi import HTTPException


async def send_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` gets 413 and never reaches a route.

    A declared ``Content-Length`` over the limit is refused at once; a body sent without
    one (chunked) is counted as it arrives and refused when it crosses the limit.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    def _too_large(self, n: int | str) -> str:
        return f"request body of {n} bytes is over the limit of {self.max_bytes} bytes"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, "Content-Length header is not a number")
                    return
                if declared > self.max_bytes:
                    await send_error(send, 413, self._too_large(declared))
                    return
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large(f"more than {received}"))
            return message

        await self.app(scope, limited, send)
