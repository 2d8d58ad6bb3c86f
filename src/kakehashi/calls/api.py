"""Calls and CDRs over HTTP: a call's history and recording, the end of wrap-up, CDR lists, costs and the CSV
export. Calls in progress and their control from the agent desktop are routing's (``routing.control_api``)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from kakehashi.auth.guard import ManagerActor, StaffActor
from kakehashi.calls import service
from kakehashi.calls.schemas import CallDetail, CallOut, CdrOut, CdrPage, TransitionOut, WrapUp
from kakehashi.kit.api import MAX_OFFSET, IdPath, SessionDep, respond
from kakehashi.kit.db import utcnow
from kakehashi.kit.export import CSV_MEDIA_TYPE, Export, csv_bytes, download, with_bom

router = APIRouter(prefix="/api/v1", tags=["calls"])


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
    responses={
        200: {
            "content": {"audio/wav": {}},
            "description": "the recording: an 8 kHz WAV, stereo on rtpengine's media plane (the customer left, "
            "the agent right), mono with the PJSIP engine",
        }
    },
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
