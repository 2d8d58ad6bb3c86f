"""``kakehashi bench screenpop``: screen-pop latency at N customers, against the database's floor.

On the configured database (``KAKEHASHI_DATABASE_URL``; the embedded SQLite file otherwise) the
default tenant is seeded up to N customers (existing ones are reused), then the same random
caller numbers (about 10% unknown) are looked up four ways:

(a) ``service``: :func:`kakehashi.screenpop.service.screen_pop` in its own unit of work per call,
    plus ``model_dump_json()`` of the response model — what a request does minus HTTP (on PostgreSQL
    the one-statement path, ADR 0014). On PostgreSQL the generic path (``one_statement=False``: five
    reads and the audit insert, ADR 0007) is timed too, interleaved call by call with (a), as
    ``generic_*``: the before/after of ADR 0014 in one run;
(b) ``http``: ``GET /api/v1/screenpop`` on a real uvicorn server (a thread of this process, so
    client and server share the GIL) through one keep-alive httpx client;
(c) ``sql``: the bare indexed lookup ``customer_phones (tenant_id, e164)`` on a raw DBAPI cursor;
(d) ``sql_payload``: the same five statements as the screen pop, written by hand on a raw cursor
    (customer with numbers, 20 newest orders with lines, open cases, 10 contacts, field labels),
    rows fetched and nothing built from them: the floor for the whole card;
(e) ``floor`` (PostgreSQL): the service's own audited statement on a raw prepared psycopg cursor, in the
    same transaction shape, timed call by call with (a) and the generic path: ``ratio_floor_p99`` is what
    the Python side (number parsing, SQLAlchemy, pydantic, serialization) adds to the server's own work.

Every method is warmed up first. Times are per call, in milliseconds.
"""

from __future__ import annotations

import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.auth import service as auth
from kakehashi.bench.stats import percentile
from kakehashi.complaints.service import SCREENPOP_OPEN_LIMIT
from kakehashi.contacts.service import SCREENPOP_CONTACTS
from kakehashi.customers.models import Customer
from kakehashi.demo import seed as seeding
from kakehashi.kit import migrate
from kakehashi.kit.api import relax_commit
from kakehashi.kit.config import Settings, get_settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work, utcnow
from kakehashi.kit.masking import full_context
from kakehashi.kit.phone import normalize_phone
from kakehashi.orders.service import SCREENPOP_ORDERS
from kakehashi.screenpop import service as screenpop
from kakehashi.tenants import service as tenants

UNKNOWN_SHARE = 0.1


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _timed(fn: Callable[[str], object], numbers: Sequence[str]) -> list[float]:
    out = []
    clock = time.perf_counter
    for number in numbers:
        t0 = clock()
        fn(number)
        out.append(clock() - t0)
    return out


def _timed_pair(
    first: Callable[[str], object], second: Callable[[str], object], numbers: Sequence[str]
) -> tuple[list[float], list[float]]:
    """Both functions on every number, alternating which goes first, so drifting load hits both alike."""
    a, b = _timed_together((first, second), numbers)
    return a, b


def _timed_together(fns: Sequence[Callable[[str], object]], numbers: Sequence[str]) -> list[list[float]]:
    """Every function on every number, the order rotating number by number, so drifting load hits all alike."""
    out: list[list[float]] = [[] for _ in fns]
    clock = time.perf_counter
    for i, number in enumerate(numbers):
        for k in range(len(fns)):
            j = (i + k) % len(fns)
            t0 = clock()
            fns[j](number)
            out[j].append(clock() - t0)
    return out


class _Floor:
    """PostgreSQL: the service's own statement (the card as JSON + the audit row, ADR 0014) on a raw psycopg
    connection, prepared, in the same transaction shape (BEGIN, ``SET LOCAL synchronous_commit``, the
    statement, COMMIT): what the screen pop costs the server and the wire, without Python, SQLAlchemy or
    pydantic. ``floor_*`` in the result; ``ratio_floor_p99`` = service p99 / this p99."""

    def __init__(self, engine: Engine, tenant_id: int, actor: Actor, e164_of: dict[str, str | None]) -> None:
        import psycopg
        from psycopg.types.json import Jsonb

        from kakehashi.screenpop.repository import _BY_PHONE  # the very statement the service sends

        self.sql = str(_BY_PHONE.compile(dialect=engine.dialect))
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn = psycopg.connect(dsn)
        self.e164_of = e164_of
        self.jsonb = Jsonb
        self.base: dict[str, Any] = {
            "tenant_id": tenant_id,
            "orders": SCREENPOP_ORDERS,
            "open_cases": SCREENPOP_OPEN_LIMIT,
            "contacts": SCREENPOP_CONTACTS,
            "user_id": actor.user_id,
            "username": actor.username,
            "role": actor.role.value if actor.role else None,
            "route": actor.route,
            "origin": actor.origin,
            "detail": Jsonb(None),
        }

    def pop(self, number: str) -> object:
        e164 = self.e164_of[number]
        if e164 is None:  # withheld / garbled: the service answers a blank card without the database
            return None
        params = {
            **self.base,
            "e164": e164,
            "at": utcnow(),
            "unknown_detail": self.jsonb({"e164": e164, "known": False}),
        }
        with self.conn.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit TO OFF", prepare=False)
            cur.execute(self.sql, params, prepare=True)
            row = cur.fetchone()
        self.conn.commit()
        return row

    def close(self) -> None:
        self.conn.close()


def _written_forms(e164: str, national: str, rng: random.Random) -> str:
    """The number as a caller ID or an operator would give it."""
    u = rng.random()
    if u < 0.5:
        return national.replace("-", "")
    if u < 0.8:
        return national
    return e164


def _pick_numbers(engine: Engine, tenant_id: int, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` random (e164, national) numbers of the tenant, chosen by random id probes."""
    with engine.connect() as conn:
        low, high = conn.execute(
            text("SELECT MIN(id), MAX(id) FROM customer_phones WHERE tenant_id = :t"), {"t": tenant_id}
        ).one()
        if low is None:
            return []
        found: dict[str, str] = {}
        for _ in range(50):
            probe = [rng.randint(low, high) for _ in range(max(count * 2, 100))]
            marks = ", ".join(str(i) for i in probe)
            rows = conn.execute(
                text(
                    f"SELECT e164, national FROM customer_phones WHERE tenant_id = :t AND id IN ({marks})"  # noqa: S608 - ints
                ),
                {"t": tenant_id},
            )
            for e164, national in rows:
                found.setdefault(e164, national)
            if len(found) >= count:
                break
    picked = list(found.items())
    rng.shuffle(picked)
    return picked[:count]


def _unknown_numbers(count: int, rng: random.Random) -> list[str]:
    """Valid numbers nobody has: 090-19xx-xxxx is in the range the generator never uses."""
    return [f"090-19{rng.randrange(100):02d}-{rng.randrange(10_000):04d}" for _ in range(count)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """uvicorn in a background thread on a free local port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="bench-uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class _RawPayload:
    """The screen pop's reads, hand-written on a raw DBAPI cursor (qmark on SQLite, %s on PostgreSQL)."""

    def __init__(self, engine: Engine, tenant_id: int) -> None:
        self.raw = engine.raw_connection()
        self.cursor = self.raw.cursor()
        self.tenant_id = tenant_id
        self.postgres = engine.dialect.name == "postgresql"
        self.mark = "%s" if self.postgres else "?"

    def sql(self, query: str) -> str:
        return query.replace("%s", self.mark)

    def lookup(self, e164: str) -> Any:
        self.cursor.execute(
            self.sql("SELECT customer_id FROM customer_phones WHERE tenant_id = %s AND e164 = %s"),
            (self.tenant_id, e164),
        )
        row = self.cursor.fetchone()
        self.raw.commit()
        return row

    def payload(self, e164: str) -> list[Any]:
        """The five statements of the screen pop (ADR 0007), rows fetched, nothing built from them."""
        cur, t, sql = self.cursor, self.tenant_id, self.sql
        cur.execute(
            sql(
                "SELECT c.*, p.id, p.e164, p.national, p.kind, p.label, p.is_primary "
                "FROM customer_phones o JOIN customers c ON c.id = o.customer_id "
                "JOIN customer_phones p ON p.customer_id = c.id "
                "WHERE o.tenant_id = %s AND o.e164 = %s AND c.tenant_id = %s ORDER BY p.id"
            ),
            (t, e164, t),
        )
        card = cur.fetchall()
        if not card:
            self.raw.commit()
            return []
        cid = card[0][[d[0] for d in cur.description].index("id")]
        out: list[Any] = [card]
        cur.execute(
            sql(
                "SELECT n.*, l.id, l.sku, l.name, l.quantity, l.unit_price, l.amount FROM "
                "(SELECT * FROM orders WHERE customer_id = %s AND tenant_id = %s "
                "ORDER BY ordered_at DESC, id DESC LIMIT 20) n "
                "LEFT JOIN order_lines l ON l.order_id = n.id ORDER BY n.ordered_at DESC, n.id DESC, l.id"
            ),
            (cid, t),
        )
        out.append(cur.fetchall())
        cur.execute(
            sql(
                "SELECT * FROM complaints WHERE customer_id = %s AND tenant_id = %s AND status = 'open' "
                "ORDER BY occurred_on DESC, id DESC LIMIT 50"
            ),
            (cid, t),
        )
        out.append(cur.fetchall())
        cur.execute(
            sql(
                "SELECT * FROM contacts WHERE customer_id = %s AND tenant_id = %s "
                "ORDER BY occurred_at DESC, id DESC LIMIT 10"
            ),
            (cid, t),
        )
        out.append(cur.fetchall())
        cur.execute(
            sql("SELECT key, label, type FROM custom_field_defs WHERE tenant_id = %s AND active ORDER BY position, id"),
            (t,),
        )
        out.append(cur.fetchall())
        self.raw.commit()
        return out

    def close(self) -> None:
        self.cursor.close()
        self.raw.close()


def _bench_token(factory: sessionmaker[Session], tenant_id: int) -> str:
    """A short-lived token of a bench operator (created once, with a random password nobody knows)."""
    with unit_of_work(factory) as session:
        user = auth.user_named(session, "bench-operator") or auth.create_user(
            session,
            username="bench-operator",
            password=secrets.token_urlsafe(24),
            role=Role.OPERATOR,
            tenant_id=tenant_id,
            display_name="benchmark",
        )
        secret, _ = auth.issue_token(session, user, "bench screenpop", ttl=timedelta(hours=1))
    return secret


def run(
    customers: int = 10_000,
    lookups: int = 2_000,
    console: Console | None = None,
    *,
    settings: Settings | None = None,
    seed: int = 1,
    http: bool = True,
) -> dict[str, Any]:
    """Seed up to ``customers``, time ``lookups`` screen pops four ways; return the figures."""
    settings = settings or get_settings()
    say = console.print if console is not None else (lambda *_a, **_k: None)
    engine = make_engine(settings.effective_database_url)
    try:
        return _run(engine, settings, customers, lookups, say, console, seed, http)
    finally:
        engine.dispose()


def _run(
    engine: Engine,
    settings: Settings,
    customers: int,
    lookups: int,
    say: Callable[..., None],
    console: Console | None,
    seed: int,
    http: bool,
) -> dict[str, Any]:
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    code = settings.default_tenant
    with unit_of_work(factory) as session:
        tenant = tenants.ensure(session, code)
        tenant_id = tenant.id
        have = session.execute(
            select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant_id)
        ).scalar_one()
    seeded = None
    if have < customers:
        say(f"seeding {customers - have:,} customers (the tenant has {have:,})…")
        seeded = seeding.seed(engine, customers - have, tenant_code=code, seed=seed, progress=console is not None,
                              console=console)  # fmt: skip
        say(f"seeded at {seeded.as_dict()['rows_per_s']:,} rows/s")
        have += seeded.customers
    else:
        say(f"reusing {have:,} customers of tenant '{code}'")

    rng = random.Random(seed)
    known = _pick_numbers(engine, tenant_id, lookups, rng)
    n_unknown = round(lookups * UNKNOWN_SHARE)
    numbers = [_written_forms(e, n, rng) for e, n in known[: lookups - n_unknown]]
    numbers += _unknown_numbers(lookups - len(numbers), rng)
    rng.shuffle(numbers)
    e164s = [normalize_phone(n, settings.default_region) for n in numbers]
    warm = numbers[: min(len(numbers), 200)]
    warm_e164 = e164s[: len(warm)]
    actor = Actor(tenant_id=tenant_id, username="bench", role=Role.OPERATOR, origin="bench")
    region = settings.default_region

    statements = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal statements
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN; PostgreSQL's is implicit
            statements += 1

    per_call: dict[bool | None, dict[str, int]] = {None: {}, False: {}}

    def pop(number: str, one_statement: bool | None) -> object:
        before = statements
        with unit_of_work(factory) as s:
            body = screenpop.screen_pop(s, actor, number, region=region, one_statement=one_statement).model_dump_json(
                context=full_context(True)
            )
            relax_commit(s)  # as a GET request does
        per_call[one_statement][number] = statements - before
        return body

    def service_pop(number: str) -> object:
        return pop(number, None)

    def generic_pop(number: str) -> object:
        return pop(number, False)

    # On SQLite the generic path is the only one: nothing to compare.
    compare = engine.dialect.name == "postgresql"
    say(f"timing {len(numbers):,} screen pops ({n_unknown} unknown numbers) on {engine.dialect.name}…")
    _timed(service_pop, warm)
    generic: list[float] = []
    event.listen(engine, "before_cursor_execute", count)
    floor_times: list[float] = []
    if compare:
        floor = _Floor(engine, tenant_id, actor, dict(zip(numbers, e164s, strict=True)))
        try:
            _timed(generic_pop, warm)
            _timed(floor.pop, warm)
            service, generic, floor_times = _timed_together((service_pop, generic_pop, floor.pop), numbers)
        finally:
            floor.close()
    else:
        service = _timed(service_pop, numbers)
    event.remove(engine, "before_cursor_execute", count)
    known_e164 = {e for e, _national in known}
    known_set = {n for n, e in zip(numbers, e164s, strict=True) if e in known_e164}

    def per_pop(variant: bool | None, known: bool) -> float | None:
        counts = [c for n, c in per_call[variant].items() if (n in known_set) == known]
        return round(sum(counts) / len(counts), 2) if counts else None

    http_times: list[float] = []
    if http:
        from kakehashi.app import create_app

        token = _bench_token(factory, tenant_id)
        with (
            _Server(create_app(settings, engine=engine)) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client,
        ):

            def http_pop(number: str) -> object:
                response = client.get("/api/v1/screenpop", params={"phone": number})
                response.raise_for_status()
                return response.content

            _timed(http_pop, warm)
            http_times = _timed(http_pop, numbers)

    raw = _RawPayload(engine, tenant_id)
    try:
        _timed(raw.lookup, warm_e164)
        sql = _timed(raw.lookup, e164s)
        _timed(raw.payload, warm_e164)
        payload = _timed(raw.payload, e164s)
    finally:
        raw.close()

    p99, sql_p99, payload_p99 = percentile(service, 99), percentile(sql, 99), percentile(payload, 99)
    generic_p99 = percentile(generic, 99)
    floor_p99 = percentile(floor_times, 99)
    result: dict[str, Any] = {
        "customers": have,
        "lookups": len(numbers),
        "unknown_numbers": n_unknown,
        "database": engine.dialect.name,
        "p50_ms": _ms(percentile(service, 50)),
        "p95_ms": _ms(percentile(service, 95)),
        "p99_ms": _ms(p99),
        "http_p50_ms": _ms(percentile(http_times, 50)) if http else None,
        "http_p95_ms": _ms(percentile(http_times, 95)) if http else None,
        "http_p99_ms": _ms(percentile(http_times, 99)) if http else None,
        "sql_p50_ms": _ms(percentile(sql, 50)),
        "sql_p99_ms": _ms(sql_p99),
        "sql_payload_p50_ms": _ms(percentile(payload, 50)),
        "sql_payload_p99_ms": _ms(payload_p99),
        "ratio_p99": round(p99 / sql_p99, 1) if sql_p99 else None,
        "ratio_payload_p99": round(p99 / payload_p99, 2) if payload_p99 else None,
        # PostgreSQL: the same audited statement on a raw prepared cursor, timed call by call with the service.
        "floor_p50_ms": _ms(percentile(floor_times, 50)) if compare else None,
        "floor_p99_ms": _ms(floor_p99) if compare else None,
        "ratio_floor_p99": round(p99 / floor_p99, 2) if compare and floor_p99 else None,
        "queries_per_pop": per_pop(None, True),
        "queries_per_unknown_pop": per_pop(None, False),
        # The generic path (five reads + audit insert) in the same run, PostgreSQL only (None on SQLite).
        "generic_p50_ms": _ms(percentile(generic, 50)) if compare else None,
        "generic_p95_ms": _ms(percentile(generic, 95)) if compare else None,
        "generic_p99_ms": _ms(generic_p99) if compare else None,
        "generic_ratio_p99": round(generic_p99 / sql_p99, 1) if compare and sql_p99 else None,
        "generic_queries_per_pop": per_pop(False, True) if compare else None,
        "seed_rows_per_s": seeded.as_dict()["rows_per_s"] if seeded else None,
    }
    say(
        f"service p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; http p99 {result['http_p99_ms']} ms; "
        f"bare SQL p99 {result['sql_p99_ms']} ms; payload SQL p99 {result['sql_payload_p99_ms']} ms"
        + (f"; generic path p50 {result['generic_p50_ms']} ms, p99 {result['generic_p99_ms']} ms" if compare else "")
    )
    return result
