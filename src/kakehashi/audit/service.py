"""Writing and reading the audit log. Rows go into the caller's transaction (Zulip style): a change and
its audit row are stored together or not at all. Refused requests are recorded by ``audit.api`` in a
transaction of their own, because the request's transaction is rolled back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from kakehashi.audit.models import AuditEvent
from kakehashi.audit.repository import AuditFilter, AuditRepository
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.export import csv_writer

# Core insert into the table (not the ORM bulk path): the screen pop writes one of these per call.
_AUDIT = cast(Table, AuditEvent.__table__)


def _row(actor: Actor, action: str, **values: Any) -> dict[str, Any]:
    return {
        "at": utcnow(),
        "tenant_id": actor.tenant_id,
        "user_id": actor.user_id,
        "username": actor.username,
        "role": actor.role.value if actor.role else None,
        "action": action,
        "outcome": "ok",
        "route": actor.route,
        "origin": actor.origin,
        "resource": None,
        "resource_id": None,
        "customer_id": None,
        "detail": None,
        **values,
    }


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    resource: str | None = None,
    resource_id: int | None = None,
    customer_id: int | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row in the current transaction."""
    session.execute(
        insert(_AUDIT),
        [
            _row(
                actor,
                action,
                resource=resource,
                resource_id=resource_id,
                customer_id=customer_id,
                outcome=outcome,
                detail=detail,
            )
        ],
    )


def record_customer_reads(
    session: Session,
    actor: Actor,
    customer_ids: Iterable[int],
    *,
    action: str = "read",
    resource: str = "customer",
    detail: dict[str, Any] | None = None,
) -> int:
    """One row per customer whose personal data this request shows (a list of 50 is 50 reads)."""
    rows = [
        _row(actor, action, resource=resource, resource_id=cid, customer_id=cid, detail=detail)
        for cid in dict.fromkeys(customer_ids)
    ]
    if rows:
        session.execute(insert(_AUDIT), rows)
    return len(rows)


def record_login(
    session: Session,
    *,
    username: str,
    origin: str,
    outcome: str,
    user_id: int | None = None,
    tenant_id: int | None = None,
    role: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Login attempts, including those for names that do not exist."""
    session.execute(
        insert(_AUDIT),
        [
            {
                "at": utcnow(),
                "tenant_id": tenant_id,
                "user_id": user_id,
                "username": username[:60],
                "role": role,
                "action": "login",
                "outcome": outcome,
                "route": "POST login",
                "origin": origin,
                "detail": detail,
            }
        ],
    )


def search(
    session: Session, actor: Actor, flt: AuditFilter, *, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    """The actor's tenant's audit rows, newest first."""
    repo = AuditRepository(session, actor.tenant_id)
    return repo.search(flt, limit=limit, offset=offset), repo.count(flt)


def customer_trail(session: Session, actor: Actor, customer_id: int) -> list[AuditEvent]:
    """Every audit row about one customer in the actor's tenant, oldest first (for a disclosure)."""
    return list(AuditRepository(session, actor.tenant_id).stream(AuditFilter(customer_id=customer_id)))


EXPORT_COLUMNS = (
    "id",
    "at",
    "tenant_id",
    "user_id",
    "username",
    "role",
    "action",
    "outcome",
    "resource",
    "resource_id",
    "customer_id",
    "route",
    "origin",
    "detail",
)


def export_rows(session: Session, actor: Actor, flt: AuditFilter) -> Iterator[AuditEvent]:
    return AuditRepository(session, actor.tenant_id).stream(flt)


def write_csv(events: Iterable[AuditEvent], out: IO[str]) -> int:
    """CSV with a header row (formula-safe cells: a user name starting with ``=`` stays text); returns the number
    of rows written."""
    writer = csv_writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for e in events:
        writer.writerow(
            [
                e.id,
                e.at.isoformat(),
                e.tenant_id,
                e.user_id,
                e.username,
                e.role,
                e.action,
                e.outcome,
                e.resource,
                e.resource_id,
                e.customer_id,
                e.route,
                e.origin,
                "" if e.detail is None else _compact(e.detail),
            ]
        )
        count += 1
    return count


def _compact(detail: dict[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, separators=(",", ":"), default=str)
