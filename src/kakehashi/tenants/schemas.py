from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    client_sees_personal_data: bool


class TenantCreate(BaseModel):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$", examples=["client-a"])
    name: str = Field(min_length=1, max_length=200, examples=["株式会社ABC通販"])
    client_sees_personal_data: bool = False


class TenantUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    client_sees_personal_data: bool | None = None
