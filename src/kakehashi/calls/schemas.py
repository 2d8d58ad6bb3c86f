"""API shapes of calls and CDRs. Numbers are personal data: they mask themselves for client viewers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kakehashi.kit.masking import PhoneText


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_state: str | None
    to_state: str
    at: datetime
    detail: dict[str, Any] | None


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    direction: str
    state: str
    ani_e164: PhoneText | None
    dnis: PhoneText
    customer_id: int | None
    agent: str | None
    queue: str | None
    campaign_id: int | None
    digits: str | None = Field(description="DTMF keyed in the IVR")
    offered_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    end_cause: str | None
    disposition: str | None
    recording_state: str | None
    transferred_to: str | None
    notes: str | None = None


class CallDetail(CallOut):
    transitions: list[TransitionOut]


class CdrOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    call_id: int
    direction: str
    ani_e164: PhoneText | None
    dnis: PhoneText
    customer_id: int | None
    agent: str | None
    queue: str | None
    campaign_id: int | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    ring_seconds: Decimal
    queue_seconds: Decimal
    talk_seconds: Decimal
    hold_seconds: Decimal
    wrap_up_seconds: Decimal
    final_state: str
    end_cause: str | None
    disposition: str | None
    recording_ref: str | None
    billed_seconds: int | None
    cost_yen: Decimal | None


class CdrPage(BaseModel):
    items: list[CdrOut]
    total: int
    limit: int
    offset: int


class WrapUp(BaseModel):
    disposition: str = Field(min_length=1, max_length=40, examples=["受注"])
    notes: str | None = Field(default=None, max_length=2000, description="shown on the customer's timeline")
    customer_id: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="the customer the call was about, when the caller's number "
        "matched nobody (e.g. a new customer registered during the call)",
    )


class LiveCallOut(BaseModel):
    """A call in progress, for the desktop and the wallboard: the caller's number masked (no personal data,
    so listing is not an audited read; the card comes with the screen pop)."""

    call_id: int
    call_ref: str
    state: str
    direction: str
    queue: str | None
    agent: str | None
    consult_agent: str | None
    customer_id: int | None
    ani_masked: str
    since: datetime = Field(description="when the call entered its current state")
    on_hold: bool
    recording: bool
    can_monitor: bool


class HoldChange(BaseModel):
    on: bool


class TransferRequest(BaseModel):
    to: Literal["agent", "queue", "number"] = Field(description="an agent's name, a queue's name, or a phone number")
    target: str = Field(min_length=1, max_length=60, examples=["suzuki"])
    attended: bool = Field(False, description="consult first (agents only): complete or cancel it afterwards")


class MonitorChange(BaseModel):
    on: bool


class TransferAgent(BaseModel):
    name: str
    display_name: str
    state: str


class TransferQueue(BaseModel):
    name: str
    label: str


class TransferTargets(BaseModel):
    """Whom an agent may hand a call to: colleagues (an available one can take it now) and queues."""

    agents: list[TransferAgent]
    queues: list[TransferQueue]
