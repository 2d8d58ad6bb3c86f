"""The inbound routing page (/routing and its live part) and the IVR page's problems in the page's language
(the problems themselves: tests/test_ivr_problems.py)."""

from __future__ import annotations

import copy
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import TEST_PASSWORD, MakeUser
from kakehashi.agents import service as agents
from kakehashi.audit.models import AuditEvent
from kakehashi.demo import routing as demo
from kakehashi.ivr import service as ivr
from kakehashi.ivr.templates import ORDER_DESK_EXAMPLE
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import utcnow
from kakehashi.routing import service as routing
from kakehashi.routing.models import Callback, Voicemail
from kakehashi.web.pages.routing import _elapsed, _number_shown

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def web_login(client: TestClient, username: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"username": username, "password": TEST_PASSWORD, "csrf_token": token.group(1)},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303


@pytest.fixture
def center(session: Session, actor: Actor) -> Actor:
    """The demo routing, a callback to make and a message left."""
    demo.ensure(session, actor)
    now = utcnow()
    session.add(Callback(tenant_id=actor.tenant_id, queue="orders", number_e164="+819087654321",
                         origin_call_ref="page-1", priority=0, place_at=now, requested_at=now))  # fmt: skip
    session.add(Callback(tenant_id=actor.tenant_id, queue="orders", number_e164="+819011112222", status="done",
                         origin_call_ref="page-2", priority=0, place_at=now, requested_at=now))  # fmt: skip
    session.add(Voicemail(tenant_id=actor.tenant_id, queue="support", number_e164="+81355550199", call_ref="page-3",
                          left_at=now))  # fmt: skip
    session.flush()
    return actor


@pytest.fixture
def supervisor(app_client: TestClient, make_user: MakeUser, center: Actor) -> TestClient:
    web_login(app_client, make_user(Role.SUPERVISOR).username)
    return app_client


def audit_reads(session: Session, resource: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.resource == resource)))


def test_supervisors_see_queues_agents_numbers_callbacks_and_voicemail(
    supervisor: TestClient, session: Session, center: Actor
) -> None:
    page = supervisor.get("/routing")
    assert page.status_code == 200
    text = page.text
    for label in ("注文受付", "VIP窓口", "お問い合わせ", "ご意見・不具合", "着信均等分配", "一斉呼出"):
        assert label in text
    for name, (display, _skills) in demo.AGENTS.items():
        assert f'data-agent-row="{name}"' in text and display in text
    assert text.count('<span class="state state-logged_out">ログアウト</span>') == 12
    flow_id = next(f.id for f in ivr.list_flows(session, center) if f.name == demo.FLOW)
    assert "0120-555-010" in text and f'<a href="/ivr/{flow_id}">order-desk</a>' in text
    assert "テレビショッピング受注センター" in text and "<code>vip</code>" in text
    assert "090-8765-4321" in text and "待機中" in text  # the pending callback, in full for a supervisor
    assert "090-1111-2222" not in text  # a callback already made is not waiting any more
    assert "03-5555-0199" in text and "未確認" in text
    # the choices of the state menu: available, a break per aux code, logged out
    assert text.count('<optgroup label="離席">') == 12
    assert text.count('<option value="break:lunch">昼休憩</option>') == 12
    assert 'src="/static/routing.js"' in text and 'name="csrf-token"' in text
    # reading callers' numbers is in the audit log
    (cb_read,) = audit_reads(session, "callbacks")
    (vm_read,) = audit_reads(session, "voicemails")
    assert cb_read.action == vm_read.action == "read" and cb_read.role == "supervisor"


def test_the_live_part_has_no_personal_data_and_is_not_audited(supervisor: TestClient, session: Session) -> None:
    live = supervisor.get("/routing/live")
    assert live.status_code == 200
    assert live.text.lstrip().startswith('<div id="live"')
    assert "注文受付" in live.text and "田中 優子" in live.text
    assert "090-8765-4321" not in live.text and "コールバック" not in live.text
    assert audit_reads(session, "callbacks") == [] and audit_reads(session, "voicemails") == []


def test_a_supervisor_changes_an_agents_state_as_the_page_does(supervisor: TestClient, center: Actor,
                                                                session: Session) -> None:  # fmt: skip
    page = supervisor.get("/routing").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token
    tanaka = agents.agent_named(session, center, "tanaka")
    assert f'data-agent="{tanaka.id}"' in page
    url = f"/api/v1/agents/{tanaka.id}/state"
    assert supervisor.post(url, json={"state": "available"}).status_code == 403  # no CSRF header
    r = supervisor.post(url, json={"state": "break", "reason": "lunch"}, headers={"X-CSRF-Token": token.group(1)})
    assert r.status_code == 200, r.text
    live = supervisor.get("/routing/live").text
    row = re.search(r'<tr data-agent-row="tanaka">.*?</tr>', live, flags=re.S)
    assert row and "state-break" in row.group(0) and "昼休憩" in row.group(0)


def test_the_page_in_english(supervisor: TestClient, session: Session, center: Actor) -> None:
    html = supervisor.get("/routing?lang=en").text
    visible = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    data = {a.display_name for a in agents.list_agents(session, center)}
    data |= {q.label for q in routing.list_queues(session, center)} | set(demo.AUX_CODES.values())
    data |= {label for label, _flow, _queue in demo.NUMBERS.values()}
    runs = re.findall(r"[\u3040-\u30ff\u4e00-\u9fff・（）]+", visible)
    leftovers = {run for run in runs if not any(run in d for d in data)}
    assert leftovers <= {"架", "日本語"}, leftovers
    assert "Inbound routing" in html and "Longest idle" in html and "Logged out" in html and "Waiting" in html


def test_only_supervisors_and_admins_get_the_page(app_client: TestClient, make_user: MakeUser, center: Actor) -> None:
    assert app_client.get("/routing", follow_redirects=False).status_code in (303, 307)  # to the login
    for role in (Role.OPERATOR, Role.CLIENT_VIEWER):
        app_client.cookies.clear()
        web_login(app_client, make_user(role).username)
        assert app_client.get("/routing").status_code == 403
        assert app_client.get("/routing/live").status_code == 403
        assert 'href="/routing"' not in app_client.get("/").text  # and no menu link to it
    app_client.cookies.clear()
    web_login(app_client, make_user(Role.ADMIN).username)
    assert app_client.get("/routing").status_code == 200
    home = app_client.get("/").text
    assert 'href="/routing"' in home and 'href="/ivr"' in home


def test_callers_numbers_are_masked_for_roles_without_personal_data(center: Actor) -> None:
    masked = Actor(tenant_id=center.tenant_id, role=Role.CLIENT_VIEWER, sees_personal_data=False)
    assert _number_shown(center, "+819087654321") == "090-8765-4321"
    assert _number_shown(masked, "+819087654321") == "090-****-4321"
    assert _number_shown(masked, None) == ""
    assert (_elapsed(5), _elapsed(65), _elapsed(3723), _elapsed(None)) == ("0:05", "1:05", "1:02:03", "")


def test_the_page_script_and_style_are_local(app_client: TestClient) -> None:
    for url in ("/static/routing.js", "/static/routing.css"):
        body = app_client.get(url)
        assert body.status_code == 200 and body.text
        assert not re.search(r"https?://", body.text) and "@import" not in body.text
        assert "innerHTML" not in body.text and "insertAdjacentHTML" not in body.text


def test_the_ivr_page_shows_problems_in_the_pages_language(
    app_client: TestClient, make_user: MakeUser, center: Actor
) -> None:
    web_login(app_client, make_user(Role.ADMIN).username)
    token = re.search(r'name="csrf_token" value="([^"]+)"', app_client.get("/ivr").text)
    assert token
    bad = copy.deepcopy(ORDER_DESK_EXAMPLE)
    bad["nodes"]["main_menu"]["options"]["3"] = "gone"
    data = {"name": "broken", "definition": json.dumps(bad), "csrf_token": token.group(1)}
    japanese = app_client.post("/ivr", data=data)
    assert japanese.status_code == 422
    assert "<code>nodes.main_menu.options.3</code>: 「gone」というノードはありません" in japanese.text
    english = app_client.post("/ivr?lang=en", data=data)
    assert "<code>nodes.main_menu.options.3</code>: no node &#39;gone&#39;" in english.text
