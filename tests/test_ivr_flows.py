"""IVR flows as data: validation (every rule, at its place), business hours, versions, the API and the page."""

from __future__ import annotations

import copy
import html
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import TEST_PASSWORD, ClientAs, MakeUser
from kakehashi.audit.models import AuditEvent
from kakehashi.ivr import service
from kakehashi.ivr.calendar import holiday_name, is_open
from kakehashi.ivr.flow import Flow, Schedule, successors
from kakehashi.ivr.runner import mask_digits
from kakehashi.ivr.schemas import FlowCreate, RestoreIn, VersionCreate
from kakehashi.ivr.templates import MINIMAL_EXAMPLE, ORDER_DESK_EXAMPLE, ORDER_DESK_QUEUES, order_desk_example
from kakehashi.ivr.validate import MAX_NODES, NODE_TYPES, links, problems, validate_flow
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed
from kakehashi.routing.models import Queue
from kakehashi.tenants import repository as tenants

QUEUES = set(ORDER_DESK_QUEUES)
SKILLS = {"english"}  # the skill of one of the tenant's queues
JST = timezone(timedelta(hours=9))


def flow(start: str | None = None, **nodes: Any) -> dict[str, Any]:
    """A definition; ``start`` defaults to the first node given."""
    return {"start": start or next(iter(nodes)), "nodes": nodes}


def fields(definition: Any, queues: set[str] | None = None) -> dict[str, str]:
    """Location → message of every problem (empty when valid)."""
    found: dict[str, str] = {}
    for e in problems(definition, known_queues=QUEUES if queues is None else queues, known_skills=SKILLS):
        found[e["field"]] = f"{found[e['field']]}\n{e['message']}" if e["field"] in found else e["message"]
    return found


BYE = {"type": "hangup"}
TO_ORDERS = {"type": "queue", "queue": "orders"}


def menu(options: dict[str, str], on_fail: str = "bye") -> dict[str, Any]:
    return {"type": "menu", "prompt": "番号を押してください", "options": options, "on_fail": on_fail}


def play(next_: str) -> dict[str, Any]:
    return {"type": "play", "prompt": "お待ちください", "next": next_}


WEEKDAYS_9_TO_6 = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


# --- validation: each rule fails at its place -------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "location", "says"),
    [
        # shape (pydantic, at the path the admin wrote: the type tag pydantic adds is left out)
        (flow(a={"type": "menuu"}), "nodes.a", "unknown node type 'menuu'"),
        (flow(a={"prompt": "x"}), "nodes.a", 'needs a "type"'),
        (flow(a={"type": "play", "next": "a"}), "nodes.a.prompt", "required"),
        (flow(a={"type": "hangup", "colour": "red"}), "nodes.a.colour", "unknown field 'colour'"),
        (flow(a=menu({"x": "bye"}), bye=BYE), "nodes.a.options.x", "not a valid key: one key"),
        (flow(a=menu({"1": "no such"}), bye=BYE), "nodes.a.options.1", "node ids are"),
        ({"start": "bad id", "nodes": {"bad id": BYE}}, "nodes.bad id", "not a valid key: node ids are"),
        (flow(a=BYE, b=5), "nodes.b", "JSON object"),
        (
            flow(
                a={"type": "hours", "schedule": {"weekly": {"mon": [["09:00", "24:30"]]}}, "open": "b", "closed": "b"}
            ),
            "nodes.a.schedule.weekly.mon.0.1",
            "HH:MM from 00:00 to 24:00",
        ),
        ({"start": "a", "nodes": {}}, "nodes", "at least 1"),
        ({"nodes": {"a": BYE}}, "start", "required"),
        ([1, 2], "", "JSON object"),
        # links
        (flow(start="nope", a=BYE), "start", "no node 'nope'"),
        (flow(menu1=menu({"1": "bye", "3": "gone"}), bye=BYE), "nodes.menu1.options.3", "no node 'gone'"),
        (flow(a=play("nowhere")), "nodes.a.next", "no node 'nowhere'"),
        (
            flow(b={"type": "branch", "when": {"known": True}, "then": "bye", "else": "lost"}, bye=BYE),
            "nodes.b.else",
            "no node 'lost'",
        ),
        # reachability
        (flow(a=BYE, orphan=BYE), "nodes.orphan", "not reachable from start"),
        # loops that never wait for a key press
        (flow(a=play("b"), b=play("a")), "nodes.a", "loops without waiting for a key press: a → b → a"),
        (flow(m=menu({"1": "bye"}, on_fail="sorry"), sorry=play("m"), bye=BYE), "nodes.m", "m → sorry → m"),
        (
            flow(
                cb={"type": "callback_offer", "prompt": "折り返しは1", "queue": "orders", "decline": "again"},
                again=play("cb"),
            ),
            "nodes.cb",
            "cb → again → cb",
        ),
        # from every node an exit
        (flow(x=play("a"), a=play("b"), b=play("a")), "nodes.x", "no way from here to an exit"),
        # queues exist in the tenant
        (flow(q={"type": "queue", "queue": "sales"}), "nodes.q.queue", "no queue named 'sales'"),
        (flow(s={"type": "set", "queue": "sales", "next": "q"}, q={"type": "queue"}), "nodes.s.queue", "'sales'"),
        (flow(v={"type": "voicemail", "prompt": "どうぞ", "queue": "sales"}), "nodes.v.queue", "'sales'"),
        (
            flow(cb={"type": "callback_offer", "prompt": "1", "queue": "sales", "decline": "bye"}, bye=BYE),
            "nodes.cb.queue",
            "'sales'",
        ),
        # a queue exit without its own queue needs a set node on every path to it
        (flow(q={"type": "queue"}), "nodes.q.queue", "no queue chosen before node q (e.g. q)"),
        (
            flow(
                m=menu({"1": "s", "2": "q"}),
                s={"type": "set", "queue": "orders", "next": "q"},
                q={"type": "queue"},
                bye=BYE,
            ),
            "nodes.q.queue",
            "no queue chosen before node q (e.g. m → q)",
        ),
        (
            flow(cb={"type": "callback_offer", "prompt": "1", "decline": "bye"}, bye=BYE),
            "nodes.cb.queue",
            "no queue chosen before node cb",
        ),
        # a skill chooses its queue: it must be the skill of one of the tenant's queues, and alone
        (
            flow(s={"type": "set", "skill": "french", "next": "q"}, q={"type": "queue"}),
            "nodes.s.skill",
            "no queue takes the skill 'french' (skills of queues: english)",
        ),
        (
            flow(s={"type": "set", "queue": "orders", "skill": "english", "next": "q"}, q={"type": "queue"}),
            "nodes.s.skill",
            "set a queue or a skill, not both",
        ),
        # collect
        (
            flow(
                c={"type": "collect", "prompt": "番号", "var": "no", "min_digits": 8, "max_digits": 6, "next": "bye"}
                | {"on_fail": "bye"},
                bye=BYE,
            ),
            "nodes.c.min_digits",
            "min_digits (8) is more than max_digits (6)",
        ),
        # schedules
        (
            flow(
                h={
                    "type": "hours",
                    "schedule": {"weekly": {"tue": [["18:00", "09:00"]]}},
                    "open": "bye",
                    "closed": "bye",
                },
                bye=BYE,
            ),
            "nodes.h.schedule.weekly.tue.0",
            "opens at 18:00 but closes at 09:00",
        ),
        (
            flow(
                h={
                    "type": "hours",
                    "schedule": {
                        "weekly": WEEKDAYS_9_TO_6,
                        "closed_dates": ["2026-11-24"],
                        "open_dates": ["2026-11-24"],
                    },
                    "open": "bye",
                    "closed": "bye",
                },
                bye=BYE,
            ),
            "nodes.h.schedule.open_dates.0",
            "2026-11-24 is in closed_dates too",
        ),
        (
            flow(
                h={
                    "type": "hours",
                    "schedule": {"weekly": WEEKDAYS_9_TO_6, "open_dates": ["2026-11-22"]},
                    "open": "bye",
                    "closed": "bye",
                },
                bye=BYE,
            ),
            "nodes.h.schedule.open_dates.0",
            "2026-11-22 is a sun, which has no hours",
        ),
        # branch conditions
        (
            flow(
                b={"type": "branch", "when": {"known": True, "rank_in": ["VIP"]}, "then": "bye", "else": "bye"}, bye=BYE
            ),
            "nodes.b.when",
            "give exactly one test: known, rank_in, open_complaint or var + equals (found: known, rank_in)",
        ),
        (
            flow(b={"type": "branch", "when": {}, "then": "bye", "else": "bye"}, bye=BYE),
            "nodes.b.when",
            "give exactly one test",
        ),
        (
            flow(b={"type": "branch", "when": {"rank_in": []}, "then": "bye", "else": "bye"}, bye=BYE),
            "nodes.b.when.rank_in",
            "at least one rank",
        ),
        (
            flow(
                c={"type": "collect", "prompt": "番号", "var": "order_no", "next": "b", "on_fail": "bye"},
                b={"type": "branch", "when": {"var": "order_no"}, "then": "bye", "else": "bye"},
                bye=BYE,
            ),
            "nodes.b.when.equals",
            "var and equals go together",
        ),
        (
            flow(
                b={"type": "branch", "when": {"var": "member_no", "equals": "1"}, "then": "bye", "else": "bye"}, bye=BYE
            ),
            "nodes.b.when.var",
            "no collect node stores 'member_no' (no collect node in this flow)",
        ),
        (
            flow(
                c={"type": "collect", "prompt": "番号", "var": "order_no", "next": "b", "on_fail": "bye"},
                b={"type": "branch", "when": {"var": "order_no", "equals": "abc"}, "then": "bye", "else": "bye"},
                bye=BYE,
            ),
            "nodes.b.when.equals",
            "can never match",
        ),
        (
            flow(
                c={"type": "collect", "prompt": "暗証番号", "var": "pin", "sensitive": True, "next": "b"}
                | {"on_fail": "bye"},
                b={"type": "branch", "when": {"var": "pin", "equals": "1234"}, "then": "bye", "else": "bye"},
                bye=BYE,
            ),
            "nodes.b.when.var",
            "'pin' is collected as sensitive: kept masked, it cannot be tested",
        ),
        # set must set something
        (flow(s={"type": "set", "next": "bye"}, bye=BYE), "nodes.s", "must set a queue, a priority or a skill"),
        # size
        ({"start": "n0", "nodes": {f"n{i}": BYE for i in range(MAX_NODES + 1)}}, "nodes", "at most 500 nodes"),
    ],
)
def test_each_rule_refuses_at_its_place(definition: Any, location: str, says: str) -> None:
    found = fields(definition)
    assert location in found, found
    assert says in found[location]


def test_a_refusal_lists_every_problem_at_once() -> None:
    definition = flow(
        m=menu({"1": "q", "2": "gone"}, on_fail="bye"),
        q={"type": "queue", "queue": "sales"},
        c={"type": "collect", "prompt": "番号", "var": "x", "min_digits": 5, "max_digits": 2, "next": "q"}
        | {"on_fail": "bye"},
        bye=BYE,
    )
    with pytest.raises(ValidationFailed) as caught:
        validate_flow(definition, known_queues=QUEUES)
    assert caught.value.status == 422
    assert [e["field"] for e in caught.value.errors] == ["nodes.q.queue", "nodes.c.min_digits", "nodes.m.options.2"]
    assert caught.value.detail == "the flow has 3 problem(s)"


@pytest.mark.parametrize(
    "definition",
    [
        MINIMAL_EXAMPLE,
        ORDER_DESK_EXAMPLE,
        # a loop through a menu option waits for the caller: fine
        flow(m=menu({"1": "again", "2": "bye"}), again=play("m"), bye=BYE),
        # a loop through a collect's next waits for digits: fine
        flow(
            c={"type": "collect", "prompt": "番号", "var": "no", "next": "check", "on_fail": "bye"},
            check={"type": "branch", "when": {"var": "no", "equals": "1234"}, "then": "orders", "else": "wrong"},
            wrong=play("c"),
            orders=TO_ORDERS,
            bye=BYE,
        ),
        # a queue chosen on every path, also around a loop
        flow(
            s={"type": "set", "queue": "support", "priority": 5, "next": "m"},
            m=menu({"1": "q", "9": "m"}, on_fail="q"),
            q={"type": "queue"},
        ),
        # 24:00 closes at midnight; a skill alone is something to set, and chooses the queue of a queue exit
        flow(
            h={"type": "hours", "schedule": {"weekly": {"sat": [["10:00", "24:00"]]}}, "open": "s", "closed": "bye"},
            s={"type": "set", "skill": "english", "next": "q"},
            q={"type": "queue"},
            bye=BYE,
        ),
        flow(t={"type": "transfer", "target": "0120-000-000"}),
    ],
)
def test_valid_flows_pass(definition: dict[str, Any]) -> None:
    parsed = validate_flow(definition, known_queues=QUEUES, known_skills=SKILLS)
    assert isinstance(parsed, Flow)
    # What is stored reads back as the same flow.
    assert Flow.model_validate(service.stored(parsed)) == parsed


def test_the_example_needs_its_queues() -> None:
    found = fields(ORDER_DESK_EXAMPLE, queues={"orders", "support"})
    assert set(found) == {"nodes.vip_route.queue", "nodes.complaint_first.queue", "nodes.complaint_route.queue"}
    assert "queues: orders, support" in found["nodes.vip_route.queue"]


def test_links_follow_successors() -> None:
    parsed = Flow.model_validate(ORDER_DESK_EXAMPLE)
    for node in parsed.nodes.values():
        assert [target for _f, target, _w in links(node)] == successors(node)


def test_a_branch_is_stored_with_else() -> None:
    parsed = validate_flow(ORDER_DESK_EXAMPLE, known_queues=QUEUES)
    assert service.stored(parsed)["nodes"]["vip_check"] == ORDER_DESK_EXAMPLE["nodes"]["vip_check"]


@pytest.mark.parametrize(
    ("keyed", "kept"),
    [
        ("4111111111111234", "************1234"),  # a card number keeps its last 4, as on a receipt
        ("123456789012", "********9012"),
        ("12345678901", "***********"),  # shorter values would give most of themselves away: masked whole
        ("1234", "****"),  # a PIN
    ],
)
def test_sensitive_digits_are_kept_masked(keyed: str, kept: str) -> None:
    assert mask_digits(keyed) == kept


# Random flows: mostly well-formed nodes linking to ids that may or may not exist, with junk mixed in.
_IDS = st.sampled_from(["a", "b", "c", "d", "e", "bad id", ""])
_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 50), st.text(max_size=5), st.lists(st.integers(), max_size=2)
)
_CLOCK = st.sampled_from(["00:00", "09:00", "12:30", "18:00", "24:00", "25:00", "9:00"])


def _node() -> st.SearchStrategy[Any]:
    prompt = st.sampled_from(["ようこそ", "", "x" * 3])
    queue = st.one_of(st.none(), st.sampled_from(["orders", "support", "nope"]))
    schedule = st.fixed_dictionaries(
        {
            "weekly": st.dictionaries(
                st.sampled_from(["mon", "sat", "sun", "xyz"]), st.lists(st.tuples(_CLOCK, _CLOCK), max_size=2)
            )
        },
        optional={
            "closed_on_holidays": st.booleans(),
            "closed_dates": st.lists(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=2),
            "open_dates": st.lists(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=2),
        },
    ).map(lambda s: json.loads(json.dumps(s, default=str)))
    condition = st.fixed_dictionaries(
        {},
        optional={
            "known": st.booleans(),
            "rank_in": st.lists(st.sampled_from(["VIP", "", "gold"]), max_size=2),
            "open_complaint": st.booleans(),
            "var": st.sampled_from(["order_no", "pin"]),
            "equals": st.sampled_from(["1", "x"]),
        },
    )
    shapes: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "play": {"prompt": prompt, "next": _IDS},
        "notice": {"prompt": prompt, "next": _IDS},
        "menu": {
            "prompt": prompt,
            "options": st.dictionaries(st.sampled_from(["1", "2", "#", "x"]), _IDS, max_size=3),
            "on_fail": _IDS,
        },
        "collect": {
            "prompt": prompt,
            "var": st.sampled_from(["order_no", "pin", "Bad"]),
            "min_digits": st.integers(0, 12),
            "max_digits": st.integers(1, 12),
            "next": _IDS,
            "on_fail": _IDS,
        },
        "hours": {"schedule": schedule, "open": _IDS, "closed": _IDS},
        "branch": {"when": condition, "then": _IDS, "else": _IDS},
        "set": {"queue": queue, "priority": st.integers(-1, 101), "next": _IDS},
        "queue": {"queue": queue},
        "transfer": {"target": st.sampled_from(["0120", ""])},
        "voicemail": {"prompt": prompt, "queue": queue},
        "callback_offer": {"prompt": prompt, "queue": queue, "decline": _IDS},
        "hangup": {},
    }

    def shaped(kind: str) -> st.SearchStrategy[Any]:
        fields: dict[str, st.SearchStrategy[Any]] = shapes.get(kind, {})
        return st.fixed_dictionaries({"type": st.just(kind)}, optional=fields)

    return st.one_of(st.sampled_from([*NODE_TYPES, "bogus"]).flatmap(shaped), _JUNK)


random_flows = st.one_of(
    st.fixed_dictionaries({"start": _IDS, "nodes": st.dictionaries(_IDS, _node(), max_size=6)}),
    st.dictionaries(st.sampled_from(["start", "nodes", "extra"]), _JUNK, max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definition=random_flows)
def test_random_flows_validate_or_are_refused_with_located_problems(definition: Any) -> None:
    try:
        parsed = validate_flow(definition, known_queues={"orders", "support"})
    except ValidationFailed as exc:
        assert exc.errors
        assert all(isinstance(e["field"], str) and e["message"] for e in exc.errors)
    else:
        assert parsed.start in parsed.nodes


# --- business hours --------------------------------------------------------------------------------------

HOURS = Schedule.model_validate(
    {
        "weekly": {**WEEKDAYS_9_TO_6, "sat": [["10:00", "24:00"]]},
        "closed_on_holidays": True,
        "closed_dates": ["2026-12-31"],
    }
)


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=JST)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (jst(2026, 11, 24, 9, 0), True),  # Tuesday, opening minute
        (jst(2026, 11, 24, 8, 59, 59), False),
        (jst(2026, 11, 24, 17, 59, 59), True),
        (jst(2026, 11, 24, 18, 0), False),  # [open, close): closed at the closing minute
        (jst(2026, 11, 22, 12, 0), False),  # Sunday: no hours
        (jst(2026, 11, 28, 23, 59, 59), True),  # Saturday until 24:00
        (jst(2026, 11, 29, 0, 0), False),  # … which is Sunday 00:00
        (jst(2026, 12, 31, 10, 0), False),  # Thursday, but in closed_dates
        (datetime(2026, 11, 24, 1, 0, tzinfo=UTC), True),  # 10:00 in Tokyo
        (datetime(2026, 11, 23, 23, 30, tzinfo=UTC), False),  # 08:30 on the 24th in Tokyo
    ],
)
def test_weekly_hours_in_japan_time(at: datetime, expected: bool) -> None:
    assert is_open(HOURS, at) is expected


def test_a_japanese_public_holiday_is_closed_unless_told_otherwise() -> None:
    labour_thanksgiving = jst(2026, 11, 23, 10, 0)  # a Monday
    assert holiday_name(labour_thanksgiving.date()) == "勤労感謝の日"
    assert is_open(HOURS, labour_thanksgiving) is False
    open_on_holidays = HOURS.model_copy(update={"closed_on_holidays": False})
    assert is_open(open_on_holidays, labour_thanksgiving) is True
    holiday_sale = HOURS.model_copy(update={"open_dates": [date(2026, 11, 23)]})
    assert is_open(holiday_sale, labour_thanksgiving) is True
    assert is_open(holiday_sale, jst(2026, 11, 23, 18, 30)) is False  # the weekly hours still apply


def test_substitute_holidays_count() -> None:
    """2026-05-03 (憲法記念日) is a Sunday: Wednesday 05-06 is a 振替休日."""
    assert holiday_name(date(2026, 5, 6)) == "振替休日"
    assert is_open(HOURS, jst(2026, 5, 6, 10, 0)) is False
    assert is_open(HOURS, jst(2026, 5, 7, 10, 0)) is True


def test_closed_dates_win_over_open_dates() -> None:
    both = HOURS.model_copy(update={"open_dates": [date(2026, 12, 31)]})
    assert is_open(both, jst(2026, 12, 31, 10, 0)) is False


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(HOURS, datetime(2026, 11, 24, 10, 0))


# --- versions (service) ----------------------------------------------------------------------------------


def add_queues(session: Session, tenant_id: int, *names: str) -> None:
    for name in names:
        session.add(Queue(tenant_id=tenant_id, name=name, label=name))
    session.flush()


@pytest.fixture
def desk(session: Session, actor: Actor) -> Actor:
    """The center tenant with the example's queues."""
    add_queues(session, actor.tenant_id, *sorted(ORDER_DESK_QUEUES))
    return actor


def test_versions_create_save_list_restore(session: Session, desk: Actor) -> None:
    v1 = service.create_flow(session, desk, FlowCreate(name="main", definition=order_desk_example(), comment="初版"))
    assert (v1.flow.current_version, v1.version.version, v1.version.created_by) == (1, 1, "tester")
    edited = order_desk_example()
    edited["nodes"]["main_menu"]["options"].pop("9")
    v2 = service.save_version(session, desk, v1.flow.id, VersionCreate(definition=edited, comment="9 を削除"))
    assert (v2.flow.current_version, v2.version.version, v2.version.comment) == (2, 2, "9 を削除")
    v3 = service.restore(session, desk, v1.flow.id, 1, RestoreIn())
    assert v3.version.version == 3 and v3.flow.current_version == 3
    assert v3.version.definition == v1.version.definition == ORDER_DESK_EXAMPLE
    assert v3.version.comment == "restore of version 1"
    assert [v.version for v in service.list_versions(session, desk, v1.flow.id)] == [3, 2, 1]
    assert service.get_version(session, desk, v1.flow.id, 2).definition == edited
    assert service.get_flow(session, desk, v1.flow.id).version.version == 3
    audit = session.scalars(select(AuditEvent).where(AuditEvent.resource == "ivr_flow").order_by(AuditEvent.id)).all()
    assert [(a.action, a.detail and a.detail.get("version")) for a in audit] == [
        ("create", 1),
        ("update", 2),
        ("update", 3),
    ]
    assert audit[-1].detail and audit[-1].detail["restored_from"] == 1


def test_live_flow_is_the_current_version(session: Session, desk: Actor, other_actor: Actor) -> None:
    first = service.create_flow(session, desk, FlowCreate(name="main", definition=MINIMAL_EXAMPLE))
    live = service.live_flow(session, desk.tenant_id, "main")
    assert live is not None and live.start == "bye"
    service.save_version(session, desk, first.flow.id, VersionCreate(definition=order_desk_example()))
    assert service.live_version(session, desk.tenant_id, "main") == (2, Flow.model_validate(ORDER_DESK_EXAMPLE))
    assert service.live_flow(session, desk.tenant_id, "other") is None
    assert service.live_flow(session, other_actor.tenant_id, "main") is None


def test_only_valid_flows_are_saved(session: Session, desk: Actor) -> None:
    saved = service.create_flow(session, desk, FlowCreate(name="main", definition=MINIMAL_EXAMPLE))
    broken = flow(q={"type": "queue", "queue": "nope"})
    with pytest.raises(ValidationFailed) as caught:
        service.save_version(session, desk, saved.flow.id, VersionCreate(definition=broken))
    assert caught.value.errors[0]["field"] == "nodes.q.queue"
    assert [v.version for v in service.list_versions(session, desk, saved.flow.id)] == [1]
    with pytest.raises(ValidationFailed) as caught:
        service.create_flow(session, desk, FlowCreate(name="bad name!", definition=broken))
    assert [e["field"] for e in caught.value.errors] == ["name", "nodes.q.queue"]


def test_names_are_unique_per_tenant(session: Session, desk: Actor, other_actor: Actor) -> None:
    service.create_flow(session, desk, FlowCreate(name="main", definition=MINIMAL_EXAMPLE))
    with pytest.raises(Conflict):
        service.create_flow(session, desk, FlowCreate(name="main", definition=MINIMAL_EXAMPLE))
    service.create_flow(session, other_actor, FlowCreate(name="main", definition=MINIMAL_EXAMPLE))


def test_a_stale_base_version_is_a_conflict(session: Session, desk: Actor) -> None:
    saved = service.create_flow(session, desk, FlowCreate(name="main", definition=MINIMAL_EXAMPLE))
    service.save_version(session, desk, saved.flow.id, VersionCreate(definition=MINIMAL_EXAMPLE, base_version=1))
    with pytest.raises(Conflict) as caught:
        service.save_version(session, desk, saved.flow.id, VersionCreate(definition=MINIMAL_EXAMPLE, base_version=1))
    assert caught.value.extra["current_version"] == 2


def test_a_version_naming_a_deleted_queue_cannot_come_back(session: Session, desk: Actor) -> None:
    saved = service.create_flow(session, desk, FlowCreate(name="main", definition=order_desk_example()))
    service.save_version(session, desk, saved.flow.id, VersionCreate(definition=MINIMAL_EXAMPLE))
    vip = session.scalars(select(Queue).where(Queue.tenant_id == desk.tenant_id, Queue.name == "vip")).one()
    session.delete(vip)
    session.flush()
    with pytest.raises(ValidationFailed) as caught:
        service.restore(session, desk, saved.flow.id, 1)
    assert caught.value.detail.startswith("version 1 cannot be restored as it is")
    assert caught.value.errors[0]["field"] == "nodes.vip_route.queue"
    with pytest.raises(NotFound):
        service.restore(session, desk, saved.flow.id, 9)


def test_outline_reads_each_node() -> None:
    rows = {r.id: r for r in service.outline(Flow.model_validate(ORDER_DESK_EXAMPLE))}
    assert rows["welcome"].start and rows["welcome"].label == "録音告知"
    assert rows["main_menu"].links[0] == ("キー", "1", "to_orders")
    assert rows["main_menu"].links[-1] == ("失敗時", "", "to_orders")
    assert rows["to_complaints"].exit
    assert ("キュー", "振り分け設定のキュー") in [(f.label, f.value) for f in rows["to_complaints"].facts]
    assert rows["vip_check"].links == [("該当", "", "vip_route"), ("非該当", "", "main_menu")]


# --- the API ---------------------------------------------------------------------------------------------


@pytest.fixture
def center_queues(session: Session) -> None:
    add_queues(session, tenants.get_or_create(session, "center", "center").id, *sorted(ORDER_DESK_QUEUES))


def create(client: TestClient, name: str = "main", definition: dict[str, Any] | None = None) -> dict[str, Any]:
    r = client.post("/api/v1/ivr/flows", json={"name": name, "definition": definition or order_desk_example()})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.usefixtures("center_queues")
def test_api_versions(client: TestClient) -> None:
    made = create(client)
    fid = made["id"]
    assert made["current_version"] == 1 and made["current"]["definition"] == ORDER_DESK_EXAMPLE
    assert client.get("/api/v1/ivr/flows").json()[0]["name"] == "main"
    r = client.put(
        f"/api/v1/ivr/flows/{fid}", json={"definition": MINIMAL_EXAMPLE, "comment": "閉局", "base_version": 1}
    )
    assert r.status_code == 200 and r.json()["current"]["version"] == 2
    assert client.get(f"/api/v1/ivr/flows/{fid}").json()["current"]["definition"] == MINIMAL_EXAMPLE
    assert [v["version"] for v in client.get(f"/api/v1/ivr/flows/{fid}/versions").json()] == [2, 1]
    assert client.get(f"/api/v1/ivr/flows/{fid}/versions/1").json()["definition"] == ORDER_DESK_EXAMPLE
    r = client.post(f"/api/v1/ivr/flows/{fid}/versions/1/restore", json={"comment": "元に戻す"})
    assert r.status_code == 200
    assert (r.json()["current_version"], r.json()["current"]["comment"]) == (3, "元に戻す")
    assert r.json()["current"]["definition"] == ORDER_DESK_EXAMPLE
    assert client.post(f"/api/v1/ivr/flows/{fid}/versions/2/restore").json()["current_version"] == 4
    assert client.get(f"/api/v1/ivr/flows/{fid}/versions/99").status_code == 404
    assert client.get(f"/api/v1/ivr/flows/{fid}/versions/{2**40}").status_code == 422


@pytest.mark.usefixtures("center_queues")
def test_api_refusals_are_problem_details(client: TestClient) -> None:
    definition = flow(m=menu({"1": "q", "3": "gone"}), q={"type": "queue"}, bye=BYE)
    r = client.post("/api/v1/ivr/flows", json={"name": "main", "definition": definition})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in r.json()["errors"]} == {"nodes.m.options.3"}
    create(client)
    r = client.post("/api/v1/ivr/flows", json={"name": "main", "definition": MINIMAL_EXAMPLE})
    assert r.status_code == 409
    fid = client.get("/api/v1/ivr/flows").json()[0]["id"]
    r = client.put(f"/api/v1/ivr/flows/{fid}", json={"definition": MINIMAL_EXAMPLE, "base_version": 7})
    assert r.status_code == 409 and r.json()["current_version"] == 1
    r = client.put(f"/api/v1/ivr/flows/{fid}", json={"definition": flow(q={"type": "queue"})})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "nodes.q.queue"


@pytest.mark.usefixtures("center_queues")
def test_supervisors_read_admins_write_operators_neither(client: TestClient, client_as: ClientAs) -> None:
    fid = create(client)["id"]
    writes = [
        ("POST", "/api/v1/ivr/flows", {"name": "x", "definition": MINIMAL_EXAMPLE}),
        ("PUT", f"/api/v1/ivr/flows/{fid}", {"definition": MINIMAL_EXAMPLE}),
        ("POST", f"/api/v1/ivr/flows/{fid}/versions/1/restore", None),
    ]
    reads = ["/api/v1/ivr/flows", f"/api/v1/ivr/flows/{fid}", f"/api/v1/ivr/flows/{fid}/versions"]
    supervisor, operator = client_as(Role.SUPERVISOR), client_as(Role.OPERATOR)
    assert [supervisor.get(path).status_code for path in reads] == [200, 200, 200]
    assert [operator.get(path).status_code for path in reads] == [403, 403, 403]
    for who in (supervisor, operator):
        assert [who.request(m, path, json=body).status_code for m, path, body in writes] == [403, 403, 403]


@pytest.mark.usefixtures("center_queues")
def test_another_tenants_flow_is_not_found(client: TestClient, client_as: ClientAs) -> None:
    """B's flow ids answer 404 to A on every route and the page, like ids that do not exist."""
    fid = create(client, name="secret-desk")["id"]
    other = client_as(Role.ADMIN, "client-b")
    calls = [
        ("GET", f"/api/v1/ivr/flows/{fid}", None),
        ("PUT", f"/api/v1/ivr/flows/{fid}", {"definition": MINIMAL_EXAMPLE}),
        ("GET", f"/api/v1/ivr/flows/{fid}/versions", None),
        ("GET", f"/api/v1/ivr/flows/{fid}/versions/1", None),
        ("POST", f"/api/v1/ivr/flows/{fid}/versions/1/restore", None),
        ("GET", f"/ivr/{fid}", None),
    ]
    for method, path, body in calls:
        r = other.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
        assert "secret-desk" not in r.text and "テレビショッピング" not in r.text
    assert other.get("/api/v1/ivr/flows").json() == []
    assert client.get(f"/api/v1/ivr/flows/{fid}").json()["current_version"] == 1  # nothing was saved


# --- the page --------------------------------------------------------------------------------------------


def web_login(client: TestClient, username: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post(
        "/login",
        data={"username": username, "password": TEST_PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303


def page_token(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found
    return found.group(1)


def textarea(text: str) -> str:
    found = re.search(r'<textarea id="flow-json"[^>]*>(.*?)</textarea>', text, flags=re.S)
    assert found
    return html.unescape(found.group(1))


@pytest.fixture
def admin_page(app_client: TestClient, make_user: MakeUser, center_queues: None) -> TestClient:
    web_login(app_client, make_user(Role.ADMIN).username)
    return app_client


def test_the_page_shows_every_problem_and_keeps_the_text(admin_page: TestClient) -> None:
    created = admin_page.post(
        "/ivr",
        data={
            "name": "main",
            "definition": json.dumps(ORDER_DESK_EXAMPLE),
            "comment": "初版",
            "csrf_token": page_token(admin_page.get("/ivr").text),
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    location = created.headers["location"]
    fid = int(re.search(r"/ivr/(\d+)", location).group(1))  # type: ignore[union-attr]
    page = admin_page.get(location)
    assert page.status_code == 200 and "保存しました" in page.text and "録音告知" in page.text
    assert json.loads(textarea(page.text)) == ORDER_DESK_EXAMPLE

    typed = copy.deepcopy(ORDER_DESK_EXAMPLE)
    typed["nodes"]["main_menu"]["options"]["3"] = "gone"
    typed["nodes"]["to_orders"]["queue"] = "sales"
    typed["nodes"]["closed_message"]["prompt"] = "</textarea><b>本日は終了</b>"  # escaped, and kept as typed
    typed_text = json.dumps(typed, ensure_ascii=False, indent=1) + "\n  "
    r = admin_page.post(
        f"/ivr/{fid}",
        data={
            "definition": typed_text,
            "comment": "メニュー変更",
            "base_version": "1",
            "csrf_token": page_token(page.text),
        },
    )
    assert r.status_code == 422
    assert "保存できませんでした" in r.text
    assert "nodes.main_menu.options.3" in r.text and "nodes.to_orders.queue" in r.text
    assert textarea(r.text) == typed_text
    assert 'value="メニュー変更"' in r.text

    syntax = '{"start": "welcome", "nodes": {'
    r = admin_page.post(f"/ivr/{fid}", data={"definition": syntax, "csrf_token": page_token(page.text)})
    assert r.status_code == 422 and "not valid JSON" in r.text and textarea(r.text) == syntax

    r = admin_page.post(
        f"/ivr/{fid}",
        data={"definition": json.dumps(MINIMAL_EXAMPLE), "base_version": "1", "csrf_token": page_token(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/ivr/{fid}?saved=2"
    old = admin_page.get(f"/ivr/{fid}?version=1&lang=en")
    assert "Showing an older version" in old.text and "Recording notice" in old.text


def test_the_page_refuses_a_stale_edit_and_a_missing_token(admin_page: TestClient) -> None:
    token = page_token(admin_page.get("/ivr").text)
    data = {"name": "main", "definition": json.dumps(MINIMAL_EXAMPLE), "csrf_token": token}
    fid = int(
        admin_page.post("/ivr", data=data, follow_redirects=False).headers["location"].split("/")[2].split("?")[0]
    )
    first = {"definition": json.dumps(MINIMAL_EXAMPLE), "base_version": "1", "csrf_token": token}
    assert admin_page.post(f"/ivr/{fid}", data=first, follow_redirects=False).status_code == 303
    mine = json.dumps(MINIMAL_EXAMPLE) + " "
    stale = admin_page.post(f"/ivr/{fid}", data={**first, "definition": mine})
    assert stale.status_code == 409 and "version 2 was saved after version 1" in stale.text
    assert textarea(stale.text) == mine
    assert 'name="base_version" value="2"' in stale.text  # saving again now is a deliberate choice
    forged = admin_page.post(f"/ivr/{fid}", data={"definition": mine, "csrf_token": "forged"})
    assert forged.status_code == 403 and textarea(forged.text) == mine
    duplicate = admin_page.post("/ivr", data=data)
    assert duplicate.status_code == 409 and "(already taken)" in duplicate.text


def test_supervisors_see_the_page_without_the_form(
    app_client: TestClient, make_user: MakeUser, client: TestClient, center_queues: None
) -> None:
    fid = create(client)["id"]
    web_login(app_client, make_user(Role.SUPERVISOR).username)
    page = app_client.get(f"/ivr/{fid}")
    assert page.status_code == 200 and "readonly" in page.text and 'action="/ivr/' not in page.text
    assert app_client.get("/ivr").status_code == 200
    assert app_client.post(f"/ivr/{fid}", data={"definition": "{}"}).status_code == 403


def test_operators_do_not_get_the_page(app_client: TestClient, make_user: MakeUser) -> None:
    web_login(app_client, make_user(Role.OPERATOR).username)
    assert app_client.get("/ivr").status_code == 403
