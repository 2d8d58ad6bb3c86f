"""Contact-center metrics (docs/metrics.md): every expected value below is worked out by hand from the rows the
test writes — CDRs, live calls, agents and their state spans — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.agents.models import Agent, AgentSkill, AgentStateSpan
from kakehashi.analytics import definitions as d
from kakehashi.analytics import service
from kakehashi.audit.models import AuditEvent
from kakehashi.calls.models import Call, Cdr
from kakehashi.calls.states import CallState
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import NotFound, ValidationFailed
from kakehashi.routing.models import Queue, QueueMember
from kakehashi.tenants import repository as tenants

_refs = itertools.count(1)


def jst(day: int, hour: int = 0, minute: int = 0, second: int = 0, ms: int = 0, *, month: int = 11) -> datetime:
    """A moment of November 2026, Japan time."""
    return datetime(2026, month, day, hour, minute, second, ms * 1000, tzinfo=BUSINESS_TZ)


# -- building rows ------------------------------------------------------------------------------------------


def add_queue(session: Session, tenant_id: int, name: str, *, threshold: int = 20, skill: str | None = None) -> Queue:
    queue = Queue(tenant_id=tenant_id, name=name, label=f"{name} 窓口", sl_threshold_s=threshold, skill=skill)
    session.add(queue)
    session.flush()
    return queue


def add_agent(
    session: Session, tenant_id: int, name: str, state: str, *, queue: Queue | None = None, skill: str | None = None
) -> Agent:
    agent = Agent(tenant_id=tenant_id, name=name, display_name=f"{name} さん", state=state, state_since=jst(1))
    session.add(agent)
    session.flush()
    if queue is not None:
        session.add(QueueMember(queue_id=queue.id, agent_id=agent.id))
    if skill is not None:
        session.add(AgentSkill(agent_id=agent.id, skill=skill))
    session.flush()
    return agent


def add_span(
    session: Session, agent: Agent, state: str, started: datetime, ended: datetime | None = None
) -> AgentStateSpan:
    span = AgentStateSpan(tenant_id=agent.tenant_id, agent_id=agent.id, state=state, started_at=started, ended_at=ended)
    session.add(span)
    session.flush()
    return span


def add_call(session: Session, tenant_id: int, state: str, queue: str | None, offered_at: datetime, **kw: Any) -> Call:
    call = Call(
        tenant_id=tenant_id,
        driver="metrics",
        ref=f"m-{next(_refs)}",
        direction="inbound",
        ani_raw="0312345678",
        dnis="0120444444",
        state=state,
        queue=queue,
        offered_at=offered_at,
        hold_seconds=Decimal(0),
        **kw,
    )
    session.add(call)
    session.flush()
    return call


def add_cdr(
    session: Session,
    tenant_id: int,
    queue: str | None,
    started: datetime,
    *,
    final: str = "ended",
    waited: tuple[float, float] = (0, 0),
    answered: bool = True,
    talk: float = 0,
    hold: float = 0,
    wrap: float = 0,
    agent: str | None = None,
) -> Cdr:
    """A finished call; ``waited`` = (queue seconds, ring seconds)."""
    queue_s, ring_s = waited
    call = add_call(session, tenant_id, final, queue, started, agent=agent)
    wait = timedelta(seconds=queue_s + ring_s)
    cdr = Cdr(
        call_id=call.id,
        tenant_id=tenant_id,
        direction="inbound",
        dnis="0120444444",
        agent=agent,
        queue=queue,
        started_at=started,
        answered_at=started + wait if answered else None,
        ended_at=started + wait + timedelta(seconds=talk + hold + wrap),
        queue_seconds=Decimal(str(queue_s)),
        ring_seconds=Decimal(str(ring_s)),
        talk_seconds=Decimal(str(talk)),
        hold_seconds=Decimal(str(hold)),
        wrap_up_seconds=Decimal(str(wrap)),
        final_state=final,
    )
    session.add(cdr)
    session.flush()
    return cdr


# -- the definitions alone ----------------------------------------------------------------------------------


def test_the_definitions_from_counts_and_sums() -> None:
    t = d.CallTotals(
        offered=10,
        answered=4,
        answered_within=3,
        abandoned=3,
        abandoned_within=2,
        deflected=2,
        answer_wait_s=100,
        talk_s=600,
        hold_s=100,
        wrap_up_s=100,
    )
    assert d.service_level(t) == 0.75
    assert d.service_level_with_abandons(t) == round(5 / 7, 4) == 0.7143
    assert d.average_speed_of_answer(t) == 25.0
    assert d.abandon_rate(t) == 3 / 8  # 10 offered − 2 deflected
    assert d.average_handle_time(t) == 200.0
    assert d.occupancy({"on_call": 300, "wrap_up": 60, "ringing": 40, "available": 600, "break": 900}) == 0.4
    assert d.within(20.0, 20) and d.within(20.0004, 20) and not d.within(20.001, 20)


def test_no_calls_and_no_agent_time_are_null_not_zero() -> None:
    figures = d.call_metrics(d.CallTotals())
    assert {k: v for k, v in figures.items() if v is not None} == {
        "offered": 0,
        "answered": 0,
        "answered_within_threshold": 0,
        "abandoned": 0,
        "abandoned_within_threshold": 0,
        "deflected": 0,
    }
    assert d.occupancy({}) is None and d.occupancy({"break": 600, "logged_out": 100}) is None
    only_deflected = d.CallTotals(offered=2, deflected=2)
    assert d.abandon_rate(only_deflected) is None and d.service_level(only_deflected) is None


def test_the_classification_uses_states_the_call_state_machine_has() -> None:
    states = {s.value for s in CallState}
    assert d.ABANDONED_STATES | d.DEFLECTED_STATES | set(d.WAITING_CALL_STATES) <= states


def test_a_span_is_split_at_interval_boundaries_in_japan_time() -> None:
    pieces = list(d.split_by_interval(jst(24, 10, 10), jst(24, 10, 40), "15min"))
    assert [(d.bucket_start(i, "15min"), s) for i, s in pieces] == [
        (jst(24, 10, 0), 300.0),
        (jst(24, 10, 15), 900.0),
        (jst(24, 10, 30), 600.0),
    ]
    # 23:30 → 00:30 JST is 14:30 → 15:30 UTC: the day changes at Japan's midnight, not UTC's.
    by_day = list(d.split_by_interval(jst(23, 23, 30), jst(24, 0, 30), "day"))
    assert [(d.bucket_start(i, "day"), s) for i, s in by_day] == [(jst(23), 1800.0), (jst(24), 1800.0)]
    assert d.bucket_start(d.bucket_index(jst(24, 8, 30), "day"), "day") == jst(24)  # 23:30 UTC on the 23rd


# -- real time: one queue -----------------------------------------------------------------------------------

NOW = jst(24, 12, 0)


@pytest.fixture
def floor(session: Session, actor: Actor, other_actor: Actor) -> dict[str, Any]:
    """Queue "sales" (T = 20 s) on the 24th at noon, JST."""
    t = actor.tenant_id
    sales = add_queue(session, t, "sales")
    support = add_queue(session, t, "support", skill="en")
    # Today's calls of the queue (hand-computed in test_the_snapshot_of_today).
    add_cdr(session, t, "sales", jst(24, 9, 0), waited=(6, 4), talk=100, hold=20, wrap=30, agent="m-a1")  # 10 s
    add_cdr(session, t, "sales", jst(24, 9, 10), waited=(15.5, 4.5), talk=50, wrap=10, agent="m-a1")  # exactly T
    add_cdr(session, t, "sales", jst(24, 9, 20), waited=(40, 5), talk=200, wrap=10, agent="m-a2")  # 45 s
    add_cdr(session, t, "sales", jst(24, 9, 30), final="abandoned", answered=False, waited=(5, 0))
    add_cdr(session, t, "sales", jst(24, 9, 40), final="abandoned", answered=False, waited=(50, 10))
    add_cdr(session, t, "sales", jst(24, 10, 10), final="abandoned", answered=False, waited=(20.001, 0))
    add_cdr(session, t, "sales", jst(24, 9, 50), final="voicemail", answered=False, waited=(90, 0))
    add_cdr(session, t, "sales", jst(24, 10, 0), final="callback", answered=False, waited=(30, 0))
    # Not today's sales calls: another queue, yesterday (23:59 JST, 14:59 UTC), another tenant.
    add_cdr(session, t, "support", jst(24, 9, 0), waited=(1, 1), talk=60, agent="m-a4")
    add_cdr(session, t, "sales", jst(23, 23, 59), waited=(1, 1), talk=60)
    add_cdr(session, other_actor.tenant_id, "sales", jst(24, 9, 0), final="abandoned", answered=False, waited=(5, 0))
    # Callers waiting now: two in sales (30 s and 50 s); not the connected one, nor support's, nor tenant B's.
    add_call(session, t, "queued", "sales", NOW - timedelta(seconds=40), queued_at=NOW - timedelta(seconds=30))
    add_call(session, t, "ringing", "sales", NOW - timedelta(seconds=55), queued_at=NOW - timedelta(seconds=50))
    add_call(session, t, "connected", "sales", NOW - timedelta(seconds=400), queued_at=NOW - timedelta(seconds=300))
    add_call(session, t, "queued", "support", NOW - timedelta(seconds=90), queued_at=NOW - timedelta(seconds=90))
    other = other_actor.tenant_id
    add_call(session, other, "queued", "sales", NOW - timedelta(seconds=500), queued_at=NOW - timedelta(seconds=500))
    # Members of sales: a1, a2, a3. a4 is in support (by skill) only.
    a1 = add_agent(session, t, "m-a1", "available", queue=sales)
    a2 = add_agent(session, t, "m-a2", "on_call", queue=sales)
    a3 = add_agent(session, t, "m-a3", "break", queue=sales)
    a4 = add_agent(session, t, "m-a4", "available", skill="en")
    add_span(session, a1, "logged_out", jst(23, 20), jst(24, 9))
    add_span(session, a1, "available", jst(24, 9), jst(24, 10))  # 3600 available
    add_span(session, a1, "on_call", jst(24, 10), jst(24, 10, 30))  # 1800 busy
    add_span(session, a1, "wrap_up", jst(24, 10, 30), jst(24, 10, 40))  # 600 busy
    add_span(session, a1, "available", jst(24, 10, 40))  # open: 4800 available until noon
    add_span(session, a2, "available", jst(22, 10), jst(22, 11))  # history, not today
    add_span(session, a2, "logged_out", jst(22, 11), jst(23, 23))
    add_span(session, a2, "available", jst(23, 23), jst(24, 1))  # began yesterday: 3600 of it today
    add_span(session, a2, "break", jst(24, 1), jst(24, 11))  # neither busy nor idle
    add_span(session, a2, "ringing", jst(24, 11), jst(24, 11, 0, 20))  # 20 busy
    add_span(session, a2, "on_call", jst(24, 11, 0, 20))  # open: 3580 busy
    add_span(session, a3, "break", jst(24, 8))
    add_span(session, a4, "on_call", jst(24, 8))  # not a member of sales
    return {"sales": sales, "support": support, "agents": (a1, a2, a3, a4)}


def test_the_snapshot_of_today(session: Session, actor: Actor, floor: dict[str, Any]) -> None:
    stats = service.queue_snapshot(session, actor.tenant_id, "sales", NOW)
    assert (stats.queue_id, stats.queue, stats.threshold_s) == (floor["sales"].id, "sales", 20)
    assert stats.since == jst(24) and stats.at == NOW
    assert (stats.calls_waiting, stats.longest_wait_s) == (2, 50.0)
    assert stats.members == 3
    assert stats.agents_by_state == {
        "available": 1, "ringing": 0, "on_call": 1, "wrap_up": 0, "break": 1, "missed": 0, "logged_out": 0
    }  # fmt: skip
    # 8 offered: 3 answered (10 s, 20 s = T, 45 s), 3 abandoned (5 s, 60 s, 20.001 s), 2 deflected.
    assert (stats.offered, stats.answered, stats.answered_within_threshold) == (8, 3, 2)
    assert (stats.abandoned, stats.abandoned_within_threshold, stats.deflected) == (3, 1, 2)
    assert stats.service_level == 0.6667  # 2 / 3
    assert stats.service_level_with_abandons == 0.5  # (2 + 1) / (3 + 3)
    assert stats.asa_s == 25.0  # (10 + 20 + 45) / 3
    assert stats.abandon_rate == 0.5  # 3 / (8 − 2)
    assert stats.aht_s == 140.0  # (150 + 60 + 210) / 3
    # busy: a1 1800 + 600, a2 20 + 3580 = 6000; available: a1 3600 + 4800, a2 3600 = 12000.
    assert stats.occupancy == 0.3333


def test_a_skill_queue_counts_every_agent_with_the_skill(session: Session, actor: Actor, floor: dict[str, Any]) -> None:
    stats = service.queue_snapshot(session, actor.tenant_id, "support", NOW)
    assert stats.members == 1 and stats.agents_by_state["available"] == 1
    assert (stats.calls_waiting, stats.longest_wait_s, stats.offered, stats.service_level) == (1, 90.0, 1, 1.0)
    assert stats.occupancy == 1.0  # a4 has been on a call since 08:00


def test_since_moves_the_start_of_the_counts(session: Session, actor: Actor, floor: dict[str, Any]) -> None:
    stats = service.queue_snapshot(session, actor.tenant_id, "sales", NOW, since=jst(24, 10))
    assert (stats.offered, stats.answered, stats.abandoned, stats.deflected) == (2, 0, 1, 1)
    assert stats.service_level is None and stats.abandon_rate == 1.0
    # from 10:00: busy a1 2400 + a2 3600; available a1 4800.
    assert stats.occupancy == round(6000 / 10800, 4)


def test_an_empty_queue_has_nulls_not_zeros(session: Session, actor: Actor) -> None:
    add_queue(session, actor.tenant_id, "empty", threshold=30)
    stats = service.queue_snapshot(session, actor.tenant_id, "empty", NOW)
    assert (stats.calls_waiting, stats.longest_wait_s, stats.offered, stats.members) == (0, None, 0, 0)
    assert stats.threshold_s == 30
    nulls = ("service_level", "service_level_with_abandons", "asa_s", "abandon_rate", "aht_s", "occupancy")
    assert all(getattr(stats, name) is None for name in nulls)


def test_a_queue_name_without_configuration_still_has_stats(session: Session, actor: Actor) -> None:
    """The call controller may publish stats of a queue name it routes to before anyone configured it."""
    add_cdr(session, actor.tenant_id, "adhoc", NOW - timedelta(minutes=5), waited=(25, 0), talk=30)
    stats = service.queue_snapshot(session, actor.tenant_id, "adhoc", NOW)
    assert (stats.queue_id, stats.threshold_s, stats.members) == (None, d.DEFAULT_THRESHOLD_S, 0)
    assert (stats.offered, stats.service_level, stats.occupancy) == (1, 0.0, None)
    assert stats.model_dump(mode="json")["since"] == "2026-11-24T00:00:00+09:00"  # ready for a WebSocket event


# -- historical ---------------------------------------------------------------------------------------------


@pytest.fixture
def night(session: Session, actor: Actor) -> None:
    """Queue "night" (T = 20 s): calls around Japan's midnight and one at 08:30 JST (23:30 UTC the day before)."""
    t = actor.tenant_id
    add_queue(session, t, "night")
    add_cdr(session, t, "night", jst(23, 23, 50), waited=(10, 0), talk=100)
    add_cdr(session, t, "night", jst(24, 0, 0), final="abandoned", answered=False, waited=(30, 0))
    add_cdr(session, t, "night", jst(24, 0, 14, 59, 999), waited=(25, 0), talk=200)
    add_cdr(session, t, "night", jst(24, 0, 15), waited=(5, 0), talk=300)
    add_cdr(session, t, "night", jst(24, 8, 30), waited=(3, 0), talk=40)
    add_cdr(session, t, "night", jst(24, 9, 0), waited=(3, 0), talk=40)  # at `until`: outside


def _rows(report: Any) -> list[tuple[Any, ...]]:
    return [(r.interval_start, r.offered, r.answered, r.abandoned, r.service_level) for r in report.rows]


def test_calls_are_counted_in_the_interval_they_started_in_japan_time(
    session: Session, actor: Actor, night: None
) -> None:
    window: dict[str, Any] = {"since": jst(23, 23), "until": jst(24, 9), "queue": "night", "now": NOW}
    quarter = service.queue_report(session, actor, interval="15min", **window)
    assert _rows(quarter) == [
        (jst(23, 23, 45), 1, 1, 0, 1.0),
        (jst(24, 0, 0), 2, 1, 1, 0.0),  # 00:00:00.000 and 00:14:59.999
        (jst(24, 0, 15), 1, 1, 0, 1.0),
        (jst(24, 8, 30), 1, 1, 0, 1.0),
    ]
    assert quarter.rows[1].interval_end == jst(24, 0, 15)
    assert quarter.rows[1].abandon_rate == 0.5 and quarter.rows[1].service_level_with_abandons == 0.0
    hourly = service.queue_report(session, actor, interval="hour", **window)
    assert _rows(hourly) == [(jst(23, 23), 1, 1, 0, 1.0), (jst(24, 0), 3, 2, 1, 0.5), (jst(24, 8), 1, 1, 0, 1.0)]
    assert (hourly.rows[1].asa_s, hourly.rows[1].aht_s, hourly.rows[1].abandon_rate) == (15.0, 250.0, 0.3333)
    daily = service.queue_report(session, actor, interval="day", **window)
    # By UTC date the 08:30 call would be on the 23rd; by Japan's it is on the 24th.
    assert _rows(daily) == [(jst(23), 1, 1, 0, 1.0), (jst(24), 4, 3, 1, round(2 / 3, 4))]
    assert daily.rows[0].occupancy is None  # no members


def test_a_naive_window_is_japan_time(session: Session, actor: Actor, night: None) -> None:
    naive = service.queue_report(
        session, actor, since=datetime(2026, 11, 24), until=datetime(2026, 11, 24, 9), interval="hour", now=NOW
    )
    aware = service.queue_report(session, actor, since=jst(24), until=jst(24, 9), interval="hour", now=NOW)
    in_utc = service.queue_report(
        session, actor, since=datetime(2026, 11, 23, 15, tzinfo=UTC), until=jst(24, 9), interval="hour", now=NOW
    )
    assert naive == aware == in_utc and naive.since == jst(24)
    assert in_utc.model_dump(mode="json")["since"] == "2026-11-24T00:00:00+09:00"


@pytest.fixture
def b1(session: Session, actor: Actor) -> Agent:
    """Agent b1 on the 24th: available 10:00–10:10, on a call 10:10–10:40, available 10:40–11:05, then on break."""
    queue = add_queue(session, actor.tenant_id, "day")
    agent = add_agent(session, actor.tenant_id, "m-b1", "break", queue=queue)
    add_span(session, agent, "logged_out", jst(24, 8), jst(24, 10))
    add_span(session, agent, "available", jst(24, 10), jst(24, 10, 10))
    add_span(session, agent, "on_call", jst(24, 10, 10), jst(24, 10, 40))
    add_span(session, agent, "available", jst(24, 10, 40), jst(24, 11, 5))
    add_span(session, agent, "break", jst(24, 11, 5))
    talked = jst(24, 10, 10)
    add_cdr(session, actor.tenant_id, "day", talked, waited=(3, 2), talk=1500, hold=300, wrap=120, agent="m-b1")
    return agent


def test_agent_time_is_split_across_interval_boundaries(session: Session, actor: Actor, b1: Agent) -> None:
    report = service.agent_report(session, actor, since=jst(24, 10), until=jst(24, 11, 30), interval="15min", now=NOW)
    got = [
        (r.interval_start, r.time_available_s, r.time_on_call_s, r.time_break_s, r.logged_in_s, r.occupancy)
        for r in report.rows
    ]
    assert got == [
        (jst(24, 10, 0), 600.0, 300.0, 0.0, 900.0, 0.3333),
        (jst(24, 10, 15), 0.0, 900.0, 0.0, 900.0, 1.0),
        (jst(24, 10, 30), 300.0, 600.0, 0.0, 900.0, 0.6667),
        (jst(24, 10, 45), 900.0, 0.0, 0.0, 900.0, 0.0),
        (jst(24, 11, 0), 300.0, 0.0, 600.0, 900.0, 0.0),
        (jst(24, 11, 15), 0.0, 0.0, 900.0, 900.0, None),  # the open break lasts until `until`
    ]
    first = report.rows[0]
    assert (first.agent, first.display_name, first.handled) == ("m-b1", "m-b1 さん", 1)
    assert (first.talk_s, first.hold_s, first.wrap_up_s, first.aht_s) == (1500.0, 300.0, 120.0, 1920.0)
    assert all(r.handled == 0 and r.aht_s is None for r in report.rows[1:])


def test_a_span_begun_before_the_window_counts_from_its_start(session: Session, actor: Actor, b1: Agent) -> None:
    report = service.agent_report(session, actor, since=jst(24, 10, 5), until=jst(24, 12), interval="hour", now=NOW)
    first, second = report.rows
    assert (first.time_available_s, first.time_on_call_s, first.handled) == (1500.0, 1800.0, 1)
    assert first.occupancy == round(1800 / 3300, 4)
    assert (second.time_available_s, second.time_break_s, second.occupancy) == (300.0, 3300.0, 0.0)
    # The queue's row has the same member time.
    queue_rows = service.queue_report(
        session, actor, since=jst(24, 10, 5), until=jst(24, 12), interval="hour", queue="day", now=NOW
    ).rows
    assert [r.occupancy for r in queue_rows] == [first.occupancy, 0.0]
    assert (queue_rows[0].offered, queue_rows[0].asa_s, queue_rows[0].aht_s) == (1, 5.0, 1920.0)


def test_the_report_and_the_snapshot_agree(session: Session, actor: Actor, floor: dict[str, Any]) -> None:
    """One definition: today's day row says what the live view says."""
    stats = service.queue_snapshot(session, actor.tenant_id, "sales", NOW)
    today = service.queue_report(session, actor, since=jst(24), until=jst(25), interval="day", queue="sales", now=NOW)
    (row,) = today.rows
    shared = set(type(row).model_fields) & set(type(stats).model_fields) - {"queue"}
    assert shared >= {"service_level", "asa_s", "abandon_rate", "aht_s", "occupancy", "offered"}
    assert {f: getattr(row, f) for f in shared} == {f: getattr(stats, f) for f in shared}


def test_every_queue_and_agent_has_its_rows(session: Session, actor: Actor, floor: dict[str, Any]) -> None:
    report = service.queue_report(session, actor, since=jst(24), until=jst(25), interval="day", now=NOW)
    assert [(r.queue, r.offered) for r in report.rows] == [("sales", 8), ("support", 1)]
    agents = service.agent_report(session, actor, since=jst(24), until=jst(25), interval="day", now=NOW)
    assert [(r.agent, r.handled) for r in agents.rows] == [("m-a1", 2), ("m-a2", 1), ("m-a3", 0), ("m-a4", 1)]
    a1 = agents.rows[0]
    assert (a1.time_available_s, a1.time_on_call_s, a1.time_wrap_up_s, a1.occupancy) == (8400.0, 1800.0, 600.0, 0.2222)
    assert a1.aht_s == 105.0  # (150 + 60) / 2


@pytest.mark.parametrize(
    ("since", "until", "interval", "field"),
    [
        (jst(1), jst(3, month=12), "15min", "until"),  # 32 days
        (jst(1, month=8), jst(2, month=11), "hour", "until"),
        (jst(24), jst(24), "day", "until"),
        (jst(25), jst(24), "hour", "until"),
        (jst(24), jst(25), "week", "interval"),
        (datetime(1, 1, 1), jst(25), "day", "since"),  # would overflow in UTC
        (jst(24), datetime(9999, 12, 31, 23), "day", "until"),
    ],
)
def test_a_report_window_is_bounded(
    session: Session, actor: Actor, since: datetime, until: datetime, interval: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        service.queue_report(session, actor, since=since, until=until, interval=interval, now=NOW)
    assert err.value.errors[0]["field"] == field


def test_another_tenants_queue_is_not_found(session: Session, actor: Actor, other_actor: Actor) -> None:
    theirs = add_queue(session, other_actor.tenant_id, "secret")
    with pytest.raises(NotFound):
        service.queue_stats(session, actor, theirs.id, now=NOW)
    assert service.queue_stats(session, other_actor, theirs.id, now=NOW).queue == "secret"


# -- over HTTP ----------------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No telephony driver: these tests write calls, CDRs and spans directly, and nothing else may touch them."""
    return Settings(data_dir=tmp_path, database_url="sqlite://", default_tenant="center", telephony_driver="none")


def test_queue_stats_over_http_for_supervisors_only(client_as: ClientAs, session: Session) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    tenant_id = supervisor.user.tenant_id
    queue = add_queue(session, tenant_id, "http")
    now = utcnow()
    add_cdr(session, tenant_id, "http", now - timedelta(minutes=30), waited=(12, 3), talk=60)
    add_call(session, tenant_id, "queued", "http", now - timedelta(seconds=8), queued_at=now - timedelta(seconds=5))
    since = (now - timedelta(hours=1)).isoformat()
    r = supervisor.get(f"/api/v1/queues/{queue.id}/stats", params={"since": since})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["queue"], body["offered"], body["service_level"], body["asa_s"]) == ("http", 1, 1.0, 15.0)
    assert body["calls_waiting"] == 1 and body["longest_wait_s"] >= 5
    assert client_as(Role.ADMIN).get(f"/api/v1/queues/{queue.id}/stats").status_code == 200
    assert client_as(Role.OPERATOR).get(f"/api/v1/queues/{queue.id}/stats").status_code == 403
    assert client_as(Role.CLIENT_VIEWER).get(f"/api/v1/queues/{queue.id}/stats").status_code == 403
    future = (now + timedelta(hours=1)).isoformat()
    r = supervisor.get(f"/api/v1/queues/{queue.id}/stats", params={"since": future})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"


def test_another_tenants_queue_is_not_found_over_http(client_as: ClientAs, session: Session) -> None:
    b = tenants.get_or_create(session, "tenant-b", "B社")
    theirs = add_queue(session, b.id, "b-queue")
    a = client_as(Role.SUPERVISOR, "tenant-a")
    r = a.get(f"/api/v1/queues/{theirs.id}/stats")
    assert r.status_code == 404 and "b-queue" not in r.text
    assert client_as(Role.SUPERVISOR, "tenant-b").get(f"/api/v1/queues/{theirs.id}/stats").status_code == 200
    assert a.get("/api/v1/reports/queues", params={"since": "2026-11-01", "until": "2026-11-30"}).json()["rows"] == []


@pytest.fixture
def reporting(client_as: ClientAs, session: Session) -> Any:
    """A supervisor of the center tenant, with "night" calls in October (in the past: the app's clock is real)."""
    supervisor = client_as(Role.SUPERVISOR)
    tenant_id = supervisor.user.tenant_id
    add_queue(session, tenant_id, "night")
    add_cdr(session, tenant_id, "night", jst(23, 23, 50, month=10), waited=(10, 0), talk=100, agent="m-n1")
    add_cdr(session, tenant_id, "night", jst(24, 0, 5, month=10), final="abandoned", answered=False, waited=(30, 0))
    add_cdr(session, tenant_id, "night", jst(24, 0, 20, month=10), waited=(25, 0), talk=200, agent="m-n1")
    agent = add_agent(session, tenant_id, "m-n1", "available")
    add_span(session, agent, "available", jst(23, 23, 30, month=10), jst(24, 0, 30, month=10))
    return supervisor


WINDOW = {"since": "2026-10-23T23:00:00", "until": "2026-10-24T01:00:00", "interval": "hour"}


def test_reports_over_http(reporting: Any, client_as: ClientAs) -> None:
    body = reporting.get("/api/v1/reports/queues", params=WINDOW).json()
    assert (body["since"], body["until"], body["interval"]) == (
        "2026-10-23T23:00:00+09:00", "2026-10-24T01:00:00+09:00", "hour"
    )  # fmt: skip
    assert [(r["interval_start"], r["offered"], r["abandon_rate"]) for r in body["rows"]] == [
        ("2026-10-23T23:00:00+09:00", 1, 0.0),
        ("2026-10-24T00:00:00+09:00", 2, 0.5),
    ]
    agents = reporting.get("/api/v1/reports/agents", params={**WINDOW, "agent": "m-n1"}).json()["rows"]
    assert [(r["interval_start"], r["handled"], r["time_available_s"]) for r in agents] == [
        ("2026-10-23T23:00:00+09:00", 1, 1800.0),
        ("2026-10-24T00:00:00+09:00", 1, 1800.0),
    ]
    too_long = reporting.get("/api/v1/reports/queues", params={**WINDOW, "interval": "15min", "since": "2026-09-01"})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "until"
    assert reporting.get("/api/v1/reports/queues", params={"interval": "week"}).status_code == 422
    for path in ("/api/v1/reports/queues", "/api/v1/reports/agents.csv", "/api/v1/reports/queues.xlsx"):
        assert client_as(Role.OPERATOR).get(path).status_code == 403


def test_csv_and_xlsx_exports_have_the_rows_and_are_audited(reporting: Any, session: Session) -> None:
    r = reporting.get("/api/v1/reports/queues.csv", params=WINDOW)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].endswith('.csv"') and r.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert [(row["queue"], row["interval_start"], row["offered"], row["service_level"]) for row in rows] == [
        ("night", "2026-10-23T23:00:00+09:00", "1", "1.0"),
        ("night", "2026-10-24T00:00:00+09:00", "2", "0.0"),
    ]
    assert rows[0]["abandon_rate"] == "0.0" and rows[0]["occupancy"] == ""  # null → empty cell

    x = reporting.get("/api/v1/reports/agents.xlsx", params=WINDOW)
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(x.content), read_only=True).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = values[0]
    assert header[:4] == ["agent", "display_name", "interval_start", "interval_end"]
    got = [dict(zip(header, row, strict=True)) for row in values[1:]]
    assert [(g["agent"], g["interval_start"], g["handled"], g["aht_s"], g["occupancy"]) for g in got] == [
        ("m-n1", datetime(2026, 10, 23, 23), 1, 100.0, 0.0),  # Japan local time, no offset (Excel has none)
        ("m-n1", datetime(2026, 10, 24, 0), 1, 200.0, 0.0),
    ]

    audited = session.query(AuditEvent).filter_by(action="export").order_by(AuditEvent.id).all()
    assert [(e.resource, e.detail and e.detail["rows"], e.detail and e.detail["format"]) for e in audited] == [
        ("queue_report", 2, "csv"),
        ("agent_report", 2, "xlsx"),
    ]
    assert audited[0].detail and audited[0].detail["since"] == "2026-10-23T23:00:00+09:00"
