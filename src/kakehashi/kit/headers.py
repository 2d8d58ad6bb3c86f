"""Security headers on every HTTP response, in one place.

API responses carry personal data: no cache may keep them (``Cache-Control: no-store``), a browser must not
guess their type (``nosniff``) nor show them in a frame, and a link in them must not leak the URL. A response
that set a header itself keeps its own value (pages send their own Content-Security-Policy; a download may
set its own Cache-Control). Paths under ``cacheable`` prefixes (static assets: no personal data) may be
cached: they get every header but ``Cache-Control``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: For JSON and any other response that does not set its own: nothing may load, nothing may frame it.
SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Cache-Control": "no-store",
}


class SecurityHeadersMiddleware:
    def __init__(
        self, app: ASGIApp, *, headers: Mapping[str, str] = SECURITY_HEADERS, cacheable: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.cacheable = tuple(cacheable)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = self.headers
        if self.cacheable and path.startswith(self.cacheable):
            headers = [(k, v) for k, v in headers if k != b"cache-control"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_defaults(message.get("headers", []), headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_defaults(
    headers: Iterable[tuple[bytes, bytes]], defaults: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` plus each default whose name is not among them (names are lower-case in ASGI)."""
    out = list(headers)
    present = {name.lower() for name, _ in out}
    out += [(name, value) for name, value in defaults if name not in present]
    return out
