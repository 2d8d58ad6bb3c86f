"""APPI duties: list sources (第三者提供記録), suspension of use (利用停止), disclosure (開示)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.complaints import service as complaints
from kakehashi.complaints.schemas import ComplaintCreate
from kakehashi.contacts import service as contacts
from kakehashi.contacts.schemas import ContactCreate
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, CustomFieldCreate, FieldType, PhoneIn
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import NotFound, ValidationFailed
from kakehashi.kit.events import Event, bus
from kakehashi.orders import service as orders
from kakehashi.orders.schemas import OrderCreate, OrderLineIn
from kakehashi.privacy import service
from kakehashi.privacy.schemas import Channel, SourceCreate, SuspensionCreate

TODAY = business_today()


def source_data(**changes: Any) -> SourceCreate:
    values: dict[str, Any] = {
        "provider_name": "株式会社リストワークス",
        "provider_address": "東京都千代田区丸の内1-1-1",
        "provider_representative": "代表取締役 佐藤 一郎",
        "acquisition_method": "懸賞応募者から第三者提供の同意を得て取得",
        "received_on": TODAY,
        "items": ["氏名", "電話番号", "住所"],
        "purpose": "通信販売の案内",
    }
    return SourceCreate(**(values | changes))


def error_fields(exc: ValidationFailed) -> set[str]:
    return {e["field"] for e in exc.errors}


def audit_rows(session: Session, customer_id: int, action: str | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.customer_id == customer_id).order_by(AuditEvent.id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return list(session.scalars(stmt))


@pytest.fixture
def cid(session: Session, actor: Actor) -> int:
    return customers.create_customer(
        session, actor, CustomerCreate(name="山田 花子", phones=[PhoneIn(number="090-1111-2222")])
    ).id


def new_customer(client: TestClient, name: str = "山田 花子", number: str = "090-1111-2222") -> int:
    r = client.post("/api/v1/customers", json={"name": name, "phones": [{"number": number}]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


SOURCE_JSON = {
    "provider_name": "株式会社リストワークス",
    "acquisition_method": "懸賞応募者から同意を得て取得",
    "received_on": TODAY.isoformat(),
    "items": ["氏名", "電話番号"],
}


# --- list sources -----------------------------------------------------------------------------------


class TestRecordSource:
    def test_given_a_complete_record_then_stored_and_kept_three_years(self, session: Session, actor: Actor) -> None:
        source = service.record_source(session, actor, source_data(items=[" 氏名", "電話番号", "氏名"]))
        assert source.tenant_id == actor.tenant_id and source.recorded_by == actor.username
        assert source.items == ["氏名", "電話番号"]
        assert source.retain_until == service.add_years(TODAY, 3)

    def test_given_a_late_entry_then_retention_runs_from_the_day_it_is_recorded(
        self, session: Session, actor: Actor
    ) -> None:
        source = service.record_source(
            session, actor, source_data(received_on=date(2025, 1, 10)), today=date(2026, 6, 1)
        )
        assert source.retain_until == date(2029, 6, 1)

    def test_given_an_explicit_retention_then_kept_as_given(self, session: Session, actor: Actor) -> None:
        until = TODAY + timedelta(days=400)
        assert service.record_source(session, actor, source_data(retain_until=until)).retain_until == until

    def test_leap_day_retention_ends_on_the_first_of_march(self) -> None:
        assert service.add_years(date(2024, 2, 29), 3) == date(2027, 3, 1)

    def test_given_blank_and_wrong_fields_then_every_problem_reported_per_field(
        self, session: Session, actor: Actor
    ) -> None:
        bad = source_data(provider_name="　", acquisition_method=" ", received_on=TODAY + timedelta(days=1), items=[])
        with pytest.raises(ValidationFailed) as err:
            service.record_source(session, actor, bad)
        assert error_fields(err.value) == {"provider_name", "acquisition_method", "received_on", "items"}

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"items": ["氏名", "  "]}, "items"),
            ({"retain_until": TODAY - timedelta(days=1)}, "retain_until"),
            ({"received_on": TODAY + timedelta(days=30)}, "received_on"),
        ],
    )
    def test_given_one_bad_field_then_only_that_field_is_reported(
        self, session: Session, actor: Actor, changes: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(ValidationFailed) as err:
            service.record_source(session, actor, source_data(**changes))
        assert error_fields(err.value) == {field}


class TestLinkCustomers:
    def test_links_are_counted_once_and_repeats_are_ignored(self, session: Session, actor: Actor, cid: int) -> None:
        other = customers.create_customer(session, actor, CustomerCreate(name="佐藤 一郎")).id
        source = service.record_source(session, actor, source_data())
        assert service.link_customers(session, actor, source.id, [cid, cid]) == 1
        assert service.link_customers(session, actor, source.id, [cid, other]) == 1
        assert service.link_customers(session, actor, source.id, [other, cid]) == 0
        assert service.get_source(session, actor, source.id)[1] == 2

    def test_another_tenants_source_is_not_found(
        self, session: Session, actor: Actor, other_actor: Actor, cid: int
    ) -> None:
        foreign = service.record_source(session, other_actor, source_data())
        with pytest.raises(NotFound):
            service.link_customers(session, actor, foreign.id, [cid])
        with pytest.raises(NotFound):
            service.get_source(session, actor, foreign.id)

    def test_another_tenants_customer_cannot_be_linked(
        self, session: Session, actor: Actor, other_actor: Actor, cid: int
    ) -> None:
        source = service.record_source(session, other_actor, source_data())
        with pytest.raises(NotFound):
            service.link_customers(session, other_actor, source.id, [cid])
        assert service.get_source(session, other_actor, source.id)[1] == 0


class TestSourcesApi:
    def test_record_list_and_read_with_the_linked_count(
        self, client: TestClient, session: Session, actor: Actor, cid: int
    ) -> None:
        r = client.post("/api/v1/privacy/sources", json=SOURCE_JSON)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["retain_until"] == service.add_years(TODAY, 3).isoformat()
        assert created["recorded_by"] == client.user.username  # type: ignore[attr-defined]
        service.link_customers(session, actor, created["id"], [cid])
        page = client.get("/api/v1/privacy/sources").json()
        assert page["total"] == 1 and page["items"][0]["provider_name"] == "株式会社リストワークス"
        detail = client.get(f"/api/v1/privacy/sources/{created['id']}").json()
        assert detail["customer_count"] == 1 and detail["items"] == ["氏名", "電話番号"]

    def test_validation_errors_are_problem_details_per_field(self, client: TestClient) -> None:
        future = (TODAY + timedelta(days=1)).isoformat()
        r = client.post("/api/v1/privacy/sources", json=SOURCE_JSON | {"provider_name": "", "received_on": future})
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        assert {e["field"] for e in r.json()["errors"]} == {"provider_name", "received_on"}
        r = client.post("/api/v1/privacy/sources", json=SOURCE_JSON | {"items": "氏名,電話番号"})
        assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"items"}
        r = client.post("/api/v1/privacy/sources", json={"items": []})
        assert {e["field"] for e in r.json()["errors"]} == {"provider_name", "acquisition_method", "received_on"}
        r = client.post("/api/v1/privacy/sources", json=SOURCE_JSON | {"provider_name": "A\x00B"})
        assert r.status_code == 422  # refused at the edge (kit/nul.py) before the field check
        assert client.get(f"/api/v1/privacy/sources/{2**64}").status_code == 422

    def test_another_tenant_neither_lists_nor_reads_the_source(self, client: TestClient, client_as: ClientAs) -> None:
        source_id = client.post("/api/v1/privacy/sources", json=SOURCE_JSON).json()["id"]
        b_admin = client_as(Role.ADMIN, "client-b")
        assert b_admin.get("/api/v1/privacy/sources").json()["total"] == 0
        assert b_admin.get(f"/api/v1/privacy/sources/{source_id}").status_code == 404

    def test_a_supervisor_may_record_sources_and_an_operator_may_not(
        self, client: TestClient, client_as: ClientAs
    ) -> None:
        assert client_as(Role.SUPERVISOR).post("/api/v1/privacy/sources", json=SOURCE_JSON).status_code == 201
        operator = client_as(Role.OPERATOR)
        source_id = client.get("/api/v1/privacy/sources").json()["items"][0]["id"]
        assert operator.post("/api/v1/privacy/sources", json=SOURCE_JSON).status_code == 403
        assert operator.get("/api/v1/privacy/sources").status_code == 403
        assert operator.get(f"/api/v1/privacy/sources/{source_id}").status_code == 403


# --- suspension of use ----------------------------------------------------------------------------------


class TestSuspension:
    def test_suspension_stops_contact_and_the_screen_pop_shows_it(
        self, client_as: ClientAs, session: Session, actor: Actor
    ) -> None:
        operator = client_as(Role.OPERATOR)
        cid = new_customer(operator)
        r = operator.post(
            f"/api/v1/customers/{cid}/privacy/suspension", json={"channel": "phone", "note": "今後一切連絡不要"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "suspension" and r.json()["received_on"] == TODAY.isoformat()
        customer = customers.get_customer(session, actor, cid)
        assert customer.do_not_contact and customer.outbound_excluded
        assert customer.excluded_reason == "利用停止請求"
        pop = operator.get("/api/v1/screenpop", params={"customer_id": cid}).json()
        assert {"do_not_contact", "outbound_excluded"} <= {f["code"] for f in pop["caution_flags"]}
        updates = [e for e in audit_rows(session, cid, "update") if e.resource == "customer"]
        assert len(updates) == 1 and updates[0].detail and updates[0].detail["do_not_contact"] is True

    def test_a_repeated_request_is_recorded_again_and_does_not_fail(self, client: TestClient) -> None:
        cid = new_customer(client)
        for channel in ("phone", "letter"):
            r = client.post(
                f"/api/v1/customers/{cid}/privacy/suspension", json={"channel": channel, "received_on": "2026-01-05"}
            )
            assert r.status_code == 201, r.text
        requests = client.get(f"/api/v1/customers/{cid}/privacy/requests").json()
        assert [(q["kind"], q["channel"]) for q in requests] == [("suspension", "phone"), ("suspension", "letter")]
        assert client.get(f"/api/v1/customers/{cid}").json()["do_not_contact"] is True

    def test_bad_channel_and_future_date_are_rejected(self, client: TestClient) -> None:
        cid = new_customer(client)
        url = f"/api/v1/customers/{cid}/privacy/suspension"
        assert client.post(url, json={"channel": "fax"}).json()["errors"][0]["field"] == "channel"
        future = (TODAY + timedelta(days=2)).isoformat()
        r = client.post(url, json={"channel": "web", "received_on": future})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "received_on"
        assert client.get(f"/api/v1/customers/{cid}").json()["do_not_contact"] is False

    def test_another_tenants_customer_is_not_found(self, client: TestClient, client_as: ClientAs) -> None:
        cid = new_customer(client)
        b_staff = client_as(Role.OPERATOR, "client-b")
        r = b_staff.post(f"/api/v1/customers/{cid}/privacy/suspension", json={"channel": "phone"})
        assert r.status_code == 404

    def test_the_do_not_contact_event_leaves_only_after_commit(
        self, session_factory: Any, actor: Actor, cid: int
    ) -> None:
        seen: list[Event] = []
        unsubscribe = bus.subscribe("customer.do_not_contact", seen.append)
        try:
            s = session_factory()
            service.request_suspension(s, actor, cid, SuspensionCreate(channel=Channel.mail))
            assert seen == []
            s.commit()
            assert [(e.name, e.payload["customer_id"]) for e in seen] == [("customer.do_not_contact", cid)]
            s.close()
        finally:
            unsubscribe()


# --- disclosure ---------------------------------------------------------------------------------------------


@pytest.fixture
def full_customer(session: Session, actor: Actor) -> int:
    """A customer with something in every section of a disclosure."""
    customers.define_custom_field(
        session, actor, CustomFieldCreate(key="children", label="子供の人数", type=FieldType.number)
    )
    cid = customers.create_customer(
        session,
        actor,
        CustomerCreate(
            name="山田 花子",
            email="hanako@example.jp",
            street="丸の内1-1-1",
            phones=[PhoneIn(number="090-1111-2222"), PhoneIn(number="03-1234-5678", label="自宅")],
            custom={"children": 2},
        ),
    ).id
    orders.create_order(
        session,
        actor,
        cid,
        OrderCreate(lines=[OrderLineIn(name="羽毛布団", unit_price=19800), OrderLineIn(name="枕", unit_price=2980)]),
    )
    complaints.record_complaint(session, actor, cid, ComplaintCreate(category="配送遅延", text="三日遅れた"))
    complaints.record_complaint(session, actor, cid, ComplaintCreate(kind="return", category="サイズ", text="交換"))
    contacts.add_contact(session, actor, cid, ContactCreate(channel="call", summary="住所変更の依頼"))
    source = service.record_source(session, actor, source_data())
    service.link_customers(session, actor, source.id, [cid])
    service.request_suspension(session, actor, cid, SuspensionCreate(channel=Channel.phone))
    customers.read_customer(session, actor, cid)  # someone looked at the record
    session.flush()
    return cid


class TestDisclosure:
    def test_disclosure_holds_every_section(self, client: TestClient, full_customer: int) -> None:
        r = client.post(f"/api/v1/customers/{full_customer}/privacy/disclosure", params={"channel": "letter"})
        assert r.status_code == 200, r.text
        d = r.json()
        c = d["customer"]
        assert (c["name"], c["email"], c["street"], c["do_not_contact"]) == (
            "山田 花子",
            "hanako@example.jp",
            "丸の内1-1-1",
            True,
        )
        assert [p["national"] for p in c["phones"]] == ["090-1111-2222", "03-1234-5678"]
        assert d["custom_fields"] == [{"key": "children", "label": "子供の人数", "value": 2}]
        assert [[line["name"] for line in o["lines"]] for o in d["orders"]] == [["羽毛布団", "枕"]]
        assert d["orders"][0]["total"] == 22780
        assert [(x["kind"], x["text"]) for x in d["complaints"]] == [("complaint", "三日遅れた"), ("return", "交換")]
        assert [x["summary"] for x in d["contacts"]] == ["住所変更の依頼"]
        assert [(s["provider_name"], s["items"]) for s in d["sources"]] == [
            ("株式会社リストワークス", ["氏名", "電話番号", "住所"])
        ]
        assert [(q["kind"], q["channel"]) for q in d["privacy_requests"]] == [
            ("suspension", "phone"),
            ("disclosure", "letter"),
        ]
        assert d["request_id"] == d["privacy_requests"][-1]["id"]
        trail = {(e["username"], e["action"], e["resource"]) for e in d["access_log"]}
        assert {("tester", "create", "customer"), ("tester", "read", "customer")} <= trail
        assert (client.user.username, "export", "disclosure") in trail  # type: ignore[attr-defined]
        assert all(
            set(e) == {"at", "username", "role", "action", "resource", "outcome", "route"} for e in d["access_log"]
        )

    def test_disclosure_writes_exactly_one_export_row_and_nothing_else(
        self, client: TestClient, session: Session, full_customer: int
    ) -> None:
        before = len(audit_rows(session, full_customer))
        client.post(f"/api/v1/customers/{full_customer}/privacy/disclosure")
        after = audit_rows(session, full_customer)
        assert len(after) == before + 1
        export = after[-1]
        assert (export.action, export.resource, export.username, export.role) == (
            "export",
            "disclosure",
            client.user.username,  # type: ignore[attr-defined]
            "admin",
        )
        assert export.route == "POST /api/v1/customers/{customer_id}/privacy/disclosure"

    def test_the_access_log_is_the_tenants_own(
        self, client_as: ClientAs, client: TestClient, session: Session, full_customer: int
    ) -> None:
        b_admin = client_as(Role.ADMIN, "client-b")
        assert b_admin.post(f"/api/v1/customers/{full_customer}/privacy/disclosure").status_code == 404
        d = client.post(f"/api/v1/customers/{full_customer}/privacy/disclosure").json()
        assert b_admin.user.username not in {e["username"] for e in d["access_log"]}  # type: ignore[attr-defined]
        b_rows = session.scalar(select(func.count()).where(AuditEvent.username == b_admin.user.username))  # type: ignore[attr-defined]
        assert b_rows == 1  # the refused probe was recorded, in client-b's log

    def test_a_supervisor_may_disclose_an_operator_may_not(self, client_as: ClientAs, full_customer: int) -> None:
        assert (
            client_as(Role.SUPERVISOR).post(f"/api/v1/customers/{full_customer}/privacy/disclosure").status_code == 200
        )
        operator = client_as(Role.OPERATOR)
        assert operator.post(f"/api/v1/customers/{full_customer}/privacy/disclosure").status_code == 403
        assert operator.get(f"/api/v1/customers/{full_customer}/privacy/requests").status_code == 403

    def test_a_client_viewer_may_not_disclose(self, client_as: ClientAs, full_customer: int) -> None:
        viewer = client_as(Role.CLIENT_VIEWER)
        assert viewer.post(f"/api/v1/customers/{full_customer}/privacy/disclosure").status_code == 403

    def test_unknown_customer_is_not_found_and_records_no_request(self, client: TestClient) -> None:
        assert client.post("/api/v1/customers/987654/privacy/disclosure").status_code == 404
        assert client.get("/api/v1/customers/987654/privacy/requests").status_code == 404

    def test_reading_the_requests_is_an_audited_read(
        self, client: TestClient, session: Session, full_customer: int
    ) -> None:
        before = len(audit_rows(session, full_customer, "read"))
        requests = client.get(f"/api/v1/customers/{full_customer}/privacy/requests").json()
        assert [q["kind"] for q in requests] == ["suspension"]
        assert len(audit_rows(session, full_customer, "read")) == before + 1


# --- CLI ------------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A migrated SQLite file the CLI opens through KAKEHASHI_DATABASE_URL; yields a session factory."""
    from kakehashi.kit import migrate
    from kakehashi.kit.config import get_settings
    from kakehashi.kit.db import make_engine, make_session_factory

    monkeypatch.setenv("KAKEHASHI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    engine = make_engine(get_settings().effective_database_url)
    migrate.upgrade(engine)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()
        get_settings.cache_clear()


def test_cli_records_a_source_and_writes_disclosures_as_json_and_xlsx(cli_db: Any, tmp_path: Path) -> None:
    from kakehashi.kit.db import unit_of_work
    from kakehashi.privacy.cli import privacy_app
    from kakehashi.tenants import repository as tenants

    with unit_of_work(cli_db) as s:
        center = Actor(tenant_id=tenants.get_or_create(s, "center", "コールセンター").id, username="tester")
        cid = customers.create_customer(
            s, center, CustomerCreate(name="山田 花子", notes='=HYPERLINK("x")', phones=[PhoneIn(number="0312345678")])
        ).id
        orders.create_order(s, center, cid, OrderCreate(lines=[OrderLineIn(name="枕", unit_price=2980)]))
    runner = CliRunner()
    added = runner.invoke(
        privacy_app,
        ["source-add", "--provider", "株式会社リストワークス", "--method", "懸賞応募者から取得",
         "--received", "2026-01-15", "--items", "氏名、電話番号,住所", "--representative", "佐藤 一郎"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    source_id = int(added.stdout.strip())
    with unit_of_work(cli_db) as s:
        service.link_customers(s, center, source_id, [cid])
        assert service.get_source(s, center, source_id)[0].items == ["氏名", "電話番号", "住所"]

    json_out = tmp_path / "disclosure.json"
    done = runner.invoke(privacy_app, ["disclose", str(cid), "--out", str(json_out), "--channel", "letter"])
    assert done.exit_code == 0, done.output
    data = json.loads(json_out.read_text(encoding="utf-8"))
    assert data["customer"]["name"] == "山田 花子" and data["customer"]["phones"][0]["national"] == "03-1234-5678"
    assert [s["id"] for s in data["sources"]] == [source_id]
    assert data["orders"][0]["lines"][0]["name"] == "枕"
    assert ("export", "disclosure") in {(e["action"], e["resource"]) for e in data["access_log"]}

    xlsx_out = tmp_path / "disclosure.xlsx"
    assert runner.invoke(privacy_app, ["disclose", str(cid), "-o", str(xlsx_out)]).exit_code == 0
    wb = load_workbook(xlsx_out)
    assert len(wb.sheetnames) == 9 and wb.sheetnames[0] == "顧客 customer"
    fields = {row[0]: row[1] for row in wb["顧客 customer"].iter_rows(values_only=True) if row and row[0]}
    assert fields["name"] == "山田 花子" and fields["notes"] == '=HYPERLINK("x")'
    assert wb["顧客 customer"]["B" + str(list(fields).index("notes") + 1)].data_type == "s"  # text, not a formula
    orders_sheet = list(wb["購入履歴 orders"].iter_rows(values_only=True))
    assert orders_sheet[1][orders_sheet[0].index("line_name")] == "枕"
    requests = list(wb["請求 requests"].iter_rows(values_only=True))
    assert [row[requests[0].index("kind")] for row in requests[1:]] == ["disclosure", "disclosure"]

    with unit_of_work(cli_db) as s:
        exports = s.scalars(select(AuditEvent).where(AuditEvent.action == "export", AuditEvent.customer_id == cid))
        assert [(e.username.startswith("cli:"), e.origin) for e in exports] == [(True, "cli"), (True, "cli")]


def test_cli_refuses_a_bad_date_an_unknown_customer_and_a_bad_file_type(cli_db: Any, tmp_path: Path) -> None:
    from kakehashi.privacy.cli import privacy_app

    runner = CliRunner()
    bad_date = runner.invoke(
        privacy_app, ["source-add", "--provider", "A", "--method", "B", "--received", "15/01/2026", "--items", "氏名"]
    )
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    future = (TODAY + timedelta(days=3)).isoformat()
    invalid = runner.invoke(
        privacy_app, ["source-add", "--provider", " ", "--method", "B", "--received", future, "--items", "氏名"]
    )
    assert invalid.exit_code == 1 and "provider_name" in invalid.stderr and "received_on" in invalid.stderr
    missing = runner.invoke(privacy_app, ["disclose", "424242", "--out", str(tmp_path / "x.json")])
    assert missing.exit_code == 1 and "not found" in missing.stderr and not (tmp_path / "x.json").exists()
    wrong_type = runner.invoke(privacy_app, ["disclose", "1", "--out", str(tmp_path / "x.csv")])
    assert wrong_type.exit_code == 2
    unknown_tenant = runner.invoke(
        privacy_app, ["disclose", "1", "--out", str(tmp_path / "x.json"), "--tenant", "nope"]
    )
    assert unknown_tenant.exit_code == 1 and "no tenant nope" in unknown_tenant.stderr
