"""``kakehashi bench desk``: from ``call.offered`` to the caller's card drawn on the agent desktop.

The whole product on loopback: the app (uvicorn, SQLite in a temporary directory, the simulator driver in real
time), Debian's chromium driven by Playwright with an operator signed in at ``/desk`` and available. Each call
comes in from a known customer's number; the time is taken just before the simulator offers the call (the
first thing the driver does) and when the desk's script has drawn the card from the WebSocket's ringing event
(``window.kakehashiDesk.pops``, ``performance.timeOrigin + performance.now()``; one clock on one machine).
The caller then hangs up while it rings, so the operator is free for the next call.

Reported over ``calls`` (after one warm-up call, reported as ``first_ms``): ``p50_ms``, ``p99_ms`` (nearest
rank), ``max_ms``, ``mean_ms``, and ``stages_ms``: [p50, p90] of each stage after the offer (the server's events
as they leave their commits, the message in the browser, the card drawn). The path
measured includes the calls domain's commit, the controller routing the call to the operator, the agent's
ringing event with the screen pop (an audited read), the WebSocket and the browser's rendering.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kakehashi.bench.serving import serving
from kakehashi.bench.stats import percentile

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from kakehashi.telephony.drivers.sim.driver import SimDriver

CHROMIUM = "/usr/bin/chromium"
#: ``--postgres``: a database of the benchmark's own, made empty first and dropped after.
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kakehashi_bench_desk"
CENTER = "0120-444-444"
CALLER = "03-1234-5678"
USER, PASSWORD = "bench-operator", "bench-desk-passphrase"


# Waiting in the page on its own mutations, not with Playwright's ``expect``: that keeps checking the page while
# it waits, and a page checked so delivers its WebSocket messages ~11 ms late (measured: docs/benchmarks.md) —
# a cost of the instrument, not of the desk. Each resolves False on timeout.
UNTIL_POPS = """([n, ms]) => new Promise((resolve) => {
  const done = () => window.kakehashiDesk.pops.length >= n;
  if (done()) return resolve(true);
  const watch = new MutationObserver(() => { if (done()) { watch.disconnect(); resolve(true); } });
  watch.observe(document.body, { attributes: true, attributeFilter: ["data-pops"] });
  setTimeout(() => { watch.disconnect(); resolve(done()); }, ms);
})"""
UNTIL_IDLE = """(ms) => new Promise((resolve) => {
  const done = () => !document.getElementById("call-empty").hidden
    && document.getElementById("state-badge").dataset.state === "available";
  if (done()) return resolve(true);
  const watch = new MutationObserver(() => { if (done()) { watch.disconnect(); resolve(true); } });
  watch.observe(document.body, { attributes: true, subtree: true, attributeFilter: ["hidden", "data-state"] });
  setTimeout(() => { watch.disconnect(); resolve(done()); }, ms);
})"""


# The server's stages, as their events leave the commit (the bus calls its handlers in the committing thread).
STAGES = ("call.offered", "call.answered", "call.queued", "agent.ringing")


def measure_pops(
    page: Page, sim: SimDriver, *, ani: str, dnis: str, calls: int, warmup: int = 1, timeout_ms: int = 10_000
) -> dict[str, Any]:
    """Offer ``warmup`` + ``calls`` calls one after another to the operator whose desk is ``page`` (available,
    idle); the first ``warmup`` run on cold caches (statements compiled, code paths loaded, the page's script
    compiled) and are reported apart, as ``first_ms``. ``stages_ms`` gives p50/p90 of each step after the offer:
    the server's events, the ringing message in the browser (``received``) and the card drawn."""
    from kakehashi.kit.events import Event, bus

    timings: list[dict[str, float]] = []

    def reached(event: Event) -> None:
        if timings:
            timings[-1].setdefault(event.name, time.time() * 1000)

    stop = [bus.subscribe(name, reached) for name in STAGES]
    try:
        done = page.evaluate("window.kakehashiDesk.pops.length")
        for _ in range(warmup + calls):
            started = time.time() * 1000
            timings.append({"offer": started})
            ref = sim.incoming(ani=ani, dnis=dnis)
            if not page.evaluate(UNTIL_POPS, [done + 1, timeout_ms]):
                raise TimeoutError(f"no screen pop on the desk within {timeout_ms} ms")
            pop = page.evaluate(f"window.kakehashiDesk.pops[{done}]")
            timings[-1].update(received=pop["received"], drawn=pop["at"])
            done += 1
            sim.caller_hangs_up(ref)
            if not page.evaluate(UNTIL_IDLE, timeout_ms):
                raise TimeoutError(f"the desk did not go back to available within {timeout_ms} ms")
    finally:
        for unsubscribe in stop:
            unsubscribe()
    measured = timings[warmup:]
    latencies = [t["drawn"] - t["offer"] for t in measured]
    stages = {}
    for stage in (*STAGES, "received", "drawn"):
        after = [t[stage] - t["offer"] for t in measured if stage in t]
        stages[stage] = [round(percentile(after, 50), 1), round(percentile(after, 90), 1)] if after else None
    return {
        "calls": calls,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "first_ms": [round(t["drawn"] - t["offer"], 2) for t in timings[:warmup]],
        "stages_ms": stages,
    }


def run(calls: int = 100, database_url: str | None = None) -> dict[str, Any]:
    """Start the app and a browser, sign an operator in, and measure ``calls`` screen pops. The database is a
    SQLite file in a temporary directory, or with ``database_url`` a PostgreSQL database of that name, made
    empty first and dropped after (so give it a name of its own, as ``POSTGRES_URL``)."""
    from sqlalchemy.engine import make_url

    from kakehashi.kit.dbadmin import recreate_database

    if database_url is not None:
        recreate_database(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="kakehashi-bench-desk-") as tmp:
            url = database_url or f"sqlite:///{tmp}/bench.db"
            result = _measure(calls, url, Path(tmp))
    finally:
        if database_url is not None:
            recreate_database(database_url, create=False)
    return {"benchmark": "desk_screen_pop", "database": make_url(url).get_backend_name(), **result}


def _measure(calls: int, database_url: str, data_dir: Path) -> dict[str, Any]:
    """Seed the database, serve the app on a free port, sign the operator in at /desk and measure."""
    from playwright.sync_api import sync_playwright

    from kakehashi.app import create_app
    from kakehashi.kit.config import Settings

    settings = Settings(database_url=database_url, data_dir=data_dir)
    _seed(settings)
    app = create_app(settings)
    with serving(app, start_timeout=30) as url:
        sim = app.state.telephony.driver
        sim.set_agent(USER, answers=False)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            page = browser.new_page(base_url=url, locale="ja-JP")
            page.goto("/login?next=/desk")
            page.locator("#username").fill(USER)
            page.locator("#password").fill(PASSWORD)
            page.locator("#password").press("Enter")
            page.wait_for_url("**/desk")
            page.wait_for_selector("body[data-ready]")
            page.locator("#go-available").click()
            page.wait_for_selector("#state-badge[data-state=available]")
            result = measure_pops(page, sim, ani=CALLER, dnis=CENTER, calls=calls)
            browser.close()
    return result


def _seed(settings: Any) -> None:
    from kakehashi.agents import service as agents
    from kakehashi.auth import service as auth
    from kakehashi.customers import service as customers
    from kakehashi.customers.schemas import CustomerCreate
    from kakehashi.kit import migrate
    from kakehashi.kit.context import Actor, Role
    from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
    from kakehashi.routing import service as routing
    from kakehashi.tenants import service as tenants

    engine = make_engine(settings.effective_database_url)
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        home = tenants.get_or_create(session, settings.default_tenant, "ベンチマーク")
        auth.create_user(session, username=USER, password=PASSWORD, role=Role.OPERATOR, tenant_id=home.id)
        admin = Actor(tenant_id=home.id, username="bench", role=Role.ADMIN)
        agents.create_agent(session, admin, USER, "ベンチ 太郎", {})
        queue = routing.create_queue(session, admin, "orders", {"ring_timeout_s": 300, "wrap_up_s": 0})
        routing.set_members(session, admin, queue.id, {USER: 1})
        routing.add_number(session, admin, CENTER, flow=None, queue="orders", label="")
        customers.create_customer(session, admin, CustomerCreate.model_validate(
            {"name": "山田 花子", "name_kana": "ヤマダ ハナコ", "phones": [{"number": CALLER}]}
        ))  # fmt: skip
    engine.dispose()
