"""Rate plans per tenant and the entry points that rate a call against the plan in effect.

Plans are effective-dated and never edited in place: a new tariff is a new plan with a later
``effective_from``, so a call is always rated with the terms that were in force on its date.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.billing.models import Rate, RatePlan
from kakehashi.billing.rating import (
    KINDS,
    MAX_RATE,
    RATE_PLACES,
    YEN_DECIMALS,
    Charge,
    Direction,
    PlanTerms,
    Rounding,
    destination_kind,
    rate_call,
)
from kakehashi.billing.repository import RatePlanRepository
from kakehashi.billing.schemas import PlanCreate, QuoteIn, RateIn
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed, field_error

MAX_RULE_SECONDS = 3600
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)
#: A quote for more than a day is a typo, not a call.
MAX_QUOTE_SECONDS = 86_400
DEFAULT_PLAN_NAME = "標準（例）"
#: Covers every call ever made, so a tenant's first plan rates its old calls too.
DEFAULT_EFFECTIVE_FROM = date(2000, 1, 1)
#: Example per-second prices in yen, in the range of Japanese business tariffs in 2026 — not any carrier's
#: tariff: set your contract's figures in a plan of your own. Inbound rows are what the center pays for a
#: call to its toll-free number, by the caller's line (rating.py explains the rule).
DEFAULT_RATES: dict[tuple[str, str], str] = {
    ("outbound", "fixed"): "0.050",  # ≈ 9 yen / 3 min
    ("outbound", "ip"): "0.050",
    ("outbound", "mobile"): "0.280",  # ≈ 16.8 yen / min
    ("outbound", "free_dial"): "0",  # the called party pays
    ("outbound", "navi_dial"): "0.200",
    ("outbound", "international"): "0.500",
    ("outbound", "other"): "0.300",
    ("inbound", "fixed"): "0.100",
    ("inbound", "ip"): "0.100",
    ("inbound", "mobile"): "0.300",
    ("inbound", "other"): "0.300",
}
DEFAULT_TERMS = PlanTerms(
    min_billable_seconds=0,
    increment_seconds=1,
    rounding=Rounding.down,
    yen_decimals=2,
    rates={key: Decimal(value) for key, value in DEFAULT_RATES.items()},
    name=DEFAULT_PLAN_NAME,
)


def _check_int(errors: list[dict[str, Any]], field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        errors.append(field_error(field, f"must be between {low} and {high}"))


def _rate_errors(index: int, item: RateIn, seen: set[tuple[str, str]]) -> list[dict[str, Any]]:
    at = f"rates.{index}"
    errors = []
    if item.direction not in Direction.__members__:
        errors.append(field_error(f"{at}.direction", "must be outbound or inbound"))
    if item.kind not in KINDS:
        errors.append(field_error(f"{at}.kind", f"must be one of {', '.join(KINDS)}"))
    value = item.yen_per_second
    if not value.is_finite() or value < 0:
        errors.append(field_error(f"{at}.yen_per_second", "must be a number of yen, 0 or more"))
    elif value > MAX_RATE:
        errors.append(field_error(f"{at}.yen_per_second", f"must be at most {MAX_RATE}"))
    elif value.quantize(_RATE_QUANTUM) != value:
        errors.append(field_error(f"{at}.yen_per_second", f"at most {RATE_PLACES} decimal places"))
    if (item.direction, item.kind) in seen:
        errors.append(field_error(at, f"{item.direction} {item.kind} is given twice"))
    seen.add((item.direction, item.kind))
    return errors


def check_plan(data: PlanCreate) -> list[dict[str, Any]]:
    """Every problem of a new plan, one entry per field."""
    errors: list[dict[str, Any]] = []
    if not data.name.strip():
        errors.append(field_error("name", "must not be empty"))
    elif len(data.name.strip()) > 100:
        errors.append(field_error("name", "at most 100 characters"))
    _check_int(errors, "min_billable_seconds", data.min_billable_seconds, 0, MAX_RULE_SECONDS)
    _check_int(errors, "increment_seconds", data.increment_seconds, 1, MAX_RULE_SECONDS)
    if data.rounding not in Rounding.__members__:
        errors.append(field_error("rounding", "must be up, half_up or down"))
    if data.yen_decimals not in YEN_DECIMALS:
        errors.append(field_error("yen_decimals", "must be 0 (whole yen) or 2 (sen)"))
    if not data.rates:
        errors.append(field_error("rates", "give at least one rate"))
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(data.rates):
        errors.extend(_rate_errors(index, item, seen))
    return errors


def create_plan(session: Session, actor: Actor, data: PlanCreate) -> RatePlan:
    """Validate and store a plan with its rates (audited)."""
    errors = check_plan(data)
    if errors:
        raise ValidationFailed(f"{len(errors)} field(s) are invalid", errors=errors)
    repo = RatePlanRepository(session, actor.tenant_id)
    name = data.name.strip()
    effective_from = data.effective_from or business_today()
    if repo.exists(name, effective_from):
        raise Conflict(f"a plan named '{name}' already starts on {effective_from}")
    plan = RatePlan(
        name=name,
        effective_from=effective_from,
        min_billable_seconds=data.min_billable_seconds,
        increment_seconds=data.increment_seconds,
        rounding=data.rounding,
        yen_decimals=data.yen_decimals,
        active=data.active,
        rates=[Rate(direction=r.direction, kind=r.kind, yen_per_second=r.yen_per_second) for r in data.rates],
    )
    repo.add(plan)
    audit.record(
        session,
        actor,
        "create",
        resource="rate_plan",
        resource_id=plan.id,
        detail={"effective_from": effective_from.isoformat(), "rates": len(plan.rates)},
    )
    return plan


def list_plans(session: Session, actor: Actor) -> list[RatePlan]:
    return RatePlanRepository(session, actor.tenant_id).list()


def get_plan(session: Session, actor: Actor, plan_id: int) -> RatePlan:
    """The tenant's plan; another tenant's id is 404 like an id that does not exist."""
    plan = RatePlanRepository(session, actor.tenant_id).get(plan_id)
    if plan is None:
        raise NotFound(f"rate plan {plan_id} not found")
    return plan


def terms_of(plan: RatePlan) -> PlanTerms:
    return PlanTerms(
        min_billable_seconds=plan.min_billable_seconds,
        increment_seconds=plan.increment_seconds,
        rounding=Rounding(plan.rounding),
        yen_decimals=plan.yen_decimals,
        rates={(r.direction, r.kind): r.yen_per_second for r in plan.rates},
        plan_id=plan.id,
        name=plan.name,
    )


def plan_for(session: Session, actor: Actor, on: date) -> PlanTerms | None:
    """The terms of the active plan in effect on ``on`` (latest ``effective_from`` ≤ ``on``), or None."""
    plan = RatePlanRepository(session, actor.tenant_id).in_effect(on)
    return terms_of(plan) if plan is not None else None


def ensure_default_plan(session: Session, actor: Actor) -> RatePlan | None:
    """Give a tenant without any plan the example plan (:data:`DEFAULT_RATES`); None when it has plans."""
    if RatePlanRepository(session, actor.tenant_id).any():
        return None
    data = PlanCreate(
        name=DEFAULT_PLAN_NAME,
        effective_from=DEFAULT_EFFECTIVE_FROM,
        min_billable_seconds=DEFAULT_TERMS.min_billable_seconds,
        increment_seconds=DEFAULT_TERMS.increment_seconds,
        rounding=DEFAULT_TERMS.rounding.value,
        yen_decimals=DEFAULT_TERMS.yen_decimals,
        rates=[RateIn(direction=d, kind=k, yen_per_second=Decimal(v)) for (d, k), v in DEFAULT_RATES.items()],
    )
    return create_plan(session, actor, data)


def rate(
    session: Session, actor: Actor, *, seconds: int, direction: str, kind: str | None, on: date, answered: bool = True
) -> Charge:
    """Rate one call with the plan in effect on its (Asia/Tokyo) date — the CDR code's entry point.

    ``kind``: from :func:`billing.rating.billable_kind` (None: the center does not pay). A tenant without any
    plan gets the default plan first (audited), so every CDR is rated and the plan used is on record.
    """
    terms = plan_for(session, actor, on)
    if terms is None and ensure_default_plan(session, actor) is not None:
        terms = plan_for(session, actor, on)
    # Plans exist but none is in effect on that date (all start later or are inactive): nothing to bill with.
    return rate_call(seconds=seconds, plan=terms or _NO_PLAN, direction=direction, kind=kind, answered=answered)


_NO_PLAN = PlanTerms(0, 1, Rounding.down, 2, {}, name="no plan in effect")


def quote(session: Session, actor: Actor, data: QuoteIn) -> Charge:
    """What a call to (outbound) or from (inbound, to our toll-free line) ``number`` costs today.

    Read-only: a tenant without plans is quoted the default plan's terms, which :func:`rate` would create.
    """
    errors = []
    if data.direction not in Direction.__members__:
        errors.append(field_error("direction", "must be outbound or inbound"))
    if not 0 <= data.seconds <= MAX_QUOTE_SECONDS:
        errors.append(field_error("seconds", f"must be between 0 and {MAX_QUOTE_SECONDS}"))
    if not data.number.strip():
        errors.append(field_error("number", "must not be empty"))
    if errors:
        raise ValidationFailed(f"{len(errors)} field(s) are invalid", errors=errors)
    today = business_today()
    terms = plan_for(session, actor, today)
    if terms is None:
        terms = _NO_PLAN if RatePlanRepository(session, actor.tenant_id).any() else DEFAULT_TERMS
    kind = destination_kind(data.number)
    return rate_call(seconds=data.seconds, plan=terms, direction=data.direction, kind=kind)
