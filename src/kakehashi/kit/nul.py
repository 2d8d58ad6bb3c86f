"""Refuse NUL characters in requests: PostgreSQL cannot store them in text or JSON (a 500 otherwise),
and no real name, address or note contains one. One check at the edge instead of one per field.

The body is checked as it streams in (``NulScanner``), chunk by chunk, never joined; the middleware that
reads it is ``kit.body.BodyGuardMiddleware``, which also enforces the body-size limits.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

#: A NUL as raw byte, as a JSON escape, and percent-encoded (forms).
MARKERS = (b"\\u0000", b"\x00", b"%00")
_KEEP = max(len(m) for m in MARKERS) - 1


class NulScanner:
    """Finds a NUL marker in a body fed in chunks, also one split across two chunks: the last bytes of
    what came before are kept (a marker's length less one) and searched with the next chunk."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> bool:
        """True when a marker ends in ``chunk`` (or started in the chunks before it)."""
        if not chunk:
            return False
        # A marker split across chunks has at most _KEEP bytes on either side of the boundary.
        found = any(m in chunk or m in self._tail + chunk[:_KEEP] for m in MARKERS)
        self._tail = (self._tail + chunk[-_KEEP:])[-_KEEP:]
        return found


def nul_in_target(scope: Scope) -> bool:
    """A NUL in the path or the query string."""
    query: bytes = scope.get("query_string", b"")
    return b"%00" in query or b"\x00" in query or "\x00" in scope.get("path", "")


def nul_problem(scope: Scope) -> dict[str, Any]:
    """The 422 problem details of a request that contains a NUL."""
    return {
        "type": "/problems/validation",
        "title": "Validation failed",
        "status": 422,
        "detail": "the request contains a NUL character",
        "instance": scope.get("path", ""),
        "errors": [{"field": "", "message": "NUL characters are not allowed", "in": "body"}],
    }
