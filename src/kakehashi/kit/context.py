"""Who is acting: the tenant every query is scoped to, the user behind it and where they came from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Role(StrEnum):
    """What a user may do. Every route names the roles it allows (see ``auth.guard``)."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    CLIENT_VIEWER = "client_viewer"


ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})
MANAGERS = frozenset({Role.SUPERVISOR, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller of a service. Services scope every read and write to ``tenant_id``.

    ``role`` is None for the system itself (CLI, jobs, seeding): it is trusted and sees full values.
    ``origin`` (IP address or ``cli``) and ``route`` end up in the audit log.
    """

    tenant_id: int
    username: str = "system"
    user_id: int | None = None
    role: Role | None = None
    origin: str = "system"
    route: str | None = None
    #: False: personal fields leave masked (decided by ``auth.masking``, applied by the schemas).
    sees_personal_data: bool = True

    def in_tenant(self, tenant_id: int) -> Actor:
        """The same person acting in another tenant (a center-wide admin switching client)."""
        return replace(self, tenant_id=tenant_id)
