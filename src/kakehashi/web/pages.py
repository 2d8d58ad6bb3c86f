"""Web pages. Japanese first; ``?lang=en`` or the ``lang`` cookie switches to English.

Pages are server-rendered with Jinja2 (autoescaped) and one local ES module; every asset is a
file under ``static/`` (no CDN, no web fonts), which the Content-Security-Policy enforces.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from kakehashi import __version__
from kakehashi.web.i18n import LANGUAGE_NAMES, js_strings, pick_language, translator

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

router = APIRouter(include_in_schema=False)

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


def _render(request: Request, name: str, **context: object) -> HTMLResponse:
    lang = pick_language(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": translator(lang),
            "languages": LANGUAGE_NAMES,
            "strings": js_strings(lang),
            "version": __version__,
            **context,
        },
    )
    response.headers.update(SECURITY_HEADERS)
    if request.query_params.get("lang") == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """The customer master: phone lookup → customer card; unknown caller → fast new-customer entry."""
    return _render(request, "customers.html", phone=request.query_params.get("phone", "")[:40])
