"""API shapes of agents, their states and break reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

AgentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,60}$")]
SkillName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,60}$")]
Level = Annotated[int, Field(ge=1, le=9)]
Skills = Annotated[dict[SkillName, Level], Field(max_length=50)]

_SKILLS: Any = Field(
    default_factory=dict,
    description="skill → level (1 is the most skilled: a skill queue offers calls to level 1 first)",
    examples=[{"order": 1, "english": 2}],
)


class AgentCreate(BaseModel):
    name: AgentName = Field(description="the agent's login name (the same as their user's username)",
                            examples=["sato"])  # fmt: skip
    display_name: str = Field(min_length=1, max_length=100, examples=["佐藤 花子"])
    skills: Skills = _SKILLS


class AgentUpdate(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    skills: Skills | None = Field(default=None, description="replaces all skills when given")


class AgentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    display_name: str
    state: str = Field(description="logged_out, available, ringing, on_call, wrap_up, break or missed")
    state_reason: str | None
    state_since: datetime
    skills: dict[str, int] = Field(default_factory=dict)


class StateChange(BaseModel):
    """What an agent (or a supervisor for them) may choose; ringing, on-call and wrap-up follow calls."""

    state: Literal["available", "break", "logged_out"]
    reason: str | None = Field(default=None, max_length=20, description="an aux code; required for a break")


class StateSpanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: str
    reason: str | None
    queue: str | None
    call_ref: str | None
    started_at: datetime
    ended_at: datetime | None


class AuxCodeIn(BaseModel):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,20}$")] = Field(examples=["lunch"])
    label: str = Field(min_length=1, max_length=60, examples=["昼休憩"])


class AuxCodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    label: str
