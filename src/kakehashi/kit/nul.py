"""Refuse NUL characters in requests: PostgreSQL cannot store them in text or JSON (a 500 otherwise),
and no real name, address or note contains one. One check at the edge instead of one per field."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_MARKERS = (b"\\u0000", b"\x00")


class RejectNulMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query or "\x00" in scope.get("path", ""):
            await _refuse(scope, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if any(m in body for m in _MARKERS) or b"%00" in body:
            await _refuse(scope, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """Hand out the buffered messages, then the real channel (streaming responses wait on it for a
    disconnect; answering "disconnected" at once would cut them off)."""

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        return await then()

    return receive


async def _refuse(scope: Scope, send: Send) -> None:
    problem: dict[str, Any] = {
        "type": "/problems/validation",
        "title": "Validation failed",
        "status": 422,
        "detail": "the request contains a NUL character",
        "instance": scope.get("path", ""),
        "errors": [{"field": "", "message": "NUL characters are not allowed", "in": "body"}],
    }
    body = json.dumps(problem).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})
