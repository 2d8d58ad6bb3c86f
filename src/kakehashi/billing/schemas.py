from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

# Field types are loose on purpose: the service checks each field and answers with every problem at once.


class RateIn(BaseModel):
    direction: str = Field(max_length=20, examples=["outbound"])
    kind: str = Field(max_length=20, examples=["mobile"])
    yen_per_second: Decimal = Field(examples=["0.35"])


class PlanCreate(BaseModel):
    name: str = Field(max_length=200, examples=["2027年度 標準"])
    effective_from: date | None = Field(default=None, description="default: today (Asia/Tokyo)")
    min_billable_seconds: int = Field(default=0, examples=[30])
    increment_seconds: int = Field(default=1, examples=[1])
    rounding: str = Field(default="down", max_length=20, examples=["down"])
    yen_decimals: int = Field(default=2, examples=[2])
    active: bool = True
    rates: list[RateIn] = Field(max_length=50)


class RateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    direction: str
    kind: str
    yen_per_second: Decimal


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    effective_from: date
    min_billable_seconds: int
    increment_seconds: int
    rounding: str
    yen_decimals: int
    active: bool
    rates: list[RateOut]
    created_at: datetime
    updated_at: datetime


class QuoteIn(BaseModel):
    number: str = Field(
        max_length=40,
        description="outbound: the number dialled; inbound: the caller's number (a call to our toll-free line)",
        examples=["090-1234-5678"],
    )
    seconds: int = Field(examples=[61])
    direction: str = Field(default="outbound", max_length=20)


class ChargeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seconds: int
    billed_seconds: int
    direction: str
    kind: str
    rate: Decimal = Field(description="yen per second")
    amount: Decimal = Field(description="yen, rounded per the plan")
    currency: str = "JPY"
    rule: str
    plan_id: int | None = Field(description="None: no plan yet; the default plan's terms were used")
    plan_name: str
