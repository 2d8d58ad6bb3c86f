"""Calls and CDRs over HTTP: calls in progress and their control from the agent desktop (answer, hold,
transfer, hang-up, silent monitor), a call's history, CDR lists and the CSV export, the end of wrap-up.

Call commands go to the call controller, which writes what follows in its own transactions: the request
commits first (``end_transaction_early``; SQLite has one writer) and reads nothing after."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse

from kakehashi.agents import service as agents
from kakehashi.auth.guard import ManagerActor, StaffActor
from kakehashi.calls import service
from kakehashi.calls.models import Call
from kakehashi.calls.schemas import (
    CallDetail,
    CallOut,
    CdrOut,
    CdrPage,
    HoldChange,
    LiveCallOut,
    MonitorChange,
    TransferAgent,
    TransferQueue,
    TransferRequest,
    TransferTargets,
    TransitionOut,
    WrapUp,
)
from kakehashi.kit.api import MAX_OFFSET, IdPath, SessionDep, end_transaction_early, respond
from kakehashi.kit.context import MANAGERS, Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.export import CSV_MEDIA_TYPE, Export, csv_bytes, download, with_bom
from kakehashi.kit.masking import mask_phone
from kakehashi.kit.phone import national_form
from kakehashi.routing import service as routing
from kakehashi.routing.controller import CallControlError, CallController
from kakehashi.telephony.runtime import call_control, refused_as_conflict

router = APIRouter(prefix="/api/v1", tags=["calls"])


@router.get("/calls/live", response_model=list[LiveCallOut])
def list_live_calls(request: Request, session: SessionDep, actor: StaffActor) -> Response:
    """Calls in progress (wrap-up included): the whole floor for supervisors, an operator's own calls."""
    telephony = request.app.state.telephony
    monitoring = telephony is not None and telephony.controller.can_monitor() and actor.role in MANAGERS
    return respond([_live(c, monitoring) for c in service.live_calls(session, actor)], actor)


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
        since=service.state_since(call),
        ani_masked=mask_phone(national_form(service.remote_number(call) or "")),
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
    queues = [TransferQueue(name=q.name, label=q.label or q.name) for q in routing.list_queues(session, actor)]
    return respond(TransferTargets(agents=colleagues, queues=queues), actor)


def _command(
    request: Request, session: SessionDep, actor: Actor, call_id: int, give: Callable[[CallController, str], None]
) -> None:
    """Give the controller a command about the call (``give(controller, call_ref)``); its refusal is a 409.
    The request's transaction is over before the controller acts."""
    controller = call_control(request.app.state.telephony)
    call: Call = service.get_call(session, actor, call_id)  # 404 for another tenant's, or another agent's
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


@router.get("/calls/{call_id}", response_model=CallDetail)
def get_call(session: SessionDep, actor: StaffActor, call_id: IdPath) -> Response:
    """A call with its state history (an operator: only calls they took)."""
    call, transitions = service.read_call(session, actor, call_id)
    # Built from the row, not from a dumped CallOut: a dump without context would bake in the masking.
    fields = {name: getattr(call, name) for name in CallOut.model_fields}
    detail = CallDetail(**fields, transitions=[TransitionOut.model_validate(t) for t in transitions])
    return respond(detail, actor)


@router.get(
    "/calls/{call_id}/recording",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "the recording (8 kHz mono WAV)"}},
)
def get_recording(request: Request, session: SessionDep, actor: ManagerActor, call_id: IdPath) -> FileResponse:
    """A call's recording (both voices), for supervisors and admins; every download is in the audit log."""
    path = service.recording_file(session, actor, call_id, request.app.state.settings.data_dir)
    return FileResponse(path, media_type="audio/wav", filename=f"call-{call_id}.wav")


@router.post("/calls/{call_id}/wrap-up", response_model=CallOut)
def finish_wrap_up(session: SessionDep, actor: StaffActor, call_id: IdPath, body: WrapUp) -> Response:
    """The agent closes the call with one of the center's result codes (後処理完了, ``GET /dispositions``); its
    CDR is written."""
    # The service checks the operator's right to the call (404) and the code (422 with the field).
    call = service.finish_wrap_up(session, actor, call_id, body.disposition, utcnow(), notes=body.notes,
                                  customer_id=body.customer_id)  # fmt: skip
    return respond(CallOut.model_validate(call), actor)


@router.get("/cdrs", response_model=CdrPage)
def list_cdrs(
    session: SessionDep,
    actor: ManagerActor,
    since: datetime | None = None,
    until: datetime | None = None,
    agent: Annotated[str | None, Query(max_length=60)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Call detail records by start time (oldest first)."""
    items, total = service.list_cdrs(session, actor, since=since, until=until, agent=agent, limit=limit, offset=offset)
    page = CdrPage(items=[CdrOut.model_validate(c) for c in items], total=total, limit=limit, offset=offset)
    return respond(page, actor)


@router.get("/cdrs/costs")
def costs(
    session: SessionDep,
    actor: ManagerActor,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-11"])],
    group: Annotated[str, Query(pattern="^(total|campaign|agent|direction|day)$")] = "total",
) -> list[dict[str, Any]]:
    """Calls, billed seconds and cost (yen) of a month — per campaign, agent, direction or day."""
    return service.cost_summary(session, actor, month=month, group=group)


@router.get("/cdrs/costs.csv", response_class=Response)
def costs_csv(
    session: SessionDep,
    actor: ManagerActor,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    group: Annotated[str, Query(pattern="^(total|campaign|agent|direction|day)$")] = "total",
) -> Response:
    rows = service.cost_summary(session, actor, month=month, group=group)
    columns = [group, "calls", "answered", "billed_seconds", "cost_yen"]
    content = csv_bytes(columns, ([row[c] for c in columns] for row in rows))
    return download(Export(content, f"costs-{month}-{group}.csv", CSV_MEDIA_TYPE))


@router.get("/cdrs.csv", response_class=Response)
def export_cdrs(
    session: SessionDep,
    actor: ManagerActor,
    since: datetime | None = None,
    until: datetime | None = None,
    agent: Annotated[str | None, Query(max_length=60)] = None,
) -> Response:
    """The same records as CSV (UTF-8 with BOM, so Japanese Excel opens it correctly); audited."""
    out = io.StringIO()
    service.export_cdrs(session, actor, out, since=since, until=until, agent=agent)
    return _csv_download(out.getvalue(), "cdrs.csv")


def _csv_download(text: str, filename: str) -> Response:
    return download(Export(with_bom(text), filename, CSV_MEDIA_TYPE))
