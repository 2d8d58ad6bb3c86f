"""``GET /api/v1/softphone``: a short-lived SIP credential for the caller's own agent, only when a browser softphone
is configured. The browser side (registration with it, a real call) is tests/test_softphone_browser.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from conftest import ClientAs
from kakehashi.app import create_app
from kakehashi.audit.models import AuditEvent
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.telephony.api import ephemeral_credential, websocket_origin

SECRET = "test-softphone-secret-0123456789"
WS_URL = "wss://sip.example.jp:8443/ws"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A web process of a SIP deployment (driver ``none``: no phone system started by the test)."""
    return Settings(
        data_dir=tmp_path, database_url="sqlite://", default_tenant="center", telephony_driver="none",
        sip_proxy="pbx.example.jp:5060", softphone_ws_url=WS_URL, softphone_secret=SECRET,
        softphone_credential_ttl_s=1800,
    )  # fmt: skip


@pytest.fixture
def operator(client_as: ClientAs) -> Iterator[TestClient]:
    admin = client_as(Role.ADMIN)
    c = client_as(Role.OPERATOR)
    name = c.user.username
    created = admin.post("/api/v1/agents", json={"name": name, "display_name": "佐藤 花子"})
    assert created.status_code == 201, created.text
    yield c


def test_an_agent_gets_a_credential_for_their_own_name_that_kamailio_can_check(
    operator: TestClient, session: Session
) -> None:
    name = operator.user.username
    before = datetime.now(UTC)
    r = operator.get("/api/v1/softphone")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["ws_url"] == WS_URL
    assert body["uri"] == f"sip:{name}@pbx.example.jp"  # the domain defaults to the proxy's host
    assert body["display_name"] == "佐藤 花子"
    assert body["ice_servers"] == []

    expiry, user = body["authorization_user"].split(":", 1)
    assert user == name
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert int(expiry) == int(expires_at.timestamp())
    assert before + timedelta(seconds=1790) <= expires_at <= datetime.now(UTC) + timedelta(seconds=1800)
    # What Kamailio's auth_ephemeral computes from the shared secret:
    digest = hmac.new(SECRET.encode(), body["authorization_user"].encode(), hashlib.sha1).digest()
    assert body["password"] == base64.b64encode(digest).decode()

    rows = session.query(AuditEvent).filter_by(username=name, action="softphone.credential").all()
    assert len(rows) == 1 and rows[0].resource == "agent"
    assert SECRET not in r.text and body["password"] not in str(rows[0].detail)


def test_a_user_who_is_not_an_agent_gets_404(client_as: ClientAs) -> None:
    r = client_as(Role.SUPERVISOR).get("/api/v1/softphone")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "not an agent" in r.json()["detail"]


def test_a_client_viewer_and_anonymous_callers_get_nothing(client_as: ClientAs, app_client: TestClient) -> None:
    assert client_as(Role.CLIENT_VIEWER).get("/api/v1/softphone").status_code == 403
    assert app_client.get("/api/v1/softphone").status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        {"telephony_driver": "sim"},  # the simulator rings nobody's browser
        {"softphone_ws_url": None},
        {"softphone_secret": None},
    ],
)
def test_without_a_configured_softphone_the_answer_is_a_404_problem(
    change: dict[str, object], settings: Settings, session_factory: sessionmaker[Session], operator: TestClient
) -> None:
    app = create_app(settings.model_copy(update=change), session_factory=session_factory)
    with TestClient(app) as client:
        r = client.get("/api/v1/softphone", headers={"Authorization": operator.headers["Authorization"]})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "no browser softphone is configured" in r.json()["detail"]


def test_turn_servers_get_the_same_ephemeral_credential(
    settings: Settings, session_factory: sessionmaker[Session], operator: TestClient
) -> None:
    turn = ["turns:turn.example.jp:5349?transport=tcp"]
    app = create_app(settings.model_copy(update={"softphone_turn_urls": turn}), session_factory=session_factory)
    with TestClient(app) as client:
        body = client.get("/api/v1/softphone", headers={"Authorization": operator.headers["Authorization"]}).json()
    assert body["ice_servers"] == [
        {"urls": turn, "username": body["authorization_user"], "credential": body["password"]}
    ]


def test_the_credential_format_is_the_ietf_turn_rest_one() -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    username, password = ephemeral_credential("secret", "sato", expires)
    assert username == f"{int(expires.timestamp())}:sato"
    assert password == base64.b64encode(hmac.new(b"secret", username.encode(), hashlib.sha1).digest()).decode()


def test_the_page_must_allow_kamailios_websocket_origin(settings: Settings) -> None:
    assert websocket_origin(settings) == "wss://sip.example.jp:8443"
    assert websocket_origin(settings.model_copy(update={"telephony_driver": "sim"})) is None
