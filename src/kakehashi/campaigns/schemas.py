"""Campaigns, leads, the do-not-call list and refusals over the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from kakehashi.kit.masking import PhoneText

Kind = Literal["appointment", "research", "marketing", "sales"]
DialMode = Literal["preview", "progressive", "predictive"]
Status = Literal["draft", "running", "paused", "stopped"]
LeadStatus = Literal["new", "in_progress", "callback", "done", "unworkable", "excluded"]
#: What the line said (from the dialler or the agent).
Result = Literal["answered", "busy", "no_answer", "machine", "invalid", "failed"]
#: Outcomes that may be tried again after a delay (``RetryRules.delays``).
RetryOutcome = Literal["no_answer", "busy", "machine", "invalid", "failed"]
#: Why a number may not be dialled.
ScrubReason = Literal["do_not_contact", "outbound_excluded", "refused", "dnc", "duplicate", "invalid"]

Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Text = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]
Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
PhoneIn = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[^\x00]*$")]


def clock_minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


class Window(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 Monday … 6 Sunday")
    start: Clock = Field(examples=["10:00"], description="Japan time, inclusive")
    end: Clock = Field(examples=["20:00"], description="Japan time, exclusive (24:00: midnight)")

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if clock_minutes(self.start) >= clock_minutes(self.end):
            raise ValueError("start must be before end")
        return self


DEFAULT_DELAYS: dict[str, int | None] = {"no_answer": 60, "busy": 10, "machine": 120, "invalid": None, "failed": 30}


Delay = Annotated[int, Field(ge=0, le=60 * 24 * 30)] | None


class RetryDelays(BaseModel):
    """Minutes before the next try per outcome; null: no more tries (the lead is unworkable). One field per
    outcome (an unknown one is refused), so the API's schema names each with its default."""

    model_config = ConfigDict(extra="forbid")

    no_answer: Delay = DEFAULT_DELAYS["no_answer"]
    busy: Delay = DEFAULT_DELAYS["busy"]
    machine: Delay = DEFAULT_DELAYS["machine"]
    invalid: Delay = DEFAULT_DELAYS["invalid"]
    failed: Delay = DEFAULT_DELAYS["failed"]


class RetryRules(BaseModel):
    delays: RetryDelays = Field(
        default_factory=RetryDelays,
        description="minutes before the next try per outcome; null: no more tries (the lead is unworkable)",
    )
    max_attempts: int = Field(default=5, ge=1, le=50)
    max_per_day: int = Field(default=3, ge=1, le=50)

    def delay(self, outcome: str) -> int | None:
        if outcome in RetryDelays.model_fields:
            value: int | None = getattr(self.delays, outcome)
            return value
        return DEFAULT_DELAYS.get(outcome)


RefusalScope = Literal["company", "product_line"]
#: A code of the tenant's dispositions (``dispositions``), as the campaign uses it.
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")
]
AgentName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class ResultCode(BaseModel):
    """One of the campaign's result codes: a disposition code and what it means for the lead and the results."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    human: bool = Field(default=True, description="a person was reached (a connect)")
    contact: bool = Field(default=False, description="a conversation with the right person")
    success: bool = Field(default=False, description="an appointment, a sale, a completed survey")
    refusal: bool = Field(default=False, description="asked not to be called again (Art.17): blocks the number")
    dnc: bool = Field(default=False, description="put the number on the center's do-not-call list")
    callback: bool = Field(default=False, description="call again at the time the agent picks")
    unworkable: bool = Field(default=False, description="the number cannot be worked (wrong number, fax…)")
    final: bool = Field(default=False, description="no more calls to this lead")


class PredictiveSettings(BaseModel):
    """Predictive dialing: how many people may be left without an agent, and what they hear then."""

    model_config = ConfigDict(extra="forbid")

    abandon_target: float = Field(
        default=0.03, ge=0.001, le=0.05,
        description="abandoned ÷ people who answered, per campaign over 24 h and 30 days (Ofcom, FCC: 3 %)",
    )  # fmt: skip
    max_lines_per_agent: float = Field(default=3.0, ge=1.0, le=5.0, description="calls in flight per agent at most")
    max_in_flight: int | None = Field(default=None, ge=1, le=5000, description="calls in flight at most (a trunk)")
    abandon_message: Text = Field(
        default="", description="played to a person nobody could take: the company and a number to call back"
    )


class AmdSettings(BaseModel):
    """Answering-machine detection (Asterisk app_amd's parameters, in ms; ``telephony.amd``). The defaults are
    the Japanese set: app_amd's with 150 ms between words and 1000 ms after a greeting (docs/benchmarks.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    action: Literal["drop", "message", "agent"] = Field(
        default="drop", description="for a machine: hang up, leave ``machine_message``, or pass it to an agent"
    )
    machine_message: Text = ""
    false_machine_rate: float = Field(
        default=0.012,
        ge=0.0,
        le=0.5,
        description="how often the detector takes a person for a machine (measure yours): with ``drop`` or "
        "``message`` those people count towards the abandon rate as an estimate (default: the upper 95 % end of "
        "the Japanese set's 0 of 320, docs/benchmarks.md)",
    )
    initial_silence_ms: int = Field(default=2500, ge=500, le=10_000)
    greeting_ms: int = Field(default=1500, ge=300, le=10_000)
    after_greeting_silence_ms: int = Field(default=1000, ge=100, le=5000)
    total_analysis_ms: int = Field(default=5000, ge=1000, le=15_000)
    min_word_length_ms: int = Field(default=100, ge=10, le=1000)
    between_words_silence_ms: int = Field(default=150, ge=10, le=1000)
    maximum_number_of_words: int = Field(default=2, ge=1, le=20, description="more words than this: a machine")
    silence_threshold: int = Field(default=256, ge=1, le=32_767)
    maximum_word_length_ms: int = Field(default=5000, ge=100, le=15_000)

    def detector(self) -> dict[str, int] | None:
        """What the driver's detector is given (``TelephonyDriver.originate(amd=…)``), or None when off."""
        if not self.enabled:
            return None
        return self.model_dump(exclude={"enabled", "action", "machine_message", "false_machine_rate"})

    def unseen_people_rate(self) -> float:
        """The false-machine rate the abandon counts assume: 0 unless machines are hung up on (off, or passed to
        an agent: nobody is lost)."""
        return self.false_machine_rate if self.enabled and self.action != "agent" else 0.0


class CampaignCreate(BaseModel):
    name: Name
    kind: Kind
    caller_id: PhoneIn = Field(examples=["03-1234-5678"], description="the number shown to the called party")
    dial_mode: DialMode = "preview"
    goal: int | None = Field(default=None, ge=0, le=10_000_000)
    owner: Line | None = Field(default=None, description="who runs it (default: the creator)")
    opening_statement: Text = Field(
        default="", description="特定商取引法 Art.16: the company, the caller, that it is a sales call and what for"
    )
    windows: list[Window] = Field(default_factory=list, max_length=70)
    holidays_off: bool = True
    night_reason: Text | None = Field(default=None, description="required for any window inside 21:00–08:00")
    retry_rules: RetryRules = Field(default_factory=RetryRules)
    agents: list[AgentName] = Field(default_factory=list, max_length=1000, description="agents who work it")
    queues: list[AgentName] = Field(default_factory=list, max_length=100, description="their queues' agents work it")
    result_codes: list[ResultCode] = Field(default_factory=list, max_length=100)
    ring_timeout_s: int = Field(default=30, ge=5, le=120, description="ringing longer counts as no answer")
    preview_autodial_s: int | None = Field(default=None, ge=1, le=600, description="preview: dial after this long")
    product_line: Line | None = Field(default=None, description="refusals of this line (scope product_line)")
    refusal_scope: RefusalScope = "company"
    predictive: PredictiveSettings = Field(default_factory=PredictiveSettings)
    amd: AmdSettings = Field(default_factory=AmdSettings)


class CampaignUpdate(BaseModel):
    name: Name | None = None
    kind: Kind | None = None
    caller_id: PhoneIn | None = None
    dial_mode: DialMode | None = None
    goal: int | None = Field(default=None, ge=0, le=10_000_000)
    owner: Line | None = None
    opening_statement: Text | None = None
    windows: list[Window] | None = Field(default=None, max_length=70)
    holidays_off: bool | None = None
    night_reason: Text | None = None
    retry_rules: RetryRules | None = None
    agents: list[AgentName] | None = Field(default=None, max_length=1000)
    queues: list[AgentName] | None = Field(default=None, max_length=100)
    result_codes: list[ResultCode] | None = Field(default=None, max_length=100)
    ring_timeout_s: int | None = Field(default=None, ge=5, le=120)
    preview_autodial_s: int | None = Field(default=None, ge=1, le=600)
    product_line: Line | None = None
    refusal_scope: RefusalScope | None = None
    predictive: PredictiveSettings | None = None
    amd: AmdSettings | None = None


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    caller_id: str
    dial_mode: str
    status: str
    goal: int | None
    owner: str
    opening_statement: str
    windows: list[Window]
    holidays_off: bool
    night_reason: str | None
    retry_rules: RetryRules
    agents: list[str]
    queues: list[str]
    result_codes: list[ResultCode]
    ring_timeout_s: int
    preview_autodial_s: int | None
    product_line: str | None
    refusal_scope: str
    predictive: PredictiveSettings
    amd: AmdSettings
    created_at: datetime
    updated_at: datetime


class PacingOut(BaseModel):
    """A predictive campaign being paced now, as the wallboard shows it (``GET /api/v1/campaigns/pacing``; then the
    ``campaign.pacing`` events with the same figures but the campaign's name and target)."""

    campaign_id: int
    name: str
    abandon_target: float = Field(description="the campaign's target: abandoned ÷ people who answered")
    dial_level: float = Field(description="calls the pacer places per working agent now")
    calls_in_flight: int = Field(description="calls ringing now")
    calls_waiting: int = Field(description="people who answered and wait for an agent (2 s at most)")
    agents_active: int = Field(description="agents on the campaign who are working (ready, ringing, talking, wrap-up)")
    agents_ready: int = Field(description="agents free to take a call now")
    abandon_rate_24h: float = Field(description="(abandoned + estimated false machines) ÷ (answered + the same)")
    answered_24h: int = Field(description="people who answered in the last 24 hours")
    abandoned_24h: int = Field(description="people who answered and had no agent within 2 s")
    estimated_24h: float = Field(
        default=0.0, description="people the machine detector hung up on, estimated from its false-machine rate"
    )
    abandon_rate_30d: float
    answered_30d: int = Field(description="people who answered in the last 30 days")
    abandoned_30d: int
    estimated_30d: float = Field(default=0.0, description="the same over the last 30 days")
    dials: int = Field(description="calls placed since the campaign's pacing started")


class LeadsIn(BaseModel):
    phones: list[PhoneIn] = Field(min_length=1, max_length=10_000, description="numbers in any written form")
    customer_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)] | None] | None = Field(
        default=None, max_length=10_000, description="the customer of each number, in the same order (optional)"
    )


class Scrubbed(BaseModel):
    phone: PhoneText
    reason: ScrubReason


class LeadsAdded(BaseModel):
    added: int
    scrubbed: list[Scrubbed]


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    customer_id: int | None
    phone: PhoneText
    status: str
    attempts: int
    attempts_today: int
    attempts_day: date | None
    last_result: str | None
    next_call_at: datetime | None
    callback_agent: str | None
    reserved_by: str | None
    reserved_at: datetime | None


class Reservation(BaseModel):
    lead: LeadOut | None
    reason: str | None = Field(default=None, description="why no lead was handed out")


class OutcomeIn(BaseModel):
    result: Result
    refusal: bool = Field(default=False, description="the person asked not to be called again (Art.17)")
    callback_at: AwareDatetime | None = Field(default=None, description="call again at this time")
    callback_personal: bool = Field(default=True, description="the callback is this agent's (else anyone's)")
    final: bool = Field(default=False, description="no more calls to this lead")
    success: bool = False


class DncIn(BaseModel):
    phone: PhoneIn
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=r"^[^\x00]*$")] = ""


class DncOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    e164: PhoneText
    reason: str
    added_by: str
    added_at: datetime


class RefusalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    e164: PhoneText
    scope: str
    product_line: str | None = None
    campaign_id: int | None
    by: str
    at: datetime
    lifted_at: datetime | None
    lifted_by: str | None
    lifted_reason: str | None


class LiftIn(BaseModel):
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=r"^[^\x00]*$")
    ]
