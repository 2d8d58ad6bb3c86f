"""Rating a call (秒課金): pure functions, no database — the CDR code and the quote API call them.

The rule, in order:

1. A call that was not answered, or lasted 0 s, costs nothing.
2. Billed seconds = the duration rounded *up* to a multiple of ``increment_seconds``, but never less than
   ``min_billable_seconds`` (``max(minimum, ceil(seconds / increment) × increment)``).
3. Amount = billed seconds × yen per second, computed exactly in ``Decimal``, then rounded once per call
   (``up`` / ``half_up`` / ``down``) to ``yen_decimals`` places (0 = whole yen, 2 = sen).

Which line decides the rate (:func:`billable_kind`):

- **outbound** (発信): the center pays; the rate is that of the *dialled* number's kind (fixed, mobile, IP 050 …).
- **inbound** (着信): normally the caller pays and the center is billed nothing. Only a call to the center's
  toll-free number (フリーダイヤル 0120/0800) is paid by the center (着信課金), and carriers price it by the
  *caller's* line: from a mobile costs more than from a fixed line. So inbound is rated by the caller's kind,
  and only when the dialled number is ``free_dial``.

A plan without a rate for the kind uses its ``other`` rate of that direction; without that either, the call
is rated 0 and the rule text says so (the CDR must still be written; the plan is what needs fixing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Context, Decimal
from enum import StrEnum

from kakehashi.kit.phone import InvalidPhone, parse_phone


class Direction(StrEnum):
    outbound = "outbound"
    inbound = "inbound"


class Rounding(StrEnum):
    up = "up"
    half_up = "half_up"
    down = "down"


#: Kinds of line a rate can be set for; ``kit.phone`` kinds outside this list are rated as ``other``.
KINDS = ("fixed", "mobile", "free_dial", "ip", "navi_dial", "international", "other")
YEN_DECIMALS = (0, 2)
#: Rates are stored as NUMERIC(12, 6).
RATE_PLACES = 6
MAX_RATE = Decimal("999999.999999")

_ROUNDING = {Rounding.up: ROUND_UP, Rounding.half_up: ROUND_HALF_UP, Rounding.down: ROUND_DOWN}
# Enough digits that seconds × rate is always exact before the one rounding step.
_EXACT = Context(prec=60)
_HOME = "+81"


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """What rating needs from a plan: the rule and the rates by ``(direction, kind)``."""

    min_billable_seconds: int
    increment_seconds: int
    rounding: Rounding
    yen_decimals: int
    rates: Mapping[tuple[str, str], Decimal] = field(hash=False)
    plan_id: int | None = None
    name: str = ""

    def rate_for(self, direction: str, kind: str) -> Decimal | None:
        """The plan's rate for the kind, falling back to the direction's ``other`` rate."""
        found = self.rates.get((direction, kind))
        return found if found is not None else self.rates.get((direction, "other"))


@dataclass(frozen=True, slots=True)
class Charge:
    """The cost of one call. ``amount`` is in yen, already rounded per the plan."""

    seconds: int
    billed_seconds: int
    direction: str
    kind: str
    rate: Decimal
    amount: Decimal
    rule: str
    plan_id: int | None = None
    plan_name: str = ""


def destination_kind(number: str | None) -> str:
    """The rating kind of a number (any written form or E.164): fixed, mobile, free_dial, ip, navi_dial,
    international (a country other than Japan) or other (unknown, withheld, premium, pager …)."""
    if not number:
        return "other"
    try:
        phone = parse_phone(number)
    except InvalidPhone:
        return "other"
    if not phone.e164.startswith(_HOME):
        return "international"
    return phone.kind if phone.kind in KINDS else "other"


def billable_kind(direction: str, *, caller: str | None, dialled: str | None) -> str | None:
    """The kind whose rate applies to a call, or None when the center does not pay for it (module doc)."""
    if direction == Direction.outbound:
        return destination_kind(dialled)
    if destination_kind(dialled) == "free_dial":
        return destination_kind(caller)
    return None


def billed_seconds(seconds: int, *, min_billable: int, increment: int) -> int:
    """Seconds charged for an answered call of ``seconds`` (> 0): rounded up to the increment, at least the minimum."""
    steps = -(-seconds // increment)  # ceiling division on ints: no float error on long calls
    return max(min_billable, steps * increment)


def round_amount(exact: Decimal, rounding: Rounding, yen_decimals: int) -> Decimal:
    """Round a non-negative yen amount once, to 0 or 2 decimal places."""
    quantum = Decimal(1).scaleb(-yen_decimals)
    return exact.quantize(quantum, rounding=_ROUNDING[rounding], context=_EXACT)


def rate_call(*, seconds: int, plan: PlanTerms, direction: str, kind: str | None, answered: bool = True) -> Charge:
    """The charge for one call; ``kind`` None means the center does not pay (see :func:`billable_kind`)."""
    if seconds < 0:
        raise ValueError("a call cannot last a negative number of seconds")
    rate = plan.rate_for(direction, kind) if kind is not None else None

    def charge(billed: int, per_second: Decimal, amount: Decimal, rule: str) -> Charge:
        return Charge(
            seconds=seconds,
            billed_seconds=billed,
            direction=direction,
            kind=kind or "none",
            rate=per_second,
            amount=amount,
            rule=rule,
            plan_id=plan.plan_id,
            plan_name=plan.name,
        )

    zero = round_amount(Decimal(0), plan.rounding, plan.yen_decimals)
    if not answered or seconds == 0:
        return charge(0, rate or Decimal(0), zero, f"{'not answered' if not answered else '0 s'}: not billed")
    if kind is None:
        return charge(0, Decimal(0), zero, "inbound to a number the caller pays for: not billed to the center")
    if rate is None:
        return charge(0, Decimal(0), zero, f"no {direction} rate for {kind} (nor other) in the plan: not billed")
    billed = billed_seconds(seconds, min_billable=plan.min_billable_seconds, increment=plan.increment_seconds)
    exact = _EXACT.multiply(Decimal(billed), rate)
    amount = round_amount(exact, plan.rounding, plan.yen_decimals)
    rule = (
        f"{seconds} s → {billed} s (minimum {plan.min_billable_seconds} s, {plan.increment_seconds}-s increments)"
        f" × {rate} yen/s = {exact.normalize(_EXACT):f} → {amount} yen"
        f" ({plan.rounding.value}, {plan.yen_decimals} decimals)"
    )
    return charge(billed, rate, amount, rule)
