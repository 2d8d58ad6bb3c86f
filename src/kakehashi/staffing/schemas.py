from __future__ import annotations

from datetime import date, datetime, time

from pydantic import BaseModel, ConfigDict, Field

# Input types are loose on purpose: the service checks each field and answers with every problem at once.


class Targets(BaseModel):
    """What every staffing calculation needs besides the call volume."""

    aht_s: float = Field(description="average handling time in seconds (talk + hold + wrap-up)", examples=[300])
    target_sl: float = Field(default=0.8, description="service-level target, 0 < x < 1 (0.8 = 80 %)")
    target_t: float = Field(default=20, description="… answered within this many seconds (0 ≤ T ≤ 3600)")
    patience_s: float | None = Field(
        default=None, description="callers' mean patience in seconds, for Erlang A (none: Erlang C only)"
    )
    shrinkage: float = Field(default=0, description="share of paid time not on the phones, 0 ≤ s ≤ 0.9")
    max_occupancy: float | None = Field(default=None, description="Erlang C: at most this occupancy, 0 < x ≤ 1")
    max_abandon: float | None = Field(default=None, description="Erlang A: at most this abandon rate, 0 < x < 1")


class FiguresOut(BaseModel):
    """One model's figures for ``agents`` agents. Rates are fractions (0.8 = 80 %), times seconds."""

    model_config = ConfigDict(from_attributes=True)

    model: str = Field(description="erlang_c or erlang_a")
    agents: int = Field(description="agents on the phones")
    staff: int = Field(description="agents to schedule: ⌈agents / (1 − shrinkage)⌉")
    load_erlangs: float
    p_wait: float = Field(description="share of callers who wait at all")
    service_level: float = Field(description="answered within target_t / offered calls")
    service_level_answered: float = Field(description="answered within target_t / answered calls")
    asa_s: float | None = Field(description="mean wait of all callers; null: unbounded (N ≤ A in Erlang C)")
    asa_answered_s: float | None = Field(description="mean wait of the answered callers; null: unbounded")
    abandon_rate: float = Field(description="share of offered callers who hang up while waiting (0 in Erlang C)")
    occupancy: float = Field(description="share of the agents' time on calls")
    mean_queue: float | None = Field(description="mean number of callers waiting; null: unbounded")
    stable: bool = Field(description="false: Erlang C with N ≤ A, the queue grows without bound")


class StaffingOut(BaseModel):
    calls_per_hour: float
    aht_s: float
    target_sl: float
    target_t: float
    patience_s: float | None
    shrinkage: float
    load_erlangs: float
    erlang_c: FiguresOut = Field(description="the fewest agents meeting the targets by Erlang C")
    erlang_a: FiguresOut | None = Field(description="the same by Erlang A (null without patience_s)")
    at_agents: list[FiguresOut] | None = Field(
        default=None, description="what the given number of agents gives (both models), when agents= is set"
    )


class IntervalIn(BaseModel):
    start: datetime = Field(description="start of the interval (no offset: Japan time)")
    calls: float = Field(description="calls expected in the interval", examples=[120])


class TvSlotIn(BaseModel):
    """A TV-shopping slot: a base rate, and ``spike_multiplier`` times it while the number is on screen."""

    base_calls_per_hour: float = Field(examples=[200])
    spike_multiplier: float = Field(default=20, description="≥ 1")
    spike_start: time = Field(description="when the spike starts (Japan time)", examples=["20:00"])
    spike_minutes: int = Field(default=30, description="how long the spike lasts at full height")
    decay_minutes: int = Field(default=0, description="then back to the base rate linearly over this long")
    window_start: time | None = Field(
        default=None, description="first interval of the plan; default one hour before the spike"
    )
    window_minutes: int = Field(default=180, description="length of the plan")
    day: date | None = Field(default=None, description="the date of the slot; default today (Japan)")


class PlanIn(Targets):
    """A forecast curve: ``intervals`` (start, calls), or ``calls_per_hour`` per interval from ``start``,
    or a ``tv_slot`` to build the curve from — exactly one of the three."""

    interval_minutes: int = Field(default=15, description="15, 30 or 60")
    min_agents: int = Field(default=0, description="never plan fewer agents than this in an interval")
    intervals: list[IntervalIn] | None = Field(default=None, max_length=2000)
    calls_per_hour: list[float] | None = Field(default=None, max_length=2000)
    start: datetime | None = Field(default=None, description="with calls_per_hour: start of the first interval")
    tv_slot: TvSlotIn | None = None


class PlanRow(BaseModel):
    start: datetime
    end: datetime
    calls: float = Field(description="calls expected in the interval")
    calls_per_hour: float
    load_erlangs: float
    agents_c: int
    staff_c: int
    service_level_c: float
    asa_c_s: float
    occupancy_c: float
    agents_a: int | None
    staff_a: int | None
    service_level_a: float | None = Field(description="answered within T / offered")
    service_level_answered_a: float | None
    asa_a_s: float | None
    abandon_rate_a: float | None
    abandoned_calls_a: float | None
    occupancy_a: float | None


class PlanTotals(BaseModel):
    calls: float
    agent_hours_c: float
    staff_hours_c: float
    peak_agents_c: int
    peak_staff_c: int
    service_level_c: float | None = Field(description="calls-weighted; null when no calls")
    asa_c_s: float | None
    occupancy_c: float | None = Field(description="load hours / agent hours")
    agent_hours_a: float | None
    staff_hours_a: float | None
    peak_agents_a: int | None
    peak_staff_a: int | None
    service_level_a: float | None
    asa_a_s: float | None
    abandoned_calls_a: float | None
    abandon_rate_a: float | None
    occupancy_a: float | None


class PlanOut(BaseModel):
    interval_minutes: int
    aht_s: float
    target_sl: float
    target_t: float
    patience_s: float | None
    shrinkage: float
    min_agents: int
    rows: list[PlanRow]
    totals: PlanTotals
