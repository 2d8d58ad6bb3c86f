"""Agents over HTTP: admins manage them, supervisors watch and set their states, operators set their own.

An operator's agent is the agent whose name is their username.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from kakehashi.agents import service
from kakehashi.agents.live import live_agent_states, required_live_agent_states
from kakehashi.agents.models import Agent
from kakehashi.agents.repository import AgentRepository
from kakehashi.agents.schemas import (
    AgentCreate,
    AgentOut,
    AgentUpdate,
    AuxCodeIn,
    AuxCodeOut,
    StateChange,
    StateSpanOut,
)
from kakehashi.auth.guard import AdminActor, ManagerActor, StaffActor
from kakehashi.kit.api import IdPath, SessionDep, end_transaction_early, respond
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["agents"])
HistoryLimit = Annotated[int, Query(ge=1, le=1000)]


def _out(agent: Agent, skills: dict[str, int]) -> AgentOut:
    out = AgentOut.model_validate(agent)
    out.skills = skills
    return out


def _one(session: SessionDep, actor: Actor, agent: Agent) -> AgentOut:
    return _out(agent, service.skills_of(session, actor, agent.id))


def _own_agent(session: SessionDep, actor: Actor) -> Agent:
    agent = AgentRepository(session, actor.tenant_id).by_name(actor.username)
    if agent is None:
        raise NotFound(f"{actor.username} is not an agent in this tenant")
    return agent


def _choose(request: Request, session: SessionDep, actor: Actor, agent: Agent, body: StateChange) -> Response:
    live = live_agent_states(request)
    reason = service.check_choice(session, actor, agent, body.state, body.reason, telephony=live is not None)
    if live is None:
        now = service.record_choice(session, actor, agent, body.state, reason)
    else:
        name = agent.name  # read before the commit: nothing may query between it and the controller's writes
        end_transaction_early(session)  # the controller records the change in its own transaction
        now = live.choose_state(actor.tenant_id, name, body.state, reason)
    out = _one(session, actor, agent)
    # The controller recorded the change in its own transaction: this session may not see it yet.
    if now != out.state:
        out.state, out.state_reason, out.state_since = now, body.reason if now == "break" else None, utcnow()
    elif now == "break" and out.state_reason != body.reason:
        out.state_reason, out.state_since = body.reason, utcnow()
    return respond(out, actor)


@router.get("/agents", response_model=list[AgentOut])
def list_agents(session: SessionDep, actor: ManagerActor) -> Response:
    """Every agent of the tenant with their current state and skills."""
    skills = AgentRepository(session, actor.tenant_id).skills_by_agent()
    return respond([_out(a, skills.get(a.id, {})) for a in service.list_agents(session, actor)], actor)


@router.post("/agents", response_model=AgentOut, status_code=status.HTTP_201_CREATED)
def create_agent(session: SessionDep, actor: AdminActor, body: AgentCreate) -> Response:
    """A new agent, logged out. 409 when the name is taken."""
    agent = service.create_agent(session, actor, body.name, body.display_name, body.skills)
    return respond(_one(session, actor, agent), actor, status_code=status.HTTP_201_CREATED)


@router.get("/agents/me", response_model=AgentOut)
def my_agent(session: SessionDep, actor: StaffActor) -> Response:
    """The caller's own agent (404 when the caller is not an agent)."""
    return respond(_one(session, actor, _own_agent(session, actor)), actor)


@router.post("/agents/me/state", response_model=AgentOut)
def choose_my_state(request: Request, session: SessionDep, actor: StaffActor, body: StateChange) -> Response:
    """Go available, take a break (with an aux code) or log out. During a call the choice applies after
    its wrap-up; the answer shows the state now."""
    return _choose(request, session, actor, _own_agent(session, actor), body)


@router.post("/agents/me/wrap-up-done", status_code=status.HTTP_204_NO_CONTENT)
def finish_my_handoff(request: Request, session: SessionDep, actor: StaffActor) -> None:
    """After transferring a call: your notes are done, end your wrap-up now (the call itself is closed by the
    agent who has it). 409 when you have no transferred call in wrap-up."""
    agent = _own_agent(session, actor).name
    live = required_live_agent_states(request)
    end_transaction_early(session)
    live.finish_handoff(actor.tenant_id, agent)


@router.get("/agents/{agent_id}", response_model=AgentOut)
def get_agent(session: SessionDep, actor: ManagerActor, agent_id: IdPath) -> Response:
    return respond(_one(session, actor, service.get_agent(session, actor, agent_id)), actor)


@router.patch("/agents/{agent_id}", response_model=AgentOut)
def update_agent(session: SessionDep, actor: AdminActor, agent_id: IdPath, body: AgentUpdate) -> Response:
    """Rename for display or replace the skills (skill queues pick the change up at once)."""
    agent = service.update_agent(session, actor, agent_id, body.display_name, body.skills)
    return respond(_one(session, actor, agent), actor)


@router.post("/agents/{agent_id}/state", response_model=AgentOut)
def choose_state(
    request: Request, session: SessionDep, actor: ManagerActor, agent_id: IdPath, body: StateChange
) -> Response:
    """A supervisor sets an agent's state (e.g. logs out an agent who left, ends a break)."""
    return _choose(request, session, actor, service.get_agent(session, actor, agent_id), body)


@router.get("/agents/{agent_id}/history", response_model=list[StateSpanOut])
def state_history(session: SessionDep, actor: ManagerActor, agent_id: IdPath, limit: HistoryLimit = 200) -> Response:
    """The agent's states, newest first, each with start and end (NULL end: the current one)."""
    spans = service.history(session, actor, agent_id, limit)
    return respond([StateSpanOut.model_validate(s) for s in spans], actor)


@router.get("/aux-codes", response_model=list[AuxCodeOut])
def list_aux_codes(session: SessionDep, actor: StaffActor) -> Response:
    """Break reasons (離席理由) agents choose from."""
    return respond([AuxCodeOut.model_validate(c) for c in service.aux_codes(session, actor)], actor)


@router.post("/aux-codes", response_model=AuxCodeOut, status_code=status.HTTP_201_CREATED)
def add_aux_code(session: SessionDep, actor: AdminActor, body: AuxCodeIn) -> Response:
    aux = service.add_aux_code(session, actor, body.code, body.label)
    return respond(AuxCodeOut.model_validate(aux), actor, status_code=status.HTTP_201_CREATED)
