"""``kakehashi bench campaign``: loading a call list into a campaign, then agents reserving its leads (issue 17).

PostgreSQL only (a scratch database of its own, ``KAKEHASHI_BENCH_PG_URL``): the figures are about concurrent
reservations (``FOR UPDATE SKIP LOCKED``) and ``COPY``, which SQLite has not.

1. **Load.** A synthetic list of N people (:mod:`kakehashi.demo.synthetic`, the CSV ``bench import`` writes: a
   Japanese export's headers, one or two numbers a row), 1 % of its numbers on the DNC list and 0.5 % refused
   beforehand, is loaded through the real path (:func:`kakehashi.campaigns.lists.load_list`: the customer
   importer, the scrub, the leads) — ``load_rows_per_s``.
2. **The floor.** The rows that load stored — customers, their numbers, their links to the list's source and the
   leads — are dumped, the tables emptied, and the same rows ``COPY``d back into the same indexed tables (unique
   keys, foreign keys, WAL) in one transaction: what the server needs to write them, which no loader can go
   below. ``ratio_floor`` = load seconds / floor seconds (target ≤ 2).
3. **Reservations.** ``agents`` threads each reserve the next lead (:func:`campaigns.service.reserve_next`, one
   transaction as ``POST /reserve`` is) and record an outcome (another, as ``POST …/outcome`` is), in a loop,
   until ``reservations`` leads were handed out — ``reservations_per_s`` and the reservation's p50/p99 in ms
   (its transaction, commit included; target p99 ≤ 5 ms). Every lead is handed to one agent only (checked).
   ``talk_ms``: each agent waits that long (±50 %) between reservation and outcome, as if on the call; 0 (the
   default) is a tight loop: 50 threads on the machine's cores, so each reservation also waits its turn.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from kakehashi.bench.importing import write_csv
from kakehashi.bench.stats import percentile
from kakehashi.campaigns import lists
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import DncNumber, Refusal
from kakehashi.campaigns.schemas import CampaignCreate, OutcomeIn, RetryRules, Window
from kakehashi.demo.synthetic import generate_people
from kakehashi.kit import migrate
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work, utcnow
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.privacy import service as privacy
from kakehashi.privacy.schemas import SourceCreate
from kakehashi.tenants import service as tenants

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kakehashi_bench_campaign"
#: The tables a load writes, in the order the floor COPYs them back (foreign keys first).
FLOOR_TABLES = ("customers", "customer_phones", "customer_sources", "leads")
#: What the simulated agents' calls come to (busy and no answer are tried again later, as the rules say).
OUTCOMES = ("answered", "busy", "no_answer", "machine")


class PostgresOnly(ValueError):
    """The benchmark was pointed at a database other than PostgreSQL."""


def _setup(engine: Engine, leads: int, seed: int) -> tuple[Actor, int, int]:
    """The tenant, a running campaign open around the clock, its source record, and the DNC list and refusals
    holding some of the list's numbers (so that the scrub has something to find)."""
    with unit_of_work(make_session_factory(engine)) as session:
        tenant = tenants.get_or_create(session, "bench", "bench")
        actor = Actor(tenant_id=tenant.id, username="bench")
        always = [Window(weekday=d, start="00:00", end="24:00") for d in range(7)]
        campaign = campaigns.create_campaign(
            session,
            actor,
            CampaignCreate(name="bench", kind="sales", caller_id="03-1234-5678", windows=always, holidays_off=False,
                           night_reason="benchmark", retry_rules=RetryRules(max_attempts=5, max_per_day=5)),
        )  # fmt: skip
        campaigns.set_status(session, actor, campaign.id, "running")
        source = privacy.record_source(
            session,
            actor,
            SourceCreate(provider_name="ベンチマーク", acquisition_method="generated", received_on=business_today(),
                         items=["氏名", "電話番号"]),
        )  # fmt: skip
        rng = random.Random(seed)
        now = utcnow()
        for person in generate_people(leads, seed=1):  # the people of write_csv's list
            # The row's lead is its first number: the fixed line in 電話番号 when it has one, else the mobile.
            e164 = next((p for p in person.phones if p.kind != "mobile"), person.phones[0]).e164
            draw = rng.random()
            if draw < 0.01:
                session.add(DncNumber(tenant_id=tenant.id, e164=e164, added_by="bench"))
            elif draw < 0.015:
                session.add(Refusal(tenant_id=tenant.id, e164=e164, by="bench", at=now))
        return actor, campaign.id, source.id


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _copy_floor(url: str) -> tuple[float, dict[str, int]]:
    """(seconds, rows per table) to COPY the rows the load stored back into the same, emptied, indexed tables."""
    import psycopg

    with psycopg.connect(_dsn(url)) as conn:
        dumps: dict[str, bytes] = {}
        for table in FLOOR_TABLES:
            buf = bytearray()
            with conn.cursor() as cur, cur.copy(f"COPY {table} TO STDOUT") as copy:
                for block in copy:
                    buf += block
            dumps[table] = bytes(buf)
        conn.execute(f"TRUNCATE {', '.join(FLOOR_TABLES)} CASCADE")  # the other tables are empty here
        conn.commit()
        conn.execute("CHECKPOINT")  # the load's dirty pages are not the floor's to write
        started = time.perf_counter()
        for table in FLOOR_TABLES:
            with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(dumps[table])
        conn.commit()
        seconds = time.perf_counter() - started
        counts = {}
        for table in FLOOR_TABLES:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - our table names
            counts[table] = row[0] if row else 0
        conn.execute(f"ANALYZE {', '.join(FLOOR_TABLES)}")
        conn.commit()
    return seconds, counts


def _reserve(
    engine: Engine, actor: Actor, campaign_id: int, agents: int, reservations: int, seed: int, talk_ms: float
) -> dict[str, Any]:
    """``agents`` threads reserving and settling leads until ``reservations`` were handed out (or none is due),
    each "on the call" ``talk_ms`` between its reservation and its outcome (0: a tight loop, the database and this
    process saturated — the throughput; more: agents who talk, the reservation's own latency)."""
    factory = make_session_factory(engine)
    latencies: list[list[float]] = [[] for _ in range(agents)]
    taken: list[list[int]] = [[] for _ in range(agents)]
    left = [reservations]
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(agents)

    def agent(n: int) -> None:
        name = f"bench-agent-{n:02d}"
        me = Actor(tenant_id=actor.tenant_id, username=name, role=Role.OPERATOR, origin="bench")
        rng = random.Random(seed * 1000 + n)
        start.wait()
        if talk_ms:  # agents who talk start apart, as a floor does (all 50 at one instant would queue 50 deep)
            time.sleep(talk_ms / 1000 * rng.random())
        try:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                began = time.perf_counter()
                with unit_of_work(factory) as session:  # POST /api/v1/campaigns/{id}/reserve
                    found = campaigns.reserve_next(session, me, campaign_id, name, utcnow())
                latencies[n].append((time.perf_counter() - began) * 1000)
                if found.lead is None:
                    return
                taken[n].append(found.lead.id)
                if talk_ms:
                    time.sleep(talk_ms / 1000 * rng.uniform(0.5, 1.5))
                outcome = OutcomeIn(result=rng.choice(OUTCOMES))
                with unit_of_work(factory) as session:  # POST …/leads/{lead_id}/outcome
                    campaigns.record_outcome(session, me, campaign_id, found.lead.id, outcome, utcnow())
        except BaseException as exc:  # reported after the threads are joined
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(n,), daemon=True) for n in range(agents)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    if errors:
        raise errors[0]
    flat = sorted(ms for per in latencies for ms in per)
    handed = [lead for per in taken for lead in per]
    return {
        "agents": agents,
        "talk_ms": talk_ms,
        "reservations": len(handed),
        "reserve_seconds": round(seconds, 3),
        "reservations_per_s": round(len(handed) / seconds, 1) if seconds else 0.0,
        "reserve_p50_ms": round(percentile(flat, 50), 2),
        "reserve_p95_ms": round(percentile(flat, 95), 2),
        "reserve_p99_ms": round(percentile(flat, 99), 2),
        "reserve_max_ms": round(flat[-1], 2) if flat else 0.0,
        "each_lead_to_one_agent": len(handed) == len(set(handed)),
    }


def run(
    leads: int = 100_000,
    console: Console | None = None,
    *,
    agents: int = 50,
    reservations: int = 10_000,
    url: str | None = None,
    seed: int = 1,
    talk_ms: float = 0.0,
) -> dict[str, Any]:
    """Generate, load, COPY the floor, reserve; return the figures (see the module's doc)."""
    url = url or os.environ.get("KAKEHASHI_BENCH_PG_URL", DEFAULT_URL)
    if make_url(url).get_backend_name() != "postgresql":
        raise PostgresOnly(
            "bench campaign runs on PostgreSQL only (concurrent reservations with FOR UPDATE SKIP LOCKED, COPY): "
            "set KAKEHASHI_BENCH_PG_URL to a PostgreSQL server it may create a scratch database on"
        )
    say = console.print if console else (lambda *a, **k: None)
    with tempfile.TemporaryDirectory(prefix="kakehashi-bench-") as tmp:
        path = Path(tmp) / "call-list.csv"
        write_csv(path, leads)
        recreate_database(url)
        # Room for every agent's connection at once: the figures are the database's, not the pool's queue.
        engine = make_engine(url, pool_size=agents + 2, max_overflow=4)
        try:
            migrate.upgrade(engine)
            actor, campaign_id, source_id = _setup(engine, leads, seed)
            say(f"loading {leads:,} rows into a campaign of {make_url(url).database} …")
            began = time.perf_counter()
            report = lists.load_list(
                make_session_factory(engine), actor, campaign_id, path,
                source=lists.SourceSpec(source_id=source_id), progress=console is not None,
            )  # fmt: skip
            load_s = time.perf_counter() - began
            say(f"loaded {report.rows_loaded:,} leads in {load_s:.2f} s; the same rows COPYd into the tables …")
            floor_s, stored = _copy_floor(url)
            say(f"floor: {floor_s:.2f} s; {agents} agents reserving …")
            reserved = _reserve(engine, actor, campaign_id, agents, reservations, seed, talk_ms)
        finally:
            engine.dispose()
    scrubbed: dict[str, int] = {}
    for row in report.scrubbed_rows:
        scrubbed[row.reason] = scrubbed.get(row.reason, 0) + 1
    result: dict[str, Any] = {
        "rows": report.rows_total,
        "leads_loaded": report.rows_loaded,
        "scrubbed": scrubbed,
        "bad_rows": report.rows_bad,
        "load_seconds": round(load_s, 3),
        "load_rows_per_s": round(report.rows_total / load_s, 1) if load_s else 0.0,
        "floor_seconds": round(floor_s, 3),
        "floor_rows_per_s": round(report.rows_total / floor_s, 1) if floor_s else 0.0,
        "ratio_floor": round(load_s / floor_s, 2) if floor_s else None,
        "stored": stored,
        **reserved,
        "cpus": os.cpu_count(),
        "database": make_url(url).render_as_string(hide_password=True),
    }
    say(result)
    return result
