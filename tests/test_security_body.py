"""Request bodies at the edge (kit/body.py): a size limit per path, refused with 413 from the Content-Length
before anything is read and while a chunked body streams in; NUL characters refused chunk by chunk; the
middleware never holds more than the limit; a body that passes reaches the app as it was sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import select
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from kakehashi.app import create_app
from kakehashi.kit import migrate
from kakehashi.kit.body import BodyGuardMiddleware, MiB
from kakehashi.kit.config import Settings
from kakehashi.kit.db import make_engine
from kakehashi.kit.nul import MARKERS
from web_server import serving

LIMIT = MiB
CHUNK = 64 * 1024
TIMEOUT = 60  # generous: the machine is shared; a passing run answers in milliseconds


# ---- a raw ASGI harness: what the middleware read, what it sent, whether the app ran -------------------


class Upstream:
    """A client's side of one request: hands out ``chunks`` (then, if ``endless``, the last one forever) and
    counts what the middleware pulled."""

    def __init__(self, chunks: list[bytes], *, endless: bool = False) -> None:
        self.chunks = chunks
        self.endless = endless
        self.calls = 0
        self.read = 0

    async def receive(self) -> Message:
        self.calls += 1
        if self.calls > len(self.chunks) and not self.endless:
            return {"type": "http.disconnect"}
        chunk = self.chunks[min(self.calls, len(self.chunks)) - 1]
        self.read += len(chunk)
        more = self.endless or self.calls < len(self.chunks)
        return {"type": "http.request", "body": chunk, "more_body": more}


class EchoApp:
    """Reads the whole body and answers its length and SHA-256."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        digest, size, more = hashlib.sha256(), 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        body = json.dumps({"size": size, "sha256": digest.hexdigest()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def call(
    guard: BodyGuardMiddleware, upstream: Upstream, *, path: str = "/api/v1/auth/token", length: int | None = None
) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": headers}
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(guard(scope, upstream.receive, send), TIMEOUT))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), json.loads(body)


def guard_for(app: EchoApp, **kw: Any) -> BodyGuardMiddleware:
    return BodyGuardMiddleware(app, max_bytes=LIMIT, **kw)


def assert_too_large(status: int, headers: dict[bytes, bytes], problem: dict[str, Any], limit: int = LIMIT) -> None:
    assert status == 413
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"
    assert problem["status"] == 413 and problem["type"] == "/problems/too-large"
    assert problem["max_bytes"] == limit and str(limit) in problem["detail"]


class TestSizeLimit:
    def test_a_content_length_over_the_limit_is_refused_before_a_byte_is_read(self) -> None:
        app, upstream = EchoApp(), Upstream([b"{"], endless=True)
        status, headers, problem = call(guard_for(app), upstream, length=200 * MiB)
        assert_too_large(status, headers, problem)
        assert upstream.calls == 0 and not app.called

    def test_a_chunked_body_growing_past_the_limit_is_refused_and_reading_stops(self) -> None:
        app, upstream = EchoApp(), Upstream([b"x" * CHUNK], endless=True)  # no Content-Length, never ends
        status, headers, problem = call(guard_for(app), upstream)
        assert_too_large(status, headers, problem)
        assert upstream.read == LIMIT + CHUNK  # the chunk that passed the limit, and not one more
        assert not app.called

    def test_a_content_length_that_lies_low_is_caught_while_streaming(self) -> None:
        app, upstream = EchoApp(), Upstream([b"x" * CHUNK], endless=True)
        status, headers, problem = call(guard_for(app), upstream, length=10)
        assert_too_large(status, headers, problem)
        assert not app.called

    def test_the_guard_never_holds_more_than_the_limit(self) -> None:
        """64 MiB streamed in (the old middleware joined it all: 64 MiB held at once); the guard holds at most
        the limit. The chunk is one object handed out again and again, so only what the guard keeps counts."""
        app, upstream = EchoApp(), Upstream([b"x" * CHUNK] * (64 * MiB // CHUNK))
        tracemalloc.start()
        try:
            status, headers, problem = call(guard_for(app), upstream)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert_too_large(status, headers, problem)
        assert peak < LIMIT + 2 * MiB, f"peak {peak / MiB:.1f} MiB"

    def test_a_body_at_the_limit_reaches_the_app_as_sent(self) -> None:
        chunks = [bytes([i]) * CHUNK for i in range(1, LIMIT // CHUNK + 1)]
        app, upstream = EchoApp(), Upstream(chunks)
        status, _, echoed = call(guard_for(app), upstream, length=LIMIT)
        assert status == 200 and echoed == {"size": LIMIT, "sha256": hashlib.sha256(b"".join(chunks)).hexdigest()}

    def test_an_empty_body_reaches_the_app(self) -> None:
        app = EchoApp()
        status, _, echoed = call(guard_for(app), Upstream([b""]), length=0)
        assert status == 200 and echoed["size"] == 0

    def test_a_path_prefix_declares_a_larger_limit_and_its_body_is_spooled_to_disk(self) -> None:
        guard = guard_for(
            EchoApp(), limits={"/api/v1/imports": 4 * LIMIT, "/api/v1/imports/small": 10}, spool_bytes=CHUNK
        )
        chunks = [bytes([i % 250 + 1]) * CHUNK for i in range(3 * LIMIT // CHUNK)]
        status, _, echoed = call(guard, Upstream(chunks), path="/api/v1/imports/customers")
        assert status == 200 and echoed["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
        assert_too_large(*call(guard, Upstream(chunks), path="/api/v1/customers"))
        assert_too_large(*call(guard, Upstream([b"x" * 11]), path="/api/v1/imports/small/x"), limit=10)
        assert_too_large(*call(guard, Upstream([b"x"]), path="/api/v1/imports/x", length=5 * LIMIT), limit=4 * LIMIT)


class TestNulWhileStreaming:
    @pytest.mark.parametrize("marker", MARKERS)
    def test_a_marker_split_across_chunks_is_refused(self, marker: bytes) -> None:
        body = b'{"name": "A' + marker + b'B"}'
        start = body.index(marker)
        for cut in range(start, start + len(marker) + 1):
            app = EchoApp()
            status, _, problem = call(guard_for(app), Upstream([body[:cut], body[cut:]]))
            assert status == 422 and problem["errors"][0]["message"] == "NUL characters are not allowed", cut
            assert not app.called
        app = EchoApp()  # one byte per chunk
        status, _, _ = call(guard_for(app), Upstream([bytes([b]) for b in body]))
        assert status == 422 and not app.called

    def test_a_body_near_a_marker_passes(self) -> None:
        body = b'{"name": "\\u00001"}'.replace(b"\\u0000", b"\\u00 00")
        status, _, echoed = call(guard_for(EchoApp()), Upstream([body[:12], body[12:]]))
        assert status == 200 and echoed["size"] == len(body)


# ---- the app: JSON problem details from every route, also for paths that do not exist ------------------


def test_the_app_refuses_an_oversized_json_body_with_problem_details(app_client: TestClient) -> None:
    for path in ("/api/v1/auth/token", "/api/v1/customers", "/api/v1/no-such-route"):
        r = app_client.post(path, content=b'{"username": "' + b"a" * LIMIT + b'"}')
        assert r.status_code == 413, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["max_bytes"] == LIMIT and r.json()["instance"] == path


def test_the_limit_is_a_setting(settings: Settings, session_factory: Any) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(small, session_factory=session_factory)) as c:
        r = c.post("/api/v1/auth/token", json={"username": "x" * 3000, "password": "y"})
        assert r.status_code == 413 and r.json()["max_bytes"] == 2048
        assert c.post("/api/v1/auth/token", json={"username": "x", "password": "y"}).status_code == 401


# ---- against a real uvicorn: the server is not made to wait for (or hold) a body it will refuse --------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp: Path = tmp_path_factory.mktemp("body")
    settings = Settings(database_url=f"sqlite:///{tmp}/t.db", data_dir=tmp)
    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    engine.dispose()
    with serving(create_app(settings)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One HTTP/1.1 response (the server closes the connection after it)."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_a_200_mib_content_length_is_answered_413_without_sending_the_body(server: tuple[str, int]) -> None:
    """Before: the server waited for (and buffered) the 200 MiB; the client here sends none of it."""
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /api/v1/auth/token HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 209715200\r\n\r\n"
        )
        status, headers, problem = read_response(sock)
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close" and problem["max_bytes"] == LIMIT


def test_a_chunked_body_is_cut_off_soon_after_the_limit(server: tuple[str, int]) -> None:
    """The client streams up to 200 MiB with Transfer-Encoding: chunked; the server answers 413 after about the
    limit and closes the connection: it does not read, or keep, the rest. (Closing with bytes still in flight
    resets the connection, which may drop the 413 before the client reads it: the ASGI tests above check it.)"""
    piece = b"%x\r\n%s\r\n" % (CHUNK, b"x" * CHUNK)
    sent, response = 0, None
    with socket.create_connection(server, timeout=TIMEOUT) as sock:
        try:
            sock.sendall(b"POST /api/v1/customers HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
            while sent < 200 * MiB and not select.select([sock], [], [], 0)[0]:
                sock.sendall(piece)
                sent += CHUNK
            response = read_response(sock)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 20 * MiB, f"sent {sent / MiB:.0f} MiB before the server stopped reading"
    if response is not None:
        status, _, problem = response
        assert status == 413 and problem["type"] == "/problems/too-large"
