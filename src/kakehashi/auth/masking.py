"""Who sees personal data in full: the one place this is decided.

The schemas mark personal fields (``kit.masking``); this policy says, per role, whether they leave masked.
Operators, supervisors and admins handle customers and need full values; client viewers (委託元) read
reports and see masked values unless their tenant chose otherwise (APPI: need-to-know).
"""

from __future__ import annotations

from kakehashi.kit.context import Role

FULL_VIEW_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})


def sees_personal_data(role: Role, *, tenant_allows_clients: bool) -> bool:
    if role in FULL_VIEW_ROLES:
        return True
    return role is Role.CLIENT_VIEWER and tenant_allows_clients
