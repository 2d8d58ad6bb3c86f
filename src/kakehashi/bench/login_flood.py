"""``kakehashi bench login-flood``: anonymous logins flood the server while simulated calls run (issue 15, ADR 0018).

The whole product on loopback: the app (uvicorn; SQLite in a temporary directory, or PostgreSQL), the demo's
routing with its simulated customers and agents in real time (``demo_traffic_per_hour``), and a supervisor
signed in with a bearer token who reads ``probe`` (the wallboard) every ``probe_interval_s``.

1. **Baseline**: the supervisor's reads for ``baseline_s`` with the calls running and no flood.
2. **Flood**: ``threads`` threads in a child process (their own interpreter: the clients must not take the
   server's GIL) post ``/api/v1/auth/token`` with random names and passwords as fast as they are answered, for
   ``seconds``, each from its own loopback address (127.0.0.10, .11, …) unless ``addresses`` is smaller — so the
   per-address limit does not simply stop them and the hashing slots and the transactions are what is measured.
   The supervisor keeps reading meanwhile.
   Meanwhile short calls (``short_calls_per_s``) ring the support queue: 1 s of talk, or 8 s of patience.
3. The short calls are waited for until each has ended with its CDR; the app stops (the simulated traffic first);
   every call placed must be in ``calls``, and every call in a final state must have its CDR.

Reported: the flood's answers by status code, the supervisor's p50/p99/max in both phases (nearest rank) and
``ratio_p99``, the calls placed, recorded and ended with their CDRs, and errors the server logged.
"""

from __future__ import annotations

import logging
import multiprocessing
import secrets
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kakehashi.bench.serving import serving
from kakehashi.bench.stats import percentile

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kakehashi.kit.config import Settings

#: ``--postgres``: a database of the benchmark's own, made empty first and dropped after.
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kakehashi_bench_login_flood"
USER, PASSWORD = "bench-supervisor", "bench-flood-passphrase"
PROBE = "/api/v1/wallboard"


def run(
    *,
    threads: int = 40,
    seconds: float = 20.0,
    addresses: int | None = None,
    baseline_s: float = 5.0,
    calls_per_hour: float = 3600.0,
    short_calls_per_s: float = 0.5,
    probe: str = PROBE,
    probe_interval_s: float = 0.1,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark on a SQLite file in a temporary directory, or with ``database_url`` on a PostgreSQL
    database of that name, made empty first and dropped after (give it a name of its own, as ``POSTGRES_URL``)."""
    from sqlalchemy.engine import make_url

    from kakehashi.kit.dbadmin import recreate_database

    if database_url is not None:
        recreate_database(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="kakehashi-bench-flood-") as tmp:
            url = database_url or f"sqlite:///{tmp}/bench.db"
            result = measure(url, Path(tmp), threads=threads, seconds=seconds, addresses=addresses,
                             baseline_s=baseline_s, calls_per_hour=calls_per_hour,
                             short_calls_per_s=short_calls_per_s, probe=probe,
                             probe_interval_s=probe_interval_s)  # fmt: skip
    finally:
        if database_url is not None:
            recreate_database(database_url, create=False)
    return {"benchmark": "login_flood", "database": make_url(url).get_backend_name(), **result}


def measure(
    database_url: str,
    data_dir: Path,
    *,
    threads: int,
    seconds: float,
    addresses: int | None,
    baseline_s: float,
    calls_per_hour: float,
    short_calls_per_s: float,
    probe: str,
    probe_interval_s: float,
) -> dict[str, Any]:
    """The three phases on an empty database at ``database_url`` (tests call this with their own)."""
    import httpx

    from kakehashi.app import create_app
    from kakehashi.kit.config import Settings

    settings = Settings(database_url=database_url, data_dir=data_dir, default_tenant="center",
                        demo_traffic_per_hour=calls_per_hour)  # fmt: skip
    _seed(settings)
    app = create_app(settings)
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        with serving(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            r = client.post("/api/v1/auth/token", json={"username": USER, "password": PASSWORD})
            r.raise_for_status()
            client.headers["Authorization"] = f"Bearer {r.json()['token']}"
            client.get(probe).raise_for_status()  # warm: statements compiled, code loaded
            flood = _Flood(base, threads, seconds, addresses or threads)  # its start-up before the measures
            baseline = _probe(client, probe, time.monotonic() + baseline_s, probe_interval_s)
            flood.go()
            short = _ShortCalls(app, seconds, short_calls_per_s)
            during = _probe(client, probe, time.monotonic() + seconds, probe_interval_s)
            codes = flood.result(timeout=seconds + 120)
            short_calls = short.wait_ended(database_url, timeout=120)
            traffic = app.state.demo_traffic
        # The server has stopped: the simulated callers too (their calls in progress stay as they are).
        stats = traffic.stats if traffic is not None else None
        calls = _calls(database_url, (stats.placed if stats else 0) + short.placed)
    finally:
        logging.getLogger().removeHandler(errors)
    base_p99 = percentile(baseline.latencies, 99)
    return {
        "threads": threads,
        "seconds": seconds,
        "addresses": addresses or threads,
        "probe": probe,
        "flood": {
            "requests": sum(codes.values()),
            "per_s": round(sum(codes.values()) / seconds, 1),
            "codes": {str(k): v for k, v in sorted(codes.items(), key=lambda kv: str(kv[0]))},
        },
        "baseline": baseline.summary(),
        "during_flood": during.summary(),
        "ratio_p99": round(percentile(during.latencies, 99) / base_p99, 2) if base_p99 else None,
        "calls": {**calls, "traffic_errors": stats.errors if stats else None, "short_calls": short_calls},
        "server_errors": errors.count,
        "server_error_samples": errors.samples,
    }


class _ErrorLog(logging.Handler):
    """Errors the server logs while measured (a 500, a failed call event…)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.samples) < 5:
            self.samples.append(f"{record.name}: {record.getMessage()}"[:300])


class _Probe:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.codes: Counter[int] = Counter()

    def summary(self) -> dict[str, Any]:
        ms = self.latencies
        return {
            "requests": len(ms),
            "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms), 1) if ms else 0.0,
            "codes": {str(k): v for k, v in sorted(self.codes.items())},
        }


def _probe(client: Any, path: str, until: float, interval: float) -> _Probe:
    """The signed-in supervisor reads ``path`` every ``interval`` (or as soon as the last answer came)."""
    found = _Probe()
    while time.monotonic() < until:
        started = time.perf_counter()
        r = client.get(path)
        elapsed = time.perf_counter() - started
        found.latencies.append(elapsed * 1000)
        found.codes[r.status_code] += 1
        time.sleep(max(0.0, interval - elapsed))
    return found


class _ShortCalls:
    """Besides the demo's callers (who talk for minutes), short calls to the support queue during the flood —
    the caller talks 1 s, or hangs up after 8 s unanswered — so that calls end, with their CDRs, under the flood.
    Placed on the simulator's clock thread, as the demo's own callers are."""

    SUPPORT = "0120-555-030"

    def __init__(self, app: FastAPI, seconds: float, per_s: float) -> None:
        self.refs: list[str] = []
        self.failed = 0
        driver, tenant_id = app.state.telephony.driver, app.state.default_tenant_id
        count = int(seconds * per_s)

        def place(i: int) -> None:
            try:
                self.refs.append(driver.incoming(ani=f"080-7{i // 10000:03d}-{i % 10000:04d}", dnis=self.SUPPORT,
                                                 tenant_id=tenant_id, patience=8.0, talk_s=1.0))  # fmt: skip
            except Exception:
                self.failed += 1
                logging.getLogger(__name__).exception("a short call could not be placed")

        for i in range(count):
            driver.clock.call_later(i / per_s, lambda i=i: place(i))

    @property
    def placed(self) -> int:
        return len(self.refs) + self.failed

    def wait_ended(self, database_url: str, *, timeout: float) -> dict[str, int]:
        """Wait (polling the database) until every short call is in a final state with its CDR, or ``timeout``."""
        from sqlalchemy import func, select

        from kakehashi.calls.models import Call, Cdr
        from kakehashi.calls.states import FINAL
        from kakehashi.kit.db import make_engine

        engine = make_engine(database_url)
        final_states = [s.value for s in FINAL]
        deadline = time.monotonic() + timeout
        try:
            while True:
                with engine.connect() as conn:
                    of_ours = Call.ref.in_(self.refs)
                    recorded = conn.scalar(select(func.count()).select_from(Call).where(of_ours)) or 0
                    final = conn.scalar(
                        select(func.count()).select_from(Call).where(of_ours, Call.state.in_(final_states))
                    )
                    cdrs = conn.scalar(select(func.count()).select_from(Cdr).join(Call).where(of_ours)) or 0
                if cdrs >= len(self.refs) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)  # polling another process's view of the database, not a fixed window
        finally:
            engine.dispose()
        return {"placed": self.placed, "failed": self.failed, "recorded": int(recorded), "final": int(final or 0),
                "cdrs": int(cdrs)}  # fmt: skip


class _Flood:
    """The child process, started and ready (interpreter up, clients made) before the measured phases."""

    def __init__(self, base: str, threads: int, seconds: float, addresses: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.queue = ctx.Queue()
        self.ready, self.start = ctx.Event(), ctx.Event()
        args = (base, threads, seconds, addresses, self.queue, self.ready, self.start)
        self.process = ctx.Process(target=flood, args=args, daemon=True)
        self.process.start()
        if not self.ready.wait(timeout=120):
            raise RuntimeError("the flood's clients did not get ready")

    def go(self) -> None:
        self.start.set()

    def result(self, timeout: float) -> Counter[int | str]:
        codes: Counter[int | str] = self.queue.get(timeout=timeout)
        self.process.join(timeout=30)
        return codes


def flood(base: str, threads: int, seconds: float, addresses: int, queue: Any, ready: Any, start: Any) -> None:
    """The child process: ``threads`` anonymous clients posting logins with random names from ``start`` until the
    time is up (each at most 100,000 requests), each bound to loopback address 127.0.0.(10 + i % addresses)."""
    import httpx

    codes: Counter[int | str] = Counter()
    lock = threading.Lock()
    # No TLS context: plain HTTP on loopback, and loading the CA bundle forty times takes CPU the server needs.
    no_tls = False
    clients = []
    for i in range(threads):
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{10 + i % addresses}", verify=no_tls)
        clients.append(httpx.Client(base_url=base, timeout=60, verify=no_tls, transport=transport))
    ready.set()
    start.wait()
    deadline = time.monotonic() + seconds

    def client(http: httpx.Client) -> None:
        mine: Counter[int | str] = Counter()
        with http:
            for _ in range(100_000):
                if time.monotonic() >= deadline:
                    break
                body = {"username": f"flood-{secrets.token_hex(4)}", "password": secrets.token_urlsafe(12)}
                try:
                    mine[http.post("/api/v1/auth/token", json=body).status_code] += 1
                except httpx.HTTPError as exc:
                    mine[type(exc).__name__] += 1
        with lock:
            codes.update(mine)

    workers = [threading.Thread(target=client, args=(c,)) for c in clients]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(codes)


def _calls(database_url: str, placed: int) -> dict[str, int]:
    """Calls the simulated customers placed vs. inbound rows in ``calls`` (the driver writes each event before it
    goes on: the app has stopped, so nothing is still on its way); calls in a final state vs. CDRs."""
    from sqlalchemy import func, select

    from kakehashi.calls.models import Call, Cdr
    from kakehashi.calls.states import FINAL
    from kakehashi.kit.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            inbound = conn.scalar(select(func.count()).select_from(Call).where(Call.direction == "inbound"))
            final = conn.scalar(select(func.count()).select_from(Call).where(Call.state.in_([s.value for s in FINAL])))
            cdrs = conn.scalar(select(func.count()).select_from(Cdr))
    finally:
        engine.dispose()
    return {"placed": placed, "recorded": int(inbound or 0), "final": int(final or 0), "cdrs": int(cdrs or 0)}


def _seed(settings: Settings) -> None:
    """The demo's routing (numbers, IVR, queues, simulated agents) and a supervisor who signs in."""
    from kakehashi.auth import service as auth
    from kakehashi.demo import routing as demo
    from kakehashi.kit import migrate
    from kakehashi.kit.context import Actor, Role
    from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
    from kakehashi.tenants import service as tenants

    engine = make_engine(settings.effective_database_url)
    try:
        migrate.upgrade(engine)
        with unit_of_work(make_session_factory(engine)) as session:
            home = tenants.ensure(session, settings.default_tenant)
            demo.ensure(session, Actor(tenant_id=home.id, username="bench"))
            auth.create_user(session, username=USER, password=PASSWORD, role=Role.SUPERVISOR, tenant_id=home.id)
    finally:
        engine.dispose()
