"""The API's own documentation: ``/docs`` (Swagger UI) and ``/openapi.json``, for signed-in users only.

Swagger UI is served from ``static/vendor/swagger-ui`` (npm ``swagger-ui-dist``, installed by
``scripts/assets``): nothing comes from a CDN. ReDoc is off. ``KAKEHASHI_API_DOCS=0`` removes both routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from kakehashi import __version__
from kakehashi.auth.guard import AnyRoleActor, Identity, PageActor
from kakehashi.web.render import SECURITY_HEADERS, templates

OPENAPI_URL = "/openapi.json"

router = APIRouter(include_in_schema=False, tags=["docs"])


@router.get(OPENAPI_URL)
def openapi(request: Request, _: AnyRoleActor) -> JSONResponse:
    """The OpenAPI schema of every operation (any signed-in role: a session cookie or a bearer token)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request, _: PageActor) -> HTMLResponse:
    identity: Identity | None = getattr(request.state, "identity", None)
    csrf = identity.web_session.csrf_token if identity and identity.web_session else ""
    response = templates.TemplateResponse(
        request, "apidocs.html", {"openapi_url": OPENAPI_URL, "csrf_token": csrf, "version": __version__}
    )
    response.headers.update(SECURITY_HEADERS)  # the pages' own: only our origin (Swagger UI runs under it)
    return response
