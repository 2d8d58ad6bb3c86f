"""Routing configuration (numbers, queues, members) and what the call controller needs from the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kakehashi.agents import service as agents
from kakehashi.audit import service as audit
from kakehashi.ivr import service as ivr
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed, field_error, unavailable
from kakehashi.kit.events import Event, publish_on_commit
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.routing import repository
from kakehashi.routing.engine import AgentState, QueueRules
from kakehashi.routing.live_types import TenantSetup
from kakehashi.routing.models import Callback, InboundNumber, Queue, QueueMember, Voicemail
from kakehashi.routing.repository import RoutingRepository

NULLABLE = frozenset({"skill", "max_wait_s", "max_length", "overflow_queue", "sticky_agent_minutes", "wait_alert_s"})
QUEUE_FIELDS = ("label", "strategy", "skill", "weight", "wrap_up_s", "ring_timeout_s", "max_wait_s", "max_length",
                "overflow_action", "overflow_queue", "escalation", "rank_priority", "sticky_agent_minutes",
                "sl_threshold_s", "sl_target_pct", "wait_alert_s")  # fmt: skip


def rules_of(queue: Queue) -> QueueRules:
    """The engine's view of a queue row."""
    return QueueRules(
        name=queue.name,
        strategy=queue.strategy,
        weight=queue.weight,
        wrap_up_s=float(queue.wrap_up_s),
        ring_timeout_s=float(queue.ring_timeout_s),
        max_wait_s=None if queue.max_wait_s is None else float(queue.max_wait_s),
        max_length=queue.max_length,
        overflow_action=queue.overflow_action,
        overflow_queue=queue.overflow_queue,
        escalation=tuple((float(step["after_s"]), int(step["max_level"])) for step in queue.escalation or ()),
        sl_threshold_s=float(queue.sl_threshold_s),
        sticky_agent_s=None if queue.sticky_agent_minutes is None else queue.sticky_agent_minutes * 60.0,
        rank_priority=tuple((str(k), int(v)) for k, v in (queue.rank_priority or {}).items()),
    )


def setup(session: Session, tenant_id: int) -> TenantSetup:
    """Queues, members (listed and by skill) and the agents' last states, for the controller."""
    repo = RoutingRepository(session, tenant_id)
    everyone = agents.tenant_agents(session, tenant_id)
    names = {a.id: a.name for a in everyone}
    queues = repo.queues()
    members: list[tuple[str, str, int]] = []
    for queue in queues:
        if queue.skill:
            skilled = agents.agents_with_skill(session, tenant_id, queue.skill)
            members += [(name, queue.name, level) for name, level in skilled]
        else:
            members += [(names[m.agent_id], queue.name, m.level) for m in repo.members(queue.id) if m.agent_id in names]
    states = tuple((a.name, AgentState(a.state), a.state_reason) for a in everyone)
    skill_queues = tuple((q.skill, q.name) for q in queues if q.skill)  # queues come in name order
    return TenantSetup(tuple(rules_of(q) for q in queues), tuple(members), states, skill_queues)


def tenant_of_number(session: Session, e164: str) -> int | None:
    """Which tenant a dialled number (E.164) belongs to: not tenant-scoped, this is how the tenant is found."""
    row = repository.number_by_e164(session, e164)
    return None if row is None else row.tenant_id


def pending_callbacks(session: Session) -> list[Callback]:
    """Every tenant's callbacks still to be made, oldest place first, detached (reloaded at start-up)."""
    return repository.pending_callbacks(session)


def create_queue(session: Session, actor: Actor, name: str, data: dict[str, Any]) -> Queue:
    queue = Queue(tenant_id=actor.tenant_id, name=name, label=data.get("label") or name, strategy="longest_idle",
                  weight=0, wrap_up_s=30, ring_timeout_s=15, overflow_action="none", escalation=[], rank_priority={},
                  sl_threshold_s=20, sl_target_pct=80)  # fmt: skip
    _apply(session, actor, queue, data)
    session.add(queue)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"a queue named {name} already exists") from None
    _changed(session, actor)
    return queue


def update_queue(session: Session, actor: Actor, queue_id: int, data: dict[str, Any]) -> Queue:
    queue = get_queue(session, actor, queue_id)
    _apply(session, actor, queue, data)
    session.flush()
    _changed(session, actor)
    return queue


def _apply(session: Session, actor: Actor, queue: Queue, data: dict[str, Any]) -> None:
    """Set the given settings (None clears a nullable one) and check the result as a whole."""
    for key in QUEUE_FIELDS:
        if key in data and (data[key] is not None or key in NULLABLE):
            setattr(queue, key, data[key])
    errors = []
    if queue.overflow_action == "queue":
        if not queue.overflow_queue:
            errors.append(field_error("overflow_queue", "required when overflow_action is queue"))
        elif queue.overflow_queue == queue.name:
            errors.append(field_error("overflow_queue", "a queue cannot overflow into itself"))
        elif RoutingRepository(session, actor.tenant_id).queue_named(queue.overflow_queue) is None:
            errors.append(field_error("overflow_queue", f"no queue named {queue.overflow_queue}"))
    if queue.overflow_action != "none" and queue.max_wait_s is None and queue.max_length is None:
        errors.append(field_error("overflow_action", "overflow needs max_wait_s or max_length"))
    try:
        rules_of(queue)
    except (ValueError, KeyError, TypeError) as exc:
        errors.append(field_error("queue", str(exc)))
    if errors:
        raise ValidationFailed("invalid queue settings", errors=errors)


def get_queue(session: Session, actor: Actor, queue_id: int) -> Queue:
    queue = RoutingRepository(session, actor.tenant_id).queue(queue_id)
    if queue is None:
        raise NotFound(f"queue {queue_id} not found")
    return queue


def list_queues(session: Session, actor: Actor) -> list[Queue]:
    return RoutingRepository(session, actor.tenant_id).queues()


def set_members(session: Session, actor: Actor, queue_id: int, members: dict[str, int]) -> list[QueueMember]:
    """Replace the listed members of a queue: agent name → level (1 first)."""
    queue = get_queue(session, actor, queue_id)
    repo = RoutingRepository(session, actor.tenant_id)
    for old in repo.members(queue.id):
        session.delete(old)
    session.flush()
    rows = []
    for name, level in members.items():
        agent = agents.agent_named(session, actor, name)
        if not 1 <= level <= 9:
            raise ValidationFailed("invalid level", errors=[field_error(f"members.{name}", "level must be 1..9")])
        rows.append(QueueMember(queue_id=queue.id, agent_id=agent.id, level=level))
    session.add_all(rows)
    session.flush()
    _changed(session, actor)
    return rows


def members_of(session: Session, actor: Actor, queue_id: int) -> dict[str, int]:
    queue = get_queue(session, actor, queue_id)
    names = {a.id: a.name for a in agents.list_agents(session, actor)}
    return {names[m.agent_id]: m.level for m in RoutingRepository(session, actor.tenant_id).members(queue.id)}


def tenant_numbers(session: Session, actor: Actor) -> list[str]:
    """The tenant's own numbers (E.164), in order: the caller ID of a call the center places by hand."""
    return [n.number_e164 for n in RoutingRepository(session, actor.tenant_id).numbers()]


def queues_of_agent(session: Session, actor: Actor, name: str) -> set[str]:
    """The names of the queues ``name`` is a member of (none for an unknown agent)."""
    agent = next((a for a in agents.list_agents(session, actor) if a.name == name), None)
    if agent is None:
        return set()
    repo = RoutingRepository(session, actor.tenant_id)
    return {q.name for q in repo.queues() if any(m.agent_id == agent.id for m in repo.members(q.id))}


def add_number(session: Session, actor: Actor, number: str, *, flow: str | None, queue: str | None,
               label: str = "") -> InboundNumber:  # fmt: skip
    e164 = try_normalize_phone(number)
    if e164 is None:
        raise ValidationFailed("invalid number", errors=[field_error("number", "not a valid phone number")])
    row = InboundNumber(tenant_id=actor.tenant_id, number_e164=e164, flow=flow, queue=queue, label=label)
    _check_answer(session, actor, row)
    if any(n.number_e164 == e164 for n in RoutingRepository(session, actor.tenant_id).numbers()):
        raise Conflict(f"{e164} is already in use", errors=[field_error("number", "already in use")])
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # A number routes to one tenant, so it is unique across the center: only the caller's own is named back
        # (above); another tenant's gets a message that confirms nothing.
        raise unavailable("number", "number") from None
    return row


def update_number(session: Session, actor: Actor, number_id: int, data: dict[str, Any]) -> InboundNumber:
    """Point a number at another flow or queue (``flow``/``queue`` given as null are cleared)."""
    row = _number(session, actor, number_id)
    for key in ("flow", "queue", "label"):
        if key in data and (data[key] is not None or key != "label"):
            setattr(row, key, data[key])
    _check_answer(session, actor, row)
    session.flush()
    return row


def delete_number(session: Session, actor: Actor, number_id: int) -> None:
    """Stop answering a number (calls to it are then only recorded, not routed)."""
    session.delete(_number(session, actor, number_id))
    session.flush()


def _number(session: Session, actor: Actor, number_id: int) -> InboundNumber:
    row = RoutingRepository(session, actor.tenant_id).number(number_id)
    if row is None:
        raise NotFound(f"inbound number {number_id} not found")
    return row


def _check_answer(session: Session, actor: Actor, row: InboundNumber) -> None:
    """Something must answer the number, and what is named must exist."""
    repo = RoutingRepository(session, actor.tenant_id)
    errors = []
    if not row.flow and not row.queue:
        errors.append(field_error("flow", "give an IVR flow or a queue"))
    if row.flow and ivr.live_version(session, actor.tenant_id, row.flow) is None:
        errors.append(field_error("flow", f"no IVR flow named {row.flow}"))
    if row.queue and repo.queue_named(row.queue) is None:
        errors.append(field_error("queue", f"no queue named {row.queue}"))
    if errors:
        raise ValidationFailed("the number cannot be answered", errors=errors)


def list_numbers(session: Session, actor: Actor) -> list[InboundNumber]:
    return RoutingRepository(session, actor.tenant_id).numbers()


def callbacks(session: Session, actor: Actor, limit: int = 200, status: str | None = None) -> list[Callback]:
    """Callback requests (pending first, by place); the numbers shown are an audited read."""
    rows = RoutingRepository(session, actor.tenant_id).callbacks(limit, status)
    audit.record(session, actor, "read", resource="callbacks", detail={"rows": len(rows)})
    return rows


def voicemails(session: Session, actor: Actor, limit: int = 200, status: str | None = None) -> list[Voicemail]:
    """Messages callers left, newest first; the numbers shown are an audited read."""
    rows = RoutingRepository(session, actor.tenant_id).voicemails(limit, status)
    audit.record(session, actor, "read", resource="voicemails", detail={"rows": len(rows)})
    return rows


def give_up_callback(session: Session, tenant_id: int, origin_ref: str, at: datetime) -> None:
    """A callback that can no longer be made (its queue is gone) ends as failed, so supervisors see it."""
    row = RoutingRepository(session, tenant_id).callback(origin_ref)
    if row is not None and row.status in ("pending", "dialing"):
        row.status, row.done_at = "failed", at
        session.flush()


def set_voicemail_status(session: Session, actor: Actor, voicemail_id: int, status: str) -> Voicemail:
    """Mark a message handled (``done``) or back to ``new``."""
    row = RoutingRepository(session, actor.tenant_id).voicemail(voicemail_id)
    if row is None:
        raise NotFound(f"voicemail {voicemail_id} not found")
    row.status = status
    session.flush()
    audit.record(session, actor, "update", resource="voicemail", resource_id=row.id, detail={"status": status})
    return row


def _changed(session: Session, actor: Actor) -> None:
    publish_on_commit(session, Event("routing.config_changed", actor.tenant_id, {}))
