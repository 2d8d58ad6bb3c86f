from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    tenant_id: int | None
    user_id: int | None
    username: str
    role: str | None
    action: str
    outcome: str
    resource: str | None
    resource_id: int | None
    customer_id: int | None
    route: str | None
    origin: str
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int
