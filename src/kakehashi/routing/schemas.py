"""API shapes of queues, their members, inbound numbers, callbacks and voicemail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kakehashi.kit.masking import PhoneText

QueueName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,60}$")]
AgentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,60}$")]
Level = Annotated[int, Field(ge=1, le=9)]


class EscalationStep(BaseModel):
    after_s: int = Field(ge=1, le=86_400, description="seconds the caller has waited")
    max_level: Level = Field(description="members up to this level may take the call from then on")


class QueueSettings(BaseModel):
    """Every setting is optional on update; nullable ones are cleared by sending null."""

    label: str | None = Field(default=None, min_length=1, max_length=100, examples=["注文受付"])
    strategy: Literal["longest_idle", "fewest_calls", "round_robin", "ring_all"] | None = None
    skill: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,60}$")] | None = Field(
        default=None, description="members are every agent with this skill, at their skill level"
    )
    weight: int | None = Field(default=None, ge=0, le=1000)
    wrap_up_s: int | None = Field(default=None, ge=0, le=3600)
    ring_timeout_s: int | None = Field(default=None, ge=3, le=300)
    max_wait_s: int | None = Field(default=None, ge=1, le=86_400)
    max_length: int | None = Field(default=None, ge=1, le=100_000)
    overflow_action: Literal["none", "queue", "voicemail", "callback"] | None = None
    overflow_queue: QueueName | None = None
    escalation: list[EscalationStep] | None = Field(
        default=None, max_length=9, examples=[[{"after_s": 30, "max_level": 2}]]
    )
    rank_priority: dict[Annotated[str, StringConstraints(min_length=1, max_length=20)],
                        Annotated[int, Field(ge=-100, le=100)]] | None = Field(
        default=None, max_length=50, examples=[{"vip": 10}]
    )  # fmt: skip
    sticky_agent_minutes: int | None = Field(default=None, ge=1, le=10_080)
    sl_threshold_s: int | None = Field(default=None, ge=1, le=600)
    sl_target_pct: int | None = Field(default=None, ge=1, le=100, description="the service level aimed for, in %")
    wait_alert_s: int | None = Field(default=None, ge=1, le=86_400,
                                     description="a caller waiting longer raises an alert (unset: T)")  # fmt: skip


class QueueCreate(QueueSettings):
    name: QueueName = Field(examples=["order"])


class QueueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    label: str
    strategy: str
    skill: str | None
    weight: int
    wrap_up_s: int
    ring_timeout_s: int
    max_wait_s: int | None
    max_length: int | None
    overflow_action: str
    overflow_queue: str | None
    escalation: list[dict[str, Any]]
    rank_priority: dict[str, Any]
    sticky_agent_minutes: int | None
    sl_threshold_s: int
    sl_target_pct: int
    wait_alert_s: int | None


class MembersIn(BaseModel):
    members: dict[AgentName, Level] = Field(max_length=5000, description="agent name → level (1 first)",
                                            examples=[{"sato": 1, "suzuki": 2}])  # fmt: skip


class MembersOut(BaseModel):
    queue: str
    skill: str | None = Field(description="when set, members come from agents' skills, not from this list")
    members: dict[str, int]


class NumberIn(BaseModel):
    number: str = Field(min_length=1, max_length=30, examples=["0120-123-456"])
    flow: QueueName | None = Field(default=None, description="the IVR flow that answers (by name)")
    queue: QueueName | None = Field(default=None, description="or straight to a queue")
    label: str = Field(default="", max_length=100, examples=["TV通販 注文専用"])


class NumberUpdate(BaseModel):
    flow: QueueName | None = None
    queue: QueueName | None = None
    label: str | None = Field(default=None, max_length=100)


class NumberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number_e164: str
    label: str
    flow: str | None
    queue: str | None


class CallbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    queue: str
    number_e164: PhoneText
    origin_call_ref: str
    priority: int
    place_at: datetime
    requested_at: datetime
    status: str
    attempts: int
    agent: str | None
    done_at: datetime | None


class VoicemailOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    queue: str | None
    number_e164: PhoneText | None
    call_ref: str
    recording_ref: str | None
    left_at: datetime
    status: str
