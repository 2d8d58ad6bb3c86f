"""Who sees which live event, and the screen pop that rides on an agent's ringing event."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service as calls
from kakehashi.kit.context import MANAGERS, Actor, Role
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.events import Event
from kakehashi.kit.masking import full_context
from kakehashi.screenpop import service as screenpop

STREAMED = ("call.*", "agent.*", "queue.*", "campaign.*")


def visible(actor: Actor, event: Event) -> bool:
    """Same tenant only; supervisors and admins see the whole floor, an operator their own calls and the
    queues' figures (no personal data in those)."""
    if event.tenant_id != actor.tenant_id:
        return False
    if actor.role in MANAGERS:
        return True
    if event.name.startswith("queue."):
        return actor.role is Role.OPERATOR
    # An operator also sees the calls they are consulted on (``target``), to know who is on the line.
    return actor.role is Role.OPERATOR and actor.username in (event.payload.get("agent"), event.payload.get("target"))


def pops_up(actor: Actor, event: Event) -> bool:
    """Whether this event carries the caller's card to this agent: their phone rings for the call, or a
    colleague consults them about it (an attended transfer: they see whom they will take over)."""
    payload = event.payload
    if event.name == "agent.ringing":
        return payload.get("agent") == actor.username
    consulted = payload.get("consult") == "ringing" and payload.get("target") == actor.username
    return event.name == "call.consult" and consulted


def message(event: Event) -> dict[str, Any]:
    return {"type": "event", "name": event.name, "at": event.occurred_at.isoformat(), "payload": event.payload}


def screen_pop_for(factory: sessionmaker[Session], actor: Actor, event: Event) -> dict[str, Any]:
    """The card for the call now ringing at this agent — an audited read by that agent."""
    with unit_of_work(factory) as session:
        call = calls.get_call(session, actor, int(event.payload["call_id"]))
        if call.customer_id is not None:
            pop = screenpop.screen_pop_for_customer(session, actor, call.customer_id)
        else:
            pop = screenpop.screen_pop(session, actor, calls.remote_number(call))
        pop = screenpop.with_campaign_history(session, actor, pop, calls.remote_number(call))
        result: dict[str, Any] = pop.model_dump(mode="json", context=full_context(actor.sees_personal_data))
        return result
