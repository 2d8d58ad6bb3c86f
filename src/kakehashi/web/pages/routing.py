"""Inbound routing for supervisors: ``/routing`` and its live part ``/routing/live`` — queues, agents, numbers,
callbacks and voicemail."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from kakehashi.agents import service as agents
from kakehashi.analytics import service as analytics
from kakehashi.auth.guard import Access
from kakehashi.ivr import service as ivr
from kakehashi.kit.api import SessionDep
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import MANAGERS, Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.masking import mask_phone
from kakehashi.kit.phone import national_form
from kakehashi.routing import service as routing
from kakehashi.web.render import render_page

router = APIRouter(include_in_schema=False)

ManagerPage = Annotated[Actor, Depends(Access(MANAGERS, page=True))]

#: Rows of the personal lists on /routing (the newest matter; the API lists more).
CALLBACKS_SHOWN = 50
VOICEMAILS_SHOWN = 20


def _elapsed(seconds: float | None) -> str:
    """``65`` → ``1:05``; an hour or more → ``1:02:03``."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _number_shown(actor: Actor, e164: str | None) -> str:
    """A caller's number, masked for roles that do not see personal data (``auth.masking``)."""
    if not e164:
        return ""
    return national_form(e164) if actor.sees_personal_data else mask_phone(national_form(e164))


def _routing_live(session: Session, actor: Actor) -> dict[str, Any]:
    """What moves with the calls: each queue now (analytics' real-time figures) and each agent's state."""
    now = utcnow()
    queues = routing.list_queues(session, actor)
    return {
        "now": now,
        "queues": [(q, analytics.queue_snapshot(session, actor.tenant_id, q.name, now)) for q in queues],
        "agents": agents.list_agents(session, actor),
        "aux": {c.code: c.label for c in agents.aux_codes(session, actor)},
        "elapsed": _elapsed,
        "age": lambda at: (now - at).total_seconds(),
        "since": lambda seconds: (now - timedelta(seconds=seconds)).isoformat(),  # for the script's clock
    }


@router.get("/routing", response_class=HTMLResponse)
def routing_page(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """Supervisors' view of inbound routing: queues and agents (kept current by the page's script), the numbers
    and what answers them, callbacks to make and the latest voicemail (an audited read of callers' numbers)."""
    # The audited reads first: their audit rows make this transaction a writer early, which SQLite needs while
    # the call pipeline writes too (a transaction that reads long and writes late fails with "database is locked").
    waiting = [cb for cb in routing.callbacks(session, actor, CALLBACKS_SHOWN) if cb.status in ("pending", "dialing")]
    messages = routing.voicemails(session, actor, VOICEMAILS_SHOWN)
    flows = {f.name: f.id for f in ivr.list_flows(session, actor)}
    numbers = [(n, national_form(n.number_e164)) for n in routing.list_numbers(session, actor)]  # the center's own
    traffic = getattr(request.app.state, "demo_traffic", None)
    return render_page(
        request,
        "routing.html",
        **_routing_live(session, actor),
        numbers=numbers,
        flows=flows,
        callbacks=[(cb, _number_shown(actor, cb.number_e164)) for cb in waiting],
        voicemails=[(vm, _number_shown(actor, vm.number_e164)) for vm in messages],
        demo_rate=None if traffic is None or traffic.stopped else traffic.options.calls_per_hour,
        tz=BUSINESS_TZ,
    )


@router.get("/routing/live", response_class=HTMLResponse)
def routing_live_part(request: Request, session: SessionDep, actor: ManagerPage) -> HTMLResponse:
    """The queues and agents of /routing alone (no personal data), which the page's script swaps in."""
    return render_page(request, "_routing_live.html", **_routing_live(session, actor), tz=BUSINESS_TZ)
