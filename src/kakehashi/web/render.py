"""What every server-rendered page shares: the templates, the security headers and :func:`render_page`.

Pages are server-rendered with Jinja2 (autoescaped) and local ES modules; every asset is a file under
``static/`` (no CDN, no web fonts), which the Content-Security-Policy enforces. Forms carry a CSRF token: the
session's own token once logged in; before login a double-submit cookie (``pages.account``).
"""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from kakehashi import __version__
from kakehashi.auth.guard import Identity
from kakehashi.web.i18n import LANGUAGE_NAMES, js_strings, pick_language, translator

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Only our own origin: even a stored <script> that slipped through could not run or call out.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render_page(request: Request, name: str, status_code: int = 200, **context: object) -> HTMLResponse:
    """A template with what every page needs (language, strings, user, CSRF token) and the security headers."""
    lang = pick_language(request)
    identity: Identity | None = getattr(request.state, "identity", None)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": translator(lang),
            "languages": LANGUAGE_NAMES,
            "strings": js_strings(lang),
            "version": __version__,
            "user": identity.user if identity else None,
            "csrf_token": identity.web_session.csrf_token if identity and identity.web_session else "",
            "next_url": "",
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    if request.query_params.get("lang") == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


def form_csrf_ok(request: Request, sent: str) -> bool:
    """The form's ``csrf_token`` is the signed-in session's own (compared in constant time)."""
    identity: Identity | None = getattr(request.state, "identity", None)
    expected = identity.web_session.csrf_token if identity and identity.web_session else ""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())
