"""The agent desk's outbound work over the API (``/api/v1/desk/outbound``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from kakehashi.campaigns.schemas import ResultCode
from kakehashi.kit.masking import PhoneText


class DeskCampaign(BaseModel):
    id: int
    name: str
    kind: str
    dial_mode: str


class CardCampaign(DeskCampaign):
    opening_statement: str
    preview_autodial_s: int | None
    result_codes: list[ResultCode]


class CardLead(BaseModel):
    id: int
    phone: PhoneText
    customer_id: int | None
    status: str
    attempts: int
    last_result: str | None


class Card(BaseModel):
    """The lead on the agent's desk and where its attempt is: ``preview`` (not dialled), ``dialing``,
    ``talking`` (a person answered: the result is to be saved), ``done``."""

    attempt_id: int
    stage: str
    call_ref: str | None
    result: str | None = Field(description="the line's result so far (answered, busy, no_answer…)")
    opening_confirmed_at: datetime | None
    campaign: CardCampaign
    lead: CardLead


class DeskCallback(BaseModel):
    """A callback you promised (personal): dialled for you first when it falls due."""

    lead_id: int
    campaign_id: int
    campaign: str
    phone: PhoneText
    at: datetime


class OutboundDesk(BaseModel):
    campaigns: list[DeskCampaign] = Field(description="the running campaigns you work")
    joined: int | None = Field(description="the campaign you are working now (progressive: dialled for)")
    card: Card | None
    callbacks: list[DeskCallback] = Field(
        default_factory=list, description="your callbacks still to make, soonest first"
    )
    reason: str | None = Field(default=None, description="why no lead was handed out")


class JoinIn(BaseModel):
    campaign_id: int = Field(ge=1, le=2**63 - 1)


class SkipIn(BaseModel):
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    ]


class ResultIn(BaseModel):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    callback_at: AwareDatetime | None = Field(default=None, description="when to call back (callback codes)")
    callback_personal: bool = Field(default=True, description="the callback is yours (else anyone's)")


class ManualDialIn(BaseModel):
    number: Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[^\x00]*$")]
    campaign_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="dial on this campaign's behalf")


class Dialled(BaseModel):
    call_ref: str
