"""Every route says who may call it, and the role × route matrix holds for every route in the app."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from conftest import MakeUser
from kakehashi.auth import service as auth
from kakehashi.auth.guard import Access, Public, api_routes, check_routes, route_access
from kakehashi.kit.context import Role

ANONYMOUS = None


def test_every_route_declares_who_may_call_it(app_client: TestClient) -> None:
    undeclared = [f"{m} {p}" for m, p, r in api_routes(app_client.app) if route_access(r) is None]  # type: ignore[arg-type]
    assert undeclared == []
    assert len(api_routes(app_client.app)) >= 30  # type: ignore[arg-type]


def test_given_a_route_without_roles_then_the_app_refuses_to_start() -> None:
    app = FastAPI()
    router = APIRouter()

    @router.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(RuntimeError, match="/api/v1/forgotten"):
        check_routes(app)


@dataclass
class World:
    """Objects of the tenant every matrix call acts in, so path ids point at real rows."""

    ids: dict[str, Any]
    tokens: dict[Role, list[str]]


@pytest.fixture
def world(client: TestClient, session: Session, make_user: MakeUser) -> World:
    cid = client.post("/api/v1/customers", json={"name": "行列 太郎", "phones": [{"number": "03-3000-0001"}]}).json()[
        "id"
    ]
    complaint = client.post(f"/api/v1/customers/{cid}/complaints", json={"category": "配送", "text": "遅い"}).json()
    client.post("/api/v1/custom-fields", json={"key": "hobby", "label": "趣味", "type": "text"})
    hangup = {"start": "bye", "nodes": {"bye": {"type": "hangup"}}}
    flow = client.post("/api/v1/ivr/flows", json={"name": "matrix", "definition": hangup}).json()
    target = make_user(Role.OPERATOR)
    center = session.get(type(target), target.id)
    assert center is not None
    return World(
        ids={
            "customer_id": cid,
            "complaint_id": complaint["id"],
            "user_id": target.id,
            "tenant_id": target.tenant_id,
            "token_id": 987654321,
            "source_id": 987654321,
            "call_id": 987654321,
            "plan_id": 987654321,
            "queue_id": 987654321,
            "agent_id": 987654321,
            "number_id": 987654321,
            "voicemail_id": 987654321,
            "campaign_id": 987654321,
            "lead_id": 987654321,
            "list_id": 987654321,
            "dnc_id": 987654321,
            "refusal_id": 987654321,
            "segment_id": 987654321,
            "flow_id": flow["id"],
            "version": 1,
            "key": "hobby",
            "code": "1000001",
        },
        tokens={},
    )


def fill(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def fresh_token(session: Session, make_user: MakeUser, role: Role) -> str:
    """A new user per call: some routes (logout, password) change the caller's own credentials."""
    user = make_user(role, center_wide=role is Role.ADMIN)
    secret, _ = auth.issue_token(session, user, "matrix")
    session.flush()
    return secret


@pytest.mark.parametrize("role", [ANONYMOUS, *Role], ids=lambda r: r.value if r else "anonymous")
def test_role_route_matrix(
    role: Role | None, app_client: TestClient, world: World, session: Session, make_user: MakeUser
) -> None:
    """Allowed roles get through the guard (2xx, or a 4xx about the input); others get 403;
    anonymous gets 401 (pages: a redirect to the login page)."""
    failures = []
    app: FastAPI = app_client.app  # type: ignore[assignment]
    for method, path, route in api_routes(app):
        access = route_access(route)
        assert access is not None
        headers = {} if role is None else {"Authorization": f"Bearer {fresh_token(session, make_user, role)}"}
        body: dict[str, Any] | None = {} if method in {"POST", "PATCH", "PUT"} else None
        r = app_client.request(method, fill(path, world.ids), json=body, headers=headers, follow_redirects=False)
        if isinstance(access, Public):
            expected_ok = r.status_code not in (401, 403) and r.status_code < 500
        elif role is None:
            expected_ok = r.status_code == (303 if access.page else 401)
        elif role in access.roles:
            expected_ok = r.status_code not in (401, 403) and r.status_code < 500
        else:
            expected_ok = r.status_code == 403
        if not expected_ok:
            failures.append(f"{method} {path} as {role}: {r.status_code} {r.text[:120]}")
    assert failures == []


def test_route_declarations_match_the_documented_table(app_client: TestClient) -> None:
    """docs/security.md lists every route with its roles; the table and the code agree."""
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "security.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+ /[^`]*)` \| ([^|]+) \|", doc, flags=re.M))
    app: FastAPI = app_client.app  # type: ignore[assignment]
    for method, path, route in api_routes(app):
        access = route_access(route)
        if isinstance(access, Access):
            roles = ", ".join(sorted(r.value for r in access.roles))
            if access.page:
                roles = "page: any role" if access.roles == frozenset(Role) else f"page: {roles}"
        else:
            roles = "public"
        assert rows.get(f"{method} {path}", "").strip() == roles, f"{method} {path}"


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/api/v1/customers", {"json": {"name": "A\u0000B"}}),
        ("/api/v1/customers?q=%00", {}),
        ("/login", {"data": {"username": "a\u0000", "password": "x"}}),
    ],
)
def test_nul_characters_are_refused_at_the_edge(client: TestClient, path: str, kwargs: dict[str, Any]) -> None:
    """PostgreSQL cannot store NUL: without this check they were a 500 (found by schemathesis)."""
    method = "GET" if "?" in path else "POST"
    r = client.request(method, path, **kwargs)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
