"""Agents: who they are, their skills, and the record of every state they were in.

Live state is decided by the call controller (routing); this module persists it and answers questions about
it. Without a running controller (no telephony driver), chosen states are written here directly.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kakehashi.agents.models import Agent, AgentSkill, AgentStateSpan, AuxCode
from kakehashi.agents.repository import AgentRepository
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed, field_error, unavailable
from kakehashi.kit.events import Event, publish_on_commit


def create_agent(session: Session, actor: Actor, name: str, display_name: str, skills: dict[str, int]) -> Agent:
    """A new agent (``name`` is their login and the phone system's name for them)."""
    if AgentRepository(session, actor.tenant_id).by_name(name) is not None:
        raise Conflict(f"an agent named {name} already exists", errors=[field_error("name", "already taken")])
    agent = Agent(tenant_id=actor.tenant_id, name=name, display_name=display_name, state="logged_out",
                  state_since=utcnow())  # fmt: skip
    session.add(agent)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Agent names are unique across the center (they are SIP user names): the caller's own tenant's agent
        # is named back above; another tenant's gets a message that confirms nothing.
        raise unavailable("name") from None
    _set_skills(session, agent, skills)
    _config_changed(session, actor.tenant_id)
    return agent


def set_skills(session: Session, actor: Actor, agent_id: int, skills: dict[str, int]) -> Agent:
    agent = get_agent(session, actor, agent_id)
    for old in AgentRepository(session, actor.tenant_id).skills(agent.id):
        session.delete(old)
    session.flush()
    _set_skills(session, agent, skills)
    _config_changed(session, actor.tenant_id)
    return agent


def _set_skills(session: Session, agent: Agent, skills: dict[str, int]) -> None:
    bad = [field_error(f"skills.{k}", "level must be 1..9") for k, v in skills.items() if not 1 <= v <= 9]
    if bad:
        raise ValidationFailed("invalid skill levels", errors=bad)
    session.add_all(AgentSkill(agent_id=agent.id, skill=skill, level=level) for skill, level in skills.items())
    session.flush()


def update_agent(
    session: Session, actor: Actor, agent_id: int, display_name: str | None, skills: dict[str, int] | None
) -> Agent:
    agent = get_agent(session, actor, agent_id)
    if display_name is not None:
        agent.display_name = display_name
    if skills is not None:
        set_skills(session, actor, agent.id, skills)
    session.flush()
    return agent


def get_agent(session: Session, actor: Actor, agent_id: int) -> Agent:
    agent = AgentRepository(session, actor.tenant_id).get(agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return agent


def agent_named(session: Session, actor: Actor, name: str) -> Agent:
    agent = AgentRepository(session, actor.tenant_id).by_name(name)
    if agent is None:
        raise NotFound(f"no agent named {name}")
    return agent


def own_agent(session: Session, actor: Actor) -> Agent | None:
    """The actor's own agent (an agent's name is its user's username), if they are one."""
    return AgentRepository(session, actor.tenant_id).by_name(actor.username)


def list_agents(session: Session, actor: Actor) -> list[Agent]:
    return AgentRepository(session, actor.tenant_id).all()


def tenant_agents(session: Session, tenant_id: int) -> list[Agent]:
    """A tenant's agents by name, for the system (the call controller's set-up), not an actor."""
    return AgentRepository(session, tenant_id).all()


def agents_with_skill(session: Session, tenant_id: int, skill: str) -> list[tuple[str, int]]:
    """(agent name, level) of the tenant's agents who have ``skill`` (a skill queue's members)."""
    return AgentRepository(session, tenant_id).with_skill(skill)


def skills_of(session: Session, actor: Actor, agent_id: int) -> dict[str, int]:
    return {s.skill: s.level for s in AgentRepository(session, actor.tenant_id).skills(agent_id)}


def history(session: Session, actor: Actor, agent_id: int, limit: int = 200) -> list[AgentStateSpan]:
    get_agent(session, actor, agent_id)
    return AgentRepository(session, actor.tenant_id).spans(agent_id, limit)


def check_reason(session: Session, actor: Actor, state: str, reason: str | None) -> None:
    """A break needs one of the tenant's aux codes (or any reason when the tenant defined none)."""
    if state != "break":
        return
    if not reason:
        raise ValidationFailed("a break needs a reason", errors=[field_error("reason", "required for a break")])
    codes = {c.code for c in AgentRepository(session, actor.tenant_id).aux_codes()}
    if codes and reason not in codes:
        raise ValidationFailed("unknown break reason", errors=[field_error("reason", f"one of {sorted(codes)}")])


def record_state(
    session: Session, tenant_id: int, name: str, state: str, reason: str | None, queue: str | None,
    call_ref: str | None, at: datetime,
) -> Agent | None:  # fmt: skip
    """Close the agent's current span and open one for ``state``; the change goes out as ``agent.state``."""
    repo = AgentRepository(session, tenant_id)
    agent = repo.by_name(name)
    if agent is None:
        return None
    current = repo.open_span(agent.id)
    if current is not None:
        current.ended_at = max(at, current.started_at)
    session.add(AgentStateSpan(tenant_id=tenant_id, agent_id=agent.id, state=state, reason=reason, queue=queue,
                               call_ref=call_ref, started_at=at))  # fmt: skip
    agent.state, agent.state_reason, agent.state_since = state, reason, at
    session.flush()
    payload = {"agent": name, "agent_id": agent.id, "state": state, "reason": reason, "queue": queue,
               "call_ref": call_ref}  # fmt: skip
    publish_on_commit(session, Event("agent.state", tenant_id, payload))
    return agent


CHOOSABLE = frozenset({"available", "break", "logged_out"})
BUSY = frozenset({"ringing", "on_call", "wrap_up"})


def check_choice(session: Session, actor: Actor, agent: Agent, state: str, reason: str | None, *,
                 telephony: bool) -> str | None:  # fmt: skip
    """May the agent (or a supervisor for them) pick ``state`` — available, break (with an aux code) or
    logged-out? Returns the reason to record. With telephony running the call controller then decides (a choice
    made during a call applies after its wrap-up); without it, ``record_choice``."""
    if state not in CHOOSABLE:
        raise ValidationFailed("not a state to choose", errors=[field_error("state", f"one of {sorted(CHOOSABLE)}")])
    check_reason(session, actor, state, reason)
    if not telephony and agent.state in BUSY:
        raise Conflict(f"{agent.name} is {agent.state}: no telephony is running to finish that call")
    return reason if state == "break" else None


def record_choice(session: Session, actor: Actor, agent: Agent, state: str, reason: str | None) -> str:
    """The checked choice, recorded here because no call controller runs (``telephony_driver=none``)."""
    record_state(session, actor.tenant_id, agent.name, state, reason, None, None, utcnow())
    return state


def aux_codes(session: Session, actor: Actor) -> list[AuxCode]:
    return AgentRepository(session, actor.tenant_id).aux_codes()


def add_aux_code(session: Session, actor: Actor, code: str, label: str) -> AuxCode:
    aux = AuxCode(tenant_id=actor.tenant_id, code=code, label=label)
    session.add(aux)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"aux code {code} already exists") from None
    return aux


def _config_changed(session: Session, tenant_id: int) -> None:
    publish_on_commit(session, Event("routing.config_changed", tenant_id, {}))
