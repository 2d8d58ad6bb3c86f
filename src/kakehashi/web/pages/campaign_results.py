"""A campaign's results page: ``/campaigns/{campaign_id}/results`` — the figures in tiles, Chart.js charts by Japan
hour of the day, by day, by agent and by list, the table by any grouping and the CSV/XLSX downloads.

Supervisors, admins and the tenant's client viewers. The page is a frame: ``static/campaign_results.js`` reads
``GET /api/v1/campaigns/{id}/results`` (where agents' names are masked for a client viewer) and draws it as text.
Its own module (the campaigns list and edit pages live in ``campaigns.py``), included by ``app.py``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from kakehashi.auth.guard import Access
from kakehashi.campaigns import results
from kakehashi.kit.api import IdPath, SessionDep
from kakehashi.kit.context import Actor, Role
from kakehashi.web.render import render_page

router = APIRouter(include_in_schema=False)

ResultsPage = Annotated[Actor, Depends(Access(frozenset({Role.SUPERVISOR, Role.ADMIN, Role.CLIENT_VIEWER}), page=True))]
#: The groupings the table offers, in the order of its menu (the first is the default).
TABLE_GROUPINGS = ("list", "segment", "agent", "hour", "day")


@router.get("/campaigns/{campaign_id}/results", response_class=HTMLResponse)
def campaign_results_page(
    request: Request, session: SessionDep, actor: ResultsPage, campaign_id: IdPath
) -> HTMLResponse:
    """The campaign's results (another tenant's campaign: 404, as in the API)."""
    found = results.campaign_results(session, actor, campaign_id)
    return render_page(
        request,
        "campaign_results.html",
        campaign={"id": found.campaign_id, "name": found.campaign, "status": found.status},
        groupings=TABLE_GROUPINGS,
        can_manage=actor.role in (Role.SUPERVISOR, Role.ADMIN),
    )
