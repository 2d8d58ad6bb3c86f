"""The audit log: one row per read of a customer, append-only, queryable and exportable; masking."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.kit import migrate
from kakehashi.kit.context import Role
from kakehashi.kit.masking import mask_email, mask_name, mask_phone

CUSTOMER = {
    "name": "山田 花子",
    "name_kana": "ヤマダ ハナコ",
    "birthday": "1980-05-01",
    "postal_code": "100-0001",
    "prefecture": "東京都",
    "city": "千代田区",
    "town": "千代田",
    "street": "1-1",
    "building": "皇居前ハイツ101",
    "email": "hanako@example.jp",
    "notes": "夜は不在",
    "phones": [{"number": "090-1234-5678"}],
}


def reads(session: Session, customer_id: int) -> list[AuditEvent]:
    return list(
        session.query(AuditEvent)
        .filter(AuditEvent.customer_id == customer_id, AuditEvent.action == "read")
        .order_by(AuditEvent.id)
    )


@pytest.fixture
def customer_id(client: TestClient) -> int:
    return int(client.post("/api/v1/customers", json=CUSTOMER).json()["id"])


class TestEveryReadIsAuditedOnce:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/customers/{cid}",
            "/api/v1/customers/{cid}/orders",
            "/api/v1/customers/{cid}/complaints",
            "/api/v1/customers/{cid}/contacts",
            "/api/v1/screenpop?customer_id={cid}",
            "/api/v1/screenpop?phone=09012345678",
            "/api/v1/customers/suggest?q=やまだ",
            "/api/v1/customers?q=山田",
        ],
    )
    def test_given_a_read_then_exactly_one_row_with_who_where_and_route(
        self, client_as: ClientAs, customer_id: int, session: Session, path: str
    ) -> None:
        supervisor = client_as(Role.SUPERVISOR)
        before = len(reads(session, customer_id))
        r = supervisor.get(path.format(cid=customer_id))
        assert r.status_code == 200
        rows = reads(session, customer_id)
        assert len(rows) == before + 1
        row = rows[-1]
        assert row.username == supervisor.user.username  # type: ignore[attr-defined]
        assert row.role == "supervisor"
        assert row.origin == "testclient"
        assert row.route is not None and row.route.startswith("GET /api/v1/")

    def test_given_a_list_then_one_row_per_customer_shown(self, client: TestClient, session: Session) -> None:
        ids = [client.post("/api/v1/customers", json={"name": f"一覧 {i}"}).json()["id"] for i in range(3)]
        client.get("/api/v1/customers", params={"q": "一覧"})
        assert all(len(reads(session, cid)) == 1 for cid in ids)

    def test_changes_are_audited_with_the_fields(self, client: TestClient, customer_id: int, session: Session) -> None:
        client.patch(f"/api/v1/customers/{customer_id}", json={"email": "new@example.jp"})
        row = session.query(AuditEvent).filter_by(customer_id=customer_id, action="update").one()
        assert row.detail == {"fields": ["email"]}

    def test_unknown_number_lookups_are_audited_too(self, client: TestClient, session: Session) -> None:
        client.get("/api/v1/screenpop", params={"phone": "0120-000-111"})
        row = session.query(AuditEvent).filter_by(resource="screenpop", customer_id=None).one()
        assert row.detail == {"e164": "+81120000111", "known": False}


class TestAuditApi:
    def test_supervisor_queries_by_customer_operator_cannot(
        self, client_as: ClientAs, customer_id: int, client: TestClient
    ) -> None:
        client.get(f"/api/v1/customers/{customer_id}")
        page = client_as(Role.SUPERVISOR).get("/api/v1/audit", params={"customer_id": customer_id}).json()
        assert {e["action"] for e in page["items"]} >= {"create", "read"}
        assert all(e["customer_id"] == customer_id for e in page["items"])
        assert client_as(Role.OPERATOR).get("/api/v1/audit").status_code == 403

    def test_inverted_window_is_a_validation_error(self, client: TestClient) -> None:
        r = client.get("/api/v1/audit", params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
        assert r.status_code == 422

    def test_role_refusals_are_audited(self, client_as: ClientAs, customer_id: int, session: Session) -> None:
        viewer = client_as(Role.CLIENT_VIEWER)
        assert viewer.patch(f"/api/v1/customers/{customer_id}", json={"notes": "x"}).status_code == 403
        row = session.query(AuditEvent).filter_by(username=viewer.user.username, outcome="denied").one()  # type: ignore[attr-defined]
        assert row.customer_id == customer_id and row.detail and row.detail["status"] == 403


def test_the_log_is_append_only_in_the_database(connection: Connection, client: TestClient) -> None:
    client.get("/api/v1/screenpop", params={"phone": "0312345678"})
    assert connection.execute(text("SELECT count(*) FROM audit_events")).scalar()
    for statement in ("UPDATE audit_events SET username = 'x'", "DELETE FROM audit_events"):
        savepoint = connection.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
        savepoint.rollback()


class TestMasking:
    def test_formats(self) -> None:
        assert mask_phone("090-1234-5678") == "090-****-5678"
        assert mask_phone("03-1234-5678") == "03-****-5678"
        assert mask_phone("+819012345678") == "+8190****5678"
        assert mask_email("hanako@example.jp") == "h***@example.jp"
        assert mask_name("山田 花子") == "山田 ＊＊"

    def test_client_viewer_sees_masked_values_and_address_to_the_town(
        self, client_as: ClientAs, customer_id: int
    ) -> None:
        got = client_as(Role.CLIENT_VIEWER).get(f"/api/v1/customers/{customer_id}").json()
        assert got["phones"][0]["national"] == "090-****-5678"
        assert got["phones"][0]["e164"] == "+8190****5678"
        assert (got["prefecture"], got["city"], got["town"]) == ("東京都", "千代田区", "千代田")
        assert got["street"] == got["building"] == got["notes"] == "***"
        assert got["email"] == "h***@example.jp" and got["name"] == "山田 ＊＊"
        assert got["birthday"] is None and isinstance(got["age"], int)
        listed = client_as(Role.CLIENT_VIEWER).get("/api/v1/customers").json()["items"]
        assert "1234" not in str(listed) and "皇居前" not in str(listed)

    def test_operator_sees_full_values(self, client_as: ClientAs, customer_id: int) -> None:
        got = client_as(Role.OPERATOR).get(f"/api/v1/customers/{customer_id}").json()
        assert got["phones"][0]["national"] == "090-1234-5678" and got["street"] == "1-1"
        assert got["birthday"] == "1980-05-01"

    def test_a_tenant_can_let_its_client_viewers_see_full_values(self, client_as: ClientAs, session: Session) -> None:
        admin = client_as(Role.ADMIN, center_wide=True)
        tenant = admin.post("/api/v1/tenants", json={"code": "open-client", "name": "開示OK社"}).json()
        headers = {"X-Kakehashi-Tenant": "open-client"}
        cid = admin.post("/api/v1/customers", json=CUSTOMER, headers=headers).json()["id"]
        viewer = client_as(Role.CLIENT_VIEWER, "open-client")
        assert viewer.get(f"/api/v1/customers/{cid}").json()["street"] == "***"
        admin.patch(f"/api/v1/tenants/{tenant['id']}", json={"client_sees_personal_data": True})
        assert viewer.get(f"/api/v1/customers/{cid}").json()["street"] == "1-1"

    def test_without_a_context_serialization_masks(self, client: TestClient, customer_id: int) -> None:
        """Forgetting the context hides data instead of leaking it."""
        from kakehashi.customers.schemas import CustomerOut

        full = client.get(f"/api/v1/customers/{customer_id}").json()
        assert CustomerOut.model_validate(full).model_dump()["street"] == "***"


def test_cli_export_writes_csv_and_is_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kakehashi.cli import app
    from kakehashi.kit.config import get_settings
    from kakehashi.kit.db import make_engine

    url = f"sqlite:///{tmp_path / 'k.db'}"
    monkeypatch.setenv("KAKEHASHI_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    migrate.upgrade(engine)
    runner = CliRunner()
    made = runner.invoke(
        app, ["user", "create", "boss", "--role", "admin", "--password-stdin"], input="x-long-passphrase\n"
    )
    assert made.exit_code == 0, made.output
    out = tmp_path / "audit.csv"
    result = runner.invoke(app, ["audit", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["action"] for r in rows] == ["user.create"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events WHERE action = 'export'")).scalar() == 1
    engine.dispose()
    get_settings.cache_clear()


def test_a_cdr_export_is_audited_once_per_customer_in_the_file(client_as: ClientAs, session: Session) -> None:
    """Like the JSON listing (one read row per customer), the CSV audits each customer it hands out."""
    from test_metrics import add_cdr, jst

    supervisor = client_as(Role.SUPERVISOR)
    tenant_id = supervisor.user.tenant_id  # type: ignore[attr-defined]
    a, b = (supervisor.post("/api/v1/customers", json={"name": n}).json()["id"] for n in ("輸出 一郎", "輸出 二郎"))
    for day, customer in [(1, a), (2, a), (3, b), (4, None)]:  # the last caller is not a customer
        add_cdr(session, tenant_id, "q", jst(day, 10), talk=60, agent="sato").customer_id = customer
    session.flush()
    r = supervisor.get("/api/v1/cdrs.csv")
    assert r.status_code == 200 and len(r.text.strip().splitlines()) == 5
    exports = session.query(AuditEvent).filter_by(username=supervisor.user.username, action="export").all()  # type: ignore[attr-defined]
    per_customer = sorted((e.customer_id, e.resource, e.resource_id) for e in exports if e.customer_id is not None)
    assert per_customer == sorted([(a, "cdr", a), (b, "cdr", b)])
    (summary,) = [e for e in exports if e.customer_id is None]
    assert summary.resource == "cdrs" and summary.detail == {"rows": 4, "customers": 2, "format": "csv"}
    assert all(e.route == "GET /api/v1/cdrs.csv" and e.outcome == "ok" for e in exports)
