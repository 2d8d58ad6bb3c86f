"""Queue statistics, the wallboard's snapshot of the floor and historical reports over HTTP, for supervisors and
admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from kakehashi.analytics import service
from kakehashi.analytics.schemas import AgentReport, QueueReport, QueueStats, Wallboard
from kakehashi.auth.guard import ManagerActor
from kakehashi.kit.api import IdPath, SessionDep, respond
from kakehashi.kit.export import download

router = APIRouter(prefix="/api/v1", tags=["metrics"])

_WHEN = "ISO 8601; without an offset it is Japan time"
Since = Annotated[datetime | None, Query(description=f"start of the window (default: today 00:00 JST); {_WHEN}")]
Until = Annotated[datetime | None, Query(description=f"end of the window, excluded (default: now); {_WHEN}")]
Interval = Annotated[str, Query(pattern="^(15min|hour|day)$", description="15min ≤ 31 days, hour ≤ 92, day ≤ 366")]
QueueName = Annotated[str | None, Query(max_length=60, description="one queue by name")]
AgentName = Annotated[str | None, Query(max_length=60, description="one agent by login name")]


@router.get("/queues/{queue_id}/stats", response_model=QueueStats)
def queue_stats(
    session: SessionDep,
    actor: ManagerActor,
    queue_id: IdPath,
    since: Annotated[datetime | None, Query(description=f"default: today 00:00 JST; {_WHEN}")] = None,
) -> Response:
    """Callers waiting, the longest wait, members by state, and today's service level, ASA, abandon rate,
    AHT and occupancy (docs/metrics.md)."""
    return respond(service.queue_stats(session, actor, queue_id, since=since), actor)


@router.get("/wallboard", response_model=Wallboard)
def wallboard(session: SessionDep, actor: ManagerActor) -> Response:
    """The floor now, as the wallboard (/wallboard) shows it: per queue the callers waiting, the longest wait and
    today's figures with the queue's targets; every agent's state, time in state and queues; the alerts (service
    level below target, a wait beyond the limit) and the break reasons. Nothing personal."""
    return respond(service.wallboard(session, actor), actor)


@router.get("/reports/queues", response_model=QueueReport)
def queue_report(
    session: SessionDep,
    actor: ManagerActor,
    since: Since = None,
    until: Until = None,
    interval: Interval = "hour",
    queue: QueueName = None,
) -> Response:
    """One row per queue and interval (Japan time) with the metrics of docs/metrics.md."""
    report = service.queue_report(session, actor, since=since, until=until, interval=interval, queue=queue)
    return respond(report, actor)


@router.get("/reports/queues.csv", response_class=Response)
def queue_report_csv(
    session: SessionDep,
    actor: ManagerActor,
    since: Since = None,
    until: Until = None,
    interval: Interval = "hour",
    queue: QueueName = None,
) -> Response:
    """The queue report as CSV (UTF-8 with BOM); audited."""
    params = {"since": since, "until": until, "interval": interval, "queue": queue}
    return download(service.export_queue_report(session, actor, "csv", **params))


@router.get("/reports/queues.xlsx", response_class=Response)
def queue_report_xlsx(
    session: SessionDep,
    actor: ManagerActor,
    since: Since = None,
    until: Until = None,
    interval: Interval = "hour",
    queue: QueueName = None,
) -> Response:
    """The queue report as an Excel workbook; audited."""
    params = {"since": since, "until": until, "interval": interval, "queue": queue}
    return download(service.export_queue_report(session, actor, "xlsx", **params))


@router.get("/reports/agents", response_model=AgentReport)
def agent_report(
    session: SessionDep,
    actor: ManagerActor,
    since: Since = None,
    until: Until = None,
    interval: Interval = "hour",
    agent: AgentName = None,
) -> Response:
    """One row per agent and interval: calls handled, talk/hold/wrap-up, AHT, time per state, occupancy."""
    report = service.agent_report(session, actor, since=since, until=until, interval=interval, agent=agent)
    return respond(report, actor)


@router.get("/reports/agents.csv", response_class=Response)
def agent_report_csv(
    session: SessionDep,
    actor: ManagerActor,
    since: Since = None,
    until: Until = None,
    interval: Interval = "hour",
    agent: AgentName = None,
) -> Response:
    params = {"since": since, "until": until, "interval": interval, "agent": agent}
    return download(service.export_agent_report(session, actor, "csv", **params))


@router.get("/reports/agents.xlsx", response_class=Response)
def agent_report_xlsx(
    session: SessionDep,
    actor: ManagerActor,
    since: Since = None,
    until: Until = None,
    interval: Interval = "hour",
    agent: AgentName = None,
) -> Response:
    params = {"since": since, "until": until, "interval": interval, "agent": agent}
    return download(service.export_agent_report(session, actor, "xlsx", **params))
