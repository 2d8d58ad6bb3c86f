"""The agent desktop: ``/desk``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from kakehashi.agents import service as agents
from kakehashi.auth.guard import Access
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.api import SessionDep, end_transaction_early
from kakehashi.kit.context import STAFF, Actor
from kakehashi.routing import service as routing
from kakehashi.telephony.api import softphone_configured, websocket_origin
from kakehashi.web.render import CONTENT_SECURITY_POLICY, render_page

router = APIRouter(include_in_schema=False)

StaffPage = Annotated[Actor, Depends(Access(STAFF, page=True))]


@router.get("/desk", response_class=HTMLResponse)
def desk_page(request: Request, session: SessionDep, actor: StaffPage) -> HTMLResponse:
    """The agent desktop: state, the call with its controls and the customer's card, fast entry, wrap-up."""
    agent = agents.own_agent(session, actor)
    aux_codes = agents.aux_codes(session, actor)
    labels = {q.name: q.label or q.name for q in routing.list_queues(session, actor)}
    telephony = request.app.state.telephony
    joined: list[str] = []
    if telephony is not None and agent is not None:
        name = agent.name
        end_transaction_early(session)  # the controller may load the tenant in its own transaction (one writer)
        joined = telephony.controller.queues_of(actor.tenant_id, name)
    response = render_page(
        request,
        "desk.html",
        phone="",
        agent=agent,
        queues=[labels.get(queue, queue) for queue in joined],
        aux_codes=aux_codes,
        dispositions=dispositions.list_dispositions(session, actor),
        softphone=agent is not None and softphone_configured(request.app.state.settings),
    )
    softphone = websocket_origin(request.app.state.settings)
    if softphone:  # the browser softphone talks SIP over Kamailio's WebSocket, another origin than ours
        policy = CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {softphone}")
        response.headers["Content-Security-Policy"] = policy
    return response
