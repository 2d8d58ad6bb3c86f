from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kakehashi.ivr.templates import MINIMAL_EXAMPLE

# ``definition`` is any JSON object here: ``ivr.validate`` checks it and answers with every problem at once,
# each at its path inside the flow (``nodes.menu1.options.3``).

_DEFINITION = Field(
    description="the flow: {start, nodes}; see docs/user-guide/ivr.md for the node types",
    examples=[MINIMAL_EXAMPLE],
)


class FlowCreate(BaseModel):
    name: str = Field(max_length=100, description="unique in the tenant: letters, digits, _ and -", examples=["main"])
    definition: dict[str, Any] = _DEFINITION
    comment: str = Field(default="", max_length=500, examples=["初版"])


class VersionCreate(BaseModel):
    definition: dict[str, Any] = _DEFINITION
    comment: str = Field(default="", max_length=500, examples=["年末年始の休業日を追加"])
    base_version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="the version this edit started from: 409 when someone saved a newer one since",
    )


class RestoreIn(BaseModel):
    comment: str = Field(default="", max_length=500, examples=["v3 に戻す（v4 のメニューに誤り）"])


class VersionInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    comment: str
    created_by: str
    created_at: datetime


class VersionOut(VersionInfo):
    definition: dict[str, Any]


class FlowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    current_version: int
    created_at: datetime
    updated_at: datetime


class FlowDetail(FlowOut):
    current: VersionOut = Field(description="the version that answers calls")
