"""Planning and writing one batch in one transaction."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    any_,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.audit import service as audit
from kakehashi.customers import custom_fields
from kakehashi.customers.importer.copytext import (
    COPY_CUSTOMER_COLUMNS,
    COPY_PHONE_COLUMNS,
    CUSTOMER_COLS,
    ESCAPES,
    copy_value,
    customer_text,
)
from kakehashi.customers.importer.mapping import Column
from kakehashi.customers.importer.parsing import ParsedRow, PhoneCell, RowError
from kakehashi.customers.importer.report import BatchResult
from kakehashi.customers.models import Customer, CustomerPhone, CustomFieldDef
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work, utcnow
from kakehashi.kit.events import Event, publish_on_commit

_CUSTOMERS = cast(Table, Customer.__table__)
_PHONES = cast(Table, CustomerPhone.__table__)
# The sequence looked up once (a MATERIALIZED CTE), not once per id: 10,000 ids cost the server ~5 ms instead
# of ~57; and one array back instead of 10,000 rows through SQLAlchemy.
_ALLOCATE = text(
    "WITH s AS MATERIALIZED (SELECT CAST(pg_get_serial_sequence('customers', 'id') AS regclass) AS seq)"
    " SELECT array_agg(id ORDER BY id) FROM (SELECT nextval(s.seq) AS id FROM s, generate_series(1, :n)) drawn"
)
# --- planning and writing (one transaction per batch) ---------------------------------------


@dataclass(slots=True)
class _Plan:
    """What one customer becomes after this batch: new (``customer_id`` None) or an update."""

    first_row: int
    customer_id: int | None
    fields: dict[str, Any]
    custom: dict[str, Any]
    phones: list[PhoneCell]
    copy_text: str | None = None  # the first row's COPY text, while no other row merged into it

    def merge(self, row: ParsedRow) -> None:
        """Non-empty values of the later row win; custom values merge; new numbers are added."""
        self.copy_text = None
        self.fields.update(row.fields)
        self.custom.update(row.custom)
        have = {p.e164 for p in self.phones}
        self.phones.extend(p for p in row.phones if p.e164 not in have)


class BatchWriter:
    """Plans and writes batches for one tenant; remembers the customers this import created."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        tenant_id: int,
        on_duplicate: str,
        defs: dict[str, CustomFieldDef],
        columns: list[Column],
        source: str,
        *,
        actor: Actor | None = None,
        source_id: int | None = None,
        after_write: Callable[[Session, list[ParsedRow]], Any] | None = None,
    ) -> None:
        self.factory = factory
        self.tenant_id = tenant_id
        self.on_duplicate = on_duplicate
        self.defs = defs
        self.source = source
        self.actor = actor or Actor(tenant_id=tenant_id, username="import", origin="cli", route="cli import")
        self.source_id = source_id  # the list's third-party provision record (APPI)
        self.after_write = after_write  # pipeline.AfterWrite: more writes in each batch's transaction
        self.created: set[int] = set()  # customers inserted by this import: a later row merges into them
        self.column_of = {c.target: c.header for c in columns}
        self.batch_no = 0
        #: ``--strict``: the whole file in this one session's transaction, each batch in a savepoint.
        self.file_session: Session | None = None
        self.pending_events: list[Event] = []
        self._spare_ids: deque[int] = deque()

    def run_batch(self, rows: list[ParsedRow]) -> BatchResult:
        """Write the valid rows of one batch; the invalid ones come back as errors.

        Rows that failed validation (parsing) or planning (conflicting numbers, a new customer without a
        name…) are left out and reported; the others are written in one transaction. When the database
        refuses the transaction (e.g. a number another writer took between our lookup and our write), it
        is planned again once, then split in halves until the refused rows are found: they are reported
        with the database's message, every other row is written.
        """
        self.batch_no += 1
        result = BatchResult([e for r in rows for e in r.errors])
        self._write_rows([r for r in rows if not r.errors], result, retry=True)
        result.errors.sort(key=lambda e: e.row)
        return result

    def _write_rows(self, rows: list[ParsedRow], result: BatchResult, *, retry: bool) -> None:
        if not rows:
            return
        try:
            part = self._attempt(rows)
        except (DBAPIError, psycopg.Error) as exc:
            if retry and isinstance(exc, (IntegrityError, psycopg.IntegrityError)):
                # Someone else took a number between our lookup and our write: look again once.
                self._write_rows(rows, result, retry=False)
            elif len(rows) == 1:
                result.errors.append(self._refused(rows[0], exc))
            else:
                half = len(rows) // 2
                self._write_rows(rows[:half], result, retry=False)
                self._write_rows(rows[half:], result, retry=False)
            return
        result.errors.extend(part.errors)
        result.inserted += part.inserted
        result.updated += part.updated
        result.merged += part.merged
        result.skipped += part.skipped
        result.new_ids.extend(part.new_ids)
        result.transactions += part.transactions
        result.extras.extend(part.extras)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """A transaction of its own, or (``--strict``) a savepoint in the file's one transaction."""
        if self.file_session is not None:
            with self.file_session.begin_nested():
                yield self.file_session
            return
        with unit_of_work(self.factory) as session:
            yield session

    def _attempt(self, rows: list[ParsedRow]) -> BatchResult:
        """Plan and write ``rows`` in one transaction; rows failing the plan are left out and reported."""
        errors: list[RowError] = []
        with self._transaction() as session:
            while True:
                result, new, updates = self._plan(session, rows)
                if not result.errors:
                    break
                bad = {e.row for e in result.errors}
                errors.extend(result.errors)
                rows = [r for r in rows if r.row not in bad]  # plan again without them
            result.errors = errors
            if not rows:
                return result
            result.new_ids = self._write(session, new, updates)
            result.transactions = 1
            touched = result.new_ids + [p.customer_id for p in updates if p.customer_id]
            self._record(session, rows, result, touched)
            if self.after_write is not None:
                result.extras.append(self.after_write(session, rows))
            self._publish(
                session,
                Event(
                    "import.completed",
                    self.tenant_id,
                    {
                        "source": self.source,
                        "batch": self.batch_no,
                        "rows": [rows[0].row, rows[-1].row],
                        "inserted": result.inserted,
                        "updated": result.updated,
                        "merged": result.merged,
                        "skipped": result.skipped,
                        "customer_ids": touched,
                    },
                ),
            )
        self.created.update(result.new_ids)
        return result

    def _publish(self, session: Session, event: Event) -> None:
        if self.file_session is not None:  # --strict: only when the whole file commits (see publish_pending)
            self.pending_events.append(event)
        else:
            publish_on_commit(session, event)

    def publish_pending(self) -> None:
        """``--strict``: queue the batches' events on the file's transaction, just before it commits."""
        assert self.file_session is not None
        for event in self.pending_events:
            publish_on_commit(self.file_session, event)
        self.pending_events.clear()

    def _refused(self, row: ParsedRow, exc: BaseException) -> RowError:
        """The database's refusal of one row, on the row's number when that is what it refused."""
        message = _first_line(exc)
        if ("uq_customer_phones_tenant_e164" in message or "customer_phones.e164" in message) and row.phones:
            return RowError(
                row.row,
                " / ".join(p.column for p in row.phones),
                "phone",
                " / ".join(p.raw for p in row.phones),
                f"the number was taken by another customer meanwhile (database: {message})",
            )
        return RowError(row.row, "", "", "", f"database refused the row: {message}")

    def _record(self, session: Session, rows: list[ParsedRow], result: BatchResult, touched: list[int]) -> None:
        """In the batch's own transaction: link the customers to the list's source, one audit row."""
        if self.source_id is not None and touched:
            from kakehashi.privacy import service as privacy  # privacy reads customers: import late

            privacy.link_customers(session, self.actor, self.source_id, touched, created=result.new_ids)
        audit.record(
            session,
            self.actor,
            "import",
            resource="data_source" if self.source_id is not None else "file",
            resource_id=self.source_id,
            detail={
                "file": self.source,
                "batch": self.batch_no,
                "rows": [rows[0].row, rows[-1].row],
                "inserted": result.inserted,
                "updated": result.updated,
                "customers": len(touched),
            },
        )

    def _plan(self, session: Session, rows: list[ParsedRow]) -> tuple[BatchResult, list[_Plan], list[_Plan]]:
        result = BatchResult([e for r in rows for e in r.errors])
        good = [r for r in rows if not r.errors]
        owners = self._owners(session, [p.e164 for r in good for p in r.phones])
        by_number: dict[str, _Plan] = {}  # numbers seen in this batch → the plan that holds them
        by_customer: dict[int, _Plan] = {}
        new: list[_Plan] = []
        for row in good:
            targets: dict[int, _Plan | int] = {}
            for p in row.phones:
                plan = by_number.get(p.e164)
                if plan is not None:
                    targets[id(plan)] = plan
                elif (owner := owners.get(p.e164)) is not None:
                    existing = by_customer.get(owner)
                    targets[id(existing) if existing else -owner] = existing or owner
            if len(targets) > 1:
                result.errors.append(self._conflict(row, owners, by_number))
                continue
            if not targets:
                plan = _Plan(row.row, None, dict(row.fields), dict(row.custom), list(row.phones), row.copy_text)
                new.append(plan)
                result.inserted += 1
            else:
                target = next(iter(targets.values()))
                if isinstance(target, _Plan):
                    target.merge(row)
                    if target.customer_id is None or target.customer_id in self.created:
                        result.merged += 1
                    else:
                        result.updated += 1
                    plan = target
                elif target in self.created:  # an earlier batch of this file created it
                    plan = by_customer[target] = _Plan(row.row, target, {}, {}, [])
                    plan.merge(row)
                    result.merged += 1
                elif self.on_duplicate == "skip":
                    result.skipped += 1
                    continue
                elif self.on_duplicate == "error":
                    taken = next(p for p in row.phones if owners.get(p.e164) == target)
                    result.errors.append(
                        RowError(
                            row.row,
                            taken.column,
                            "phone",
                            taken.raw,
                            f"{taken.national} already belongs to customer {target}",
                        )
                    )
                    continue
                else:
                    plan = by_customer[target] = _Plan(row.row, target, {}, {}, [])
                    plan.merge(row)
                    result.updated += 1
            for p in row.phones:
                by_number[p.e164] = plan
        for plan in new:
            self._check_new(plan, result.errors)
        updates = list(by_customer.values())
        self._load_current(session, updates, owners)
        return result, new, updates

    def _conflict(self, row: ParsedRow, owners: dict[str, int], by_number: dict[str, _Plan]) -> RowError:
        who = []
        for p in row.phones:
            plan = by_number.get(p.e164)
            owner = plan.customer_id if plan is not None else owners.get(p.e164)
            if plan is not None and owner is None:
                who.append(f"{p.national} → row {plan.first_row}")
            elif owner is not None:
                who.append(f"{p.national} → customer {owner}")
        return RowError(
            row.row,
            " / ".join(p.column for p in row.phones),
            "phone",
            " / ".join(p.raw for p in row.phones),
            "the numbers belong to different customers: " + ", ".join(who),
        )

    def _check_new(self, plan: _Plan, errors: list[RowError]) -> None:
        if "name" not in plan.fields:
            errors.append(
                RowError(
                    plan.first_row, self.column_of.get("name", ""), "name", "", "name is required for a new customer"
                )
            )
        _, problems = custom_fields.validate_values(self.defs, {}, current=plan.custom, check_required=True)
        for problem in problems:
            key = "cf." + problem["field"][7:]
            errors.append(RowError(plan.first_row, self.column_of.get(key, ""), key, "", problem["message"]))

    def _owners(self, session: Session, e164s: list[str]) -> dict[str, int]:
        """Existing owners of these numbers (one query per batch)."""
        owners: dict[str, int] = {}
        t = _PHONES
        for condition in _among(session, t.c.e164, list(dict.fromkeys(e164s)), String()):
            stmt = select(t.c.e164, t.c.customer_id).where(t.c.tenant_id == self.tenant_id, condition)
            owners.update({e: c for e, c in session.execute(stmt)})
        return owners

    def _load_current(self, session: Session, updates: list[_Plan], owners: dict[str, int]) -> None:
        """Overlay incoming values on the stored ones, so every UPDATE has the same shape (executemany)."""
        if not updates:
            return
        t = _CUSTOMERS
        cols = [t.c[name] for name in CUSTOMER_COLS]
        current: dict[int, Any] = {}
        ids = [p.customer_id for p in updates if p.customer_id is not None]
        for condition in _among(session, t.c.id, ids, BigInteger()):
            # By primary key alone (the ids come from this tenant's numbers; the tenant is checked on the rows):
            # with ``tenant_id =`` in the query PostgreSQL may scan the tenant on a table without statistics.
            stmt = select(t.c.id, t.c.tenant_id, t.c.custom, *cols).where(condition)
            current.update({row.id: row for row in session.execute(stmt) if row.tenant_id == self.tenant_id})
        for plan in updates:
            assert plan.customer_id is not None
            row = current[plan.customer_id]
            stored = {name: getattr(row, name) for name in CUSTOMER_COLS}
            stored.update(plan.fields)
            plan.fields = stored
            plan.custom = {**(row.custom or {}), **plan.custom}
            plan.phones = [p for p in plan.phones if p.e164 not in owners]

    def _allocate_ids(self, session: Session, n: int) -> list[int]:
        """``n`` new customer ids from the sequence (PostgreSQL), drawn ten batches at a time: one round trip
        less per batch. Sequences are not transactional: ids drawn and not used are gaps, as after any
        rollback."""
        if len(self._spare_ids) < n:
            more = max(n - len(self._spare_ids), 10 * n, 1000)
            self._spare_ids.extend(session.connection().execute(_ALLOCATE, {"n": more}).scalar_one())
        return [self._spare_ids.popleft() for _ in range(n)]

    def _write(self, session: Session, new: list[_Plan], updates: list[_Plan]) -> list[int]:
        """Insert the new customers and all new numbers, update the existing customers; return new ids."""
        now = utcnow()
        conn = session.connection()
        postgres = conn.dialect.name == "postgresql"
        cols = CUSTOMER_COLS
        ids: list[int] = []
        if postgres and new:
            ids = self._allocate_ids(session, len(new))
            tid, stamp = self.tenant_id, copy_value(now)
            lines = [
                f"{cid}\t{tid}\t{plan.copy_text or customer_text(plan.fields, plan.custom)}\t{stamp}\t{stamp}\n"
                for cid, plan in zip(ids, new, strict=True)
            ]
            _copy_text(session, "customers", COPY_CUSTOMER_COLUMNS, lines)
        elif new:
            values = [[plan.fields.get(c) for c in cols] for plan in new]
            for row in values:
                row[-1] = row[-1] or "normal"  # rank
            stmt = insert(_CUSTOMERS).returning(_CUSTOMERS.c.id, sort_by_parameter_order=True)
            extra = {"tenant_id": self.tenant_id, "caution": False, "outbound_excluded": False}
            params = [
                {**dict(zip(cols, row, strict=True)), **extra, "custom": plan.custom, "created_at": now,
                 "updated_at": now}
                for row, plan in zip(values, new, strict=True)
            ]  # fmt: skip
            ids = list(conn.execute(stmt, params).scalars())
        for cid, plan in zip(ids, new, strict=True):
            plan.customer_id = cid
        if updates:
            stmt_u = (
                update(_CUSTOMERS)
                .where(_CUSTOMERS.c.id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in (*cols, "custom", "updated_at")})
            )
            conn.execute(stmt_u, [
                {"b_id": p.customer_id, "b_custom": p.custom, "b_updated_at": now,
                 **{f"b_{c}": p.fields.get(c) for c in cols}}
                for p in updates
            ])  # fmt: skip
        # The first number of a new customer is its primary one; added numbers never take that over.
        phones = [
            (plan.customer_id, p, primary and i == 0)
            for plans, primary in ((new, True), (updates, False))
            for plan in plans
            for i, p in enumerate(plan.phones)
        ]
        if postgres and phones:
            tid, stamp = self.tenant_id, copy_value(now)
            # ``copy_value`` inlined (4 calls a number were a fifth of this process's CPU): e164, national and
            # kind are never None; the label is one of a few, encoded once.
            labels = {p.label: copy_value(p.label) for _, p, _ in phones}
            _copy_text(session, "customer_phones", COPY_PHONE_COLUMNS, [
                f"{tid}\t{cid}\t{p.e164.translate(ESCAPES)}\t{p.national.translate(ESCAPES)}\t"
                f"{p.kind.translate(ESCAPES)}\t{labels[p.label]}\t{'t' if primary else 'f'}\t{stamp}\n"
                for cid, p, primary in phones
            ])  # fmt: skip
        elif phones:
            conn.execute(insert(_PHONES), [
                {"tenant_id": self.tenant_id, "customer_id": cid, "e164": p.e164, "national": p.national,
                 "kind": p.kind, "label": p.label, "is_primary": primary, "created_at": now}
                for cid, p, primary in phones
            ])  # fmt: skip
        return ids


def _among(session: Session, column: Any, values: list[Any], item_type: Any) -> Iterator[ColumnElement[bool]]:
    """``column IN values`` as few conditions as possible.

    On PostgreSQL one array parameter (``= ANY(:values)``): an IN list of 2,000 bound values
    cost 50 ms per batch to compile and plan. Elsewhere IN lists of 5,000 (SQLite's limit is 32,766).
    """
    if session.connection().dialect.name == "postgresql":
        yield column == any_(bindparam("values", values, type_=postgresql.ARRAY(item_type)))
        return
    for i in range(0, len(values), 5000):
        yield column.in_(values[i : i + 5000])


def _copy_text(session: Session, table: str, columns: Sequence[str], lines: list[str]) -> None:
    """``COPY table FROM STDIN`` of ready text lines on the session's own connection (inside its transaction).

    One write per batch: the lines were encoded by :mod:`.copytext` (mostly in the worker processes).
    """
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write("".join(lines))


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
