"""Queue statistics, the wallboard's snapshot of the floor and historical reports over HTTP, for supervisors and
admins."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

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


@dataclass
class ReportFilter:
    """The query parameters every report takes: the window (Japan time) and the interval of its rows. One class
    for the six report routes, so their parameters, validation and OpenAPI stay the same by construction."""

    since: Since = None
    until: Until = None
    interval: Interval = "hour"

    def params(self) -> dict[str, Any]:
        """The filter as the service's keyword arguments."""
        return asdict(self)


@dataclass
class QueueFilter(ReportFilter):
    """A queue report's filter: the window, and optionally one queue."""

    queue: QueueName = None


@dataclass
class AgentFilter(ReportFilter):
    """An agent report's filter: the window, and optionally one agent."""

    agent: AgentName = None


QueueReportFilter = Annotated[QueueFilter, Depends()]
AgentReportFilter = Annotated[AgentFilter, Depends()]


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
def queue_report(session: SessionDep, actor: ManagerActor, report: QueueReportFilter) -> Response:
    """One row per queue and interval (Japan time) with the metrics of docs/metrics.md."""
    return respond(service.queue_report(session, actor, **report.params()), actor)


@router.get("/reports/queues.csv", response_class=Response)
def queue_report_csv(session: SessionDep, actor: ManagerActor, report: QueueReportFilter) -> Response:
    """The queue report as CSV (UTF-8 with BOM); audited."""
    return download(service.export_queue_report(session, actor, "csv", **report.params()))


@router.get("/reports/queues.xlsx", response_class=Response)
def queue_report_xlsx(session: SessionDep, actor: ManagerActor, report: QueueReportFilter) -> Response:
    """The queue report as an Excel workbook; audited."""
    return download(service.export_queue_report(session, actor, "xlsx", **report.params()))


@router.get("/reports/agents", response_model=AgentReport)
def agent_report(session: SessionDep, actor: ManagerActor, report: AgentReportFilter) -> Response:
    """One row per agent and interval: calls handled, talk/hold/wrap-up, AHT, time per state, occupancy."""
    return respond(service.agent_report(session, actor, **report.params()), actor)


@router.get("/reports/agents.csv", response_class=Response)
def agent_report_csv(session: SessionDep, actor: ManagerActor, report: AgentReportFilter) -> Response:
    return download(service.export_agent_report(session, actor, "csv", **report.params()))


@router.get("/reports/agents.xlsx", response_class=Response)
def agent_report_xlsx(session: SessionDep, actor: ManagerActor, report: AgentReportFilter) -> Response:
    return download(service.export_agent_report(session, actor, "xlsx", **report.params()))
