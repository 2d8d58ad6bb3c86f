"""Who is acting: the tenant every query is scoped to, and the user behind it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a service. Services scope every read and write to ``tenant_id``."""

    tenant_id: int
    username: str = "system"
    user_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
