"""Per-second billing (秒課金): the rating rule, rate plans per tenant, the quote API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.billing import service
from kakehashi.billing.rating import (
    KINDS,
    PlanTerms,
    Rounding,
    billable_kind,
    billed_seconds,
    destination_kind,
    rate_call,
)
from kakehashi.billing.schemas import PlanCreate, QuoteIn
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed


def terms(
    *, minimum: int = 0, increment: int = 1, rounding: str = "down", decimals: int = 2, **rates: str
) -> PlanTerms:
    """Plan terms; ``rates`` as ``outbound_mobile="0.35"``."""
    parsed = {tuple(k.split("_", 1)): Decimal(v) for k, v in rates.items()}
    return PlanTerms(minimum, increment, Rounding(rounding), decimals, parsed)  # type: ignore[arg-type]


# --- the rule, worked examples in yen ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "plan", "billed", "amount"),
    [
        # mobile 0.35 yen/s, 30-s increments, at least 30 s, rounded up to whole yen
        (61, terms(minimum=30, increment=30, rounding="up", decimals=0, outbound_mobile="0.35"), 90, "32"),
        (1, terms(minimum=30, increment=30, rounding="up", decimals=0, outbound_mobile="0.35"), 30, "11"),
        (60, terms(minimum=30, increment=30, rounding="up", decimals=0, outbound_mobile="0.35"), 60, "21"),
        # true per-second, no minimum, to the sen: 61 s × 0.35 = 21.35
        (61, terms(outbound_mobile="0.35"), 61, "21.35"),
        # 6-s increments: 61 s → 66 s × 0.05 = 3.30
        (61, terms(increment=6, outbound_mobile="0.05"), 66, "3.30"),
        # minimum 60 s beats 6-s increments for a short call: 10 s → 60 s
        (10, terms(minimum=60, increment=6, outbound_mobile="0.05"), 60, "3.00"),
        # half_up vs down on x.5 yen: 45 s × 0.1 = 4.5
        (45, terms(rounding="half_up", decimals=0, outbound_mobile="0.1"), 45, "5"),
        (45, terms(rounding="down", decimals=0, outbound_mobile="0.1"), 45, "4"),
        # six-decimal rate, one hour: 3600 × 0.333333 = 1199.9988 → 1200.00 half up
        (3600, terms(rounding="half_up", outbound_mobile="0.333333"), 3600, "1200.00"),
    ],
)
def test_worked_examples(seconds: int, plan: PlanTerms, billed: int, amount: str) -> None:
    charge = rate_call(seconds=seconds, plan=plan, direction="outbound", kind="mobile")
    assert (charge.billed_seconds, charge.amount) == (billed, Decimal(amount))
    assert str(charge.amount) == amount  # the plan's decimals are kept: "3.30", not "3.3"
    assert f"{billed} s" in charge.rule


def test_given_an_unanswered_or_zero_second_call_then_it_costs_nothing() -> None:
    plan = terms(minimum=60, outbound_mobile="0.35")
    assert rate_call(seconds=30, plan=plan, direction="outbound", kind="mobile", answered=False).amount == 0
    zero = rate_call(seconds=0, plan=plan, direction="outbound", kind="mobile")
    assert (zero.billed_seconds, zero.amount, str(zero.amount)) == (0, 0, "0.00")


def test_given_no_rate_for_the_kind_then_the_other_rate_applies_or_nothing_is_billed() -> None:
    plan = terms(outbound_other="0.30")
    assert rate_call(seconds=10, plan=plan, direction="outbound", kind="ip").amount == Decimal("3.00")
    unrated = rate_call(seconds=10, plan=plan, direction="inbound", kind="mobile")
    assert unrated.amount == 0 and "no inbound rate" in unrated.rule


def test_negative_durations_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        rate_call(seconds=-1, plan=terms(outbound_fixed="1"), direction="outbound", kind="fixed")


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("03-1234-5678", "fixed"),
        ("090-1234-5678", "mobile"),
        ("0120-123-456", "free_dial"),
        ("0800-123-4567", "free_dial"),
        ("050-1234-5678", "ip"),
        ("0570-012-345", "navi_dial"),
        ("+81312345678", "fixed"),
        ("+1 212 555 0100", "international"),
        ("0990-123-456", "other"),  # premium rate
        ("非通知", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_destination_kind(number: str | None, kind: str) -> None:
    assert destination_kind(number) == kind


def test_who_pays_outbound_by_the_dialled_line_inbound_only_on_toll_free_by_the_callers_line() -> None:
    assert billable_kind("outbound", caller="0120-123-456", dialled="090-1234-5678") == "mobile"
    assert billable_kind("inbound", caller="090-1234-5678", dialled="0120-123-456") == "mobile"
    assert billable_kind("inbound", caller="03-1234-5678", dialled="0800-123-4567") == "fixed"
    assert billable_kind("inbound", caller="090-1234-5678", dialled="03-5555-0000") is None  # the caller pays
    assert billable_kind("inbound", caller="090-1234-5678", dialled="0570-012-345") is None
    plan = terms(inbound_mobile="0.3")
    free = rate_call(seconds=10, plan=plan, direction="inbound", kind=None)
    assert free.amount == 0 and "caller pays" in free.rule


# --- properties -------------------------------------------------------------------------------------------

rules = st.builds(
    lambda minimum, increment, rounding, decimals, rate: terms(
        minimum=minimum, increment=increment, rounding=rounding, decimals=decimals, outbound_fixed=str(rate)
    ),
    st.integers(0, 3600),
    st.sampled_from([1, 6, 30, 60, 3600]) | st.integers(1, 3600),
    st.sampled_from(["up", "half_up", "down"]),
    st.sampled_from([0, 2]),
    st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False),
)
durations = st.integers(1, 200_000)


def charge_for(seconds: int, plan: PlanTerms) -> Any:
    return rate_call(seconds=seconds, plan=plan, direction="outbound", kind="fixed")


@given(plan=rules, a=durations, b=durations)
def test_a_longer_call_never_costs_less(plan: PlanTerms, a: int, b: int) -> None:
    short, long = sorted((a, b))
    assert charge_for(short, plan).billed_seconds <= charge_for(long, plan).billed_seconds
    assert charge_for(short, plan).amount <= charge_for(long, plan).amount


@given(plan=rules, seconds=durations)
def test_billed_time_covers_the_call_the_minimum_and_the_increment(plan: PlanTerms, seconds: int) -> None:
    billed = charge_for(seconds, plan).billed_seconds
    assert billed >= seconds and billed >= plan.min_billable_seconds
    if billed > plan.min_billable_seconds:
        # above the minimum: whole increments, less than one increment more than the call
        assert billed % plan.increment_seconds == 0
        assert billed - seconds < plan.increment_seconds


@given(plan=rules, seconds=durations)
def test_rounding_stays_within_one_unit_and_goes_the_plans_way(plan: PlanTerms, seconds: int) -> None:
    charge = charge_for(seconds, plan)
    exact = charge.billed_seconds * charge.rate
    unit = Decimal(1).scaleb(-plan.yen_decimals)
    assert abs(charge.amount - exact) < unit
    assert -charge.amount.as_tuple().exponent == plan.yen_decimals  # type: ignore[operator]
    if plan.rounding is Rounding.up:
        assert charge.amount >= exact
    elif plan.rounding is Rounding.down:
        assert charge.amount <= exact
    else:
        assert abs(charge.amount - exact) <= unit / 2


@given(seconds=st.integers(1, 10_000), minimum=st.integers(0, 3600), increment=st.integers(1, 3600))
def test_billed_seconds_is_the_smallest_allowed_value(seconds: int, minimum: int, increment: int) -> None:
    billed = billed_seconds(seconds, min_billable=minimum, increment=increment)
    assert billed == max(minimum, next(n for n in range(0, seconds + increment + 1, increment) if n >= seconds))


# --- plans in the database --------------------------------------------------------------------------------


def plan_data(**overrides: Any) -> PlanCreate:
    data: dict[str, Any] = {
        "name": "2027年度",
        "effective_from": date(2027, 4, 1),
        "min_billable_seconds": 30,
        "increment_seconds": 6,
        "rounding": "up",
        "yen_decimals": 0,
        "rates": [
            {"direction": "outbound", "kind": "mobile", "yen_per_second": "0.35"},
            {"direction": "outbound", "kind": "fixed", "yen_per_second": "0.05"},
            {"direction": "inbound", "kind": "mobile", "yen_per_second": "0.3"},
        ],
    }
    return PlanCreate.model_validate({**data, **overrides})


def test_a_plan_is_stored_with_its_rates_and_audited(session: Session, actor: Actor) -> None:
    plan = service.create_plan(session, actor, plan_data())
    session.expire_all()
    stored = service.get_plan(session, actor, plan.id)
    assert {(r.direction, r.kind): r.yen_per_second for r in stored.rates} == {
        ("outbound", "mobile"): Decimal("0.35"),
        ("outbound", "fixed"): Decimal("0.05"),
        ("inbound", "mobile"): Decimal("0.3"),
    }
    row = session.scalars(select(AuditEvent).where(AuditEvent.resource == "rate_plan")).one()
    assert (row.action, row.resource_id, row.tenant_id) == ("create", plan.id, actor.tenant_id)


def test_six_decimal_rates_survive_the_round_trip_exactly(session: Session, actor: Actor) -> None:
    rates = [{"direction": "outbound", "kind": "fixed", "yen_per_second": "123456.123456"}]
    plan = service.create_plan(session, actor, plan_data(rates=rates))
    session.expire_all()
    assert service.get_plan(session, actor, plan.id).rates[0].yen_per_second == Decimal("123456.123456")


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"name": "  "}, {"name"}),
        ({"name": "長" * 101}, {"name"}),
        ({"min_billable_seconds": -1}, {"min_billable_seconds"}),
        ({"min_billable_seconds": 3601}, {"min_billable_seconds"}),
        ({"increment_seconds": 0}, {"increment_seconds"}),
        ({"increment_seconds": 3601}, {"increment_seconds"}),
        ({"rounding": "banker"}, {"rounding"}),
        ({"yen_decimals": 1}, {"yen_decimals"}),
        ({"rates": []}, {"rates"}),
        ({"rates": [{"direction": "sideways", "kind": "mobile", "yen_per_second": "1"}]}, {"rates.0.direction"}),
        ({"rates": [{"direction": "outbound", "kind": "satellite", "yen_per_second": "1"}]}, {"rates.0.kind"}),
        (
            {"rates": [{"direction": "outbound", "kind": "fixed", "yen_per_second": "-0.01"}]},
            {"rates.0.yen_per_second"},
        ),
        (
            {"rates": [{"direction": "outbound", "kind": "fixed", "yen_per_second": "0.1234567"}]},
            {"rates.0.yen_per_second"},
        ),
        (
            {"rates": [{"direction": "outbound", "kind": "fixed", "yen_per_second": "1000000"}]},
            {"rates.0.yen_per_second"},
        ),
        (
            {
                "rates": [
                    {"direction": "outbound", "kind": "fixed", "yen_per_second": "1"},
                    {"direction": "outbound", "kind": "fixed", "yen_per_second": "2"},
                ]
            },
            {"rates.1"},
        ),
        (
            {"increment_seconds": 0, "rounding": "x", "yen_decimals": 3},
            {"increment_seconds", "rounding", "yen_decimals"},
        ),
    ],
)
def test_each_invalid_field_is_named(
    session: Session, actor: Actor, overrides: dict[str, Any], fields: set[str]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.create_plan(session, actor, plan_data(**overrides))
    assert {e["field"] for e in caught.value.errors} == fields


def test_trailing_zeros_beyond_six_places_are_still_six_decimals(session: Session, actor: Actor) -> None:
    rates = [{"direction": "outbound", "kind": "fixed", "yen_per_second": "0.350000000"}]
    assert service.create_plan(session, actor, plan_data(rates=rates)).rates[0].yen_per_second == Decimal("0.35")


def test_the_same_name_and_start_twice_is_a_conflict(session: Session, actor: Actor) -> None:
    service.create_plan(session, actor, plan_data())
    with pytest.raises(Conflict):
        service.create_plan(session, actor, plan_data())
    service.create_plan(session, actor, plan_data(effective_from=date(2027, 10, 1)))  # a later version is fine


def test_plan_for_picks_the_latest_active_plan_started_on_or_before_the_date(session: Session, actor: Actor) -> None:
    april = service.create_plan(session, actor, plan_data(name="春", effective_from=date(2027, 4, 1)))
    october = service.create_plan(session, actor, plan_data(name="秋", effective_from=date(2027, 10, 1)))
    service.create_plan(session, actor, plan_data(name="停止中", effective_from=date(2027, 12, 1), active=False))
    assert service.plan_for(session, actor, date(2027, 3, 31)) is None
    assert service.plan_for(session, actor, date(2027, 4, 1)).plan_id == april.id  # type: ignore[union-attr]
    assert service.plan_for(session, actor, date(2027, 9, 30)).plan_id == april.id  # type: ignore[union-attr]
    assert service.plan_for(session, actor, date(2027, 10, 1)).plan_id == october.id  # type: ignore[union-attr]
    assert service.plan_for(session, actor, date(2028, 1, 1)).plan_id == october.id  # type: ignore[union-attr]


def test_plans_are_per_tenant(session: Session, actor: Actor, other_actor: Actor) -> None:
    mine = service.create_plan(session, actor, plan_data())
    assert service.plan_for(session, other_actor, date(2027, 5, 1)) is None
    assert service.list_plans(session, other_actor) == []
    with pytest.raises(NotFound):
        service.get_plan(session, other_actor, mine.id)
    service.create_plan(session, other_actor, plan_data())  # the same name and date in another tenant is fine


def test_rate_uses_the_plan_in_effect_on_the_calls_date(session: Session, actor: Actor) -> None:
    service.create_plan(session, actor, plan_data(name="春", effective_from=date(2027, 4, 1)))
    service.create_plan(
        session,
        actor,
        plan_data(
            name="秋",
            effective_from=date(2027, 10, 1),
            min_billable_seconds=0,
            increment_seconds=1,
            rates=[{"direction": "outbound", "kind": "mobile", "yen_per_second": "0.2"}],
        ),
    )
    spring = service.rate(session, actor, seconds=61, direction="outbound", kind="mobile", on=date(2027, 9, 30))
    autumn = service.rate(session, actor, seconds=61, direction="outbound", kind="mobile", on=date(2027, 10, 1))
    assert (spring.billed_seconds, spring.amount, spring.plan_name) == (66, Decimal("24"), "春")  # 66 × 0.35 = 23.1 ↑
    assert (autumn.billed_seconds, autumn.amount, autumn.plan_name) == (61, Decimal("13"), "秋")  # 12.2 ↑
    before = service.rate(session, actor, seconds=61, direction="outbound", kind="mobile", on=date(2027, 1, 1))
    assert before.amount == 0 and before.plan_id is None  # plans exist, none in effect yet: nothing to bill with


def test_a_tenant_without_plans_gets_the_default_plan_when_a_call_is_rated(session: Session, actor: Actor) -> None:
    charge = service.rate(session, actor, seconds=100, direction="outbound", kind="mobile", on=date(2026, 11, 23))
    assert charge.plan_name == service.DEFAULT_PLAN_NAME and charge.plan_id is not None
    assert charge.amount == Decimal(service.DEFAULT_RATES[("outbound", "mobile")]) * 100
    assert service.ensure_default_plan(session, actor) is None  # once only
    assert len(service.list_plans(session, actor)) == 1


def test_the_default_plan_passes_its_own_validation() -> None:
    data = PlanCreate(
        name=service.DEFAULT_PLAN_NAME,
        rates=[{"direction": d, "kind": k, "yen_per_second": v} for (d, k), v in service.DEFAULT_RATES.items()],
    )
    assert service.check_plan(data) == []
    assert {k for _, k in service.DEFAULT_RATES} <= set(KINDS)


def test_quote_validation_names_each_field(session: Session, actor: Actor) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.quote(session, actor, QuoteIn(number=" ", seconds=-5, direction="up"))
    assert {e["field"] for e in caught.value.errors} == {"number", "seconds", "direction"}


# --- over HTTP --------------------------------------------------------------------------------------------


def plan_json(**overrides: Any) -> dict[str, Any]:
    return plan_data(**overrides).model_dump(mode="json")


def test_an_admin_creates_and_reads_plans(client: TestClient) -> None:
    r = client.post("/api/v1/billing/plans", json=plan_json())
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["rates"][0] == {"direction": "outbound", "kind": "mobile", "yen_per_second": "0.35"}
    assert client.get(f"/api/v1/billing/plans/{plan['id']}").json() == plan
    assert [p["id"] for p in client.get("/api/v1/billing/plans").json()] == [plan["id"]]
    assert client.post("/api/v1/billing/plans", json=plan_json()).status_code == 409


def test_invalid_plans_are_problem_details_naming_each_field(client: TestClient) -> None:
    r = client.post("/api/v1/billing/plans", json=plan_json(increment_seconds=0, rounding="sideways"))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in r.json()["errors"]} == {"increment_seconds", "rounding"}


def test_another_tenants_plan_is_not_found(client: TestClient, client_as: ClientAs) -> None:
    plan_id = client.post("/api/v1/billing/plans", json=plan_json()).json()["id"]
    other = client_as(Role.ADMIN, "client-b")
    r = other.get(f"/api/v1/billing/plans/{plan_id}")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert other.get("/api/v1/billing/plans").json() == []
    assert client.get(f"/api/v1/billing/plans/{plan_id + 1000}").status_code == 404


@pytest.mark.parametrize(
    ("role", "list_status", "create_status", "quote_status"),
    [
        (Role.OPERATOR, 403, 403, 200),
        (Role.SUPERVISOR, 200, 403, 200),
        (Role.ADMIN, 200, 201, 200),
        (Role.CLIENT_VIEWER, 403, 403, 403),
    ],
)
def test_who_may_do_what(
    client_as: ClientAs, role: Role, list_status: int, create_status: int, quote_status: int
) -> None:
    c = client_as(role)
    assert c.get("/api/v1/billing/plans").status_code == list_status
    assert c.post("/api/v1/billing/plans", json=plan_json()).status_code == create_status
    body = {"number": "090-1234-5678", "seconds": 61}
    assert c.post("/api/v1/billing/quote", json=body).status_code == quote_status


def test_quote_rates_a_number_with_todays_plan(client: TestClient, client_as: ClientAs) -> None:
    today = business_today()
    client.post("/api/v1/billing/plans", json=plan_json(effective_from=str(today - timedelta(days=1))))
    client.post("/api/v1/billing/plans", json=plan_json(name="来月", effective_from=str(today + timedelta(days=30))))
    operator = client_as(Role.OPERATOR)
    r = operator.post("/api/v1/billing/quote", json={"number": "090-1234-5678", "seconds": 61})
    assert r.status_code == 200, r.text
    quote = r.json()
    # 61 s → 66 s (6-s increments) × 0.35 = 23.1 → 24 yen (rounded up)
    assert quote | {"rule": None, "plan_id": None} == {
        "seconds": 61,
        "billed_seconds": 66,
        "direction": "outbound",
        "kind": "mobile",
        "rate": "0.35",
        "amount": "24",
        "currency": "JPY",
        "rule": None,
        "plan_id": None,
        "plan_name": "2027年度",
    }
    inbound = operator.post(
        "/api/v1/billing/quote", json={"number": "09012345678", "seconds": 10, "direction": "inbound"}
    )
    assert inbound.json()["amount"] == "9"  # minimum 30 s × 0.3 yen, from a mobile to our toll-free line
    bad = operator.post("/api/v1/billing/quote", json={"number": "x", "seconds": 86_401, "direction": "out"})
    assert {e["field"] for e in bad.json()["errors"]} == {"seconds", "direction"}


def test_quote_without_any_plan_shows_the_default_plan_and_writes_nothing(client: TestClient) -> None:
    r = client.post("/api/v1/billing/quote", json={"number": "03-1234-5678", "seconds": 100})
    assert r.status_code == 200
    assert (r.json()["amount"], r.json()["plan_id"], r.json()["kind"]) == ("5.00", None, "fixed")
    assert client.get("/api/v1/billing/plans").json() == []
