"""Names unique across the whole center (agent names, user names, inbound numbers): a 409 for another
tenant's name still names the field, but neither repeats the value nor says another tenant has it.
Within the caller's own tenant the message stays specific."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from conftest import TEST_PASSWORD, ClientAs
from kakehashi.kit.context import Role


def assert_confirms_nothing(r: Any, value: str, field: str) -> None:
    assert r.status_code == 409
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    text = str(problem).lower()
    assert value.lower() not in text
    for hint in ("exist", "tenant", "already", "another"):
        assert hint not in problem["errors"][0]["message"].lower()
    assert "exist" not in problem["detail"] and "tenant" not in problem["detail"]


def test_another_tenants_agent_name_is_refused_without_confirming_it(client: TestClient, client_as: ClientAs) -> None:
    agent = {"name": "ito", "display_name": "伊藤"}
    assert client.post("/api/v1/agents", json=agent).status_code == 201
    b_admin = client_as(Role.ADMIN, "client-b")
    assert_confirms_nothing(b_admin.post("/api/v1/agents", json=agent), "ito", "name")
    # In the caller's own tenant the message may say so.
    own = client.post("/api/v1/agents", json=agent)
    assert own.status_code == 409 and "ito" in own.json()["detail"]
    assert own.json()["errors"][0]["field"] == "name"
    assert b_admin.post("/api/v1/agents", json={"name": "ito-b", "display_name": "伊藤"}).status_code == 201


def test_another_tenants_user_name_is_refused_without_confirming_it(client: TestClient, client_as: ClientAs) -> None:
    user = {"username": "suzuki.op", "role": "operator", "password": TEST_PASSWORD}
    assert client.post("/api/v1/users", json=user).status_code == 201
    b_admin = client_as(Role.ADMIN, "client-b")
    assert_confirms_nothing(b_admin.post("/api/v1/users", json=user), "suzuki.op", "username")
    own = client.post("/api/v1/users", json=user)
    assert own.status_code == 409 and "suzuki.op" in own.json()["detail"]


def test_another_tenants_inbound_number_is_refused_without_confirming_it(
    client: TestClient, client_as: ClientAs
) -> None:
    b_admin = client_as(Role.ADMIN, "client-b")
    for admin in (client, b_admin):
        assert admin.post("/api/v1/queues", json={"name": "orders"}).status_code == 201
    number = {"number": "0120-444-555", "queue": "orders"}
    assert client.post("/api/v1/inbound-numbers", json=number).status_code == 201
    r = b_admin.post("/api/v1/inbound-numbers", json=number)
    assert_confirms_nothing(r, "+81120444555", "number")
    assert "444" not in str(r.json())
    own = client.post("/api/v1/inbound-numbers", json=number)
    assert own.status_code == 409 and "+81120444555" in own.json()["detail"]
