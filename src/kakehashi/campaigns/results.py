"""A campaign's results: dials, connects, contacts, successes, refusals, abandons, attempts per lead, talk and
wrap-up time — in total, per list, segment, agent, Japan hour of the day and Japan day —, the leads that remain,
the forecast to finish them and the progress toward the goal.

Definitions (docs/metrics.md, "Outbound campaigns"), over ``lead_attempts`` in the window ``[since, until)`` of
their start:

- **dials**: attempts with a line result other than ``skipped`` (a call still up, result null, is not counted
  yet); **connects**: dials that reached a person — the result code's ``human`` flag, or the line ``answered``
  while no code is in yet; **contacts**, **successes**, **refusals**: dials whose code has that flag.
- **contact rate** = contacts / dials; **success rate** = successes / contacts; **connect rate** = connects /
  dials; **abandon rate** = abandoned / (abandoned + answered), ``abandoned`` being a person who answered and was
  not connected to an agent within 2 s; **attempts per lead** = dials / distinct leads dialled; talk and wrap-up
  time summed and per connect.
- **remaining** leads: ``new``, ``in_progress``, ``callback`` now. **forecast**: remaining / (leads settled per
  working hour over the last :data:`FORECAST_DAYS` days), a working hour being a Japan clock hour with a dial;
  with fewer than :data:`MIN_WORKING_HOURS` such hours or :data:`MIN_COMPLETED` settled leads it says
  ``too_little_data`` instead of guessing. **goal**: successes over the campaign's life / ``campaign.goal``.

Every sum is a grouped query (``results_repository``); Python only turns the sums into rates and labels. For a
role that does not see personal data (a client viewer, ``auth.masking``) agent names become ``OP-01``, ``OP-02``…
in the order the agents first worked the campaign.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.campaigns.models import Campaign
from kakehashi.campaigns.results_repository import GROUPINGS, ResultsRepository, day_of_number
from kakehashi.campaigns.results_schemas import (
    CampaignResults,
    CampaignSummary,
    Figures,
    Forecast,
    Goal,
    ResultRow,
)
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import NotFound, ValidationFailed, field_error
from kakehashi.kit.export import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Export, csv_bytes, xlsx_bytes

#: The forecast's pace is measured over this many recent days.
FORECAST_DAYS = 7
#: Below these, the pace is noise: the forecast says ``too_little_data``.
MIN_WORKING_HOURS = 3
MIN_COMPLETED = 5
EXPORT_FORMATS = ("csv", "xlsx")
_FIGURES = list(Figures.model_fields)
EXPORT_COLUMNS = ["by", "key", "label", "leads", "remaining", *_FIGURES]


# -- the window


def in_japan(at: datetime | None) -> datetime | None:
    """An aware datetime as it is; a naive one read as Japan time (``since=2026-12-01`` is 00:00 JST)."""
    if at is None:
        return None
    return at.replace(tzinfo=BUSINESS_TZ) if at.tzinfo is None else at


#: Moments outside these years are typos (and near year 1 or 9999 the conversion to UTC would overflow).
YEARS = (2000, 2999)


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    since, until = in_japan(since), in_japan(until)
    errors = [
        field_error(name, f"must be between the years {YEARS[0]} and {YEARS[1]}")
        for name, at in (("since", since), ("until", until))
        if at is not None and not YEARS[0] <= at.year <= YEARS[1]
    ]
    if errors:
        raise ValidationFailed("the window is out of range", errors=errors)
    if since is not None and until is not None and since >= until:
        raise ValidationFailed("the window is empty", errors=[field_error("until", "must be after since")])
    return since, until


# -- from sums to figures


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def figures(sums: dict[str, Any]) -> dict[str, Any]:
    """The figures of one group from its sums (missing sums count as zero)."""
    n = {k: int(sums.get(k) or 0) for k in ("dials", "connects", "contacts", "successes", "refusals")}
    abandoned, answered = int(sums.get("abandoned") or 0), int(sums.get("answered") or 0)
    leads = int(sums.get("leads_dialled") or 0)
    talk, wrap = float(sums.get("talk_s") or 0), float(sums.get("wrap_s") or 0)
    return {
        **n,
        "abandoned": abandoned,
        "answered": answered,
        "leads_dialled": leads,
        "connect_rate": _ratio(n["connects"], n["dials"]),
        "contact_rate": _ratio(n["contacts"], n["dials"]),
        "success_rate": _ratio(n["successes"], n["contacts"]),
        "abandon_rate": _ratio(abandoned, abandoned + answered),
        "attempts_per_lead": _ratio(n["dials"], leads),
        "talk_s": round(talk, 3),
        "wrap_s": round(wrap, 3),
        "avg_talk_s": _ratio(talk, n["connects"]),
        "avg_wrap_s": _ratio(wrap, n["connects"]),
    }


def forecast(remaining: int, leads: int, completed: int, hours: int, days: int) -> Forecast:
    """The remaining leads over the recent pace (see the module's docstring)."""
    base = {"leads_completed": completed, "working_hours": hours, "working_days_seen": days}
    base["window_days"] = FORECAST_DAYS
    if leads == 0:
        return Forecast(status="no_leads", hours=None, working_days=None, rate_per_hour=None, **base)
    if remaining == 0:
        return Forecast(status="finished", hours=0.0, working_days=0.0, rate_per_hour=None, **base)
    if hours < MIN_WORKING_HOURS or completed < MIN_COMPLETED:
        rate = completed / hours if hours else None
        return Forecast(status="too_little_data", hours=None, working_days=None, rate_per_hour=rate, **base)
    rate = completed / hours
    need = remaining / rate
    return Forecast(status="ok", hours=need, working_days=need / (hours / days), rate_per_hour=rate, **base)


def goal(campaign: Campaign, successes: int) -> Goal:
    target = campaign.goal
    return Goal(goal=target, successes=successes, progress=successes / target if target else None)


# -- labels


def _masked_agents(repo: ResultsRepository, campaign_id: int) -> dict[str, str]:
    return {name: f"OP-{i:02d}" for i, name in enumerate(repo.agents_in_order(campaign_id), start=1)}


def _labelled(
    repo: ResultsRepository, campaign: Campaign, by: str, keys: list[Any], masked: bool
) -> list[tuple[Any, str | None, str | None]]:
    """``(raw key, key, label)`` in display order."""
    if by == "list" or by == "segment":
        names = repo.list_names(campaign.id) if by == "list" else repo.segment_names(campaign.id)
        every = list(dict.fromkeys([*keys, *names]))
        out = [(k, None if k is None else str(k), names.get(k) if k is not None else None) for k in every]
        # By name; the attempts without a list (or segment) last.
        return sorted(out, key=lambda t: (t[0] is None, t[2] or "", t[0] or 0))
    if by == "agent":
        if masked:
            pseudonyms = _masked_agents(repo, campaign.id)
            out = [(k, pseudonyms.get(k, "OP-??") if k is not None else None, None) for k in keys]
            out = [(k, key, key) for k, key, _ in out]
        else:
            out = [(k, k, k) for k in keys]
        return sorted(out, key=lambda t: (t[1] is None, t[1] or ""))
    if by == "hour":
        return [(k, f"{int(k):02d}", f"{int(k)}:00") for k in sorted(keys, key=int)]
    if by == "day":
        return [(k, day_of_number(k), day_of_number(k)) for k in sorted(keys, key=int)]
    return [(None, None, None)]


# -- the service


def _campaign(repo: ResultsRepository, campaign_id: int) -> Campaign:
    found = repo.campaigns([campaign_id])
    if not found:
        raise NotFound(f"campaign {campaign_id} not found")
    return found[0]


def _forecasts(repo: ResultsRepository, campaign_ids: list[int], now: datetime) -> dict[int, tuple[int, int, int]]:
    """(settled leads, working hours, working days) per campaign over the forecast window."""
    start = now - timedelta(days=FORECAST_DAYS)
    done = repo.leads_completed(campaign_ids, start)
    work = repo.work_done(campaign_ids, start)
    return {c: (done.get(c, 0), *work.get(c, (0, 0))) for c in campaign_ids}


def _row(sums: dict[str, Any], key: str | None, label: str | None, leads: dict[str, Any] | None) -> ResultRow:
    extra = {"leads": int(leads["leads"]), "remaining": int(leads["remaining"])} if leads else {}
    return ResultRow(key=key, label=label, **figures(sums), **extra)


def campaign_results(
    session: Session,
    actor: Actor,
    campaign_id: int,
    by: str = "total",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> CampaignResults:
    """The campaign's results grouped ``by`` one of :data:`GROUPINGS`, with its total, forecast and goal."""
    if by not in GROUPINGS:
        raise ValidationFailed("unknown grouping", errors=[field_error("by", f"one of {', '.join(GROUPINGS)}")])
    since, until = _window(since, until)
    repo = ResultsRepository(session, actor.tenant_id)
    campaign = _campaign(repo, campaign_id)
    ids = [campaign.id]
    total_sums = next(iter(repo.figures(ids, "total", since=since, until=until)), {})
    total_leads = next(iter(repo.lead_counts(ids, "total")), {"leads": 0, "remaining": 0})
    total = _row(total_sums, None, None, total_leads)
    masked = not actor.sees_personal_data
    if by == "total":
        rows = [total]
    else:
        sums = {r["key"]: r for r in repo.figures(ids, by, since=since, until=until)}
        leads = {r["key"]: r for r in repo.lead_counts(ids, by)} if by in ("list", "segment") else {}
        keys = list(dict.fromkeys([*sums, *leads]))
        rows = []
        for raw, key, label in _labelled(repo, campaign, by, keys, masked):
            zero = {"leads": 0, "remaining": 0} if by in ("list", "segment") else None
            rows.append(_row(sums.get(raw, {}), key, label, leads.get(raw, zero)))
    completed, hours, days = _forecasts(repo, ids, now or utcnow())[campaign.id]
    # Without a window the total already holds the campaign's whole life: no second sum for the goal.
    successes = total.successes if since is None and until is None else repo.successes(ids).get(campaign.id, 0)
    return CampaignResults(
        campaign_id=campaign.id,
        campaign=campaign.name,
        status=campaign.status,
        by=by,  # checked against GROUPINGS above
        since=since,
        until=until,
        agents_masked=masked,
        total=total,
        rows=rows,
        forecast=forecast(total.remaining or 0, total.leads or 0, completed, hours, days),
        goal=goal(campaign, successes),
    )


def summaries(
    session: Session,
    actor: Actor,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> list[CampaignSummary]:
    """Every campaign of the tenant with its total, forecast and goal: a fixed number of grouped queries
    whatever the number of campaigns."""
    since, until = _window(since, until)
    repo = ResultsRepository(session, actor.tenant_id)
    campaigns = repo.campaigns()
    ids = [c.id for c in campaigns]
    if not ids:
        return []
    sums = {r["campaign_id"]: r for r in repo.figures(ids, "total", since=since, until=until)}
    leads = {r["campaign_id"]: r for r in repo.lead_counts(ids, "total")}
    paces = _forecasts(repo, ids, now or utcnow())
    whole_life = since is None and until is None
    successes = {c: int(r["successes"]) for c, r in sums.items()} if whole_life else repo.successes(ids)
    out = []
    for c in campaigns:
        row = _row(sums.get(c.id, {}), None, None, leads.get(c.id, {"leads": 0, "remaining": 0}))
        out.append(
            CampaignSummary(
                **row.model_dump(),
                campaign_id=c.id,
                campaign=c.name,
                status=c.status,
                forecast=forecast(row.remaining or 0, row.leads or 0, *paces[c.id]),
                goal=goal(c, successes.get(c.id, 0)),
            )
        )
    return out


def export_results(
    session: Session,
    actor: Actor,
    campaign_id: int,
    fmt: str,
    by: str = "total",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Export:
    """The rows of :func:`campaign_results` as CSV (formula-safe, ``kit.export``) or XLSX, the total last; one
    ``export`` audit row (aggregates: no customer's data is in the file)."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationFailed("unknown format", errors=[field_error("format", "csv or xlsx")])
    result = campaign_results(session, actor, campaign_id, by, since=since, until=until)
    lines = [] if by == "total" else [(by, r) for r in result.rows]
    lines.append(("total", result.total))
    table = [[kind, r.key, r.label, r.leads, r.remaining, *(getattr(r, f) for f in _FIGURES)] for kind, r in lines]
    stem = f"campaign-{campaign_id}-results-{by}"
    audit.record(
        session,
        actor,
        "export",
        resource="campaign_results",
        resource_id=campaign_id,
        detail={
            "format": fmt,
            "by": by,
            "rows": len(table),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
    )
    if fmt == "csv":
        return Export(csv_bytes(EXPORT_COLUMNS, table), f"{stem}.csv", CSV_MEDIA_TYPE)
    return Export(xlsx_bytes(EXPORT_COLUMNS, table, title="results"), f"{stem}.xlsx", XLSX_MEDIA_TYPE)
