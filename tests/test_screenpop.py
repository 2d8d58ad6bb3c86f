"""Screen pop: one response with everything about the caller; bounded queries; unknown → blank card."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from kakehashi.complaints import service as complaints
from kakehashi.complaints.schemas import ComplaintCreate
from kakehashi.contacts import service as contacts
from kakehashi.contacts.schemas import ContactCreate
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, CustomFieldCreate, PhoneIn
from kakehashi.kit.context import Actor
from kakehashi.orders import service as orders
from kakehashi.orders.schemas import OrderCreate, OrderLineIn
from kakehashi.screenpop.service import screen_pop

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@contextmanager
def count_queries(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind().engine  # type: ignore[union-attr]

    def record(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def build_customer(session: Session, actor: Actor, n_orders: int, n_contacts: int) -> int:
    customers.define_custom_field(session, actor, CustomFieldCreate(key="children", label="子供", type="number"))
    cid = customers.create_customer(
        session,
        actor,
        CustomerCreate(
            name="山田 花子",
            name_kana="ヤマダ ハナコ",
            birthday=date(1980, 5, 1),
            rank="VIP",
            phones=[PhoneIn(number="03-1234-5678"), PhoneIn(number="090-1111-2222")],
            custom={"children": 2},
        ),
    ).id
    for i in range(n_orders):
        orders.create_order(
            session,
            actor,
            cid,
            OrderCreate(
                order_no=f"A{i:04}",
                ordered_at=T0 + timedelta(days=i),
                lines=[
                    OrderLineIn(name="羽毛布団", unit_price=19800),
                    OrderLineIn(name="枕", quantity=2, unit_price=3000),
                ],
            ),
        )
    for i in range(n_contacts):
        contacts.add_contact(
            session, actor, cid, ContactCreate(summary=f"問い合わせ {i}", occurred_at=T0 + timedelta(hours=i))
        )
    return cid


class TestPayload:
    def test_given_known_caller_then_everything_in_one_response(self, session: Session, actor: Actor) -> None:
        cid = build_customer(session, actor, n_orders=25, n_contacts=12)
        order_id = orders.latest_orders(session, actor, cid, 1)[0].id
        complaints.record_complaint(session, actor, cid, ComplaintCreate(category="配送遅延", text="届かない"))
        complaints.record_complaint(
            session,
            actor,
            cid,
            ComplaintCreate(kind="return", category="サイズ違い", text="交換希望", order_id=order_id),
        )
        pop = screen_pop(session, actor, "０９０（１１１１）２２２２")
        assert pop.known and pop.customer is not None and pop.customer.id == cid
        assert pop.phone.e164 == "+819011112222" and pop.phone.national == "090-1111-2222"
        assert [p.national for p in pop.customer.phones] == ["03-1234-5678", "090-1111-2222"]
        assert len(pop.orders) == 20
        assert pop.orders[0].order_no == "A0024"  # newest first
        assert pop.orders[0].total == 19800 + 6000 and len(pop.orders[0].lines) == 2
        assert {c.kind for c in pop.open_complaints} == {"complaint", "return"}
        assert [c.summary for c in pop.contacts][:2] == ["問い合わせ 11", "問い合わせ 10"]
        assert len(pop.contacts) == 10
        assert {f.code for f in pop.caution_flags} == {"open_complaint", "caution", "outbound_excluded", "vip"}
        assert [(f.key, f.value) for f in pop.custom_fields] == [("children", 2)]

    @pytest.mark.parametrize("raw", ["03-9999-9999", "０５０１２３４５６７８"])
    def test_given_unknown_number_then_blank_card_with_normalized_number(
        self, session: Session, actor: Actor, raw: str
    ) -> None:
        pop = screen_pop(session, actor, raw)
        assert not pop.known and pop.customer is None and pop.orders == []
        assert pop.phone.valid and pop.phone.e164 and pop.phone.e164.startswith("+81")

    @pytest.mark.parametrize("raw", ["anonymous", "非通知", "", "12"])
    def test_given_withheld_or_garbled_number_then_blank_card_not_error(
        self, session: Session, actor: Actor, raw: str
    ) -> None:
        pop = screen_pop(session, actor, raw)
        assert not pop.known and not pop.phone.valid and pop.phone.problem

    def test_another_tenants_caller_is_unknown(self, session: Session, actor: Actor, other_actor: Actor) -> None:
        build_customer(session, other_actor, n_orders=1, n_contacts=1)
        assert not screen_pop(session, actor, "03-1234-5678").known


class TestBoundedQueries:
    @pytest.mark.parametrize("one_statement", [None, False], ids=["default", "generic"])
    def test_query_count_does_not_grow_with_history(
        self, session: Session, actor: Actor, one_statement: bool | None
    ) -> None:
        """No N+1: the same number of statements for 1 order or 25 orders with lines.

        PostgreSQL: one statement, audit row included (ADR 0014). The generic path (SQLite, or forced):
        customer+numbers, orders+lines, open cases, contacts, field labels, the audit insert (ADR 0007).
        """
        small = build_customer(session, actor, n_orders=1, n_contacts=1)
        session.flush()
        one = one_statement is None and session.get_bind().dialect.name == "postgresql"
        with count_queries(session) as unknown:
            screen_pop(session, actor, "03-9999-0000", one_statement=one_statement)
        with count_queries(session) as few:
            screen_pop(session, actor, "03-1234-5678", one_statement=one_statement)
        for i in range(25):
            orders.create_order(
                session,
                actor,
                small,
                OrderCreate(
                    ordered_at=T0 + timedelta(days=100 + i),
                    lines=[OrderLineIn(name=f"商品{j}", unit_price=100) for j in range(5)],
                ),
            )
            contacts.add_contact(session, actor, small, ContactCreate(summary=f"c{i}"))
        session.expire_all()
        with count_queries(session) as many:
            pop = screen_pop(session, actor, "03-1234-5678", one_statement=one_statement)
        assert len(pop.orders) == 20 and all(len(o.lines) == 5 for o in pop.orders)
        assert len(many) == len(few) == (1 if one else 6), many
        assert len(unknown) == (1 if one else 2), unknown  # lookup + audit row


class TestApi:
    def test_screenpop_endpoint(self, client: TestClient) -> None:
        cid = client.post(
            "/api/v1/customers", json={"name": "山田 花子", "phones": [{"number": "03-1234-5678"}]}
        ).json()["id"]
        client.post(f"/api/v1/customers/{cid}/complaints", json={"category": "態度", "text": "対応が悪い"})
        body = client.get("/api/v1/screenpop", params={"phone": "+81 3-1234-5678"}).json()
        assert body["known"] and body["customer"]["id"] == cid
        assert body["customer"]["outbound_excluded"] is True
        assert body["open_complaints"][0]["category"] == "態度"
        unknown = client.get("/api/v1/screenpop", params={"phone": "0120-444-444"}).json()
        assert unknown == {
            "known": False,
            "phone": {
                "input": "0120-444-444",
                "valid": True,
                "e164": "+81120444444",
                "national": "0120-444-444",
                "kind": "free_dial",
                "withheld": False,
                "problem": None,
            },
            "customer": None,
            "orders": [],
            "open_complaints": [],
            "caution_flags": [],
            "contacts": [],
            "custom_fields": [],
            "campaign_history": [],  # a lead of an outbound campaign calling in: its campaigns (issue 17)
        }

    def test_phone_is_required(self, client: TestClient) -> None:
        r = client.get("/api/v1/screenpop")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phone"


class TestByCustomerId:
    def test_same_card_for_a_customer_without_a_number(self, client: TestClient) -> None:
        cid = client.post("/api/v1/customers", json={"name": "番号なし"}).json()["id"]
        client.post(f"/api/v1/customers/{cid}/complaints", json={"category": "態度", "text": "x"})
        pop = client.get("/api/v1/screenpop", params={"customer_id": cid}).json()
        assert pop["known"] and pop["customer"]["phones"] == [] and not pop["phone"]["valid"]
        assert {f["code"] for f in pop["caution_flags"]} == {"open_complaint", "caution", "outbound_excluded"}

    def test_by_id_equals_by_phone(self, client: TestClient) -> None:
        cid = client.post("/api/v1/customers", json={"name": "山田", "phones": [{"number": "0312345678"}]}).json()["id"]
        by_id = client.get("/api/v1/screenpop", params={"customer_id": cid}).json()
        by_phone = client.get("/api/v1/screenpop", params={"phone": "03-1234-5678"}).json()
        assert by_id["customer"] == by_phone["customer"] and by_id["phone"]["e164"] == by_phone["phone"]["e164"]

    def test_exactly_one_key(self, client: TestClient) -> None:
        assert client.get("/api/v1/screenpop").status_code == 422
        assert client.get("/api/v1/screenpop", params={"phone": "0312345678", "customer_id": 1}).status_code == 422
        assert client.get("/api/v1/screenpop", params={"customer_id": 987654}).status_code == 404
