"""API shapes of a campaign's results (``/api/v1/campaigns/{id}/results``, ``/api/v1/campaigns/results``).

Ratios are fractions (``0.25`` = 25 %), times are seconds; a ratio whose denominator is zero is ``null``. The
definitions are in docs/metrics.md ("Outbound campaigns") and ``campaigns/results.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Grouping = Literal["total", "list", "segment", "agent", "hour", "day"]
ForecastStatus = Literal["ok", "too_little_data", "finished", "no_leads"]


class Figures(BaseModel):
    """What a set of attempts did."""

    dials: int = Field(description="attempts whose line was tried (a result other than skipped)")
    connects: int = Field(description="dials that reached a person")
    contacts: int = Field(description="dials whose result code is a contact (the right person, a conversation)")
    successes: int = Field(description="dials whose result code is a success (appointment, sale…)")
    refusals: int = Field(description="dials whose result code is a refusal (特定商取引法 Art.17)")
    abandoned: int = Field(description="a person answered and no agent was connected within 2 s")
    answered: int = Field(description="the line's result was answered (a person, an agent connected)")
    leads_dialled: int = Field(description="distinct leads dialled")
    connect_rate: float | None = Field(description="connects / dials")
    contact_rate: float | None = Field(description="contacts / dials")
    success_rate: float | None = Field(description="successes / contacts")
    abandon_rate: float | None = Field(description="abandoned / (abandoned + answered)")
    attempts_per_lead: float | None = Field(description="dials / leads dialled")
    talk_s: float = Field(description="talk time, summed")
    wrap_s: float = Field(description="wrap-up time, summed")
    avg_talk_s: float | None = Field(description="talk time per connect")
    avg_wrap_s: float | None = Field(description="wrap-up time per connect")


class ResultRow(Figures):
    """One group: the list, segment, agent, Japan hour of the day or Japan day, or the total."""

    key: str | None = Field(
        description="list or segment id, agent name (masked: OP-01…), hour 00–23, day YYYY-MM-DD; null: none/total"
    )
    label: str | None = Field(description="the list's or segment's name, the agent, 9:00, the day")
    leads: int | None = Field(default=None, description="leads (total, list, segment only)")
    remaining: int | None = Field(default=None, description="leads still to work: new, in progress, callback")


class Forecast(BaseModel):
    """When the remaining leads will be worked, at the pace of the recent days."""

    status: ForecastStatus = Field(description="ok, too_little_data, finished (nothing remains), no_leads")
    hours: float | None = Field(description="working hours to finish (remaining / rate_per_hour)")
    working_days: float | None = Field(description="those hours in working days like the recent ones")
    rate_per_hour: float | None = Field(description="leads settled per working hour in the window")
    leads_completed: int = Field(description="leads settled (final state) in the window")
    working_hours: int = Field(description="Japan clock hours with at least one dial in the window")
    working_days_seen: int = Field(description="Japan days with at least one dial in the window")
    window_days: int


class Goal(BaseModel):
    goal: int | None = Field(description="the campaign's goal (successes); null: none set")
    successes: int = Field(description="successes over the campaign's whole life")
    progress: float | None = Field(description="successes / goal")


class CampaignResults(BaseModel):
    campaign_id: int
    campaign: str
    status: str
    by: Grouping
    since: datetime | None
    until: datetime | None
    agents_masked: bool = Field(description="agent names replaced by OP-01, OP-02… (masked role)")
    total: ResultRow
    rows: list[ResultRow]
    forecast: Forecast
    goal: Goal


class CampaignSummary(ResultRow):
    """A campaign's total, for the campaigns list."""

    campaign_id: int
    campaign: str
    status: str
    forecast: Forecast
    goal: Goal
