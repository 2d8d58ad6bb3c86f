from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kakehashi.kit.masking import HiddenText


class Channel(StrEnum):
    call = "call"
    note = "note"
    email = "email"
    chat = "chat"
    sms = "sms"
    fax = "fax"
    mail = "mail"


class ContactCreate(BaseModel):
    channel: Channel = Channel.note
    direction: str | None = Field(default=None, pattern="^(inbound|outbound)$")
    occurred_at: datetime | None = None
    summary: str = Field(min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=20000)
    agent: str | None = Field(default=None, max_length=100)


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    channel: str
    direction: str | None
    occurred_at: datetime
    summary: HiddenText
    body: HiddenText | None
    agent: str | None
    ref: dict[str, Any] | None
