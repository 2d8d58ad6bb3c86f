"""Web pages. Japanese first; ``?lang=en`` or the ``lang`` cookie switches to English."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from kakehashi.web.i18n import pick_language, translator

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

router = APIRouter(include_in_schema=False)


def _render(request: Request, name: str, **context: object) -> HTMLResponse:
    lang = pick_language(request)
    response = templates.TemplateResponse(
        request, name, {"lang": lang, "t": translator(lang), **context}
    )
    if request.query_params.get("lang") == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return _render(request, "customers.html", phone=request.query_params.get("phone", ""))
