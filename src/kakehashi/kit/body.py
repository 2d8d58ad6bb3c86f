"""The edge of every HTTP request's body: a size limit per path, and no NUL characters (``kit.nul``).

Runs before login and routing, so an anonymous client cannot make the server hold more than the limit:

- a ``Content-Length`` over the path's limit is refused with 413 before a byte of the body is read;
- a body without one (chunked) is read chunk by chunk and refused with 413 as soon as the running total
  passes the limit; the rest is never read (the response closes the connection);
- each chunk is checked for NUL markers as it arrives (422), never the joined body.

A body that passes is handed to the app as it came, chunk by chunk (replayed). Up to ``spool_bytes`` it is
held in memory; a larger one (only paths given a larger limit can send one) is spooled to a temporary
file, so the memory a request can take stays bounded whatever its path's limit.

Limits are data: ``max_bytes`` for every path (``KAKEHASHI_MAX_BODY_BYTES``), and ``limits``, a mapping
of path prefix → bytes for the routes that take more (the longest matching prefix wins).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kakehashi.kit.nul import NulScanner, nul_in_target, nul_problem

MiB = 1024 * 1024
REPLAY_CHUNK = 64 * 1024


class BodyGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = MiB,
        limits: Mapping[str, int] | None = None,
        spool_bytes: int = MiB,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Longest prefix first, so "/api/v1/imports/big" can differ from "/api/v1/imports". A ``*`` segment stands
        # for any one path segment (an id: "/api/v1/campaigns/*/lists").
        self.limits = [
            (_prefix_pattern(prefix), limit)
            for prefix, limit in sorted((limits or {}).items(), key=lambda item: len(item[0]), reverse=True)
        ]
        self.spool_bytes = spool_bytes

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if prefix.match(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if nul_in_target(scope):
            await _send_problem(send, nul_problem(scope))
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_problem(send, too_large_problem(scope, limit), close=True)
            return
        body = _Body(self.spool_bytes)
        scanner = NulScanner()
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    await self.app(scope, _replay([message], receive), send)
                    return
                chunk: bytes = message.get("body", b"")
                if body.size + len(chunk) > limit:
                    await _send_problem(send, too_large_problem(scope, limit), close=True)
                    return
                if scanner.feed(chunk):
                    await _send_problem(send, nul_problem(scope))
                    return
                body.append(chunk)
                if not message.get("more_body", False):
                    break
            await self.app(scope, _replay(body.messages(), receive), send)
        finally:
            body.close()


def _prefix_pattern(prefix: str) -> re.Pattern[str]:
    """A path prefix as a pattern matched at the start of a path; each ``*`` segment matches one segment."""
    return re.compile("/".join("[^/]+" if part == "*" else re.escape(part) for part in prefix.split("/")))


def too_large_problem(scope: Scope, limit: int) -> dict[str, Any]:
    return {
        "type": "/problems/too-large",
        "title": "Content too large",
        "status": 413,
        "detail": f"the request body is larger than this route takes ({limit} bytes)",
        "instance": scope.get("path", ""),
        "max_bytes": limit,
    }


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses it; the streamed total is checked anyway
    return None


class _Body:
    """The chunks read so far: in memory up to ``spool_bytes``, then in a temporary file."""

    def __init__(self, spool_bytes: int) -> None:
        self.spool_bytes = spool_bytes
        self.size = 0
        self.chunks: list[bytes] = []
        self.file: IO[bytes] | None = None

    def append(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.file is None and self.size > self.spool_bytes:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            for held in self.chunks:
                self.file.write(held)
            self.chunks = []
        if self.file is not None:
            self.file.write(chunk)
        elif chunk:
            self.chunks.append(chunk)

    def messages(self) -> _Messages:
        return _Messages(self)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class _Messages:
    """``http.request`` messages of a held body, in order; the last says ``more_body: False``."""

    def __init__(self, body: _Body) -> None:
        self.body = body
        self.sent = 0
        if body.file is not None:
            body.file.seek(0)

    def __bool__(self) -> bool:
        return self.sent == 0 or self.sent < self.body.size

    def pop(self) -> Message:
        if self.body.file is not None:
            chunk = self.body.file.read(REPLAY_CHUNK)
        else:
            chunk = self.body.chunks.pop(0) if self.body.chunks else b""
        self.sent += len(chunk) or 1  # an empty body is one empty message
        return {"type": "http.request", "body": chunk, "more_body": self.sent < self.body.size}


def _replay(messages: _Messages | list[Message], then: Receive) -> Receive:
    """Hand out the held messages, then the real channel (streaming responses wait on it for a
    disconnect; answering "disconnected" at once would cut them off)."""

    async def receive() -> Message:
        if messages:
            return messages.pop(0) if isinstance(messages, list) else messages.pop()
        return await then()

    return receive


async def _send_problem(send: Send, problem: dict[str, Any], *, close: bool = False) -> None:
    body = json.dumps(problem).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of the body is never read: do not keep the connection for another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": problem["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body})
