"""The campaign pages rendered by the server (/campaigns, the editor, /campaigns/dnc): who gets which page, what the
editor holds for a saved campaign, another tenant's campaign, the menu links, English. The pages' script in a real
browser: tests/test_browser_campaigns.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.agents import service as agents
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.context import Actor, Role
from kakehashi.routing import service as routing

PAGES = ("/campaigns", "/campaigns/new", "/campaigns/dnc")
CAMPAIGN: dict[str, Any] = {
    "name": "秋の布団キャンペーン",
    "kind": "sales",
    "caller_id": "03-1234-5678",
    "dial_mode": "progressive",
    "goal": 120,
    "opening_statement": "株式会社かけはし通販の佐藤と申します。羽毛布団のご案内でお電話しました。",
    "windows": [{"weekday": 0, "start": "10:00", "end": "12:00"}, {"weekday": 2, "start": "13:00", "end": "20:00"}],
    "agents": ["tanaka"],
    "queues": ["outbound"],
    "result_codes": [{"code": "受注", "human": True, "contact": True, "success": True, "final": True}],
    "ring_timeout_s": 25,
    "preview_autodial_s": 15,
    "product_line": "寝具",
    "refusal_scope": "product_line",
}


@pytest.fixture
def staffed(session: Session, actor: Actor) -> Actor:
    """The tenant's agents and a queue, to be picked in the editor."""
    agents.create_agent(session, actor, "tanaka", "田中 優子", {})
    agents.create_agent(session, actor, "suzuki", "鈴木 一郎", {})
    routing.create_queue(session, actor, "outbound", {"label": "発信チーム"})
    session.flush()
    return actor


@pytest.fixture
def campaign(client: TestClient, staffed: Actor) -> dict[str, Any]:
    r = client.post("/api/v1/campaigns", json=CAMPAIGN)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def checked(html: str, attrs: str) -> bool:
    """Whether the checkbox whose attributes contain ``attrs`` is checked."""
    found = re.search(rf"<input[^>]*{re.escape(attrs)}[^>]*>", html)
    assert found, attrs
    return " checked" in found.group(0)


def test_given_a_supervisor_then_the_list_has_the_campaign_its_buttons_and_new(
    client_as: ClientAs, campaign: dict[str, Any]
) -> None:
    page = client_as(Role.SUPERVISOR).get("/campaigns")
    assert page.status_code == 200 and '<html lang="ja">' in page.text
    html = page.text
    assert f'<a href="/campaigns/{campaign["id"]}">秋の布団キャンペーン</a>' in html
    assert "販売" in html and "プログレッシブ" in html and "下書き" in html and ">120<" in html
    for action in ("start", "pause", "stop"):
        assert f'data-action="{action}" data-id="{campaign["id"]}"' in html
    assert 'href="/campaigns/new"' in html and 'href="/campaigns/dnc"' in html
    assert f'href="/campaigns/{campaign["id"]}/results"' in html
    assert 'src="/static/campaigns.js"' in html and 'href="/static/campaigns.css"' in html


def test_given_a_client_viewer_then_the_list_is_read_only_and_the_other_pages_refused(
    client_as: ClientAs, campaign: dict[str, Any]
) -> None:
    viewer = client_as(Role.CLIENT_VIEWER)
    html = viewer.get("/campaigns").text
    assert "秋の布団キャンペーン" in html and "閲覧のみ" in html
    assert "data-action=" not in html and 'href="/campaigns/new"' not in html
    assert f'href="/campaigns/{campaign["id"]}"' not in html
    assert f'href="/campaigns/{campaign["id"]}/results"' in html  # the results page is theirs too
    assert 'href="/campaigns"' in html  # the menu leads there
    for path in ("/campaigns/new", "/campaigns/dnc", f"/campaigns/{campaign['id']}"):
        assert viewer.get(path).status_code == 403, path


def test_given_an_operator_or_nobody_then_no_campaign_page(client_as: ClientAs, app_client: TestClient) -> None:
    operator = client_as(Role.OPERATOR)
    for path in PAGES:
        assert operator.get(path).status_code == 403, path
        anonymous = app_client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=/campaigns")
    assert 'href="/campaigns"' not in operator.get("/").text


def test_given_a_saved_campaign_then_the_editor_holds_every_setting(
    client_as: ClientAs, campaign: dict[str, Any]
) -> None:
    html = client_as(Role.SUPERVISOR).get(f"/campaigns/{campaign['id']}").text
    assert 'value="秋の布団キャンペーン"' in html and 'value="03-1234-5678"' in html  # the caller id as written
    assert '<option value="progressive" selected>' in html and '<option value="sales" selected>' in html
    assert 'value="120"' in html and 'value="25"' in html and 'value="15"' in html and 'value="寝具"' in html
    assert '<option value="product_line" selected>' in html
    assert "羽毛布団のご案内" in html and "特定商取引法 第16条" in html  # the statement and the Art.16 hint
    monday = re.search(r'<fieldset class="day" data-weekday="0">.*?</fieldset>', html, flags=re.S)
    wednesday = re.search(r'<fieldset class="day" data-weekday="2">.*?</fieldset>', html, flags=re.S)
    assert monday and 'value="10:00"' in monday.group(0) and 'value="12:00"' in monday.group(0)
    assert wednesday and 'value="13:00"' in wednesday.group(0) and 'value="20:00"' in wednesday.group(0)
    assert checked(html, 'name="agents" value="tanaka"') and not checked(html, 'name="agents" value="suzuki"')
    assert "田中 優子" in html and "発信チーム" in html and checked(html, 'name="queues" value="outbound"')
    order = re.search(r'<tr data-code="受注">.*?</tr>', html, flags=re.S)
    other = re.search(r'<tr data-code="その他" class="unused">.*?</tr>', html, flags=re.S)
    assert order and other  # every active result code of the tenant is offered
    assert checked(order.group(0), 'class="rc-use"') and checked(order.group(0), 'data-flag="success"')
    assert not checked(order.group(0), 'data-flag="refusal"') and not checked(other.group(0), 'class="rc-use"')
    assert 'id="upload-form"' in html and 'id="drop"' in html  # the list upload
    assert f'href="/campaigns/{campaign["id"]}/results"' in html


def test_only_an_admin_may_write_the_night_reason(client_as: ClientAs, campaign: dict[str, Any]) -> None:
    night = re.compile(r'<textarea id="f-night"[^>]*>')
    supervisor = night.search(client_as(Role.SUPERVISOR).get(f"/campaigns/{campaign['id']}").text)
    admin = night.search(client_as(Role.ADMIN).get(f"/campaigns/{campaign['id']}").text)
    assert supervisor and "readonly" in supervisor.group(0)
    assert admin and "readonly" not in admin.group(0)


def test_a_new_campaign_starts_from_the_apis_defaults(client_as: ClientAs, staffed: Actor) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    html = supervisor.get("/campaigns/new").text
    assert 'data-id=""' in html and 'id="upload-form"' not in html and "保存してからリストを取り込めます" in html
    assert f'value="{supervisor.user.username}"' in html  # type: ignore[attr-defined]  # the owner: the creator
    assert 'id="f-delay-no_answer" name="retry_rules.delays.no_answer"' in html
    delays = dict(re.findall(r'id="f-delay-(\w+)"[^>]*value="(\d*)"', html, flags=re.S))
    assert delays == {"no_answer": "60", "busy": "10", "machine": "120", "invalid": "", "failed": "30"}


def test_another_tenants_campaign_is_not_found(client_as: ClientAs, campaign: dict[str, Any]) -> None:
    other = client_as(Role.ADMIN, "tenant-b")
    page = other.get(f"/campaigns/{campaign['id']}")
    assert page.status_code == 404 and "秋の布団キャンペーン" not in page.text
    assert "秋の布団キャンペーン" not in other.get("/campaigns").text


def test_the_pages_in_english(client_as: ClientAs, campaign: dict[str, Any]) -> None:
    admin = client_as(Role.ADMIN)
    data = {CAMPAIGN["name"], CAMPAIGN["opening_statement"], "田中 優子", "鈴木 一郎", "発信チーム", "寝具"}
    data |= {d.code for d in dispositions.DEFAULTS}  # the codes (data-code), shown by their English label
    for path in (*PAGES, f"/campaigns/{campaign['id']}"):
        html = admin.get(f"{path}?lang=en").text
        visible = re.sub(r"<script.*?</script>", "", html, flags=re.S)
        runs = re.findall(r"[\u3040-\u30ff\u4e00-\u9fff・（）]+", visible)
        leftovers = {run for run in runs if not any(run in d for d in data)}
        assert leftovers <= {"架", "日本語"}, (path, leftovers)
    assert "Order taken" in admin.get(f"/campaigns/{campaign['id']}?lang=en").text  # result codes' English labels


def test_the_pages_script_and_style_are_local(app_client: TestClient) -> None:
    for url in ("/static/campaigns.js", "/static/campaigns.css"):
        body = app_client.get(url)
        assert body.status_code == 200 and body.text
        assert not re.search(r"https?://", body.text) and "@import" not in body.text
        assert "innerHTML" not in body.text and "insertAdjacentHTML" not in body.text


def test_a_predictive_campaigns_settings_and_machine_detection_are_in_the_editor(
    client_as: ClientAs, staffed: Actor
) -> None:
    """The dial mode offers 予測発信; a predictive campaign's editor shows its settings (the target in %) and the
    detector's parameters under 詳細設定 with Asterisk's defaults; another mode's editor keeps the section hidden."""
    supervisor = client_as(Role.SUPERVISOR)
    fresh = supervisor.get("/campaigns/new").text
    assert '<option value="predictive">予測発信</option>' in fresh
    assert re.search(r'<section class="panel predictive" id="predictive-settings"[^>]* hidden>', fresh)
    body = {
        **CAMPAIGN,
        "dial_mode": "predictive",
        "predictive": {"abandon_target": 0.025, "max_lines_per_agent": 2.5, "max_in_flight": 40,
                       "abandon_message": "かけはし通販です。0120-123-456 までお電話ください。"},
        "amd": {"enabled": True, "action": "message", "machine_message": "改めてお電話します。",
                "between_words_silence_ms": 150},
    }  # fmt: skip
    created = supervisor.post("/api/v1/campaigns", json=body).json()
    html = supervisor.get(f"/campaigns/{created['id']}").text
    assert '<option value="predictive" selected>' in html
    assert re.search(r'<section class="panel predictive" id="predictive-settings"[^>]*>', html)
    assert not re.search(r'id="predictive-settings"[^>]* hidden>', html)
    assert re.search(r'id="f-abandon-target"[^>]*value="2.5"', html, flags=re.S)  # 2.5 %, sent as 0.025
    assert re.search(r'id="f-lines"[^>]*value="2.5"', html, flags=re.S)
    assert re.search(r'id="f-in-flight"[^>]*value="40"', html, flags=re.S)
    assert "0120-123-456 までお電話ください。</textarea>" in html and "会社名と折り返し先の電話番号" in html
    assert checked(html, 'name="amd.enabled"') and '<option value="message" selected>' in html
    assert re.search(r'<details class="advanced" id="amd-advanced">\s*<summary>詳細設定</summary>', html)
    params = dict(re.findall(r'id="f-amd-(\w+)"[^>]*value="(\d+)"', html, flags=re.S))
    assert params["between_words_silence_ms"] == "150" and params["initial_silence_ms"] == "2500"
    assert 'data-default="50" data-japanese="150"' in html  # between words: Asterisk's, and for Japanese
    assert 'id="save-start"' in html  # a draft: saved and started from the editor
