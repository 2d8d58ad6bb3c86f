"""Staffing answers for the API: one call volume, or a forecast curve per interval (a day, a TV slot).

No database and no personal data: everything is computed from the request (``staffing.erlang``).
Inputs are checked here, every problem named at once (RFC 9457 ``errors``); the limits keep one request
to well under a second of arithmetic.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import Workbook

from kakehashi.kit.clock import BUSINESS_TZ, business_today
from kakehashi.kit.errors import ValidationFailed, field_error
from kakehashi.kit.export import csv_bytes
from kakehashi.staffing import erlang
from kakehashi.staffing.erlang import StaffingFigures
from kakehashi.staffing.schemas import (
    FiguresOut,
    PlanIn,
    PlanOut,
    PlanRow,
    PlanTotals,
    StaffingOut,
    Targets,
    TvSlotIn,
)

MAX_CALLS_PER_HOUR = 200_000.0
MAX_AHT_S = 7200.0
MAX_TARGET_T = 3600.0
MIN_PATIENCE_S = 1.0
MAX_PATIENCE_S = 3600.0
MAX_SHRINKAGE = 0.9
#: Offered load above this (Erlangs) is not one queue of one center.
MAX_LOAD = 2000.0
MAX_AGENTS = 10_000
INTERVAL_MINUTES = (15, 30, 60)
#: Two days of 15-minute intervals (a day and a night slot past midnight); a week is seven requests.
MAX_INTERVALS = 192
MAX_SPIKE_MULTIPLIER = 1000.0
MAX_SLOT_MINUTES = 24 * 60
FIRST_YEAR, LAST_YEAR = 2000, 2199

Errors = list[dict[str, Any]]


# --- checks ----------------------------------------------------------------------------------------------


def _within(
    errors: Errors,
    field: str,
    value: float | None,
    low: float,
    high: float,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> bool:
    """Append an error unless ``low ≤ value ≤ high`` (``<`` on an open end); NaN and ±inf are errors."""
    if value is None:
        return True
    ok = math.isfinite(value) and (value > low if open_low else value >= low)
    ok = ok and (value < high if open_high else value <= high)
    if not ok:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        errors.append(field_error(field, f"must be a number in {left}{low:g}, {high:g}{right}"))
    return ok


def check_targets(targets: Targets, errors: Errors) -> None:
    _within(errors, "aht_s", targets.aht_s, 1, MAX_AHT_S)
    _within(errors, "target_sl", targets.target_sl, 0, 1, open_low=True, open_high=True)
    _within(errors, "target_t", targets.target_t, 0, MAX_TARGET_T)
    _within(errors, "patience_s", targets.patience_s, MIN_PATIENCE_S, MAX_PATIENCE_S)
    _within(errors, "shrinkage", targets.shrinkage, 0, MAX_SHRINKAGE)
    _within(errors, "max_occupancy", targets.max_occupancy, 0, 1, open_low=True)
    _within(errors, "max_abandon", targets.max_abandon, 0, 1, open_low=True, open_high=True)


def check_volume(errors: Errors, field: str, calls_per_hour: float, aht_s: float) -> None:
    """A call volume: 0 … MAX_CALLS_PER_HOUR calls per hour, and an offered load of at most MAX_LOAD Erlangs."""
    if not _within(errors, field, calls_per_hour, 0, MAX_CALLS_PER_HOUR):
        return
    if math.isfinite(aht_s) and 1 <= aht_s <= MAX_AHT_S:
        load = erlang.offered_load(calls_per_hour, aht_s)
        if load > MAX_LOAD:
            errors.append(
                field_error(field, f"offered load {load:.0f} Erlangs (calls/h × aht_s / 3600) exceeds {MAX_LOAD:g}")
            )


def _raise(errors: Errors) -> None:
    if errors:
        raise ValidationFailed(f"{len(errors)} field(s) are invalid", errors=errors)


# --- one call volume -------------------------------------------------------------------------------------


def figures_out(figures: StaffingFigures, shrinkage: float) -> FiguresOut:
    """The API form: unbounded waits (unstable Erlang C) are null rather than infinity."""

    def finite(value: float) -> float | None:
        return value if math.isfinite(value) else None

    return FiguresOut(
        model=figures.model,
        agents=figures.agents,
        staff=figures.staff(shrinkage),
        load_erlangs=figures.load_erlangs,
        p_wait=figures.p_wait,
        service_level=figures.service_level,
        service_level_answered=figures.service_level_answered,
        asa_s=finite(figures.asa_s),
        asa_answered_s=finite(figures.asa_answered_s),
        abandon_rate=figures.abandon_rate,
        occupancy=figures.occupancy,
        mean_queue=finite(figures.mean_queue),
        stable=figures.stable,
    )


def needed(calls_per_hour: float, t: Targets) -> tuple[StaffingFigures, StaffingFigures | None]:
    """The fewest agents meeting the targets by Erlang C and (with a patience) by Erlang A."""
    by_c = erlang.agents_needed_c(calls_per_hour, t.aht_s, t.target_sl, t.target_t, t.max_occupancy)
    by_a = None
    if t.patience_s is not None:
        by_a = erlang.agents_needed_a(calls_per_hour, t.aht_s, t.target_sl, t.target_t, t.patience_s, t.max_abandon)
    return by_c, by_a


def staffing(calls_per_hour: float, targets: Targets, agents: int | None = None) -> StaffingOut:
    """``GET /api/v1/staffing``: agents needed by Erlang C and Erlang A, and what ``agents`` would give."""
    errors: Errors = []
    check_targets(targets, errors)
    check_volume(errors, "calls_per_hour", calls_per_hour, targets.aht_s)
    if agents is not None and not 0 <= agents <= MAX_AGENTS:
        errors.append(field_error("agents", f"must be between 0 and {MAX_AGENTS}"))
    _raise(errors)
    by_c, by_a = needed(calls_per_hour, targets)
    at_agents = None
    if agents is not None:
        t = targets
        at = [erlang.erlang_c(calls_per_hour, t.aht_s, agents, t.target_t)]
        if t.patience_s is not None:
            at.append(erlang.erlang_a(calls_per_hour, t.aht_s, agents, t.target_t, t.patience_s))
        at_agents = [figures_out(f, t.shrinkage) for f in at]
    return StaffingOut(
        calls_per_hour=calls_per_hour,
        aht_s=targets.aht_s,
        target_sl=targets.target_sl,
        target_t=targets.target_t,
        patience_s=targets.patience_s,
        shrinkage=targets.shrinkage,
        load_erlangs=by_c.load_erlangs,
        erlang_c=figures_out(by_c, targets.shrinkage),
        erlang_a=figures_out(by_a, targets.shrinkage) if by_a is not None else None,
        at_agents=at_agents,
    )


# --- forecast curves -------------------------------------------------------------------------------------


def local(moment: datetime) -> datetime:
    """Japan time; a time without an offset is taken to be Japan time already."""
    return moment.replace(tzinfo=BUSINESS_TZ) if moment.tzinfo is None else moment.astimezone(BUSINESS_TZ)


def _in_years(errors: Errors, field: str, day: date) -> bool:
    """Plans are for dates in FIRST_YEAR … LAST_YEAR (date arithmetic near year 1 or 9999 would overflow)."""
    if FIRST_YEAR <= day.year <= LAST_YEAR:
        return True
    errors.append(field_error(field, f"must be in the years {FIRST_YEAR} … {LAST_YEAR}"))
    return False


def tv_slot_curve(
    slot: TvSlotIn, interval_minutes: int, errors: Errors, at: str = "tv_slot"
) -> list[tuple[datetime, float]]:
    """(interval start, mean calls per hour over the interval) for a TV slot; problems go to ``errors``.

    The rate is ``base`` outside the spike, ``base × multiplier`` for ``spike_minutes`` from ``spike_start``,
    then falls back to ``base`` in a straight line over ``decay_minutes``. An interval the spike covers only
    in part gets the mean rate over the interval (the exact integral), so no call is lost or invented.
    """
    before = len(errors)
    base_ok = _within(errors, f"{at}.base_calls_per_hour", slot.base_calls_per_hour, 0, MAX_CALLS_PER_HOUR)
    spike_ok = _within(errors, f"{at}.spike_multiplier", slot.spike_multiplier, 1, MAX_SPIKE_MULTIPLIER)
    peak = slot.base_calls_per_hour * slot.spike_multiplier
    if base_ok and spike_ok and peak > MAX_CALLS_PER_HOUR:
        errors.append(
            field_error(f"{at}.spike_multiplier", f"the peak ({peak:g} calls/h) exceeds {MAX_CALLS_PER_HOUR:g}")
        )
    for name, value, low in (
        ("spike_minutes", slot.spike_minutes, 1),
        ("decay_minutes", slot.decay_minutes, 0),
        ("window_minutes", slot.window_minutes, interval_minutes),
    ):
        if not low <= value <= MAX_SLOT_MINUTES:
            errors.append(field_error(f"{at}.{name}", f"must be between {low} and {MAX_SLOT_MINUTES} minutes"))
    if slot.window_minutes % interval_minutes:
        errors.append(field_error(f"{at}.window_minutes", f"must be a multiple of {interval_minutes} minutes"))
    day = slot.day or business_today()
    _in_years(errors, f"{at}.day", day)
    if len(errors) > before:
        return []
    spike = datetime.combine(day, slot.spike_start.replace(tzinfo=None), BUSINESS_TZ)
    if slot.window_start is None:
        start = spike - timedelta(hours=1)
        start -= timedelta(
            minutes=start.minute % interval_minutes, seconds=start.second, microseconds=start.microsecond
        )
    else:
        start = datetime.combine(day, slot.window_start.replace(tzinfo=None), BUSINESS_TZ)
        if spike < start:  # a slot after midnight: the spike is on the next day
            spike += timedelta(days=1)
    extra = slot.spike_multiplier - 1.0
    full_end = spike + timedelta(minutes=slot.spike_minutes)
    decay_s = slot.decay_minutes * 60.0

    def extra_seconds(a: datetime, b: datetime) -> float:
        """∫ (multiplier(t) − 1) dt over [a, b), in seconds at the full extra height."""
        flat = _overlap_s(a, b, spike, full_end) * extra
        if decay_s == 0:
            return flat
        lo, hi = max(a, full_end), min(b, full_end + timedelta(seconds=decay_s))
        if hi <= lo:
            return flat
        heights = [extra * (1.0 - (t - full_end).total_seconds() / decay_s) for t in (lo, hi)]
        return flat + (hi - lo).total_seconds() * (heights[0] + heights[1]) / 2.0

    step = timedelta(minutes=interval_minutes)
    length_s = step.total_seconds()
    curve = []
    for i in range(slot.window_minutes // interval_minutes):
        a = start + i * step
        factor = 1.0 + extra_seconds(a, a + step) / length_s
        curve.append((a, slot.base_calls_per_hour * factor))
    return curve


def _overlap_s(a: datetime, b: datetime, c: datetime, d: datetime) -> float:
    return max(0.0, (min(b, d) - max(a, c)).total_seconds())


def _curve(data: PlanIn, errors: Errors) -> list[tuple[datetime, float]]:
    """The plan's (interval start, calls per hour), from whichever of the three forms was sent."""
    sources = [name for name in ("intervals", "calls_per_hour", "tv_slot") if getattr(data, name) is not None]
    if len(sources) != 1:
        errors.append(field_error("intervals", "send exactly one of intervals, calls_per_hour or tv_slot"))
        return []
    if data.interval_minutes not in INTERVAL_MINUTES:
        errors.append(field_error("interval_minutes", f"must be one of {', '.join(map(str, INTERVAL_MINUTES))}"))
        return []
    step = timedelta(minutes=data.interval_minutes)
    per_hour = 60.0 / data.interval_minutes
    if data.tv_slot is not None:
        curve = tv_slot_curve(data.tv_slot, data.interval_minutes, errors)
        fields = ["tv_slot"] * len(curve)
    elif data.calls_per_hour is not None:
        if data.start is None:
            first = datetime.combine(business_today(), datetime.min.time(), BUSINESS_TZ)
        elif _in_years(errors, "start", data.start.date()):
            first = local(data.start)
        else:
            return []
        curve = [(first + i * step, rate) for i, rate in enumerate(data.calls_per_hour)]
        fields = [f"calls_per_hour.{i}" for i in range(len(curve))]
    else:
        assert data.intervals is not None
        curve = []
        for i, interval in enumerate(data.intervals):
            if not _in_years(errors, f"intervals.{i}.start", interval.start.date()):
                return []
            begin = local(interval.start)
            if curve and begin < curve[-1][0] + step:
                errors.append(
                    field_error(
                        f"intervals.{i}.start", f"must be at least {data.interval_minutes} min after the previous start"
                    )
                )
            curve.append((begin, interval.calls * per_hour))
        fields = [f"intervals.{i}.calls" for i in range(len(curve))]
    if data.tv_slot is None and not 1 <= len(curve) <= MAX_INTERVALS:
        errors.append(field_error(sources[0], f"must have between 1 and {MAX_INTERVALS} intervals"))
        return []
    for field, (_, rate) in zip(fields, curve, strict=True):
        check_volume(errors, field, rate, data.aht_s)
    return curve


def plan(data: PlanIn) -> PlanOut:
    """Agents per interval by Erlang C and (with ``patience_s``) Erlang A, with totals for the curve."""
    errors: Errors = []
    check_targets(data, errors)
    if not 0 <= data.min_agents <= MAX_AGENTS:
        errors.append(field_error("min_agents", f"must be between 0 and {MAX_AGENTS}"))
    curve = _curve(data, errors)
    _raise(errors)
    hours = data.interval_minutes / 60.0
    step = timedelta(minutes=data.interval_minutes)
    memo: dict[float, tuple[StaffingFigures, StaffingFigures | None]] = {}
    rows = []
    for begin, rate in curve:
        if rate not in memo:
            memo[rate] = _scheduled(rate, data)
        by_c, by_a = memo[rate]
        calls = rate * hours
        rows.append(
            PlanRow(
                start=begin,
                end=begin + step,
                calls=calls,
                calls_per_hour=rate,
                load_erlangs=by_c.load_erlangs,
                agents_c=by_c.agents,
                staff_c=by_c.staff(data.shrinkage),
                service_level_c=by_c.service_level,
                asa_c_s=by_c.asa_s,
                occupancy_c=by_c.occupancy,
                agents_a=by_a.agents if by_a else None,
                staff_a=by_a.staff(data.shrinkage) if by_a else None,
                service_level_a=by_a.service_level if by_a else None,
                service_level_answered_a=by_a.service_level_answered if by_a else None,
                asa_a_s=by_a.asa_s if by_a else None,
                abandon_rate_a=by_a.abandon_rate if by_a else None,
                abandoned_calls_a=calls * by_a.abandon_rate if by_a else None,
                occupancy_a=by_a.occupancy if by_a else None,
            )
        )
    return PlanOut(
        interval_minutes=data.interval_minutes,
        aht_s=data.aht_s,
        target_sl=data.target_sl,
        target_t=data.target_t,
        patience_s=data.patience_s,
        shrinkage=data.shrinkage,
        min_agents=data.min_agents,
        rows=rows,
        totals=_totals(rows, hours, with_a=data.patience_s is not None),
    )


def _scheduled(rate: float, t: PlanIn) -> tuple[StaffingFigures, StaffingFigures | None]:
    """The agents needed, raised to ``min_agents`` (and the figures at that number)."""
    by_c, by_a = needed(rate, t)
    if by_c.agents < t.min_agents:
        by_c = erlang.erlang_c(rate, t.aht_s, t.min_agents, t.target_t)
    if by_a is not None and by_a.agents < t.min_agents:
        assert t.patience_s is not None
        by_a = erlang.erlang_a(rate, t.aht_s, t.min_agents, t.target_t, t.patience_s)
    return by_c, by_a


def _totals(rows: list[PlanRow], hours: float, *, with_a: bool) -> PlanTotals:
    calls = math.fsum(r.calls for r in rows)
    load_hours = math.fsum(r.load_erlangs for r in rows) * hours

    def weighted(value: Callable[[PlanRow], float | None]) -> float | None:
        if calls <= 0:
            return None
        return math.fsum(r.calls * (value(r) or 0.0) for r in rows) / calls

    def ratio(top: float, bottom: float) -> float | None:
        return top / bottom if bottom > 0 else None

    agent_hours_c = sum(r.agents_c for r in rows) * hours
    totals: dict[str, Any] = {
        "calls": calls,
        "agent_hours_c": agent_hours_c,
        "staff_hours_c": sum(r.staff_c for r in rows) * hours,
        "peak_agents_c": max(r.agents_c for r in rows),
        "peak_staff_c": max(r.staff_c for r in rows),
        "service_level_c": weighted(lambda r: r.service_level_c),
        "asa_c_s": weighted(lambda r: r.asa_c_s),
        "occupancy_c": ratio(load_hours, agent_hours_c),
    }
    if with_a:
        agent_hours_a = sum(r.agents_a or 0 for r in rows) * hours
        abandoned = math.fsum(r.abandoned_calls_a or 0.0 for r in rows)
        carried_hours = math.fsum(r.load_erlangs * (1.0 - (r.abandon_rate_a or 0.0)) for r in rows) * hours
        totals |= {
            "agent_hours_a": agent_hours_a,
            "staff_hours_a": sum(r.staff_a or 0 for r in rows) * hours,
            "peak_agents_a": max(r.agents_a or 0 for r in rows),
            "peak_staff_a": max(r.staff_a or 0 for r in rows),
            "service_level_a": weighted(lambda r: r.service_level_a),
            "asa_a_s": weighted(lambda r: r.asa_a_s),
            "abandoned_calls_a": abandoned,
            "abandon_rate_a": ratio(abandoned, calls),
            "occupancy_a": ratio(carried_hours, agent_hours_a),
        }
    else:
        totals |= dict.fromkeys(
            (
                "agent_hours_a",
                "staff_hours_a",
                "peak_agents_a",
                "peak_staff_a",
                "service_level_a",
                "asa_a_s",
                "abandoned_calls_a",
                "abandon_rate_a",
                "occupancy_a",
            )
        )
    return PlanTotals(**totals)


# --- exports ---------------------------------------------------------------------------------------------

#: Rounding for the files people open in Excel (the JSON keeps every digit).
_DIGITS = {"calls": 2, "calls_per_hour": 2, "load_erlangs": 3, "asa_c_s": 2, "asa_a_s": 2, "abandoned_calls_a": 2}
_RATE_DIGITS = 4


def _cell(field: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(BUSINESS_TZ).replace(tzinfo=None)
    if isinstance(value, float):
        return round(value, _DIGITS.get(field, _RATE_DIGITS))
    return value


def plan_csv(result: PlanOut) -> bytes:
    """One line per interval; start/end in Japan time with their offset (ISO 8601)."""
    fields = list(PlanRow.model_fields)
    rows = ([v if isinstance(v := values[f], datetime) else _cell(f, v) for f in fields]
            for values in (row.model_dump() for row in result.rows))  # fmt: skip
    return csv_bytes(fields, rows)


def plan_xlsx(result: PlanOut) -> bytes:
    """Sheet ``plan``: one row per interval (times in Japan time); sheet ``totals``: totals and inputs."""
    wb = Workbook()
    sheet = wb.active
    sheet.title = "plan"
    fields = list(PlanRow.model_fields)
    sheet.append([f"{f} (JST)" if f in ("start", "end") else f for f in fields])
    for row in result.rows:
        values = row.model_dump()
        sheet.append([_cell(f, values[f]) for f in fields])
    for cell in sheet["A"][1:] + sheet["B"][1:]:
        cell.number_format = "yyyy-mm-dd hh:mm"
    totals = wb.create_sheet("totals")
    totals.append(["item", "value"])
    for key, value in result.totals.model_dump().items():
        totals.append([key, _cell(key, value)])
    totals.append([])
    for key, value in result.model_dump(exclude={"rows", "totals"}).items():
        totals.append([key, value])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
