"""The one place where the tenant filter is applied to queries."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


class TenantRepository:
    """Base of every repository: holds the session and the tenant, scopes statements."""

    def __init__(self, session: Session, tenant_id: int) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def scoped(self, stmt: SelectT, *models: Any) -> SelectT:
        """Add ``model.tenant_id == tenant`` for each model named."""
        for model in models:
            stmt = stmt.where(model.tenant_id == self.tenant_id)
        return stmt
