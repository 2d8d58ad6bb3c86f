"""IVR flows over HTTP: supervisors read them, admins save new versions or roll back.

A refused save is a 422 problem listing every problem of the flow at its path (``nodes.menu1.options.3``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from kakehashi.auth.guard import AdminActor, ManagerActor
from kakehashi.ivr import service
from kakehashi.ivr.schemas import FlowCreate, FlowDetail, FlowOut, RestoreIn, VersionCreate, VersionInfo, VersionOut
from kakehashi.kit.api import IdPath, SessionDep, respond
from kakehashi.kit.context import Actor

router = APIRouter(prefix="/api/v1/ivr", tags=["ivr"])

#: Version numbers are INTEGER columns: a bigger number is a 422, not a database error.
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _detail(saved: service.Saved) -> FlowDetail:
    return FlowDetail(
        id=saved.flow.id,
        name=saved.flow.name,
        current_version=saved.flow.current_version,
        created_at=saved.flow.created_at,
        updated_at=saved.flow.updated_at,
        current=VersionOut.model_validate(saved.version),
    )


def _answer(saved: service.Saved, actor: Actor, status_code: int = status.HTTP_200_OK) -> Response:
    return respond(_detail(saved), actor, status_code=status_code)


@router.get("/flows", response_model=list[FlowOut])
def list_flows(session: SessionDep, actor: ManagerActor) -> Response:
    """The tenant's flows by name, with the version that answers calls."""
    return respond([FlowOut.model_validate(f) for f in service.list_flows(session, actor)], actor)


@router.post("/flows", response_model=FlowDetail, status_code=status.HTTP_201_CREATED)
def create_flow(session: SessionDep, actor: AdminActor, body: FlowCreate) -> Response:
    """A new flow and its version 1. 422 lists every problem of the definition; 409 when the name is taken."""
    return _answer(service.create_flow(session, actor, body), actor, status.HTTP_201_CREATED)


@router.get("/flows/{flow_id}", response_model=FlowDetail)
def get_flow(session: SessionDep, actor: ManagerActor, flow_id: IdPath) -> Response:
    """The flow with its current version's definition."""
    return _answer(service.get_flow(session, actor, flow_id), actor)


@router.put("/flows/{flow_id}", response_model=FlowDetail)
def save_version(session: SessionDep, actor: AdminActor, flow_id: IdPath, body: VersionCreate) -> Response:
    """Save a new version (it answers calls from now on). Send ``base_version`` to get a 409 instead of
    silently replacing a version someone saved while you edited."""
    return _answer(service.save_version(session, actor, flow_id, body), actor)


@router.get("/flows/{flow_id}/versions", response_model=list[VersionInfo])
def list_versions(session: SessionDep, actor: ManagerActor, flow_id: IdPath) -> Response:
    """Every version, newest first (without the definitions)."""
    return respond([VersionInfo.model_validate(v) for v in service.list_versions(session, actor, flow_id)], actor)


@router.get("/flows/{flow_id}/versions/{version}", response_model=VersionOut)
def get_version(session: SessionDep, actor: ManagerActor, flow_id: IdPath, version: VersionPath) -> Response:
    return respond(VersionOut.model_validate(service.get_version(session, actor, flow_id, version)), actor)


@router.post("/flows/{flow_id}/versions/{version}/restore", response_model=FlowDetail)
def restore_version(
    session: SessionDep, actor: AdminActor, flow_id: IdPath, version: VersionPath, body: RestoreIn | None = None
) -> Response:
    """Roll back: the old version's definition becomes a new version (checked against today's queues)."""
    return _answer(service.restore(session, actor, flow_id, version, body), actor)
