"""Staffing over HTTP: agents needed for a call volume, a plan per interval of a forecast curve (JSON, CSV,
XLSX), and the curve of a TV-shopping slot. Pure computation: nothing is read from or written to the database
and no personal data is involved, so nothing is audited. Supervisors and admins only (planning is theirs)."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated

from fastapi import APIRouter, Query, Response

from kakehashi.auth.guard import ManagerActor
from kakehashi.kit.api import respond
from kakehashi.kit.export import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, Export, download
from kakehashi.staffing import service
from kakehashi.staffing.schemas import PlanIn, PlanOut, StaffingOut, Targets, TvSlotIn

router = APIRouter(prefix="/api/v1/staffing", tags=["staffing"])


CallsPerHour = Annotated[float, Query(description="calls offered per hour", examples=[360])]
AhtS = Annotated[float, Query(description="average handling time, seconds (1 … 7200)", examples=[240])]
TargetSl = Annotated[float, Query(description="service-level target, 0 < x < 1")]
TargetT = Annotated[float, Query(description="… answered within this many seconds (0 … 3600)")]
PatienceS = Annotated[float | None, Query(description="callers' mean patience, seconds (Erlang A; 1 … 3600)")]
Shrinkage = Annotated[float, Query(description="share of paid time off the phones, 0 … 0.9")]
MaxOccupancy = Annotated[float | None, Query(description="Erlang C: at most this occupancy, 0 < x ≤ 1")]
MaxAbandon = Annotated[float | None, Query(description="Erlang A: at most this abandon rate, 0 < x < 1")]


@router.get("", response_model=StaffingOut)
def staffing(
    actor: ManagerActor,
    calls_per_hour: CallsPerHour,
    aht_s: AhtS,
    target_sl: TargetSl = 0.8,
    target_t: TargetT = 20,
    patience_s: PatienceS = None,
    shrinkage: Shrinkage = 0,
    max_occupancy: MaxOccupancy = None,
    max_abandon: MaxAbandon = None,
    agents: Annotated[int | None, Query(description="also show what this many agents give (0 … 10000)")] = None,
) -> Response:
    """Agents needed by Erlang C and by Erlang A (with ``patience_s``): expected service level, ASA,
    abandon rate and occupancy at that number; with ``agents``, the same figures for that number."""
    targets = Targets(
        aht_s=aht_s,
        target_sl=target_sl,
        target_t=target_t,
        patience_s=patience_s,
        shrinkage=shrinkage,
        max_occupancy=max_occupancy,
        max_abandon=max_abandon,
    )
    return respond(service.staffing(calls_per_hour, targets, agents), actor)


@router.post("/plan", response_model=PlanOut)
def plan(actor: ManagerActor, body: PlanIn) -> Response:
    """Agents per interval (15, 30 or 60 min) of a forecast curve by Erlang C and Erlang A, with totals."""
    return respond(service.plan(body), actor)


@router.post("/plan.csv", response_class=Response)
def plan_csv(actor: ManagerActor, body: PlanIn) -> Response:
    """The plan's rows as CSV (UTF-8 with BOM, so Japanese Excel opens it correctly)."""
    return download(Export(service.plan_csv(service.plan(body)), "staffing-plan.csv", CSV_MEDIA_TYPE))


@router.post("/plan.xlsx", response_class=Response)
def plan_xlsx(actor: ManagerActor, body: PlanIn) -> Response:
    """The plan as an Excel workbook: sheet ``plan`` (rows, Japan time) and sheet ``totals``."""
    return download(Export(service.plan_xlsx(service.plan(body)), "staffing-plan.xlsx", XLSX_MEDIA_TYPE))


@router.get("/tv-slot", response_model=PlanOut)
def tv_slot(
    actor: ManagerActor,
    base_calls_per_hour: Annotated[float, Query(description="calls per hour outside the spike", examples=[200])],
    spike_start: Annotated[
        time, Query(description="when the number goes on screen, HH:MM (Japan)", examples=["20:00"])
    ],
    aht_s: AhtS,
    spike_multiplier: Annotated[float, Query(description="rate during the spike / base rate, ≥ 1")] = 20,
    spike_minutes: Annotated[int, Query(description="minutes at full height")] = 30,
    decay_minutes: Annotated[int, Query(description="then back to the base linearly over this long")] = 0,
    window_start: Annotated[time | None, Query(description="first interval; default an hour before")] = None,
    window_minutes: Annotated[int, Query(description="length of the plan, minutes")] = 180,
    day: Annotated[date | None, Query(description="date of the slot; default today (Japan)")] = None,
    interval_minutes: Annotated[int, Query(description="15, 30 or 60")] = 15,
    target_sl: TargetSl = 0.8,
    target_t: TargetT = 20,
    patience_s: PatienceS = None,
    shrinkage: Shrinkage = 0,
    max_occupancy: MaxOccupancy = None,
    max_abandon: MaxAbandon = None,
    min_agents: Annotated[int, Query(description="never fewer agents than this")] = 0,
) -> Response:
    """The plan for a TV-shopping slot: ``base_calls_per_hour``, times ``spike_multiplier`` for
    ``spike_minutes`` from ``spike_start`` (then ``decay_minutes`` back down). ``POST /plan`` with a
    ``tv_slot`` body gives the same, and ``/plan.csv`` / ``/plan.xlsx`` the files."""
    slot = TvSlotIn(
        base_calls_per_hour=base_calls_per_hour,
        spike_multiplier=spike_multiplier,
        spike_start=spike_start,
        spike_minutes=spike_minutes,
        decay_minutes=decay_minutes,
        window_start=window_start,
        window_minutes=window_minutes,
        day=day,
    )
    body = PlanIn(
        aht_s=aht_s,
        target_sl=target_sl,
        target_t=target_t,
        patience_s=patience_s,
        shrinkage=shrinkage,
        max_occupancy=max_occupancy,
        max_abandon=max_abandon,
        interval_minutes=interval_minutes,
        min_agents=min_agents,
        tv_slot=slot,
    )
    return respond(service.plan(body), actor)
