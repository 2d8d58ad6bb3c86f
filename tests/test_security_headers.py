"""Security headers on every response (kit/headers.py), and the API's documentation behind a login, served
from local files (web/apidocs.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from conftest import ClientAs
from kakehashi.app import create_app
from kakehashi.auth.guard import PUBLIC
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role

API_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def assert_api_headers(r: Any) -> None:
    for name, value in API_HEADERS.items():
        assert r.headers.get(name) == value, (r.request.method, r.request.url.path, r.status_code, name)
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


class TestEveryResponse:
    def test_api_responses_with_personal_data_and_errors_are_not_stored(
        self, client: TestClient, app_client: TestClient
    ) -> None:
        created = client.post("/api/v1/customers", json={"name": "山田 花子", "phones": [{"number": "03-1111-2222"}]})
        assert created.status_code == 201
        cid = created.json()["id"]
        responses = [
            created,
            client.get(f"/api/v1/customers/{cid}"),  # a customer
            client.get("/api/v1/customers?q=山田"),
            client.get("/api/v1/screenpop?phone=03-1111-2222"),
            client.get("/api/v1/customers/987654321"),  # 404
            client.post("/api/v1/customers", json={"name": ""}),  # 422
            client.post("/api/v1/customers", json={"name": "A\u0000B"}),  # 422 at the edge
            client.post("/api/v1/customers", content=b"x" * (2 * 1024 * 1024)),  # 413 at the edge
            client.get("/api/v1/no-such-route"),  # 404 from the router
            app_client.get(f"/api/v1/customers/{cid}"),  # 401
            app_client.post("/api/v1/auth/token", json={"username": "nobody", "password": "wrong-password"}),  # 401
            app_client.get("/healthz"),
        ]
        assert [r.status_code for r in responses] == [201, 200, 200, 200, 404, 422, 422, 413, 404, 401, 401, 200]
        for r in responses:
            assert_api_headers(r)

    def test_an_unexpected_error_carries_them_too(
        self, settings: Settings, session_factory: sessionmaker[Session]
    ) -> None:
        app = create_app(settings, session_factory=session_factory)

        @app.get("/boom", dependencies=[PUBLIC])
        def boom() -> None:
            raise RuntimeError("boom")

        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/boom")
        assert r.status_code == 500 and r.json()["detail"] == "the request failed; nothing was saved"
        assert_api_headers(r)

    def test_pages_keep_their_own_policy(self, client: TestClient) -> None:
        r = client.get("/login")
        assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"

    def test_static_assets_may_be_cached_but_are_not_sniffed(self, app_client: TestClient) -> None:
        r = app_client.get("/static/app.css")
        assert r.status_code == 200 and "cache-control" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff"


# ---- /docs, /openapi.json, /redoc ------------------------------------------------------------------------


class TestApiDocs:
    def test_without_a_login_nothing_is_shown(self, app_client: TestClient) -> None:
        r = app_client.get("/docs", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/docs"
        r = app_client.get("/openapi.json")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert app_client.get("/redoc").status_code == 404
        assert app_client.get("/docs/oauth2-redirect").status_code == 404

    @pytest.mark.parametrize("role", list(Role))
    def test_any_signed_in_role_reads_them(self, client_as: ClientAs, role: Role) -> None:
        c = client_as(role)
        schema = c.get("/openapi.json")
        assert schema.status_code == 200 and "/api/v1/customers" in schema.json()["paths"]
        assert "/openapi.json" not in schema.json()["paths"] and "/docs" not in schema.json()["paths"]
        docs = c.get("/docs")
        assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in docs.headers["content-security-policy"]

    def test_the_page_loads_nothing_from_another_host(self, client: TestClient) -> None:
        html = client.get("/docs").text
        assert re.findall(r"(?i)(?:https?:)?//[a-z0-9.-]+", html) == []
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in assets
        for asset in assets:
            assert asset.startswith("/static/"), asset
            assert client.get(asset).status_code == 200, asset
        script = client.get("/static/apidocs.js").text
        assert "validatorUrl: null" in script and "http" not in script

    def test_a_setting_turns_them_off(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        off = settings.model_copy(update={"api_docs": False})
        with TestClient(create_app(off, session_factory=session_factory)) as c:
            assert c.get("/docs", follow_redirects=False).status_code == 404
            assert c.get("/openapi.json").status_code == 404
