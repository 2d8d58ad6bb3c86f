"""The screen pop in one PostgreSQL statement (ADR 0014).

One round trip instead of five reads and an insert: PostgreSQL finds the caller, builds the whole card
as JSON (customer with numbers, the newest orders with their lines, open cases, the newest contacts,
custom fields with their labels) and appends the audit row in a data-modifying CTE of the same
statement. The JSON goes to the service as text and is parsed straight into the response's pydantic
models, so masking (applied when the response is serialized) and the response's shape are the same as
on the generic path (``screenpop.service``, composed from the domains' services; SQLite uses it).

This module reads the tables of four domains — the one exception to "domains call each other's
services" (ADR 0014). The column lists are derived from the response schemas at import time, so a field
added to a schema is either read here or import fails; ``tests/test_screenpop_pg.py`` compares this
path's payload and audit row with the generic path's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel
from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.exc import DBAPIError

from kakehashi.audit.models import AuditEvent
from kakehashi.complaints.models import Complaint
from kakehashi.complaints.schemas import ComplaintOut
from kakehashi.complaints.service import SCREENPOP_OPEN_LIMIT
from kakehashi.contacts.models import Contact
from kakehashi.contacts.schemas import ContactOut
from kakehashi.contacts.service import SCREENPOP_CONTACTS
from kakehashi.customers.models import Customer, CustomerPhone
from kakehashi.customers.schemas import CustomerOut, PhoneOut
from kakehashi.kit.context import Actor
from kakehashi.kit.db import UTCDateTime, utcnow
from kakehashi.kit.repository import TenantRepository
from kakehashi.orders.models import Order, OrderLine
from kakehashi.orders.schemas import OrderLineOut, OrderOut
from kakehashi.orders.service import SCREENPOP_ORDERS

# UTC with a "Z", so the parsed datetimes are the UTC ones the generic path reads (whatever the
# session's TimeZone setting: PostgreSQL would otherwise render timestamptz in it).
_UTC_ISO = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _json_object(alias: str, model: Any, schema: type[BaseModel], nested: Mapping[str, str] | None = None) -> str:
    """``json_build_object(...)`` of the ``schema``'s fields: columns of ``alias``, or SQL in ``nested``."""
    nested = nested or {}
    table = _table(model)
    parts = []
    for name in schema.model_fields:
        if name in nested:
            expr = nested[name]
        elif name in table.c:
            expr = f'{alias}."{name}"'
            if isinstance(table.c[name].type, UTCDateTime):
                expr = f"to_char({expr} AT TIME ZONE 'UTC', {_UTC_ISO})"
        else:  # a schema field this statement does not know how to read: fail at import, not at run time
            raise RuntimeError(f"screen pop statement: {schema.__name__}.{name} is neither a column nor nested")
        parts.append(f"'{name}', {expr}")
    return f"json_build_object({', '.join(parts)})"


def _json_list(item: str, source: str, order: str) -> str:
    """A JSON array (``[]`` when empty) of ``item`` over ``source``, in ``order``."""
    return f"(SELECT coalesce(json_agg({item} ORDER BY {order}), '[]'::json) FROM {source})"  # noqa: S608


def _card_select() -> str:
    """The card of customer ``c`` (already scoped to the tenant) as one JSON text."""
    phones = _json_list(
        _json_object("p", CustomerPhone, PhoneOut), "customer_phones p WHERE p.customer_id = c.id", "p.id"
    )
    lines = _json_list(_json_object("l", OrderLine, OrderLineOut), "order_lines l WHERE l.order_id = n.id", "l.id")
    orders = _json_list(
        _json_object("n", Order, OrderOut, {"lines": lines}),
        "(SELECT * FROM orders WHERE customer_id = c.id AND tenant_id = :tenant_id"
        " ORDER BY ordered_at DESC, id DESC LIMIT :orders) n",
        "n.ordered_at DESC, n.id DESC",
    )
    cases = _json_list(
        _json_object("k", Complaint, ComplaintOut),
        "(SELECT * FROM complaints WHERE customer_id = c.id AND tenant_id = :tenant_id AND status = 'open'"
        " ORDER BY occurred_on DESC, id DESC LIMIT :open_cases) k",
        "k.occurred_on DESC, k.id DESC",
    )
    contacts = _json_list(
        _json_object("t", Contact, ContactOut),
        "(SELECT * FROM contacts WHERE customer_id = c.id AND tenant_id = :tenant_id"
        " ORDER BY occurred_at DESC, id DESC LIMIT :contacts) t",
        "t.occurred_at DESC, t.id DESC",
    )
    fields = _json_list(
        "json_build_object('key', d.key, 'label', d.label, 'type', d.type, 'value', c.custom -> d.key)",
        "custom_field_defs d WHERE d.tenant_id = :tenant_id AND d.active",
        "d.position, d.id",
    )
    customer = _json_object("c", Customer, CustomerOut, {"phones": phones})
    return (
        f"SELECT json_build_object('customer', {customer}, 'orders', {orders}, 'open_complaints', {cases},"  # noqa: S608
        f" 'contacts', {contacts}, 'custom_fields', {fields})::text"
        " FROM owner JOIN customers c ON c.id = owner.id"
    )


# The audit row of ``audit.service.record``/``record_customer_reads``, appended by the statement itself.
# Every value is cast: in INSERT … SELECT PostgreSQL does not type parameters from the target columns.
_AUDIT_COLUMNS = (
    "at, tenant_id, user_id, username, role, action, outcome, route, origin, resource, resource_id, customer_id, detail"
)
_AUDIT_VALUES = (
    "CAST(:at AS timestamptz), CAST(:tenant_id AS bigint), CAST(:user_id AS bigint), CAST(:username AS varchar),"
    " CAST(:role AS varchar), 'read', 'ok', CAST(:route AS varchar), CAST(:origin AS varchar), 'screenpop',"
    " owner.id, owner.id"
)


def _statement(owner: str, audit_from: str, detail: str) -> TextClause:
    sql = (
        f"WITH owner AS ({owner}),"  # noqa: S608 - SQL from this module and the models; values are bound
        f" audit AS (INSERT INTO audit_events ({_AUDIT_COLUMNS}) SELECT {_AUDIT_VALUES}, {detail} FROM {audit_from})"
        f" {_card_select()}"
    )
    detail_type = _table(AuditEvent).c.detail.type
    return text(sql).bindparams(
        bindparam("at", type_=UTCDateTime()),
        bindparam("detail", type_=detail_type),
        *([bindparam("unknown_detail", type_=detail_type)] if ":unknown_detail" in sql else []),
    )


# By number: unknown numbers are audited too (with the number; no customer), as ``record`` does.
_BY_PHONE = _statement(
    "SELECT c.id FROM customer_phones o JOIN customers c ON c.id = o.customer_id"
    " WHERE o.tenant_id = :tenant_id AND o.e164 = :e164 AND c.tenant_id = :tenant_id",
    "(SELECT 1) AS one LEFT JOIN owner ON true",
    "CASE WHEN owner.id IS NULL THEN CAST(:unknown_detail AS jsonb) ELSE CAST(:detail AS jsonb) END",
)
# By id: an unknown id is a 404 and writes nothing (the row only when found).
_BY_ID = _statement(
    "SELECT c.id FROM customers c WHERE c.id = :customer_id AND c.tenant_id = :tenant_id",
    "owner",
    "CAST(:detail AS jsonb)",
)


# The statements as psycopg receives them (``%(name)s``): they run on the session's own DBAPI connection,
# server-side prepared from the first use (ADR 0014, amended by issue 15).
_BY_PHONE_SQL = str(_BY_PHONE.compile(dialect=psycopg_dialect()))
_BY_ID_SQL = str(_BY_ID.compile(dialect=psycopg_dialect()))
# A JSON null, as ``audit.record_customer_reads`` stores ``detail=None`` through SQLAlchemy's JSON type.
_JSON_NULL = Jsonb(None)


class ScreenPopRepository(TenantRepository):
    """PostgreSQL only: the card as JSON text plus the audit row, in one statement.

    The statement runs on the session's DBAPI connection (same transaction) as a prepared statement,
    without SQLAlchemy's execution machinery: that machinery added 0.08 ms a pop on a quiet machine and
    0.3 ms at load ~8 (docs/benchmarks.md). The engine's ``before_cursor_execute`` listeners are still
    told (statement counts in tests and ``bench screenpop``)."""

    def card_by_phone(self, actor: Actor, e164: str) -> str | None:
        """The card of the number's owner, or None; audits the lookup either way."""
        params = self._params(actor)
        params["e164"] = e164
        params["unknown_detail"] = Jsonb({"e164": e164, "known": False})
        return self._card(_BY_PHONE_SQL, params)

    def card_by_id(self, actor: Actor, customer_id: int) -> str | None:
        """The card of a customer picked from a list, or None (nothing audited then)."""
        params = self._params(actor)
        params["customer_id"] = customer_id
        return self._card(_BY_ID_SQL, params)

    def _card(self, sql: str, params: dict[str, Any]) -> str | None:
        conn = self.session.connection()
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor() as cursor:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, False)
            try:
                cursor.execute(sql, params, prepare=True)
                row = cursor.fetchone()
            except psycopg.Error as exc:  # as SQLAlchemy would: wrapped, and a lost connection not reused
                lost = conn.dialect.is_disconnect(cast(Any, exc), conn.connection, None)
                if lost:
                    conn.invalidate(exc)
                raise DBAPIError.instance(
                    sql, params, exc, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
                ) from exc
        return cast(str | None, row[0]) if row is not None else None

    def _params(self, actor: Actor) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "orders": SCREENPOP_ORDERS,
            "open_cases": SCREENPOP_OPEN_LIMIT,
            "contacts": SCREENPOP_CONTACTS,
            "at": utcnow(),  # aware UTC, as the UTCDateTime bind would send it
            "user_id": actor.user_id,
            "username": actor.username,
            "role": actor.role.value if actor.role else None,
            "route": actor.route,
            "origin": actor.origin,
            "detail": _JSON_NULL,
        }
