"""Purchase history, returns/complaints (and the exclusion rule), contact timeline."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kakehashi.complaints import service as complaints
from kakehashi.complaints.schemas import ComplaintCreate
from kakehashi.contacts import service as contacts
from kakehashi.contacts.schemas import ContactCreate
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed
from kakehashi.kit.events import Event, bus
from kakehashi.orders import service as orders
from kakehashi.orders.schemas import OrderCreate, OrderLineIn


@pytest.fixture
def cid(session: Session, actor: Actor) -> int:
    return customers.create_customer(session, actor, CustomerCreate(name="山田 花子")).id


class TestComplaintRule:
    def test_complaint_sets_caution_and_excludes_from_outbound(self, session: Session, actor: Actor, cid: int) -> None:
        complaints.record_complaint(
            session, actor, cid, ComplaintCreate(category="電話勧誘", text="二度と電話しないで", severity="high")
        )
        c = customers.get_customer(session, actor, cid)
        assert c.caution and c.outbound_excluded
        assert c.excluded_reason == "クレーム: 電話勧誘"
        assert [x.id for x in customers.search_customers(session, actor)[0]] == [cid]

    def test_return_alone_does_not_exclude(self, session: Session, actor: Actor, cid: int) -> None:
        complaints.record_complaint(session, actor, cid, ComplaintCreate(kind="return", category="サイズ", text="交換"))
        c = customers.get_customer(session, actor, cid)
        assert not c.caution and not c.outbound_excluded

    def test_resolving_closes_the_case_but_keeps_the_exclusion(self, session: Session, actor: Actor, cid: int) -> None:
        case = complaints.record_complaint(session, actor, cid, ComplaintCreate(category="態度", text="x"))
        complaints.resolve(session, actor, case.id)
        assert complaints.open_for_customer(session, actor, cid) == []
        assert customers.get_customer(session, actor, cid).outbound_excluded
        with pytest.raises(Conflict):
            complaints.resolve(session, actor, case.id)

    def test_order_of_another_customer_cannot_be_referenced(self, session: Session, actor: Actor, cid: int) -> None:
        other = customers.create_customer(session, actor, CustomerCreate(name="別人")).id
        order = orders.create_order(session, actor, other, OrderCreate(lines=[OrderLineIn(name="x", unit_price=1)]))
        with pytest.raises(ValidationFailed):
            complaints.record_complaint(
                session, actor, cid, ComplaintCreate(kind="return", category="c", text="t", order_id=order.id)
            )

    def test_complaint_on_other_tenants_customer_is_not_found(
        self, session: Session, other_actor: Actor, cid: int
    ) -> None:
        with pytest.raises(NotFound):
            complaints.record_complaint(session, other_actor, cid, ComplaintCreate(category="c", text="t"))


class TestOrders:
    def test_total_from_lines_and_newest_first(self, session: Session, actor: Actor, cid: int) -> None:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        orders.create_order(
            session,
            actor,
            cid,
            OrderCreate(
                ordered_at=t0,
                lines=[OrderLineIn(name="布団", unit_price=19800), OrderLineIn(name="枕", quantity=2, unit_price=2980)],
            ),
        )
        orders.create_order(
            session,
            actor,
            cid,
            OrderCreate(ordered_at=t0 + timedelta(days=1), lines=[OrderLineIn(name="毛布", unit_price=5000)]),
        )
        got = orders.list_orders(session, actor, cid)
        assert [o.total for o in got] == [5000, 19800 + 5960]

    def test_api_rejects_empty_order(self, client: TestClient) -> None:
        cid = client.post("/api/v1/customers", json={"name": "x"}).json()["id"]
        r = client.post(f"/api/v1/customers/{cid}/orders", json={"lines": []})
        assert r.status_code == 422


class TestContacts:
    def test_timeline_newest_first(self, session: Session, actor: Actor, cid: int) -> None:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        for i, summary in enumerate(["初回注文", "配送確認", "お礼"]):
            contacts.add_contact(
                session, actor, cid, ContactCreate(summary=summary, occurred_at=t0 + timedelta(hours=i))
            )
        assert [c.summary for c in contacts.timeline(session, actor, cid)] == ["お礼", "配送確認", "初回注文"]

    def test_api(self, client: TestClient) -> None:
        cid = client.post("/api/v1/customers", json={"name": "x"}).json()["id"]
        r = client.post(
            f"/api/v1/customers/{cid}/contacts",
            json={"channel": "call", "direction": "inbound", "summary": "住所変更の依頼"},
        )
        assert r.status_code == 201
        assert client.get(f"/api/v1/customers/{cid}/contacts").json()[0]["summary"] == "住所変更の依頼"
        assert client.get("/api/v1/customers/424242/contacts").status_code == 404


class TestEvents:
    def test_events_leave_only_after_commit(self, session_factory, actor: Actor) -> None:  # type: ignore[no-untyped-def]
        seen: list[Event] = []
        unsubscribe = bus.subscribe("customer.*", seen.append)
        try:
            s = session_factory()
            customers.create_customer(s, actor, CustomerCreate(name="ロールバック"))
            s.rollback()
            assert seen == []
            customers.create_customer(s, actor, CustomerCreate(name="コミット"))
            assert seen == []
            s.commit()
            assert [e.name for e in seen] == ["customer.created"]
            s.close()
        finally:
            unsubscribe()
