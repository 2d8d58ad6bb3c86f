"""Shapes of the queue statistics and the report rows. Ratios are fractions (0.8 = 80 %), times are seconds;
a metric without calls (or without agent time) behind it is ``null``. docs/metrics.md defines each field."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

_RATIO = "a fraction from 0 to 1; null when its denominator is 0"
_SECONDS = "seconds; null when there is no call to average"


class QueueStats(BaseModel):
    """A queue now (waiting callers, agents) and since ``since`` (today from 00:00 Japan time by default)."""

    queue_id: int | None = Field(description="null: a queue name seen on calls but not configured")
    queue: str
    label: str
    at: datetime = Field(description="when the figures were taken")
    since: datetime = Field(description="start of the period the counts and metrics cover")
    threshold_s: int = Field(description="the service-level threshold T of the queue")
    calls_waiting: int = Field(description="callers queued or ringing an agent now")
    longest_wait_s: float | None = Field(description="how long the longest-waiting caller has waited; null: nobody")
    members: int
    agents_by_state: dict[str, int] = Field(description="members per agent state")
    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    abandoned_within_threshold: int
    deflected: int = Field(description="callers who left a voicemail or asked for a callback")
    service_level: float | None = Field(description=f"answered within T / answered; {_RATIO}")
    service_level_with_abandons: float | None = Field(
        description=f"(answered + abandoned within T) / (answered + abandoned); {_RATIO}"
    )
    asa_s: float | None = Field(description=f"average speed of answer; {_SECONDS}")
    abandon_rate: float | None = Field(description=f"abandoned / (offered − deflected); {_RATIO}")
    aht_s: float | None = Field(description=f"average handle time (talk + hold + wrap-up); {_SECONDS}")
    occupancy: float | None = Field(description=f"members' busy / (busy + available) time; {_RATIO}")


class QueueReportRow(BaseModel):
    queue: str
    interval_start: datetime = Field(description="Japan time")
    interval_end: datetime
    threshold_s: int
    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    abandoned_within_threshold: int
    deflected: int
    service_level: float | None
    service_level_with_abandons: float | None
    asa_s: float | None
    abandon_rate: float | None
    aht_s: float | None
    occupancy: float | None = Field(description="of the queue's current members in the interval")


class AgentReportRow(BaseModel):
    agent: str
    display_name: str
    interval_start: datetime = Field(description="Japan time")
    interval_end: datetime
    handled: int = Field(description="calls the agent answered that started in the interval")
    talk_s: float
    hold_s: float
    wrap_up_s: float = Field(description="after-call work of those calls (from their CDRs)")
    aht_s: float | None
    time_available_s: float
    time_ringing_s: float
    time_on_call_s: float
    time_wrap_up_s: float = Field(description="time in the wrap_up state within the interval")
    time_break_s: float
    time_missed_s: float
    logged_in_s: float
    occupancy: float | None


class QueueReport(BaseModel):
    since: datetime
    until: datetime
    interval: str
    rows: list[QueueReportRow]


class AgentReport(BaseModel):
    since: datetime
    until: datetime
    interval: str
    rows: list[AgentReportRow]


# -- the wallboard (GET /api/v1/wallboard) ------------------------------------------------------------------


class WallboardQueue(BaseModel):
    """A queue on the wallboard: its figures as ``QueueStats`` has them (occupancy aside), and its targets."""

    queue_id: int
    queue: str
    label: str
    strategy: str
    skill: str | None = Field(description="set: the members are the agents with this skill")
    threshold_s: int = Field(description="the service-level threshold T of the queue")
    sl_target: float = Field(description="the service level the queue aims for; below it: an alert")
    wait_limit_s: int = Field(description="a caller waiting longer than this raises an alert (T: a sure SL miss)")
    calls_waiting: int
    longest_wait_s: float | None
    members: int
    agents_by_state: dict[str, int]
    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    abandoned_within_threshold: int
    deflected: int
    service_level: float | None
    service_level_with_abandons: float | None
    asa_s: float | None
    abandon_rate: float | None
    aht_s: float | None


class WallboardAlert(BaseModel):
    queue: str
    kind: Literal["service_level", "wait"]
    value: float = Field(description="the service level (a fraction) or the longest wait (seconds)")
    limit: float = Field(description="the target it is below, or the wait limit it is over")


class WallboardMembership(BaseModel):
    queue: str
    level: int = Field(description="1 is offered calls first")
    by_skill: bool = Field(description="a member through a skill (set by an admin), not listed in the queue")


class WallboardAgent(BaseModel):
    id: int
    name: str
    display_name: str
    state: str
    reason: str | None = Field(description="the aux code of a break")
    reason_label: str | None
    since: datetime = Field(description="in this state since")
    queues: list[WallboardMembership]


class WallboardAuxCode(BaseModel):
    code: str
    label: str


class Wallboard(BaseModel):
    """The floor now: queues (counts and metrics since ``since``, 00:00 Japan time today), agents, alerts."""

    at: datetime
    since: datetime
    queues: list[WallboardQueue]
    agents: list[WallboardAgent]
    aux_codes: list[WallboardAuxCode]
    alerts: list[WallboardAlert]
