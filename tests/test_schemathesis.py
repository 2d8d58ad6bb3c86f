"""Property-based fuzzing of every API operation from the OpenAPI schema, logged in: never a 5xx.

Runs against the app on the test database (both backends), as a center-wide admin so every
operation is reachable; a bounded number of examples per operation keeps CI time reasonable.
Schemathesis generates the cases, Hypothesis drives them (the pytest plugin's fixture loader does not
work with pytest 9, so the operations are walked here).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from conftest import ClientAs
from kakehashi.kit.context import Role

MAX_EXAMPLES = 15
# They would end this test's own login; tests/test_security_login.py covers them.
SKIP = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")}


@pytest.fixture
def authed(client_as: ClientAs) -> TestClient:
    c = client_as(Role.ADMIN, center_wide=True)
    cid = c.post("/api/v1/customers", json={"name": "ファズ 対象", "phones": [{"number": "03-9999-0000"}]}).json()["id"]
    c.post(f"/api/v1/customers/{cid}/complaints", json={"category": "x", "text": "y"})
    return c


def test_no_operation_answers_5xx(authed: TestClient) -> None:
    headers = {"Authorization": authed.headers["Authorization"]}
    schema = schemathesis.openapi.from_asgi("/openapi.json", authed.app, headers=headers)  # behind a login
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
        tried.append(f"{operation.method.upper()} {operation.path}")
    assert len(tried) >= 25, tried
