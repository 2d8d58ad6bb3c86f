"""Result codes over the API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Kind = Literal["sale", "contact", "callback", "no_contact", "other"]
# Shown in a drop-down and grouped by in reports: printable text, no line breaks.
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class DispositionIn(BaseModel):
    code: Code = Field(examples=["受注"], description="what the call stores and reports group by (Japanese)")
    label_en: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] | None = Field(
        default=None, examples=["Order taken"], description="shown in the English UI (unset: the code)"
    )
    kind: Kind = Field(default="contact", description="what the result means for reports")


class DispositionList(BaseModel):
    dispositions: list[DispositionIn] = Field(
        min_length=1, max_length=200, description="the whole list, in the order agents see it"
    )


class DispositionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    label_en: str | None
    kind: str
    position: int
    active: bool
    builtin: bool = Field(default=False, description="a default: the tenant has not set its own list")
