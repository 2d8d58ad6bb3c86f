"""Live call control over HTTP: calls in progress and their control from the agent desktop (answer, hold,
transfer, hang-up, silent monitor) and the transfer dialog's targets.

Call commands go to the running call controller (``routing.live``), which writes what follows in its own
transactions: the request commits first (``end_transaction_early``; SQLite has one writer) and reads nothing after.
The paths are under ``/api/v1/calls`` like the calls domain's own routes; this router is included before the calls
router so that ``/calls/live`` is not taken for a call id."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response, status

from kakehashi.agents import service as agents
from kakehashi.auth.guard import ManagerActor, StaffActor
from kakehashi.calls import service as calls
from kakehashi.calls.models import Call
from kakehashi.calls.schemas import (
    HoldChange,
    LiveCallOut,
    MonitorChange,
    TransferAgent,
    TransferQueue,
    TransferRequest,
    TransferTargets,
)
from kakehashi.kit.api import IdPath, SessionDep, end_transaction_early, respond
from kakehashi.kit.context import MANAGERS, Actor
from kakehashi.kit.masking import mask_phone
from kakehashi.kit.phone import national_form
from kakehashi.routing import service
from kakehashi.routing.controller import CallController
from kakehashi.routing.live import call_control, refused_as_conflict, running
from kakehashi.routing.live_types import CallControlError

router = APIRouter(prefix="/api/v1", tags=["calls"])


@router.get("/calls/live", response_model=list[LiveCallOut])
def list_live_calls(request: Request, session: SessionDep, actor: StaffActor) -> Response:
    """Calls in progress (wrap-up included): the whole floor for supervisors, an operator's own calls."""
    pipeline = running(request)
    monitoring = pipeline is not None and pipeline.controller.can_monitor() and actor.role in MANAGERS
    return respond([_live(c, monitoring) for c in calls.live_calls(session, actor)], actor)


def _live(call: Call, monitoring: bool) -> LiveCallOut:
    return LiveCallOut(
        call_id=call.id,
        call_ref=call.ref,
        state=call.state,
        direction=call.direction,
        queue=call.queue,
        agent=call.agent,
        consult_agent=call.consult_agent,
        customer_id=call.customer_id,
        since=calls.state_since(call),
        ani_masked=mask_phone(national_form(calls.remote_number(call) or "")),
        on_hold=call.held_since is not None,
        recording=call.recording_state in ("started", "resumed"),
        can_monitor=monitoring and call.state == "connected",
    )


@router.get("/transfer-targets", response_model=TransferTargets)
def transfer_targets(session: SessionDep, actor: StaffActor) -> Response:
    """Colleagues (with their state; yourself left out) and queues, for the desktop's transfer dialog."""
    colleagues = [
        TransferAgent(name=a.name, display_name=a.display_name, state=a.state)
        for a in agents.list_agents(session, actor)
        if a.name != actor.username
    ]
    queues = [TransferQueue(name=q.name, label=q.label or q.name) for q in service.list_queues(session, actor)]
    return respond(TransferTargets(agents=colleagues, queues=queues), actor)


def _command(
    request: Request, session: SessionDep, actor: Actor, call_id: int, give: Callable[[CallController, str], None]
) -> None:
    """Give the controller a command about the call (``give(controller, call_ref)``); its refusal is a 409.
    The request's transaction is over before the controller acts."""
    controller = call_control(running(request))
    call: Call = calls.get_call(session, actor, call_id)  # 404 for another tenant's, or another agent's
    ref = call.ref
    end_transaction_early(session)
    with refused_as_conflict():
        give(controller, ref)


def _by(actor: Actor) -> str | None:
    """Whose call it must be: an operator's own; a supervisor may control any call of the tenant."""
    return None if actor.role in MANAGERS else actor.username


@router.post("/calls/{call_id}/answer", status_code=status.HTTP_204_NO_CONTENT)
def answer_call(request: Request, session: SessionDep, actor: StaffActor, call_id: IdPath) -> None:
    """Pick up the call ringing at your phone from the desktop (simulated phones; a desk phone answers on the
    phone, the browser softphone in the page). 409 when it is not ringing at you."""
    _command(request, session, actor, call_id, lambda c, ref: c.answer(actor.tenant_id, ref, actor.username))


@router.post("/calls/{call_id}/hold", status_code=status.HTTP_204_NO_CONTENT)
def hold_call(request: Request, session: SessionDep, actor: StaffActor, call_id: IdPath, body: HoldChange) -> None:
    """Put the caller on hold (music) or take them back."""
    _command(request, session, actor, call_id, lambda c, ref: c.hold(actor.tenant_id, ref, _by(actor), on=body.on))


@router.post("/calls/{call_id}/hangup", status_code=status.HTTP_204_NO_CONTENT)
def hang_up_call(request: Request, session: SessionDep, actor: StaffActor, call_id: IdPath) -> None:
    """End the conversation; the agent's wrap-up follows."""
    _command(request, session, actor, call_id, lambda c, ref: c.hangup(actor.tenant_id, ref, _by(actor)))


@router.post("/calls/{call_id}/transfer", status_code=status.HTTP_202_ACCEPTED)
def transfer_call(
    request: Request, session: SessionDep, actor: StaffActor, call_id: IdPath, body: TransferRequest
) -> None:
    """Blind: to an available agent, into a queue (ahead of new callers) or to an outside number; you go to
    wrap-up. ``attended``: consult an available agent first while the caller holds, then complete or cancel."""

    def give(controller: CallController, ref: str) -> None:
        if not body.attended:
            controller.transfer(actor.tenant_id, ref, _by(actor), body.to, body.target)
        elif body.to != "agent":
            raise CallControlError("an attended transfer consults an agent")
        else:
            controller.consult(actor.tenant_id, ref, _by(actor), body.target)

    _command(request, session, actor, call_id, give)


@router.post("/calls/{call_id}/transfer/complete", status_code=status.HTTP_204_NO_CONTENT)
def complete_transfer(request: Request, session: SessionDep, actor: StaffActor, call_id: IdPath) -> None:
    """Hand the caller to the colleague you are consulting; you go to wrap-up."""
    _command(request, session, actor, call_id, lambda c, ref: c.complete_transfer(actor.tenant_id, ref, _by(actor)))


@router.post("/calls/{call_id}/transfer/cancel", status_code=status.HTTP_204_NO_CONTENT)
def cancel_transfer(request: Request, session: SessionDep, actor: StaffActor, call_id: IdPath) -> None:
    """End the consultation; the caller is back with you."""
    _command(request, session, actor, call_id, lambda c, ref: c.cancel_transfer(actor.tenant_id, ref, _by(actor)))


@router.post("/calls/{call_id}/monitor", status_code=status.HTTP_204_NO_CONTENT)
def monitor_call(
    request: Request, session: SessionDep, actor: ManagerActor, call_id: IdPath, body: MonitorChange
) -> None:
    """Silent monitor: your phone (your username) is called and hears both sides; nobody hears you. 409 where
    the phone system cannot."""
    listener = actor.username
    _command(request, session, actor, call_id, lambda c, ref: c.monitor(actor.tenant_id, ref, listener, on=body.on))
