"""``kakehashi bench desk``: from ``call.offered`` to the caller's card drawn on the agent desktop.

The whole product on loopback: the app (uvicorn, SQLite in a temporary directory, the simulator driver in real
time), Debian's chromium driven by Playwright with an operator signed in at ``/desk`` and available. Each call
comes in from a known customer's number; the time is taken just before the simulator offers the call (the
first thing the driver does) and when the desk's script has drawn the card from the WebSocket's ringing event
(``window.kakehashiDesk.pops``, ``performance.timeOrigin + performance.now()``; one clock on one machine).
The caller then hangs up while it rings, so the operator is free for the next call.

Reported: ``p50_ms``, ``p99_ms``, ``max_ms``, ``mean_ms`` over ``calls``; the path measured includes the
calls domain's commit, the controller routing the call to the operator, the agent's ringing event with the
screen pop (an audited read), the WebSocket and the browser's rendering.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from kakehashi.telephony.drivers.sim.driver import SimDriver

CHROMIUM = "/usr/bin/chromium"
CENTER = "0120-444-444"
CALLER = "03-1234-5678"
USER, PASSWORD = "bench-operator", "bench-desk-passphrase"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def measure_pops(
    page: Page, sim: SimDriver, *, ani: str, dnis: str, calls: int, timeout_ms: int = 10_000
) -> dict[str, Any]:
    """Offer ``calls`` calls one after another to the operator whose desk is ``page`` (available, idle)."""
    from playwright.sync_api import expect

    latencies: list[float] = []
    done = page.evaluate("window.kakehashiDesk.pops.length")
    for _ in range(calls):
        started = time.time() * 1000
        ref = sim.incoming(ani=ani, dnis=dnis)
        # The page's CSP forbids eval (wait_for_function): the desk counts its pops on <body data-pops>.
        expect(page.locator("body")).to_have_attribute("data-pops", str(done + 1), timeout=timeout_ms)
        drawn = page.evaluate(f"window.kakehashiDesk.pops[{done}].at")
        latencies.append(drawn - started)
        done += 1
        sim.caller_hangs_up(ref)
        expect(page.locator("#call-empty")).to_be_visible(timeout=timeout_ms)
        expect(page.locator("#state-badge")).to_have_attribute("data-state", "available", timeout=timeout_ms)
    return {
        "calls": calls,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
    }


def run(calls: int = 100) -> dict[str, Any]:
    """Start the app and a browser, sign an operator in, and measure ``calls`` screen pops."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from kakehashi.app import create_app
    from kakehashi.kit.config import Settings

    with tempfile.TemporaryDirectory(prefix="kakehashi-bench-desk-") as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", data_dir=Path(tmp))
        _seed(settings)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:  # server start-up
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
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
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    return {"benchmark": "desk_screen_pop", **result}


def _seed(settings: Any) -> None:
    from kakehashi.agents import service as agents
    from kakehashi.auth import service as auth
    from kakehashi.customers import service as customers
    from kakehashi.customers.schemas import CustomerCreate
    from kakehashi.kit import migrate
    from kakehashi.kit.context import Actor, Role
    from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
    from kakehashi.routing import service as routing
    from kakehashi.tenants import repository as tenants

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
