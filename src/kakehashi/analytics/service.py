"""Queue statistics now, and per queue / agent / interval reports with CSV and XLSX exports.

Every figure comes from ``definitions`` (one formula per metric); this module picks the rows (repository),
the window and the intervals. Windows are in Japan time: a naive ``since``/``until`` is read as JST.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from kakehashi.agents import service as agents
from kakehashi.analytics import definitions as d
from kakehashi.analytics.repository import ReportingRepository
from kakehashi.analytics.schemas import (
    AgentReport,
    AgentReportRow,
    QueueReport,
    QueueReportRow,
    QueueStats,
    Wallboard,
    WallboardAgent,
    WallboardAlert,
    WallboardAuxCode,
    WallboardMembership,
    WallboardQueue,
)
from kakehashi.audit import service as audit
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import NotFound, ValidationFailed, field_error
from kakehashi.kit.export import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Export, csv_bytes, xlsx_bytes
from kakehashi.routing.models import Queue

#: How far back ``/queues/{id}/stats?since=`` may reach (it is a live view, not a report).
MAX_STATS_WINDOW = timedelta(days=31)
EXPORT_FORMATS = ("csv", "xlsx")
States = dict[str, float]


def day_start(at: datetime) -> datetime:
    """00:00 Japan time of the day ``at`` falls on."""
    return at.astimezone(BUSINESS_TZ).replace(hour=0, minute=0, second=0, microsecond=0)


def in_business_tz(at: datetime) -> datetime:
    """In Japan time: an aware datetime converted, a naive one read as Japan time."""
    return at.replace(tzinfo=BUSINESS_TZ) if at.tzinfo is None else at.astimezone(BUSINESS_TZ)


#: Moments outside these years are typos (and near year 1 or 9999 the arithmetic would overflow).
YEARS = (2000, 2999)


def _check_years(errors: list[dict[str, Any]], **moments: datetime | None) -> None:
    for field, at in moments.items():
        if at is not None and not YEARS[0] <= at.year <= YEARS[1]:
            errors.append(field_error(field, f"must be between the years {YEARS[0]} and {YEARS[1]}"))


# -- real time --------------------------------------------------------------------------------------------


def queue_snapshot(
    session: Session, tenant_id: int, queue_name: str, now: datetime, *, since: datetime | None = None
) -> QueueStats:
    """The statistics of a queue by name, for code without an HTTP actor (the call controller publishes them
    as ``queue.stats``). Five small indexed queries; no audit row (nothing personal is read). It reads what
    the session has flushed. A name without a ``queues`` row gets the default threshold and no members."""
    repo = ReportingRepository(session, tenant_id)
    return _snapshot(repo, repo.queue_named(queue_name), queue_name, now, since or day_start(now))


def queue_stats(
    session: Session, actor: Actor, queue_id: int, *, since: datetime | None = None, now: datetime | None = None
) -> QueueStats:
    """``GET /queues/{id}/stats``: another tenant's queue is not found."""
    now = now or utcnow()
    repo = ReportingRepository(session, actor.tenant_id)
    queue = repo.queue(queue_id)
    if queue is None:
        raise NotFound(f"queue {queue_id} not found")
    errors: list[dict[str, Any]] = []
    _check_years(errors, since=since)
    if errors:
        raise ValidationFailed("since is not a plausible time", errors=errors)
    start = day_start(now) if since is None else in_business_tz(since)
    if start > now:
        raise ValidationFailed("since is in the future", errors=[field_error("since", "must not be in the future")])
    if now - start > MAX_STATS_WINDOW:
        raise ValidationFailed(
            "since is too far back", errors=[field_error("since", "at most 31 days back; use /reports/queues")]
        )
    return _snapshot(repo, queue, queue.name, now, start)


def _snapshot(repo: ReportingRepository, queue: Queue | None, name: str, now: datetime, since: datetime) -> QueueStats:
    threshold = queue.sl_threshold_s if queue is not None else d.DEFAULT_THRESHOLD_S
    waiting, oldest = repo.waiting(name)
    totals = repo.queue_totals(name, threshold, since, now)
    by_state: dict[str, int] = dict.fromkeys(d.AGENT_STATES, 0)
    times: States = {}
    if queue is not None:
        members = repo.member_ids(queue)
        by_state.update(repo.agents_by_state(members))
        times = repo.state_seconds(since, now, members)
    return QueueStats(
        queue_id=queue.id if queue is not None else None,
        queue=name,
        label=queue.label if queue is not None else name,
        at=now.astimezone(BUSINESS_TZ),
        since=since.astimezone(BUSINESS_TZ),
        threshold_s=threshold,
        calls_waiting=waiting,
        longest_wait_s=None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 1),
        members=sum(by_state.values()),
        agents_by_state=by_state,
        **d.call_metrics(totals),
        occupancy=d.occupancy(times),
    )


# -- the wallboard ----------------------------------------------------------------------------------------


def wallboard(session: Session, actor: Actor, *, now: datetime | None = None) -> Wallboard:
    """``GET /api/v1/wallboard``: every queue with the figures of :func:`queue_snapshot` (today from 00:00 Japan
    time; occupancy left out) and its alerts, every agent with their state and queues, the break reasons.

    A handful of queries whatever the number of queues (waiting callers and CDR totals grouped by queue; members
    by state counted here from the agents' states), so many supervisors may keep it open."""
    now = now or utcnow()
    since = day_start(now)
    repo = ReportingRepository(session, actor.tenant_id)
    configured = repo.queues()
    waiting = repo.waiting_by_queue()
    totals = repo.totals_per_queue(since, now)
    floor = agents.list_agents(session, actor)
    aux = agents.aux_codes(session, actor)
    labels = {code.code: code.label for code in aux}
    state_of = {agent.id: agent.state for agent in floor}
    memberships: dict[int, list[WallboardMembership]] = defaultdict(list)
    by_state: dict[str, dict[str, int]] = {q.name: dict.fromkeys(d.AGENT_STATES, 0) for q in configured}
    for queue_name, agent_id, level, by_skill in sorted(repo.memberships()):
        memberships[agent_id].append(WallboardMembership(queue=queue_name, level=level, by_skill=by_skill))
        counts = by_state.get(queue_name)
        if counts is not None and agent_id in state_of:
            counts[state_of[agent_id]] = counts.get(state_of[agent_id], 0) + 1
    queues = []
    for q in configured:
        count, oldest = waiting.get(q.name, (0, None))
        queues.append(
            WallboardQueue(
                queue_id=q.id,
                queue=q.name,
                label=q.label,
                strategy=q.strategy,
                skill=q.skill or None,
                threshold_s=q.sl_threshold_s,
                sl_target=q.sl_target_pct / 100,
                wait_limit_s=q.wait_alert_s or q.sl_threshold_s,
                calls_waiting=count,
                longest_wait_s=None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 1),
                members=sum(by_state[q.name].values()),
                agents_by_state=by_state[q.name],
                **d.call_metrics(totals.get(q.name, d.CallTotals())),
            )
        )
    return Wallboard(
        at=now.astimezone(BUSINESS_TZ),
        since=since.astimezone(BUSINESS_TZ),
        queues=queues,
        agents=[
            WallboardAgent(
                id=a.id,
                name=a.name,
                display_name=a.display_name,
                state=a.state,
                reason=a.state_reason,
                reason_label=labels.get(a.state_reason, a.state_reason) if a.state_reason else None,
                since=a.state_since.astimezone(BUSINESS_TZ),
                queues=memberships.get(a.id, []),
            )
            for a in floor
        ],
        aux_codes=[WallboardAuxCode(code=c.code, label=c.label) for c in aux],
        alerts=[alert for q in queues for alert in queue_alerts(q)],
    )


def queue_alerts(q: WallboardQueue) -> list[WallboardAlert]:
    """What needs a supervisor now: the service level below the target, a caller waiting beyond the limit."""
    found = []
    if q.service_level is not None and d.below_target(q.service_level, q.sl_target):
        found.append(WallboardAlert(queue=q.queue, kind="service_level", value=q.service_level, limit=q.sl_target))
    if q.longest_wait_s is not None and d.wait_too_long(q.longest_wait_s, q.wait_limit_s):
        found.append(WallboardAlert(queue=q.queue, kind="wait", value=q.longest_wait_s, limit=q.wait_limit_s))
    return found


# -- reports ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime
    interval: str


def report_window(since: datetime | None, until: datetime | None, interval: str, now: datetime) -> Window:
    """[since, until) in Japan time; by default today so far. Too long a window for the interval is a 422."""
    if interval not in d.INTERVALS:
        raise ValidationFailed("unknown interval", errors=[field_error("interval", f"one of {', '.join(d.INTERVALS)}")])
    errors: list[dict[str, Any]] = []
    _check_years(errors, since=since, until=until)
    if errors:
        raise ValidationFailed("the report window is not valid", errors=errors)
    end = in_business_tz(until) if until is not None else now.astimezone(BUSINESS_TZ)
    start = in_business_tz(since) if since is not None else day_start(end - timedelta(microseconds=1))
    if start >= end:
        errors.append(field_error("until", "must be after since"))
    elif end - start > d.MAX_WINDOW[interval]:
        errors.append(field_error("until", f"a {interval} report covers at most {d.MAX_WINDOW[interval].days} days"))
    if errors:
        raise ValidationFailed("the report window is not valid", errors=errors)
    return Window(start, end, interval)


def queue_report(
    session: Session,
    actor: Actor,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    interval: str = "hour",
    queue: str | None = None,
    now: datetime | None = None,
) -> QueueReport:
    """One row per (queue, interval) with calls or logged-in members: calls by the interval they started in,
    member time split across intervals."""
    now = now or utcnow()
    w = report_window(since, until, interval, now)
    repo = ReportingRepository(session, actor.tenant_id)
    size_s = d.interval_seconds(interval)
    configured = {q.name: q for q in repo.queues(queue)}
    totals = repo.totals_by_queue(w.since, w.until, size_s, d.GRID_OFFSET_S, queue)
    members = repo.members_by_queue(queue)
    agent_ids = set().union(*members.values()) if members else set()
    times = _agent_times(repo, w, now, agent_ids) if agent_ids else {}
    calls_by_queue: dict[str, dict[int, d.CallTotals]] = defaultdict(dict)
    for (name, index), t in totals.items():
        calls_by_queue[name][index] = t
    rows = []
    for name in sorted(set(configured) | set(calls_by_queue)):
        q = configured.get(name)
        member_times = _merge(times.get(agent_id, {}) for agent_id in members.get(name, ()))
        calls = calls_by_queue.get(name, {})
        for index in sorted(set(calls) | _active(member_times)):
            start = d.bucket_start(index, interval)
            rows.append(
                QueueReportRow(
                    queue=name,
                    interval_start=start,
                    interval_end=start + d.INTERVALS[interval],
                    threshold_s=q.sl_threshold_s if q is not None else d.DEFAULT_THRESHOLD_S,
                    **d.call_metrics(calls.get(index, d.CallTotals())),
                    occupancy=d.occupancy(member_times.get(index, {})),
                )
            )
    return QueueReport(since=w.since, until=w.until, interval=interval, rows=rows)


def agent_report(
    session: Session,
    actor: Actor,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    interval: str = "hour",
    agent: str | None = None,
    now: datetime | None = None,
) -> AgentReport:
    """One row per (agent, interval) with calls or logged-in time."""
    now = now or utcnow()
    w = report_window(since, until, interval, now)
    repo = ReportingRepository(session, actor.tenant_id)
    agents = repo.agents(agent)
    names = {agent_id: (name, display) for agent_id, name, display in agents}
    totals = repo.totals_by_agent(w.since, w.until, d.interval_seconds(interval), d.GRID_OFFSET_S, agent)
    times = _agent_times(repo, w, now, set(names) if agent is not None else None) if agents else {}
    calls_by_agent: dict[str, dict[int, d.CallTotals]] = defaultdict(dict)
    for (name, index), t in totals.items():
        calls_by_agent[name][index] = t
    times_by_name = {names[agent_id][0]: per for agent_id, per in times.items() if agent_id in names}
    display = {name: shown for name, shown in names.values()}
    rows = []
    for name in sorted(set(calls_by_agent) | set(times_by_name)):
        calls = calls_by_agent.get(name, {})
        per_interval = times_by_name.get(name, {})
        for index in sorted(set(calls) | _active(per_interval)):
            start = d.bucket_start(index, interval)
            rows.append(
                AgentReportRow(
                    agent=name,
                    display_name=display.get(name, name),
                    interval_start=start,
                    interval_end=start + d.INTERVALS[interval],
                    **d.handling_metrics(calls.get(index, d.CallTotals())),
                    **d.state_metrics(per_interval.get(index, {})),
                )
            )
    return AgentReport(since=w.since, until=w.until, interval=interval, rows=rows)


def _agent_times(
    repo: ReportingRepository, w: Window, now: datetime, agent_ids: set[int] | None
) -> dict[int, dict[int, States]]:
    """Seconds per state per interval per agent: each span clipped to the window (a span still open lasts
    until now) and split at interval boundaries."""
    stop = min(w.until, now)
    out: dict[int, dict[int, States]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for agent_id, state, started, ended in repo.spans(w.since, w.until, agent_ids):
        start, end = max(started, w.since), min(ended or stop, stop)
        for index, seconds in d.split_by_interval(start, end, w.interval):
            out[agent_id][index][state] += seconds
    return out


def _merge(per_agent: Iterable[dict[int, States]]) -> dict[int, States]:
    merged: dict[int, States] = defaultdict(lambda: defaultdict(float))
    for intervals in per_agent:
        for index, states in intervals.items():
            for state, seconds in states.items():
                merged[index][state] += seconds
    return merged


def _active(per_interval: dict[int, States]) -> set[int]:
    """Intervals with logged-in time."""
    return {index for index, states in per_interval.items() if d.logged_in_seconds(states) > 0}


# -- exports ----------------------------------------------------------------------------------------------


def export_queue_report(session: Session, actor: Actor, fmt: str, **params: Any) -> Export:
    """The queue report as CSV or XLSX; audited with its window and row count."""
    report = queue_report(session, actor, **params)
    return _export(session, actor, "queue_report", report, QueueReportRow, fmt, params)


def export_agent_report(session: Session, actor: Actor, fmt: str, **params: Any) -> Export:
    report = agent_report(session, actor, **params)
    return _export(session, actor, "agent_report", report, AgentReportRow, fmt, params)


def _export(
    session: Session,
    actor: Actor,
    resource: str,
    report: QueueReport | AgentReport,
    model: type[BaseModel],
    fmt: str,
    params: dict[str, Any],
) -> Export:
    if fmt not in EXPORT_FORMATS:
        raise ValidationFailed("unknown format", errors=[field_error("format", "csv or xlsx")])
    columns = list(model.model_fields)
    rows = [[getattr(row, c) for c in columns] for row in report.rows]
    stem = f"{resource.replace('_', '-')}-{report.interval}-{report.since:%Y%m%d%H%M}-{report.until:%Y%m%d%H%M}"
    if fmt == "csv":
        export = Export(csv_bytes(columns, rows), f"{stem}.csv", CSV_MEDIA_TYPE)
    else:
        export = Export(xlsx_bytes(columns, rows, title=resource), f"{stem}.xlsx", XLSX_MEDIA_TYPE)
    filters = {k: v for k, v in params.items() if k in ("queue", "agent") and v is not None}
    detail = {
        "rows": len(rows),
        "format": fmt,
        "interval": report.interval,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        **filters,
    }
    audit.record(session, actor, "export", resource=resource, detail=detail)
    return export
