"""API shapes of calls and CDRs. Numbers are personal data: they mask themselves for client viewers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

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
