"""The PostgreSQL one-statement screen pop (``screenpop.repository``, ADR 0014) against the generic path.

Both paths run on the same data in the same transaction; the response (full and masked) and the audit
row must be identical. PostgreSQL only: SQLite has the generic path alone.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.complaints import service as complaints
from kakehashi.complaints.models import Complaint
from kakehashi.complaints.schemas import ComplaintCreate
from kakehashi.contacts.models import Contact
from kakehashi.customers import service as customers
from kakehashi.customers.models import Customer
from kakehashi.customers.schemas import CustomerCreate, CustomFieldCreate, CustomFieldUpdate, PhoneIn
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import NotFound
from kakehashi.kit.masking import full_context
from kakehashi.orders.models import Order, OrderLine
from kakehashi.screenpop import service
from kakehashi.screenpop.schemas import ScreenPop

T0 = datetime(2026, 3, 1, 0, 30, 0, 123456, tzinfo=UTC)
JST = timezone(timedelta(hours=9))
# What an audit row says, minus its own id and the clock: every other column, present and future.
AUDIT_KEYS = [c.key for c in AuditEvent.__table__.columns if c.key not in ("id", "at")]


@contextmanager
def count_queries(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind().engine

    def record(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture(autouse=True)
def postgresql_only(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement screen pop is PostgreSQL's")


@pytest.fixture
def tokyo_session(session: Session) -> Iterator[Session]:
    """A session whose TimeZone is not UTC: timestamps must still come out as the generic path's."""
    session.execute(text("SET LOCAL TimeZone = 'Asia/Tokyo'"))
    yield session


def rich_customer(session: Session, actor: Actor) -> int:
    """Many orders (ties on the order time), open and resolved cases, contacts, custom fields of every kind."""
    for i, (key, kind) in enumerate([("children", "number"), ("hobby", "text"), ("member", "boolean"),
                                     ("since", "date"), ("plan", "choice"), ("unset", "text")]):  # fmt: skip
        choices = ["gold", "silver"] if kind == "choice" else None
        customers.define_custom_field(
            session, actor, CustomFieldCreate(key=key, label=f"項目{key}", type=kind, choices=choices, position=5 - i)
        )
    customers.define_custom_field(session, actor, CustomFieldCreate(key="gone", label="廃止", type="text"))
    customers.update_custom_field(session, actor, "gone", CustomFieldUpdate(active=False))
    cid = customers.create_customer(
        session,
        actor,
        CustomerCreate(
            name="山田 花子",
            name_kana="ヤマダ ハナコ",
            birthday=date(1980, 2, 29),
            rank="VIP",
            email="hanako@example.jp",
            postal_code="100-0001",
            street="千代田1-1",
            building="皇居前ビル 3F",
            notes='メモ "引用" \\ 改行\nあり',
            phones=[PhoneIn(number="03-1234-5678", label="自宅"), PhoneIn(number="090-1111-2222", is_primary=True)],
            custom={"children": 2, "hobby": "釣り", "member": True, "since": "2020-04-01", "plan": "gold"},
        ),
    ).id
    customer = session.get(Customer, cid)
    assert customer is not None
    # Values the API would not write but the column holds: a float, a nested value, a key with no field.
    customer.custom = {**customer.custom, "children": 2.5, "gone": "x", "extra": {"a": [1, None, "ü"]}}
    for i in range(27):
        at = T0 + timedelta(days=i // 2, microseconds=i)  # pairs with nearly the same time; one exact tie below
        order = Order(
            tenant_id=actor.tenant_id,
            customer_id=cid,
            order_no=None if i % 5 == 0 else f"A{i:04}",
            ordered_at=T0 + timedelta(days=30) if i in (25, 26) else at.astimezone(JST),
            channel="web" if i % 3 else "phone",
            status="ordered",
            total=i * 1000,
            lines=[
                OrderLine(
                    sku=None if j else f"SKU{i}", name=f"商品{j}", quantity=j + 1, unit_price=100, amount=(j + 1) * 100
                )
                for j in range(i % 4)
            ],
        )
        session.add(order)
    session.flush()
    for i in range(4):
        complaints.record_complaint(
            session,
            actor,
            cid,
            ComplaintCreate(category=f"分類{i}", text=f"本文 {i}", occurred_on=date(2026, 2, i + 1)),
        )
    resolved = session.scalars(select(Complaint).where(Complaint.customer_id == cid)).first()
    assert resolved is not None
    complaints.resolve(session, actor, resolved.id)
    for i in range(13):
        session.add(
            Contact(
                tenant_id=actor.tenant_id,
                customer_id=cid,
                channel="call",
                direction="inbound" if i % 2 else None,
                occurred_at=T0 + timedelta(hours=i % 11, microseconds=7),
                summary=f"問い合わせ {i}",
                body=None if i % 3 else "本文\t" * i,
                agent="sato" if i % 2 else None,
                ref={"call_id": i, "dnis": "0120-000-000", "tags": ["a", 1.5]} if i % 2 else None,
            )
        )
    session.flush()
    return cid


def bare_customer(session: Session, actor: Actor, number: str | None) -> int:
    phones = [PhoneIn(number=number)] if number else []
    return customers.create_customer(session, actor, CustomerCreate(name="番号 太郎", phones=phones)).id


def last_audit(session: Session) -> AuditEvent | None:
    session.expire_all()
    return session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()


def audit_of(session: Session, before: AuditEvent | None) -> dict[str, Any] | None:
    """The one audit row written since ``before`` (None when none was)."""
    after = last_audit(session)
    if after is None or (before is not None and after.id == before.id):
        return None
    assert (
        before is None
        or after.id == before.id + 1
        or session.scalar(select(AuditEvent.id).where(AuditEvent.id > before.id, AuditEvent.id < after.id)) is None
    ), "more than one audit row"
    assert after.at.tzinfo is not None
    # The ORM reads SQL NULL and JSON null alike; the stored form must be the same too.
    stored = session.scalar(text("SELECT jsonb_typeof(detail) FROM audit_events WHERE id = :id"), {"id": after.id})
    return {**{key: getattr(after, key) for key in AUDIT_KEYS}, "detail_json_type": stored}


def both_ways(session: Session, actor: Actor, call: Any) -> tuple[ScreenPop, ScreenPop, dict[str, Any] | None]:
    """``call(one_statement)`` on both paths; asserts equal audit rows, returns both pops and the row."""
    before = last_audit(session)
    generic = call(False)
    generic_row = audit_of(session, before)
    before = last_audit(session)
    with count_queries(session) as statements:
        single = call(True)
    single_row = audit_of(session, before)
    assert single_row == generic_row
    assert len(statements) == 1, statements
    return generic, single, single_row


def assert_same(generic: ScreenPop, single: ScreenPop) -> None:
    """The same response for every reader: full values, masked values, no context (masked)."""
    for context in (full_context(True), full_context(False), None):
        assert single.model_dump_json(context=context) == generic.model_dump_json(context=context)
    assert single == generic


def reader(actor: Actor, masked: bool) -> Actor:
    """``actor``, or a client viewer of its tenant who gets masked values (and a full audit identity)."""
    if not masked:
        return actor
    return Actor(
        tenant_id=actor.tenant_id,
        username="viewer",
        user_id=77,
        role=Role.CLIENT_VIEWER,
        origin="10.0.0.9",
        route="GET /api/v1/screenpop",
        sees_personal_data=False,
    )


class TestSamePayload:
    @pytest.mark.parametrize("raw", ["09011112222", "+81 3-1234-5678", "０９０（１１１１）２２２２"])
    @pytest.mark.parametrize("masked", [False, True], ids=["full", "masked-role"])
    def test_rich_customer_by_number(self, tokyo_session: Session, actor: Actor, raw: str, masked: bool) -> None:
        session = tokyo_session
        cid = rich_customer(session, actor)
        who = reader(actor, masked)
        generic, single, row = both_ways(
            session, who, lambda one: service.screen_pop(session, who, raw, one_statement=one)
        )
        assert_same(generic, single)
        assert single.known and single.customer is not None and single.customer.id == cid
        assert len(single.orders) == 20 and len(single.contacts) == 10 and len(single.open_complaints) == 3
        assert [f.key for f in single.custom_fields] == ["unset", "plan", "since", "member", "hobby", "children"]
        assert single.custom_fields[-1].value == 2.5 and single.custom_fields[0].value is None
        assert {f.code for f in single.caution_flags} == {"open_complaint", "caution", "outbound_excluded", "vip"}
        assert row is not None and row["customer_id"] == row["resource_id"] == cid and row["detail"] is None
        if masked:
            body = single.model_dump_json(context=full_context(False))
            assert "hanako@" not in body and "釣り" not in body and "1111" not in body

    def test_customer_without_history_or_fields(self, session: Session, other_actor: Actor) -> None:
        bare_customer(session, other_actor, "06-6000-0000")
        generic, single, _ = both_ways(
            session, other_actor, lambda one: service.screen_pop(session, other_actor, "0660000000", one_statement=one)
        )
        assert_same(generic, single)
        assert single.known and single.orders == [] and single.custom_fields == [] and single.caution_flags == []

    @pytest.mark.parametrize("raw", ["03-9999-9999", "0120-444-444"])
    def test_unknown_number_is_a_blank_card_and_audited_with_the_number(
        self, session: Session, actor: Actor, raw: str
    ) -> None:
        rich_customer(session, actor)
        generic, single, row = both_ways(
            session, actor, lambda one: service.screen_pop(session, actor, raw, one_statement=one)
        )
        assert_same(generic, single)
        assert not single.known and row is not None
        assert row["customer_id"] is None and row["detail"] == {"e164": single.phone.e164, "known": False}

    def test_another_tenants_number_is_unknown(self, session: Session, actor: Actor, other_actor: Actor) -> None:
        rich_customer(session, other_actor)
        generic, single, row = both_ways(
            session, actor, lambda one: service.screen_pop(session, actor, "090-1111-2222", one_statement=one)
        )
        assert_same(generic, single)
        assert not single.known and row is not None and row["tenant_id"] == actor.tenant_id

    @pytest.mark.parametrize("raw", ["anonymous", "非通知", "", "12"])
    def test_withheld_or_garbled_number(self, session: Session, actor: Actor, raw: str) -> None:
        """No number to look up: the generic audit row, no card statement (the one statement is not run)."""
        before = last_audit(session)
        generic = service.screen_pop(session, actor, raw, one_statement=False)
        generic_row = audit_of(session, before)
        before = last_audit(session)
        single = service.screen_pop(session, actor, raw, one_statement=True)
        assert_same(generic, single)
        assert audit_of(session, before) == generic_row and generic_row is not None

    @pytest.mark.parametrize("masked", [False, True], ids=["full", "masked-role"])
    def test_by_customer_id(self, tokyo_session: Session, actor: Actor, masked: bool) -> None:
        session = tokyo_session
        cid = rich_customer(session, actor)
        who = reader(actor, masked)
        generic, single, row = both_ways(
            session, who, lambda one: service.screen_pop_for_customer(session, who, cid, one_statement=one)
        )
        assert_same(generic, single)
        assert single.phone.e164 == "+819011112222"  # the primary number
        assert row is not None and row["customer_id"] == cid

    def test_by_id_of_a_customer_without_a_number(self, session: Session, actor: Actor) -> None:
        cid = bare_customer(session, actor, None)
        generic, single, _ = both_ways(
            session, actor, lambda one: service.screen_pop_for_customer(session, actor, cid, one_statement=one)
        )
        assert_same(generic, single)
        assert not single.phone.valid and single.customer is not None and single.customer.phones == []

    def test_unknown_id_is_not_found_and_writes_nothing(
        self, session: Session, actor: Actor, other_actor: Actor
    ) -> None:
        foreign = bare_customer(session, other_actor, "06-6000-0001")
        for cid in (foreign, 987654321):
            before = last_audit(session)
            for one in (False, True):
                with pytest.raises(NotFound):
                    service.screen_pop_for_customer(session, actor, cid, one_statement=one)
            assert audit_of(session, before) is None


class TestByDefault:
    def test_postgresql_uses_one_statement(self, session: Session, actor: Actor) -> None:
        rich_customer(session, actor)
        for raw in ("09011112222", "03-9999-9999"):
            with count_queries(session) as statements:
                service.screen_pop(session, actor, raw)
            assert len(statements) == 1 and statements[0].lstrip().startswith("WITH owner")

    def test_endpoint_returns_the_generic_paths_body(self, client_as: ClientAs, session: Session, actor: Actor) -> None:
        operator = client_as(Role.OPERATOR)
        rich_customer(session, actor)
        body = operator.get("/api/v1/screenpop", params={"phone": "03-1234-5678"}).text
        generic = service.screen_pop(session, actor, "03-1234-5678", one_statement=False)
        assert body == generic.model_dump_json(context=full_context(True))
