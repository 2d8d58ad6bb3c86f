"""The supervisors' wallboard (見える化): ``/wallboard``.

The page is a frame with the floor's first snapshot embedded (``analytics.service.wallboard``, the same answer as
``GET /api/v1/wallboard``); ``static/wallboard.js`` draws it and keeps it live from the event stream, and acts
through the agents', queues' and calls' APIs. Nothing personal is in the snapshot: callers' numbers come only
from ``GET /api/v1/calls/live``, masked there for roles that may not see them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from kakehashi.analytics import service as analytics
from kakehashi.auth.guard import Access
from kakehashi.kit.api import SessionDep
from kakehashi.kit.context import MANAGERS, Actor
from kakehashi.web.render import render_page

router = APIRouter(include_in_schema=False)

ManagerPage = Annotated[Actor, Depends(Access(MANAGERS, page=True))]

#: The periods the chart of calls per 15 minutes offers, in hours (the first is the default).
CHART_HOURS = (4, 2, 8, 12)


@router.get("/wallboard", response_class=HTMLResponse)
def wallboard_page(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """Queues (waiting callers, longest wait, service level, abandon rate) with alerts, agents by state with their
    time in state and queues, calls in progress and the calls of the last hours — live, with the supervisor's
    actions: change an agent's state, move them between queues, listen to a call."""
    board = analytics.wallboard(session, actor)
    return render_page(request, "wallboard.html", board=board.model_dump(mode="json"), chart_hours=CHART_HOURS)
