"""Demo data for ``kakehashi demo``: a few hand-made customers with known numbers, plus N generated.

The showcase customers are created through the real services (validation, caution rule, events)
in one unit of work; their numbers are in ranges the generator never uses
(:func:`kakehashi.demo.synthetic.is_reserved`), so they can be quoted in the README:

==================  ==============  =================================================
山田 花子            03-1234-5678    VIP, married, five orders, a resolved return
佐藤 一郎            090-1111-2222   open complaint → caution, excluded from outbound
鈴木 次郎            03-1555-0101    gold, repeat buyer, a return, contact history
高橋 美咲            090-1234-0001   new customer with e-mail; also 03-1555-0202
田中 健太            090-1555-0303   no orders yet, questionnaire answered
==================  ==============  =================================================

Running it again changes nothing: the showcase is only made in an empty tenant, and the
generated customers are only added while the tenant has no other customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from kakehashi.complaints import service as complaints
from kakehashi.complaints.schemas import ComplaintCreate, Kind, Severity
from kakehashi.contacts import service as contacts
from kakehashi.contacts.schemas import Channel, ContactCreate
from kakehashi.customers import service as customer_service
from kakehashi.customers.models import Customer
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.demo import seed as seeding
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.orders import service as orders
from kakehashi.orders.schemas import OrderCreate, OrderLineIn
from kakehashi.tenants import service as tenants

#: Numbers quoted in the README / demo (national form).
SHOWCASE_NUMBERS = {
    "山田 花子": "03-1234-5678",
    "佐藤 一郎": "090-1111-2222",
    "鈴木 次郎": "03-1555-0101",
    "高橋 美咲": "090-1234-0001",
    "田中 健太": "090-1555-0303",
}


@dataclass
class DemoResult:
    showcase_created: int
    seeded: seeding.SeedResult | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "showcase_created": self.showcase_created,
            "seeded": self.seeded.as_dict() if self.seeded else None,
        }


def _at(y: int, m: int, d: int, hour: int = 12) -> datetime:
    return datetime(y, m, d, hour, 0, tzinfo=UTC)


def _line(sku: str, quantity: int = 1) -> OrderLineIn:
    _sku, name, price, _w = next(p for p in seeding.PRODUCTS if p[0] == sku)
    return OrderLineIn(sku=sku, name=name, quantity=quantity, unit_price=price)


def _showcase(session: Session, actor: Actor, region: str) -> int:
    """Create the hand-made customers; return how many."""
    seeding.ensure_custom_fields(session, actor)

    def create(**fields: Any) -> int:
        phones = [PhoneIn(number=n, label=label) for n, label in fields.pop("phones")]
        data = CustomerCreate(phones=phones, **fields)
        return customer_service.create_customer(session, actor, data, region=region).id

    hanako = create(
        name="山田 花子", name_kana="ヤマダ ハナコ", gender="female", birthday=date(1958, 5, 12),
        postal_code="1000001", prefecture="東京都", city="千代田区", town="千代田", street="1-1",
        building="ロイヤルハイツ千代田 502", email="hanako.yamada@example.jp", rank="vip",
        notes="長年のお得意様。お届けは午前中指定。",
        phones=[("03-1234-5678", "自宅"), ("090-1234-5678", "携帯")],
        custom={"married": True, "children": 2, "hobby": "園芸", "questionnaire_date": "2026-02-10"},
    )  # fmt: skip
    for when, lines in (
        (_at(2025, 3, 4), [_line("HL-0102"), _line("HL-0103", 2)]),
        (_at(2025, 7, 19), [_line("HM-0401")]),
        (_at(2025, 11, 2), [_line("FD-0201"), _line("FD-0202")]),
        (_at(2026, 1, 15), [_line("HC-0602")]),
        (_at(2026, 3, 20), [_line("HL-0102"), _line("BT-0301")]),
    ):
        order = orders.create_order(session, actor, hanako, OrderCreate(ordered_at=when, lines=lines))
    complaints.record_complaint(
        session, actor, hanako,
        ComplaintCreate(kind=Kind.ret, category="サイズ違い", text="羽毛布団がシングルでは小さいため返品。",
                        severity=Severity.low, occurred_on=date(2026, 3, 25), order_id=order.id),
    )  # fmt: skip
    contacts.add_contact(
        session, actor, hanako,
        ContactCreate(channel=Channel.call, direction="inbound", summary="注文受付", agent="tanaka",
                      body="テレビ放送を見て電話注文。グルコサミン定期便も検討中。", occurred_at=_at(2026, 3, 20)),
    )  # fmt: skip

    ichiro = create(
        name="佐藤 一郎", name_kana="サトウ イチロウ", gender="male", birthday=date(1949, 9, 30),
        postal_code="5300001", prefecture="大阪府", city="大阪市北区", town="梅田", street="3-4-5",
        rank="normal", phones=[("090-1111-2222", "携帯")],
    )  # fmt: skip
    order = orders.create_order(
        session, actor, ichiro, OrderCreate(ordered_at=_at(2026, 3, 1), lines=[_line("HM-0403")])
    )
    complaints.record_complaint(
        session, actor, ichiro,
        ComplaintCreate(kind=Kind.complaint, category="配送遅延", severity=Severity.high, order_id=order.id,
                        occurred_on=date(2026, 3, 12),
                        text="お届け予定日を10日過ぎても届かない。電話もつながらなかったと強いお怒り。"),
    )  # fmt: skip
    contacts.add_contact(
        session, actor, ichiro,
        ContactCreate(channel=Channel.call, direction="inbound", summary="クレーム受付: 配送遅延",
                      agent="suzuki", occurred_at=_at(2026, 3, 12),
                      body="SVに引き継ぎ。配送業者に確認の上、折り返し連絡を約束。"),
    )  # fmt: skip

    jiro = create(
        name="鈴木 次郎", name_kana="スズキ ジロウ", gender="male", birthday=date(1966, 1, 8),
        postal_code="2310023", prefecture="神奈川県", city="横浜市中区", town="山下町", street="10-2",
        rank="gold", phones=[("03-1555-0101", "自宅")],
        custom={"married": True, "children": 1, "hobby": "ゴルフ"},
    )  # fmt: skip
    first = None
    for month in range(1, 13, 2):
        placed = orders.create_order(
            session, actor, jiro, OrderCreate(ordered_at=_at(2025, month, 10), lines=[_line("HL-0104")])
        )
        first = first or placed
    assert first is not None
    complaints.record_complaint(
        session, actor, jiro,
        ComplaintCreate(kind=Kind.ret, category="重複注文", text="家族が同じ商品を注文していたため1点返品。",
                        severity=Severity.low, occurred_on=date(2025, 1, 15), order_id=first.id),
    )  # fmt: skip
    for summary, body, when in (
        ("定期便のご案内", "定期便をご案内。次回から切り替え希望。", _at(2025, 6, 1)),
        ("問い合わせ: お届け日", "お届け予定日の確認。追跡番号をご案内。", _at(2025, 9, 12)),
    ):
        contacts.add_contact(
            session, actor, jiro,
            ContactCreate(channel=Channel.call, direction="outbound" if "案内" in summary else "inbound",
                          summary=summary, body=body, agent="ito", occurred_at=when),
        )  # fmt: skip

    misaki = create(
        name="高橋 美咲", name_kana="タカハシ ミサキ", gender="female", birthday=date(1991, 7, 7),
        postal_code="8100001", prefecture="福岡県", city="福岡市中央区", town="天神", street="2-8-1",
        email="misaki.takahashi@example.ne.jp",
        phones=[("090-1234-0001", "携帯"), ("03-1555-0202", "勤務先")],
    )  # fmt: skip
    orders.create_order(
        session, actor, misaki, OrderCreate(ordered_at=_at(2026, 3, 28), channel="web", lines=[_line("BT-0302")])
    )

    create(
        name="田中 健太", name_kana="タナカ ケンタ", gender="male", birthday=date(1980, 12, 1),
        postal_code="0600001", prefecture="北海道", city="札幌市中央区", town="北一条西", street="2-1",
        phones=[("090-1555-0303", "携帯")],
        custom={"married": False, "children": 0, "hobby": "釣り", "questionnaire_date": "2026-03-01"},
    )  # fmt: skip
    return len(SHOWCASE_NUMBERS)


def ensure_demo_data(
    engine: Engine, settings: Settings, customers: int = 2000, console: Console | None = None
) -> DemoResult:
    """Create the showcase customers and ``customers`` generated ones in the default tenant, once."""
    say = console.print if console is not None else (lambda *_a, **_k: None)
    factory = make_session_factory(engine)
    showcase = 0
    with unit_of_work(factory) as session:
        code = settings.default_tenant
        tenant = tenants.ensure(session, code)
        actor = Actor(tenant_id=tenant.id, username="demo")
        if _customers_in(session, tenant.id) == 0:
            showcase = _showcase(session, actor, settings.default_region)
        count = _customers_in(session, tenant.id)
    seeded = None
    if customers > 0 and count <= len(SHOWCASE_NUMBERS):
        say(f"generating {customers:,} demo customers…")
        seeded = seeding.seed(engine, customers, tenant_code=settings.default_tenant, seed=1,
                              progress=console is not None, console=console)  # fmt: skip
    if showcase or seeded:
        say("[green]demo data ready[/]: try a screen pop for " + ", ".join(
            f"{name} {number}" for name, number in SHOWCASE_NUMBERS.items()
        ))  # fmt: skip
    else:
        say("demo data already present")
    return DemoResult(showcase_created=showcase, seeded=seeded)


def _customers_in(session: Session, tenant_id: int) -> int:
    stmt = select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant_id)
    return int(session.execute(stmt).scalar_one())
