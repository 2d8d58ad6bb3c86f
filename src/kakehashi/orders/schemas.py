from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class OrderLineIn(BaseModel):
    sku: str | None = Field(default=None, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, ge=1, le=100000)
    unit_price: int = Field(ge=0, le=100_000_000, description="yen, tax included")


class OrderCreate(BaseModel):
    order_no: str | None = Field(default=None, max_length=40)
    ordered_at: datetime | None = None
    channel: str = Field(default="phone", max_length=20)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=200)


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str | None
    name: str
    quantity: int
    unit_price: int
    amount: int


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    order_no: str | None
    ordered_at: datetime
    channel: str
    status: str
    total: int
    lines: list[OrderLineOut]
