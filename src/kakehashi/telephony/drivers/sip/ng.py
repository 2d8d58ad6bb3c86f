"""rtpengine's control protocol (ng: bencoded dictionaries over UDP, each request with a cookie), for asyncio.

The signalling B2BUA (``sip.plane``) drives rtpengine with it: offer/answer for every leg, prompts (``play
media``), recording, blocking media for hold, deleting a call. Requests are retried on silence (rtpengine answers
a repeated cookie from its cache, so a retry never runs a command twice).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from typing import Any

from kakehashi.telephony.drivers.sip import bencode

#: The socket's receive buffer: the default (~200 kB) dropped thousands of replies at 500 concurrent calls.
RECEIVE_BUFFER = 4 << 20


class NgError(RuntimeError):
    """rtpengine refused a command (``result: error``) or did not answer."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: NgClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        cookie, _, payload = data.partition(b" ")
        future = self.client.pending.pop(cookie, None)
        if future is None or future.done():
            return  # a late answer to a request already answered or given up
        try:
            reply = bencode.decode(payload)
        except bencode.BencodeError as exc:
            future.set_exception(NgError(f"rtpengine: unreadable reply ({exc})"))
            return
        future.set_result(reply if isinstance(reply, dict) else {"result": "error", "error-reason": repr(reply)})


class NgClient:
    """One UDP socket to rtpengine's ng port; many requests in flight at once."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 1.0, tries: int = 3) -> None:
        self.address = (host, port)
        self.timeout_s, self.tries = timeout_s, tries
        self.pending: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)  # replies of a burst of calls
        sock.connect(self.address)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        for future in self.pending.values():
            if not future.done():
                future.cancel()
        self.pending.clear()

    async def request(self, command: str, **params: Any) -> dict[str, Any]:
        """One command; its reply. Parameter names use ``_`` for ``-`` (``call_id`` sends ``call-id``).
        Raises ``NgError`` when rtpengine says ``error`` or stays silent through every try."""
        reply = await self.send(command, **params)
        if reply.get("result") == "error":
            raise NgError(f"rtpengine {command}: {reply.get('error-reason', 'error')}")
        return reply

    async def send(self, command: str, **params: Any) -> dict[str, Any]:
        """Like ``request`` but an ``error`` reply is returned, not raised (a delete of a call already gone)."""
        if self._transport is None:
            raise NgError("rtpengine: the ng client is not started")
        body = {"command": command, **{key.replace("_", "-"): value for key, value in params.items()}}
        cookie = secrets.token_hex(8).encode()
        datagram = cookie + b" " + bencode.encode(body)
        loop = asyncio.get_running_loop()
        for _ in range(self.tries):
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            self.pending[cookie] = future
            self._transport.sendto(datagram)
            try:
                return await asyncio.wait_for(future, self.timeout_s)
            except TimeoutError:
                continue
            finally:
                self.pending.pop(cookie, None)
        raise NgError(f"rtpengine {command}: no answer from {self.address[0]}:{self.address[1]}")
