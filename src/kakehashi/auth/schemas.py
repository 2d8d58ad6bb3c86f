"""API shapes of login, tokens and users."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from kakehashi.kit.context import Role


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=60)
    password: str = Field(min_length=1, max_length=256)
    name: str = Field(default="api", max_length=100, description="what the token is for")
    ttl_hours: int | None = Field(default=12, ge=1, le=24 * 366, description="empty: until revoked")


class NewToken(BaseModel):
    """The secret is shown only here, once."""

    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type name
    id: int
    name: str
    expires_at: datetime | None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    ttl_hours: int | None = Field(default=None, ge=1, le=24 * 366)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    tenant_id: int | None
    active: bool
    last_login_at: datetime | None
    created_at: datetime


class Me(BaseModel):
    user: UserOut
    acting_tenant_id: int
    sees_personal_data: bool
    auth: str = Field(description="session or token")


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=60, examples=["sato.op"])
    display_name: str | None = Field(default=None, max_length=100)
    role: Role
    password: str = Field(min_length=1, max_length=256)
    center_wide: bool = Field(default=False, description="admins only: not bound to a tenant")


class UserUpdate(BaseModel):
    display_name: str | None = Field(default=None, max_length=100)
    role: Role | None = None
    active: bool | None = None
    new_password: str | None = Field(default=None, min_length=1, max_length=256)
