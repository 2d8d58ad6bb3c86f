"""A campaign's results (issue 17, "Results"): every figure on a hand-built set of attempts with known answers, the
groupings, Japan hours and days across midnight UTC, the forecast, CSV and XLSX, the client viewer's masked agents,
tenancy and roles — on SQLite and PostgreSQL.

The dialler writes ``lead_attempts`` in production; here the rows are inserted as it would write them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook
from sqlalchemy import event
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.campaigns import results, service
from kakehashi.campaigns.models import Campaign, CampaignList, Lead, LeadAttempt, Segment
from kakehashi.campaigns.results_repository import FINAL
from kakehashi.campaigns.schemas import CampaignCreate
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import NotFound, ValidationFailed
from kakehashi.kit.export import FORMULA_STARTS
from kakehashi.tenants import service as tenants

FORMULA = '=HYPERLINK("http://evil.example","y")'
_phones = iter(range(10_000_000, 99_999_999))


def jst(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BUSINESS_TZ)


def make_campaign(session: Session, actor: Actor, name: str = "冬の見直し", goal: int | None = 10) -> Campaign:
    windows = [{"weekday": d, "start": "09:00", "end": "20:00"} for d in range(7)]
    body = CampaignCreate(name=name, kind="sales", caller_id="03-1234-5678", windows=windows, goal=goal)  # type: ignore[arg-type]
    return service.create_campaign(session, actor, body)


def make_list(session: Session, campaign: Campaign, name: str, segment: Segment | None = None) -> CampaignList:
    row = CampaignList(
        tenant_id=campaign.tenant_id,
        campaign_id=campaign.id,
        name=name,
        created_by="tester",
        segment_id=segment.id if segment else None,
    )
    session.add(row)
    session.flush()
    return row


def make_lead(session: Session, campaign: Campaign, status: str, listed: CampaignList | None = None) -> Lead:
    lead = Lead(
        tenant_id=campaign.tenant_id,
        campaign_id=campaign.id,
        list_id=listed.id if listed else None,
        phone=f"+8190{next(_phones)}",
        status=status,
    )
    session.add(lead)
    session.flush()
    return lead


def attempt(
    session: Session,
    lead: Lead,
    at: datetime,
    result: str | None,
    agent: str | None = "sato",
    *,
    disposition: str | None = None,
    talk: float = 0,
    wrap: float = 0,
    **flags: bool,
) -> LeadAttempt:
    row = LeadAttempt(
        tenant_id=lead.tenant_id,
        campaign_id=lead.campaign_id,
        lead_id=lead.id,
        list_id=lead.list_id,
        agent=agent,
        mode="preview",
        result=result,
        disposition=disposition,
        started_at=at,
        answered_at=at + timedelta(seconds=5) if result == "answered" else None,
        talk_seconds=Decimal(str(talk)),
        wrap_seconds=Decimal(str(wrap)),
        **flags,
    )
    session.add(row)
    session.flush()
    return row


@dataclass
class World:
    campaign: Campaign
    spring: CampaignList  # segment 優良顧客
    autumn: CampaignList  # no segment
    segment: Segment


@pytest.fixture
def world(session: Session, actor: Actor) -> World:
    """Six leads on two lists, nine attempts over two Japan days, two of them before 09:00 JST (the day before in
    UTC). The expected figures are worked out by hand in each test."""
    campaign = make_campaign(session, actor)
    segment = Segment(tenant_id=actor.tenant_id, name="優良顧客", criteria={}, created_by="tester")
    session.add(segment)
    session.flush()
    spring, autumn = make_list(session, campaign, "春リスト", segment), make_list(session, campaign, "秋リスト")
    a, b, c, d = (make_lead(session, campaign, s, spring) for s in ("done", "in_progress", "new", "callback"))
    e, f = (make_lead(session, campaign, s, autumn) for s in ("unworkable", "new"))
    # 1 December, Japan time: 08:30 and 08:45 are 23:30 and 23:45 on 30 November in UTC.
    flags = {"human": True, "contact": True}
    attempt(session, a, jst(1, 8, 30), "answered", disposition="SALE", talk=120, wrap=30, success=True, **flags)
    attempt(session, b, jst(1, 8, 45), "no_answer")
    attempt(session, b, jst(1, 9, 10), "answered", "suzuki", disposition="NG", talk=60, wrap=20, refusal=True, **flags)
    attempt(session, c, jst(1, 9, 20), "skipped", "suzuki")  # the agent skipped it: not a dial
    attempt(session, d, jst(1, 9, 30), "abandoned", None)  # a person answered, no agent within 2 s
    # 2 December
    attempt(session, e, jst(2, 10, 0), "invalid")
    attempt(session, f, jst(2, 10, 5), "answered", talk=30)  # answered, no result code yet: a connect
    attempt(session, f, jst(2, 10, 10), "machine")
    attempt(session, f, jst(2, 10, 15), None)  # still ringing: not counted yet
    return World(campaign, spring, autumn, segment)


NOW = jst(2, 12)


# -- every figure ------------------------------------------------------------------------------------------------


def test_given_known_attempts_then_every_total_figure_is_as_worked_out_by_hand(
    session: Session, actor: Actor, world: World
) -> None:
    found = results.campaign_results(session, actor, world.campaign.id, now=NOW)
    t = found.total
    assert (t.dials, t.connects, t.contacts, t.successes, t.refusals) == (7, 3, 2, 1, 1)
    assert (t.abandoned, t.answered, t.leads_dialled) == (1, 3, 5)
    assert t.contact_rate == pytest.approx(2 / 7)
    assert t.connect_rate == pytest.approx(3 / 7)
    assert t.success_rate == pytest.approx(1 / 2)
    assert t.abandon_rate == pytest.approx(1 / 4)  # abandoned / (abandoned + answered)
    assert t.attempts_per_lead == pytest.approx(7 / 5)
    assert (t.talk_s, t.wrap_s) == (210, 50)
    assert t.avg_talk_s == pytest.approx(70)
    assert t.avg_wrap_s == pytest.approx(50 / 3)
    assert (t.leads, t.remaining) == (6, 4)  # in_progress, new, callback, new
    assert found.rows == [t]
    assert found.goal.model_dump() == {"goal": 10, "successes": 1, "progress": pytest.approx(0.1)}


def test_given_no_attempts_then_the_rates_are_null_not_zero(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor, "空", goal=None)
    found = results.campaign_results(session, actor, campaign.id)
    assert found.total.dials == 0 and found.total.contact_rate is None and found.total.abandon_rate is None
    assert found.total.attempts_per_lead is None and found.total.avg_talk_s is None
    assert found.forecast.status == "no_leads"
    assert found.goal.progress is None


def test_the_window_counts_attempts_by_their_start_in_japan_time(session: Session, actor: Actor, world: World) -> None:
    # A naive date is Japan time: since 2 December 00:00 JST leaves the second day's three dials.
    second = results.campaign_results(session, actor, world.campaign.id, since=datetime(2026, 12, 2))
    assert second.total.dials == 3
    first = results.campaign_results(session, actor, world.campaign.id, until=datetime(2026, 12, 2))
    assert first.total.dials == 4
    # Remaining leads and the goal are now, whatever the window.
    assert first.total.remaining == second.total.remaining == 4
    assert first.goal.successes == second.goal.successes == 1
    with pytest.raises(ValidationFailed):
        results.campaign_results(session, actor, world.campaign.id, since=jst(2, 0), until=jst(1, 0))


# -- groupings -----------------------------------------------------------------------------------------------------


def by_key(found: Any) -> dict[str | None, Any]:
    return {r.key: r for r in found.rows}


def test_by_list_and_by_segment(session: Session, actor: Actor, world: World) -> None:
    lists = results.campaign_results(session, actor, world.campaign.id, by="list")
    assert [r.label for r in lists.rows] == ["春リスト", "秋リスト"]
    spring, autumn = by_key(lists)[str(world.spring.id)], by_key(lists)[str(world.autumn.id)]
    assert (spring.dials, spring.connects, spring.contacts, spring.leads_dialled) == (4, 2, 2, 3)
    assert (spring.leads, spring.remaining, spring.abandoned) == (4, 3, 1)
    assert (autumn.dials, autumn.connects, autumn.contacts, autumn.leads, autumn.remaining) == (3, 1, 0, 2, 1)
    assert autumn.contact_rate == 0 and autumn.success_rate is None
    segments = by_key(results.campaign_results(session, actor, world.campaign.id, by="segment"))
    assert segments[str(world.segment.id)].label == "優良顧客"
    assert segments[str(world.segment.id)].dials == 4
    assert segments[None].dials == 3 and segments[None].leads == 2  # the list without a segment


def test_a_list_without_attempts_is_listed_with_its_leads(session: Session, actor: Actor, world: World) -> None:
    fresh = make_list(session, world.campaign, "新リスト")
    make_lead(session, world.campaign, "new", fresh)
    row = by_key(results.campaign_results(session, actor, world.campaign.id, by="list"))[str(fresh.id)]
    assert (row.dials, row.leads, row.remaining, row.contact_rate) == (0, 1, 1, None)


def test_by_agent(session: Session, actor: Actor, world: World) -> None:
    found = results.campaign_results(session, actor, world.campaign.id, by="agent")
    assert not found.agents_masked
    rows = by_key(found)
    assert list(rows) == ["sato", "suzuki", None]
    assert (rows["sato"].dials, rows["sato"].connects, rows["sato"].contacts, rows["sato"].successes) == (5, 2, 1, 1)
    assert (rows["suzuki"].dials, rows["suzuki"].refusals, rows["suzuki"].talk_s) == (1, 1, 60)
    assert (rows[None].dials, rows[None].abandoned, rows[None].abandon_rate) == (1, 1, 1.0)
    assert rows["sato"].remaining is None  # leads belong to lists, not agents


def test_hours_and_days_are_japan_time_across_midnight_utc(session: Session, actor: Actor, world: World) -> None:
    hours = results.campaign_results(session, actor, world.campaign.id, by="hour")
    assert [(r.key, r.label, r.dials) for r in hours.rows] == [("08", "8:00", 2), ("09", "9:00", 2), ("10", "10:00", 3)]
    days = results.campaign_results(session, actor, world.campaign.id, by="day")
    # 08:30 and 08:45 JST on 1 December are 30 November in UTC: they count on 1 December.
    assert [(r.key, r.dials, r.contacts) for r in days.rows] == [("2026-12-01", 4, 2), ("2026-12-02", 3, 0)]
    assert sum(r.dials for r in days.rows) == days.total.dials


def test_the_sums_are_grouped_in_the_database(session: Session, actor: Actor, world: World) -> None:
    """A fixed number of statements whatever the number of attempts (no loop over rows in Python)."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    bind = session.connection()
    results.campaign_results(session, actor, world.campaign.id, by="day")  # warm
    event.listen(bind, "before_cursor_execute", count)
    try:
        results.campaign_results(session, actor, world.campaign.id, by="day", now=NOW)
        before = len(statements)
        for i in range(40):
            lead = make_lead(session, world.campaign, "new", world.autumn)
            attempt(session, lead, jst(3, 9, i), "no_answer")
        statements.clear()
        found = results.campaign_results(session, actor, world.campaign.id, by="day", now=NOW)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert len(statements) == before
    assert found.rows[-1].key == "2026-12-03" and found.rows[-1].dials == 40


# -- forecast and goal ---------------------------------------------------------------------------------------------


def test_the_forecast_needs_enough_recent_work(session: Session, actor: Actor, world: World) -> None:
    found = results.campaign_results(session, actor, world.campaign.id, now=NOW)
    # Three working hours (08, 09 on the 1st, 10 on the 2nd) and two settled leads (a, e): too little to say.
    assert found.forecast.status == "too_little_data"
    assert (found.forecast.working_hours, found.forecast.working_days_seen, found.forecast.leads_completed) == (3, 2, 2)
    assert found.forecast.hours is None


def test_the_forecast_is_remaining_leads_over_the_recent_pace(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor, "予測")
    # Ten leads settled over five working hours of one day (two an hour); an old settled lead outside the window.
    for i in range(10):
        lead = make_lead(session, campaign, FINAL[i % 2])
        attempt(session, lead, jst(2, 9 + i // 2, 10 + i), "answered")
    old = make_lead(session, campaign, "done")
    attempt(session, old, jst(1, 9, month=11), "answered", human=True)
    for _ in range(20):
        make_lead(session, campaign, "new")
    found = results.campaign_results(session, actor, campaign.id, now=jst(3, 12))
    f = found.forecast
    assert (f.status, f.leads_completed, f.working_hours, f.working_days_seen) == ("ok", 10, 5, 1)
    assert f.rate_per_hour == pytest.approx(2)
    assert f.hours == pytest.approx(10)  # 20 remaining / 2 an hour
    assert f.working_days == pytest.approx(2)  # 10 hours at 5 working hours a day


def test_a_campaign_with_nothing_left_is_finished(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor, "完了")
    attempt(session, make_lead(session, campaign, "done"), jst(1, 10), "answered", human=True, success=True)
    found = results.campaign_results(session, actor, campaign.id, now=jst(1, 12))
    assert found.forecast.status == "finished" and found.forecast.hours == 0
    assert found.goal.successes == 1 and found.goal.progress == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("remaining", "leads", "completed", "hours", "days", "expected"),
    [
        (0, 0, 0, 0, 0, ("no_leads", None)),
        (0, 5, 5, 4, 1, ("finished", 0.0)),
        (10, 20, 4, 10, 2, ("too_little_data", None)),  # fewer than five settled leads
        (10, 20, 10, 2, 1, ("too_little_data", None)),  # fewer than three working hours
        (30, 40, 10, 5, 1, ("ok", 15.0)),
    ],
)
def test_forecast_rules(
    remaining: int, leads: int, completed: int, hours: int, days: int, expected: tuple[str, float | None]
) -> None:
    f = results.forecast(remaining, leads, completed, hours, days)
    assert (f.status, f.hours) == expected


# -- the summary of every campaign ---------------------------------------------------------------------------------


def test_every_campaign_has_its_summary_row(session: Session, actor: Actor, world: World) -> None:
    other = make_campaign(session, actor, "別件", goal=None)
    rows = {r.campaign_id: r for r in results.summaries(session, actor, now=NOW)}
    assert rows[world.campaign.id].dials == 7 and rows[world.campaign.id].remaining == 4
    assert rows[world.campaign.id].goal.progress == pytest.approx(0.1)
    assert rows[other.id].dials == 0 and rows[other.id].forecast.status == "no_leads"


# -- tenancy -------------------------------------------------------------------------------------------------------


def test_another_tenants_campaign_is_not_found_and_its_attempts_never_count(
    session: Session, actor: Actor, other_actor: Actor, world: World
) -> None:
    theirs = make_campaign(session, other_actor, "B社")
    attempt(session, make_lead(session, theirs, "new"), jst(1, 10), "answered", human=True)
    with pytest.raises(NotFound):
        results.campaign_results(session, actor, theirs.id)
    assert theirs.id not in {r.campaign_id for r in results.summaries(session, actor)}
    assert results.campaign_results(session, other_actor, theirs.id).total.dials == 1
    assert results.campaign_results(session, actor, world.campaign.id).total.dials == 7


# -- over HTTP: roles, masking, files --------------------------------------------------------------------------------


def test_roles(client_as: ClientAs, world: World, app_client: Any) -> None:
    path = f"/api/v1/campaigns/{world.campaign.id}/results"
    for role in (Role.SUPERVISOR, Role.ADMIN, Role.CLIENT_VIEWER):
        assert client_as(role).get(path).status_code == 200, role
        assert client_as(role).get("/api/v1/campaigns/results").status_code == 200, role
    operator = client_as(Role.OPERATOR)
    assert operator.get(path).status_code == 403
    assert operator.get(f"{path}.csv").status_code == 403
    assert operator.get("/api/v1/campaigns/results").status_code == 403
    assert app_client.get(path).status_code == 401


def test_a_client_viewer_sees_the_figures_with_agents_masked(client_as: ClientAs, world: World) -> None:
    viewer = client_as(Role.CLIENT_VIEWER)
    path = f"/api/v1/campaigns/{world.campaign.id}/results"
    r = viewer.get(path, params={"by": "agent"})
    assert r.status_code == 200
    body = r.json()
    assert body["agents_masked"] is True
    # In the order they first worked the campaign: sato at 08:30, suzuki at 09:10.
    assert [(row["key"], row["label"], row["dials"]) for row in body["rows"]] == [
        ("OP-01", "OP-01", 5),
        ("OP-02", "OP-02", 1),
        (None, None, 1),
    ]
    assert body["total"]["dials"] == 7
    for suffix in ("", ".csv"):
        text = viewer.get(f"{path}{suffix}", params={"by": "agent"}).text
        assert "sato" not in text and "suzuki" not in text
    supervisor = client_as(Role.SUPERVISOR).get(path, params={"by": "agent"}).json()
    assert supervisor["agents_masked"] is False and supervisor["rows"][0]["key"] == "sato"


def test_a_client_viewer_of_a_tenant_that_allows_it_sees_the_names(
    client_as: ClientAs, world: World, session: Session, actor: Actor
) -> None:
    tenant = tenants.get_by_id(session, actor.tenant_id)
    assert tenant is not None
    tenant.client_sees_personal_data = True
    session.flush()
    body = client_as(Role.CLIENT_VIEWER).get(f"/api/v1/campaigns/{world.campaign.id}/results?by=agent").json()
    assert body["agents_masked"] is False and body["rows"][0]["key"] == "sato"


def test_another_tenants_campaign_is_404_on_every_route(client_as: ClientAs, world: World) -> None:
    b = client_as(Role.SUPERVISOR, "tenant-b")
    for suffix in ("", ".csv", ".xlsx"):
        r = b.get(f"/api/v1/campaigns/{world.campaign.id}/results{suffix}")
        assert r.status_code == 404 and "冬の見直し" not in r.text
    assert b.get(f"/campaigns/{world.campaign.id}/results").status_code == 404
    assert b.get("/api/v1/campaigns/results").json() == []


def test_a_bad_grouping_or_window_is_a_422(client_as: ClientAs, world: World) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    path = f"/api/v1/campaigns/{world.campaign.id}/results"
    assert supervisor.get(path, params={"by": "queue"}).status_code == 422
    r = supervisor.get(path, params={"since": "2026-12-02", "until": "2026-12-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "until"
    r = supervisor.get(path, params={"since": "0001-01-01T00:00:00+09:00"})  # would overflow in UTC
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"
    assert supervisor.get("/api/v1/campaigns/results", params={"until": "9999-12-31T23:59:59-12:00"}).status_code == 422


def test_the_summary_route_lists_each_campaign(client_as: ClientAs, world: World) -> None:
    rows = client_as(Role.SUPERVISOR).get("/api/v1/campaigns/results").json()
    mine = next(r for r in rows if r["campaign_id"] == world.campaign.id)
    assert (mine["campaign"], mine["dials"], mine["remaining"], mine["goal"]["goal"]) == ("冬の見直し", 7, 4, 10)


def test_the_csv_is_formula_safe_and_ends_with_the_total(client_as: ClientAs, world: World, session: Session) -> None:
    world.spring.name = FORMULA
    lead = make_lead(session, world.campaign, "new", world.spring)
    attempt(session, lead, jst(2, 11), "busy", "@SUM(A1)")
    r = client_as(Role.SUPERVISOR).get(f"/api/v1/campaigns/{world.campaign.id}/results.csv", params={"by": "list"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["label"] for row in rows] == ["'" + FORMULA, "秋リスト", ""]
    assert rows[-1]["by"] == "total" and rows[-1]["dials"] == "8"
    assert rows[0]["contact_rate"] == str(2 / 5)
    live = [v for row in rows for v in row.values() if v and v.startswith(FORMULA_STARTS) and not v[1:].isdigit()]
    assert live == []
    agents = client_as(Role.SUPERVISOR).get(f"/api/v1/campaigns/{world.campaign.id}/results.csv?by=agent").text
    assert "'@SUM(A1)" in agents


def test_the_xlsx_opens_in_openpyxl_and_calamine(client_as: ClientAs, world: World, session: Session) -> None:
    world.autumn.name = FORMULA
    session.flush()
    r = client_as(Role.ADMIN).get(f"/api/v1/campaigns/{world.campaign.id}/results.xlsx", params={"by": "day"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="campaign-' in r.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    assert header[:5] == ["by", "key", "label", "leads", "remaining"]
    assert [(row[0], row[1], row[header.index("dials")]) for row in rows[1:]] == [
        ("day", "2026-12-01", 4),
        ("day", "2026-12-02", 3),
        ("total", None, 7),
    ]
    book = CalamineWorkbook.from_filelike(io.BytesIO(r.content))
    data = book.get_sheet_by_index(0).to_python()
    assert data[-1][header.index("contacts")] == 2
    lists = client_as(Role.ADMIN).get(f"/api/v1/campaigns/{world.campaign.id}/results.xlsx?by=list").content
    cells = [c for row in load_workbook(io.BytesIO(lists)).active.iter_rows() for c in row]  # type: ignore[union-attr]
    planted = next(c for c in cells if c.value == FORMULA)
    assert planted.data_type == "s"  # text, never a formula


def test_exports_are_audited(client_as: ClientAs, world: World, session: Session) -> None:
    from kakehashi.audit.models import AuditEvent

    supervisor = client_as(Role.SUPERVISOR)
    supervisor.get(f"/api/v1/campaigns/{world.campaign.id}/results.csv", params={"by": "hour"})
    found = session.query(AuditEvent).filter_by(action="export", resource="campaign_results").all()
    assert len(found) == 1 and found[0].resource_id == world.campaign.id
    assert found[0].detail["by"] == "hour" and found[0].detail["format"] == "csv"


def test_the_page_opens_for_a_supervisor_and_a_client_viewer(client_as: ClientAs, world: World) -> None:
    path = f"/campaigns/{world.campaign.id}/results"
    for role in (Role.SUPERVISOR, Role.CLIENT_VIEWER):
        r = client_as(role).get(path)
        assert r.status_code == 200 and "冬の見直し" in r.text and 'id="chart-hour"' in r.text
    assert client_as(Role.OPERATOR).get(path).status_code == 403
    english = client_as(Role.SUPERVISOR).get(path, params={"lang": "en"}).text
    assert "Contact rate" in english and "Campaign results" in english


def test_utc_and_japan_days_differ_for_the_early_attempts(world: World) -> None:
    """The hand-built set really crosses midnight UTC (else the day test above proves nothing)."""
    assert jst(1, 8, 30).astimezone(UTC).date().isoformat() == "2026-11-30"
