"""The customer master: ``/``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kakehashi.auth.guard import PageActor
from kakehashi.web.render import render_page

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, _: PageActor) -> HTMLResponse:
    """The customer master: phone lookup → customer card; unknown caller → fast new-customer entry."""
    return render_page(request, "customers.html", phone=request.query_params.get("phone", "")[:40])
