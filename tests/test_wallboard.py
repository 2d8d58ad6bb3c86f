"""The supervisors' wallboard on the server: the floor's snapshot (``GET /api/v1/wallboard``, the same numbers as
each queue's real-time statistics, its alerts, agents with their queues), who may see it, that other tenants never
show, and the page ``/wallboard`` (escaped data, strings in both languages, local assets only)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from conftest import TEST_PASSWORD, ClientAs, MakeUser
from kakehashi.agents.models import AgentSkill, AuxCode
from kakehashi.analytics import definitions as d
from kakehashi.analytics import service
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import utcnow
from kakehashi.routing.models import QueueMember
from kakehashi.web.i18n import JS_STRINGS, js_strings
from test_metrics import add_agent, add_call, add_cdr, add_queue, jst

NOW = jst(24, 12, 0)
STATIC = Path(__file__).parents[1] / "src" / "kakehashi" / "web" / "static"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]+")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No telephony driver: these tests write calls, CDRs and agents directly, and nothing else may touch them."""
    return Settings(data_dir=tmp_path, database_url="sqlite://", default_tenant="center", telephony_driver="none")


JAPAN = ZoneInfo("Asia/Tokyo")


def build_floor(session: Session, tenant_id: int, now: Any) -> dict[str, Any]:
    """Queues sales (T 20 s, listed members), support (T 30 s, skill "en") and quiet (no calls), five agents."""
    t = tenant_id
    sales = add_queue(session, t, "sales")
    support = add_queue(session, t, "support", threshold=30, skill="en")
    quiet = add_queue(session, t, "quiet")
    session.add(AuxCode(tenant_id=t, code="lunch", label="昼休憩"))
    # sales today: answered in 10 s and 20 s (= T) and 45 s, one abandoned: SL 2/3 — below the 80 % target.
    # "Today" is the Japan day of ``now``: just after midnight in Japan, hours ago is yesterday, so the calls of
    # the day start at its first second at the earliest (the test failed from 00:00 to 02:00 JST).
    day = now.astimezone(JAPAN).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(seconds=1)

    def ago(**delta: float) -> Any:
        return max(now - timedelta(**delta), day)

    add_cdr(session, t, "sales", ago(hours=2), waited=(6, 4), talk=100, agent="wb-a1")
    add_cdr(session, t, "sales", ago(hours=2), waited=(15.5, 4.5), talk=50, agent="wb-a1")
    add_cdr(session, t, "sales", ago(hours=1), waited=(40, 5), talk=200, wrap=10, agent="wb-a2")
    add_cdr(session, t, "sales", ago(minutes=30), final="abandoned", answered=False, waited=(50, 0))
    add_cdr(session, t, "support", ago(minutes=20), waited=(3, 2), talk=60, agent="wb-a4")
    # waiting now: sales 30 s and 50 s (over its 20 s); support 25 s (within its 30 s)
    add_call(session, t, "queued", "sales", now - timedelta(seconds=40), queued_at=now - timedelta(seconds=30))
    add_call(session, t, "ringing", "sales", now - timedelta(seconds=55), queued_at=now - timedelta(seconds=50))
    add_call(session, t, "connected", "sales", now - timedelta(seconds=400), queued_at=now - timedelta(seconds=300))
    add_call(session, t, "queued", "support", now - timedelta(seconds=25), queued_at=now - timedelta(seconds=25))
    a1 = add_agent(session, t, "wb-a1", "available", queue=sales)
    a2 = add_agent(session, t, "wb-a2", "on_call")
    session.add(QueueMember(queue_id=sales.id, agent_id=a2.id, level=2))
    a3 = add_agent(session, t, "wb-a3", "break", queue=sales)
    a3.state_reason = "lunch"
    a4 = add_agent(session, t, "wb-a4", "available", queue=quiet)
    session.add(AgentSkill(agent_id=a4.id, skill="en", level=2))
    a5 = add_agent(session, t, "wb-a5", "logged_out")
    session.flush()
    return {"sales": sales, "support": support, "quiet": quiet, "agents": (a1, a2, a3, a4, a5)}


@pytest.fixture
def floor(session: Session, actor: Actor, other_actor: Actor) -> dict[str, Any]:
    built = build_floor(session, actor.tenant_id, NOW)
    # Tenant B: a queue of the same name with callers waiting long, an agent, calls.
    b = other_actor.tenant_id
    add_queue(session, b, "sales", threshold=5)
    add_queue(session, b, "b-secret-queue")
    add_cdr(session, b, "sales", NOW - timedelta(hours=1), final="abandoned", answered=False, waited=(90, 0))
    add_call(session, b, "queued", "sales", NOW - timedelta(seconds=500), queued_at=NOW - timedelta(seconds=500))
    add_agent(session, b, "b-secret-agent", "available")
    return built


# -- the snapshot ---------------------------------------------------------------------------------------------


def test_each_queue_has_the_figures_of_its_real_time_statistics(
    session: Session, actor: Actor, floor: dict[str, Any]
) -> None:
    board = service.wallboard(session, actor, now=NOW)
    assert [q.queue for q in board.queues] == ["quiet", "sales", "support"]
    assert board.at == NOW and board.since == jst(24)
    for q in board.queues:
        stats = service.queue_snapshot(session, actor.tenant_id, q.queue, NOW)
        same = set(type(q).model_fields) & set(type(stats).model_fields) - {"at", "since"}
        assert {f: getattr(q, f) for f in same} == {f: getattr(stats, f) for f in same}, q.queue
    sales = next(q for q in board.queues if q.queue == "sales")
    assert (sales.calls_waiting, sales.longest_wait_s, sales.members) == (2, 50.0, 3)
    assert (sales.offered, sales.answered, sales.abandoned, sales.service_level, sales.abandon_rate) == (
        4, 3, 1, 0.6667, 0.25
    )  # fmt: skip
    assert sales.agents_by_state == {
        "available": 1, "ringing": 0, "on_call": 1, "wrap_up": 0, "break": 1, "missed": 0, "logged_out": 0
    }  # fmt: skip
    assert (sales.threshold_s, sales.sl_target, sales.wait_limit_s) == (20, 0.8, 20)  # 80/20 unless set
    support = next(q for q in board.queues if q.queue == "support")
    assert (support.skill, support.members, support.calls_waiting, support.service_level) == ("en", 1, 1, 1.0)
    quiet = next(q for q in board.queues if q.queue == "quiet")
    assert (quiet.offered, quiet.service_level, quiet.longest_wait_s, quiet.members) == (0, None, None, 1)


def test_alerts_say_which_queue_is_below_its_target_or_has_waited_too_long(
    session: Session, actor: Actor, floor: dict[str, Any]
) -> None:
    board = service.wallboard(session, actor, now=NOW)
    assert [(a.queue, a.kind, a.value, a.limit) for a in board.alerts] == [
        ("sales", "service_level", 0.6667, 0.8),
        ("sales", "wait", 50.0, 20),
    ]
    # support's caller has waited 25 s of its 30; quiet has no answered call, hence no service level to miss
    later = service.wallboard(session, actor, now=NOW + timedelta(seconds=6))
    assert ("support", "wait") in {(a.queue, a.kind) for a in later.alerts}


def test_a_queue_holds_to_its_own_target_and_wait_limit(session: Session, actor: Actor, floor: dict[str, Any]) -> None:
    floor["sales"].sl_target_pct, floor["sales"].wait_alert_s = 60, 120
    session.flush()
    board = service.wallboard(session, actor, now=NOW)
    sales = next(q for q in board.queues if q.queue == "sales")
    assert (sales.sl_target, sales.wait_limit_s) == (0.6, 120)
    assert [a for a in board.alerts if a.queue == "sales"] == []  # 66.7 % ≥ 60 %, 50 s ≤ 120 s
    floor["sales"].sl_target_pct = 70
    session.flush()
    alerts = service.wallboard(session, actor, now=NOW + timedelta(seconds=71)).alerts
    assert [(a.kind, a.limit) for a in alerts if a.queue == "sales"] == [("service_level", 0.7), ("wait", 120)]


def test_an_alert_starts_past_the_limit_not_at_it() -> None:
    assert not d.below_target(0.8, 0.8) and d.below_target(0.7999, 0.8)
    assert not d.wait_too_long(20.0, 20) and d.wait_too_long(20.1, 20)


def test_agents_with_their_state_break_reason_and_queues(session: Session, actor: Actor, floor: dict[str, Any]) -> None:
    board = service.wallboard(session, actor, now=NOW)
    agents = {a.name: a for a in board.agents}
    assert list(agents) == ["wb-a1", "wb-a2", "wb-a3", "wb-a4", "wb-a5"]
    a3 = agents["wb-a3"]
    assert (a3.display_name, a3.state, a3.reason, a3.reason_label, a3.since) == ("wb-a3 さん", "break", "lunch",
                                                                                  "昼休憩", jst(1))  # fmt: skip
    queues = {name: [(m.queue, m.level, m.by_skill) for m in a.queues] for name, a in agents.items()}
    assert queues == {
        "wb-a1": [("sales", 1, False)],
        "wb-a2": [("sales", 2, False)],
        "wb-a3": [("sales", 1, False)],
        "wb-a4": [("quiet", 1, False), ("support", 2, True)],
        "wb-a5": [],
    }
    assert [(c.code, c.label) for c in board.aux_codes] == [("lunch", "昼休憩")]


def test_another_tenant_never_shows(session: Session, actor: Actor, other_actor: Actor, floor: dict[str, Any]) -> None:
    text = service.wallboard(session, actor, now=NOW).model_dump_json()
    assert "b-secret" not in text
    theirs = service.wallboard(session, other_actor, now=NOW)
    assert [q.queue for q in theirs.queues] == ["b-secret-queue", "sales"]
    assert [a.name for a in theirs.agents] == ["b-secret-agent"]
    assert "wb-a1" not in theirs.model_dump_json()


@contextmanager
def count_queries(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind().engine

    def record(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_number_of_queries_does_not_grow_with_queues_or_agents(
    session: Session, actor: Actor, floor: dict[str, Any]
) -> None:
    with count_queries(session) as few:
        service.wallboard(session, actor, now=NOW)
    for i in range(8):
        queue = add_queue(session, actor.tenant_id, f"more-{i}")
        add_cdr(session, actor.tenant_id, queue.name, NOW - timedelta(minutes=i + 1), waited=(3, 1), talk=30)
        add_call(session, actor.tenant_id, "queued", queue.name, NOW - timedelta(seconds=9), queued_at=NOW)
        add_agent(session, actor.tenant_id, f"more-{i}", "available", queue=queue)
    session.expire_all()
    with count_queries(session) as many:
        board = service.wallboard(session, actor, now=NOW)
    assert len(board.queues) == 11 and len(board.agents) == 13
    assert len(many) == len(few) <= 8, many


# -- over HTTP --------------------------------------------------------------------------------------------------


def tenant_of(client: TestClient) -> int:
    """The tenant of the user behind a ``client_as`` client."""
    tenant_id = getattr(client, "user").tenant_id  # noqa: B009 - set by conftest's client_as, unknown to the type
    assert isinstance(tenant_id, int)
    return tenant_id


def test_supervisors_and_admins_get_the_snapshot_operators_do_not(
    client_as: ClientAs, session: Session, app_client: TestClient
) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    build_floor(session, tenant_of(supervisor), utcnow())
    r = supervisor.get("/api/v1/wallboard")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [q["queue"] for q in body["queues"]] == ["quiet", "sales", "support"]
    sales = body["queues"][1]
    assert sales["calls_waiting"] == 2 and sales["longest_wait_s"] >= 50 and sales["service_level"] == 0.6667
    assert {(a["queue"], a["kind"]) for a in body["alerts"]} == {("sales", "service_level"), ("sales", "wait")}
    assert body["at"].endswith("+09:00") and body["since"].endswith("T00:00:00+09:00")
    assert client_as(Role.ADMIN).get("/api/v1/wallboard").status_code == 200
    assert client_as(Role.OPERATOR).get("/api/v1/wallboard").status_code == 403
    assert client_as(Role.CLIENT_VIEWER).get("/api/v1/wallboard").status_code == 403
    assert app_client.get("/api/v1/wallboard").status_code == 401


def test_a_supervisor_sees_only_their_own_tenants_floor(client_as: ClientAs, session: Session) -> None:
    b = client_as(Role.SUPERVISOR, "tenant-b")
    build_floor(session, tenant_of(b), utcnow())
    add_queue(session, tenant_of(b), "b-only")
    a = client_as(Role.SUPERVISOR, "tenant-a")
    body = a.get("/api/v1/wallboard").json()
    assert body["queues"] == [] and body["agents"] == [] and body["alerts"] == []
    assert "b-only" not in json.dumps(body)
    assert "b-only" in b.get("/api/v1/wallboard").text
    center = client_as(Role.ADMIN, center_wide=True)  # a center-wide admin picks the client with the header
    assert "b-only" in center.get("/api/v1/wallboard", headers={"X-Kakehashi-Tenant": "tenant-b"}).text


# -- the page ---------------------------------------------------------------------------------------------------


def web_login(client: TestClient, username: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post("/login", data={"username": username, "password": TEST_PASSWORD, "csrf_token": token.group(1)},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303


def snapshot_of(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="snapshot">(.*?)</script>', html, flags=re.S)
    assert found
    result: dict[str, Any] = json.loads(found.group(1))
    return result


def strings_of(html: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="strings">(.*?)</script>', html, flags=re.S)
    assert found
    result: dict[str, str] = json.loads(found.group(1))
    return result


def test_the_page_embeds_the_snapshot_with_user_data_escaped(
    app_client: TestClient, make_user: MakeUser, session: Session
) -> None:
    user = make_user(Role.SUPERVISOR)
    assert user.tenant_id is not None
    floor = build_floor(session, user.tenant_id, utcnow())
    floor["agents"][0].display_name = "</script><script>alert(1)</script>"
    floor["sales"].label = '<img src=x onerror="alert(2)">注文'
    session.flush()
    web_login(app_client, user.username)
    page = app_client.get("/wallboard")
    assert page.status_code == 200
    html = page.text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    board = snapshot_of(html)
    assert board["agents"][0]["display_name"] == "</script><script>alert(1)</script>"  # as data, kept whole
    assert [q["label"] for q in board["queues"]][1] == '<img src=x onerror="alert(2)">注文'
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/static/wallboard.js"' in html and 'href="/static/wallboard.css"' in html
    assert 'src="/static/vendor/chart.umd.min.js"' in html
    assert re.search(r"<h1>見える化</h1>", html) and 'id="strings"' in html
    assert not re.search(r"<[a-z][^>]*\sstyle=", html) and not re.search(r"<script>(?!</script>)", html)
    assert strings_of(html)["wb.waiting"] == "待ち呼"


def test_the_page_in_english(app_client: TestClient, make_user: MakeUser, session: Session) -> None:
    user = make_user(Role.ADMIN)
    assert user.tenant_id is not None
    build_floor(session, user.tenant_id, utcnow())
    web_login(app_client, user.username)
    html = app_client.get("/wallboard?lang=en").text
    visible = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    leftovers = set(JAPANESE.findall(visible)) - {"架", "日本語"}
    assert leftovers == set(), leftovers
    assert "<h1>Wallboard</h1>" in html and "Calls per 15 minutes" in html and "Last 4 hours" in html
    strings = strings_of(html)
    assert strings["wb.waiting"] == "Waiting" and strings["wb.alert.wait"].startswith("{queue}: a caller")


def test_only_supervisors_and_admins_get_the_page_and_its_menu_link(
    app_client: TestClient, make_user: MakeUser
) -> None:
    assert app_client.get("/wallboard", follow_redirects=False).status_code in (303, 307)  # to the login
    for role in (Role.OPERATOR, Role.CLIENT_VIEWER):
        app_client.cookies.clear()
        web_login(app_client, make_user(role).username)
        assert app_client.get("/wallboard").status_code == 403
        assert 'href="/wallboard"' not in app_client.get("/").text
    for role in (Role.SUPERVISOR, Role.ADMIN):
        app_client.cookies.clear()
        web_login(app_client, make_user(role).username)
        assert app_client.get("/wallboard").status_code == 200
        assert 'href="/wallboard"' in app_client.get("/routing").text


def test_every_string_the_script_asks_for_exists_in_both_languages() -> None:
    script = (STATIC / "wallboard.js").read_text(encoding="utf-8")
    asked = set(re.findall(r'S\["([\w.]+)"\]', script)) | set(re.findall(r'text\("([\w.]+)"', script))
    asked |= set(re.findall(r"\bS\.(\w+)", script))
    asked |= {f"wb.state.{s}" for s in d.AGENT_STATES}
    assert asked - set(JS_STRINGS) == set()
    english = js_strings("en")
    own = {key for key in JS_STRINGS if key.startswith("wb.")}
    assert {key for key in own if JAPANESE.search(english[key])} == set()
    assert {key for key in own if not JAPANESE.search(JS_STRINGS[key]) and key not in ("wb.call.ivr",)} == set()


def test_the_script_and_style_are_local_and_build_no_html() -> None:
    for name in ("wallboard.js", "wallboard.css"):
        body = (STATIC / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://", body) and "@import" not in body
    script = (STATIC / "wallboard.js").read_text(encoding="utf-8")
    for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", 'setAttribute("style'):
        assert risky not in script
    assert (STATIC / "vendor" / "chart.umd.min.js").stat().st_size > 100_000
