"""``kakehashi seed``: millions of realistic customers with their history, fast.

Customers come from :mod:`kakehashi.demo.synthetic`; each gets phones, 0–30 orders of
TV-shopping products, some returns and complaints, contact history and answers to a mailed
questionnaire (custom fields, defined here when missing).

Rows are written in bulk, bypassing the ORM: PostgreSQL ``COPY`` (text format), SQLite
``executemany``; a generator thread prepares the next batch while the database stores the
current one. Ids are assigned here from a reserved range: on PostgreSQL the tables are locked
against other writers (readers are not blocked), the range starts after ``max(id)`` and the
sequences are moved past it at the end. Everything runs in one transaction.

The rows follow the services' rules: ``name_key``/``kana_key`` are
:func:`kakehashi.kit.text.search_key` of the name and reading, numbers are stored as
:func:`kakehashi.kit.phone.parse_phone` gives them, and a complaint raises the caution flag and
the outbound exclusion with the reason ``クレーム: <category>`` of the customer's latest complaint
(as :func:`kakehashi.complaints.service.record_complaint` does). Returns do not.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from kakehashi.complaints.service import caution_reason
from kakehashi.customers import service as customer_service
from kakehashi.customers.models import Customer, CustomerPhone
from kakehashi.customers.schemas import CustomFieldCreate, FieldType
from kakehashi.demo.synthetic import CAPACITY, REFERENCE_DATE, Person, generate_people
from kakehashi.kit.context import Actor
from kakehashi.tenants import service as tenants

BATCH = 5000

#: (sku, name, price in yen, weight): what a TV-shopping center sells.
PRODUCTS: tuple[tuple[str, str, int, int], ...] = (
    ("HL-0101", "国産黒酢カプセル 30日分", 2980, 30),
    ("HL-0102", "グルコサミン＆コンドロイチン 360粒", 5980, 28),
    ("HL-0103", "青汁 粉末 30包", 3240, 26),
    ("HL-0104", "DHA・EPA オメガ3 120粒", 4320, 18),
    ("HL-0105", "ブルーベリー＆ルテイン 60粒", 3980, 16),
    ("HL-0106", "乳酸菌サプリ 30日分", 2480, 14),
    ("FD-0201", "北海道産 いくら醤油漬け 500g", 6980, 12),
    ("FD-0202", "紀州南高梅 はちみつ漬け 1kg", 4980, 12),
    ("FD-0203", "黒毛和牛 すき焼き用 800g", 12800, 8),
    ("FD-0204", "訳あり 国産うなぎ蒲焼 4尾", 7980, 10),
    ("FD-0205", "ずわいがに 姿 2杯", 9800, 6),
    ("BT-0301", "オールインワンゲル 100g", 3980, 20),
    ("BT-0302", "美容液ファンデーション", 4950, 12),
    ("BT-0303", "薬用育毛エッセンス 120ml", 6600, 8),
    ("HM-0401", "羽毛掛け布団 シングル", 19800, 6),
    ("HM-0402", "低反発マットレス セミダブル", 29800, 4),
    ("HM-0403", "高圧洗浄機 コードレス", 24800, 5),
    ("HM-0404", "スチームクリーナー", 14800, 6),
    ("HM-0405", "サイクロン掃除機 コードレス", 34800, 4),
    ("HM-0406", "ロボット掃除機", 49800, 2),
    ("HM-0407", "電気圧力鍋 3L", 16800, 6),
    ("HM-0408", "ノンフライヤー", 12980, 6),
    ("HM-0409", "包丁 3本セット", 9980, 5),
    ("HM-0410", "フライパン 5点セット", 7980, 8),
    ("FS-0501", "ストレッチパンツ 3本組", 5980, 12),
    ("FS-0502", "らくらくウォーキングシューズ", 7980, 10),
    ("FS-0503", "あったか インナー 上下セット", 3980, 12),
    ("FS-0504", "UVカット 日傘", 3300, 6),
    ("HC-0601", "マッサージチェア", 198000, 1),
    ("HC-0602", "フットマッサージャー", 29800, 3),
    ("HC-0603", "補聴器 耳かけ型", 39800, 2),
    ("HC-0604", "電動アシスト自転車", 99800, 1),
    ("HC-0605", "磁気ネックレス", 4980, 6),
    ("EL-0701", "4K液晶テレビ 43型", 59800, 2),
    ("EL-0702", "ドライブレコーダー 前後2カメラ", 19800, 3),
    ("EL-0703", "シニア向けスマートフォン", 24800, 2),
)
_CHANNELS = ("phone",) * 14 + ("web",) * 4 + ("mail",) * 1 + ("fax",) * 1
_RETURN_REASONS = (
    ("サイズ違い", "サイズが合わないため交換ではなく返品を希望。"),
    ("イメージ違い", "テレビで見た色と違うとのこと。未開封で返送。"),
    ("初期不良", "電源が入らない。着払いで回収し返金手続き。"),
    ("誤配送", "注文と違う商品が届いた。正しい商品を再送し、誤配品を回収。"),
    ("重複注文", "家族が同じ商品を注文していたため1点返品。"),
)
_COMPLAINTS = (
    ("配送遅延", "お届け予定日を過ぎても届かない。何度も電話したのにつながらなかったとご立腹。", "medium"),
    ("商品不良", "使い始めて数日で壊れた。品質が悪いと強いお怒り。", "high"),
    ("電話応対", "オペレーターの言葉遣いが失礼だったとのお申し出。", "medium"),
    ("請求誤り", "一度しか注文していないのに二重に請求されている。", "high"),
    ("しつこい勧誘", "不要と伝えたのに何度も案内の電話がかかってくる。今後の電話は一切不要。", "high"),
    ("定期便解約", "定期便の解約方法がわかりにくい。解約できていなかった。", "medium"),
    ("効果への不満", "広告ほどの効果がない。誇大広告ではないかとのご意見。", "low"),
)
_CONTACTS = (
    ("call", "inbound", "注文受付", "テレビ放送を見て電話注文。お届け日の指定あり。"),
    ("call", "inbound", "問い合わせ: お届け日", "お届け予定日の確認。追跡番号をご案内。"),
    ("call", "inbound", "問い合わせ: 使い方", "商品の使い方のご質問。説明書の該当ページをご案内。"),
    ("call", "inbound", "住所変更", "転居のためお届け先住所を変更。"),
    ("call", "outbound", "新商品のご案内", "新商品をご案内。資料送付を希望。"),
    ("call", "outbound", "定期便のご案内", "定期便をご案内。検討するとのこと。"),
    ("call", "outbound", "アンケートのお願い", "ご利用アンケートへのご協力をお願い。郵送で回答予定。"),
    ("mail", "inbound", "アンケート回答", "郵送アンケートの回答を受領。"),
    ("email", "inbound", "メール問い合わせ", "支払い方法についてのメール。代引きと後払いをご案内。"),
    ("note", None, "メモ", "日中は不在が多い。夜19時以降の連絡を希望。"),
)
_AGENTS = ("tanaka", "suzuki", "takahashi", "watanabe", "ito", "yamamoto", "nakamura", "kobayashi", "kato", "yoshida")
_NOTES = (
    "耳が遠いので大きめの声でゆっくり話す。",
    "日中は不在が多い。夜19時以降の連絡を希望。",
    "代引き不可。後払いのみ。",
    "ご家族（娘様）が代理で注文することあり。",
    "置き配希望（玄関前）。",
)
_HOBBIES = ("園芸", "旅行", "料理", "読書", "ゴルフ", "釣り", "手芸", "カラオケ", "写真", "ウォーキング")

#: Custom fields the questionnaire fills (created when missing).
CUSTOM_FIELDS = (
    CustomFieldCreate(key="married", label="既婚", type=FieldType.boolean, position=10),
    CustomFieldCreate(key="children", label="子供の人数", type=FieldType.number, position=20),
    CustomFieldCreate(key="hobby", label="趣味", type=FieldType.choice, choices=list(_HOBBIES), position=30),
    CustomFieldCreate(key="questionnaire_date", label="アンケート回答日", type=FieldType.date, position=40),
)

_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "id", "tenant_id", "name", "name_kana", "name_key", "kana_key", "gender", "birthday", "postal_code",
        "prefecture", "city", "town", "street", "building", "email", "notes", "rank", "caution",
        "caution_reason", "outbound_excluded", "excluded_reason", "custom", "created_at", "updated_at",
    ),
    "customer_phones": (
        "id", "tenant_id", "customer_id", "e164", "national", "kind", "label", "is_primary", "created_at",
    ),
    "orders": ("id", "tenant_id", "customer_id", "order_no", "ordered_at", "channel", "status", "total"),
    "order_lines": ("id", "order_id", "sku", "name", "quantity", "unit_price", "amount"),
    "complaints": (
        "id", "tenant_id", "customer_id", "order_id", "kind", "occurred_on", "category", "text", "severity",
        "status", "created_at", "resolved_at",
    ),
    "contacts": (
        "id", "tenant_id", "customer_id", "channel", "direction", "occurred_at", "summary", "body", "agent",
        "ref",
    ),
}  # fmt: skip
_TABLES = tuple(_COLUMNS)  # parents first


@dataclass
class SeedResult:
    """What was written, and how fast."""

    tenant_id: int
    database: str
    start: int
    customers: int = 0
    phones: int = 0
    orders: int = 0
    order_lines: int = 0
    returns: int = 0
    complaints: int = 0
    contacts: int = 0
    skipped_phones: int = 0
    custom_fields_defined: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return (
            self.customers
            + self.phones
            + self.orders
            + self.order_lines
            + self.returns
            + self.complaints
            + (self.contacts)
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows"] = self.rows
        out["seconds"] = round(self.seconds, 2)
        out["rows_per_s"] = round(self.rows / self.seconds) if self.seconds else None
        out["customers_per_s"] = round(self.customers / self.seconds) if self.seconds else None
        return out


@dataclass
class _Batch:
    rows: dict[str, list[tuple[Any, ...]]]
    customers: int
    returns: int = 0
    complaints: int = 0
    skipped_phones: int = 0


class _Ids:
    """Next id of each table, from the reserved range."""

    def __init__(self, first: dict[str, int]) -> None:
        self.next = dict(first)


def _weighted(items: list[int], size: int = 4096) -> list[int]:
    total = sum(items)
    table: list[int] = []
    acc = 0
    for k, w in enumerate(items):
        acc += w
        table.extend([k] * (round(acc / total * size) - len(table)))
    return table


_CUSTOM_TYPES = {"married": "boolean", "children": "number", "hobby": "choice", "questionnaire_date": "date"}
_PRODUCT_TABLE = _weighted([p[3] for p in PRODUCTS])
# Order counts 0..30: a quarter never ordered, most a few times, a long tail of loyal repeaters.
_ORDER_COUNT_TABLE = _weighted([360, 280, 140, 70, 40, 26, 18, 13, 10, 8, 6, *([3] * 10), *([1] * 10)])
# Hour of day (Japan time) of TV-shopping orders: evening broadcasts dominate.
_JST_HOUR_TABLE = _weighted([1, 1, 0, 0, 0, 0, 1, 2, 3, 5, 7, 7, 6, 5, 5, 5, 5, 6, 8, 12, 16, 18, 14, 6])


class _Generator:
    """Turns people into table rows (tuples of strings; ``null`` for NULL), with ids from the reserved range."""

    def __init__(
        self,
        *,
        tenant_id: int,
        seed: int,
        ids: _Ids,
        null: Any,
        ts_suffix: str,
        custom_types: dict[str, str],
        taken: set[str],
    ) -> None:
        self.tenant = str(tenant_id)
        self.seed = seed
        self.ids = ids
        self.null = null
        self.custom_types = custom_types
        self.taken = taken
        self.last_day = 5 * 365  # histories cover five years up to the reference date
        first = REFERENCE_DATE - timedelta(days=self.last_day + 1)
        self.days = [(first + timedelta(days=d)).isoformat() for d in range(self.last_day + 2)]
        # Times of day (UTC) with the day shift from Japan time: 21:30 JST is 12:30 UTC the same day.
        rng = random.Random(0)
        self.times: list[tuple[int, str]] = []
        for _ in range(8192):
            minute = _JST_HOUR_TABLE[int(rng.random() * 4096)] * 60 + int(rng.random() * 60) - 9 * 60
            shift = -1 if minute < 0 else 0
            minute %= 1440
            second = int(rng.random() * 60)
            self.times.append((shift, f" {minute // 60:02d}:{minute % 60:02d}:{second:02d}{ts_suffix}"))
        self.true, self.false = ("t", "f") if null == "\\N" else ("1", "0")
        # Order lines by product and quantity, as strings: (sku, name, quantity, unit price, amount).
        self.line_cells = [
            [(sku, name, str(q), str(price), str(q * price)) for q in range(6)] for sku, name, price, _w in PRODUCTS
        ]
        self.prices = [[q * p[2] for q in range(6)] for p in PRODUCTS]

    def _ts(self, day: int, u: float) -> str:
        """A timestamp on ``day`` (days into the range) at a TV-shopping hour; ``u`` uniform in [0, 1)."""
        shift, hms = self.times[int(u * 8192)]
        return self.days[day + 1 + shift] + hms

    def batch(self, people: list[Person]) -> _Batch:
        null, tenant, true, false, ts = self.null, self.tenant, self.true, self.false, self._ts
        rng = random.Random(self.seed * 7_919 + people[0].index)
        r = rng.random
        ids = self.ids.next
        cid, pid, oid, lid = ids["customers"], ids["customer_phones"], ids["orders"], ids["order_lines"]
        xid = ids["complaints"]
        customers: list[tuple[Any, ...]] = []
        phones: list[tuple[Any, ...]] = []
        orders: list[tuple[Any, ...]] = []
        lines: list[tuple[Any, ...]] = []
        complaints: list[tuple[Any, ...]] = []
        contacts: list[tuple[Any, ...]] = []
        out = _Batch(
            rows={
                "customers": customers,
                "customer_phones": phones,
                "orders": orders,
                "order_lines": lines,
                "complaints": complaints,
                "contacts": contacts,
            },
            customers=len(people),
        )
        last_day, taken, line_cells, prices = self.last_day, self.taken, self.line_cells, self.prices
        n_channels = len(_CHANNELS)
        for person in people:
            cid += 1
            cid_s = str(cid - 1)
            since = int(r() * last_day)  # customer since (days into the range)
            created = ts(since, r())
            first_phone = True
            for phone in person.phones:
                if taken and phone.e164 in taken:
                    out.skipped_phones += 1
                    continue
                phones.append(
                    (str(pid), tenant, cid_s, phone.e164, phone.national, phone.kind,
                     "携帯" if phone.kind == "mobile" else "自宅", true if first_phone else false, created)
                )  # fmt: skip
                pid += 1
                first_phone = False
            # Orders, oldest first, between "since" and the end of the range.
            n_orders = _ORDER_COUNT_TABLE[int(r() * 4096)]
            span = last_day - since + 1
            first_order = oid
            returned: list[tuple[str, int]] = []
            for day in sorted([since + int(r() * span) for _ in range(n_orders)]):
                oid_s = str(oid)
                oid += 1
                total = 0
                u = r()
                for _ in range(1 if u < 0.72 else 2 if u < 0.93 else 3 + int(r() * 3)):
                    k = _PRODUCT_TABLE[int(r() * 4096)]
                    u = r()
                    q = 1 if u < 0.86 else 2 if u < 0.97 else 3
                    total += prices[k][q]
                    lines.append((str(lid), oid_s, *line_cells[k][q]))
                    lid += 1
                age = last_day - day
                u = r()
                if u < 0.03 and age > 3:
                    status = "returned"
                    returned.append((oid_s, day))
                elif u < 0.05:
                    status = "cancelled"
                else:
                    status = "delivered" if age >= 5 else "shipped" if age >= 2 else "ordered"
                orders.append(
                    (oid_s, tenant, cid_s, f"TV{oid - 1:010d}", ts(day, r()), _CHANNELS[int(r() * n_channels)],
                     status, str(total))
                )  # fmt: skip
            # Returns (no caution) and complaints (caution + outbound exclusion, latest reason wins).
            reason = None
            if returned or r() < 0.015:
                cases: list[tuple[int, str, Any, str, str, str, bool]] = []
                for oid_s, day in returned:
                    category, text = _RETURN_REASONS[int(r() * len(_RETURN_REASONS))]
                    rday = min(day + 2 + int(r() * 10), last_day)
                    cases.append((rday, "return", oid_s, category, text, "low", rday < last_day - 7 or r() < 0.5))
                    out.returns += 1
                if not returned or r() < 0.1:  # returns sometimes come with a complaint
                    category, text, severity = _COMPLAINTS[int(r() * len(_COMPLAINTS))]
                    day = since + int(r() * span)
                    order = str(first_order + int(r() * n_orders)) if n_orders and r() < 0.6 else null
                    cases.append((day, "complaint", order, category, text, severity, r() < 0.7 and day < last_day - 3))
                    out.complaints += 1
                cases.sort(key=lambda c: c[0])
                for day, kind, order, category, text, severity, resolved in cases:
                    at = ts(day, r())
                    complaints.append(
                        (str(xid), tenant, cid_s, order, kind, self.days[day + 1], category, text, severity,
                         "resolved" if resolved else "open", at,
                         ts(min(day + 1 + int(r() * 5), last_day), r()) if resolved else null)
                    )  # fmt: skip
                    xid += 1
                    if kind == "complaint":
                        reason = caution_reason(category)
                        self._contact(contacts, cid_s, "call", "inbound", f"クレーム受付: {category}", text, at)
            # Contact history (about one entry per customer on average).
            for _ in range(int(-math.log(1.0 - r()) * 0.9)):
                channel, direction, summary, body = _CONTACTS[int(r() * len(_CONTACTS))]
                self._contact(contacts, cid_s, channel, direction, summary, body, ts(since + int(r() * span), r()))
            custom = self._custom(person, r) if r() < 0.35 else "{}"
            notes = _NOTES[int(r() * len(_NOTES))] if r() < 0.03 else null
            flag = true if reason else false
            customers.append(
                (cid_s, tenant, person.name, person.name_kana, person.name_key, person.kana_key, person.gender,
                 person.birthday.isoformat(), person.postal_code, person.prefecture, person.city,
                 person.town or null, person.street, person.building or null, person.email or null, notes,
                 person.rank, flag, reason or null, flag, reason or null, custom, created, created)
            )  # fmt: skip
        ids.update(customers=cid, customer_phones=pid, orders=oid, order_lines=lid, complaints=xid)
        return out

    def _contact(
        self, contacts: list[tuple[Any, ...]], cid: str, channel: str, direction: str | None, summary: str,
        body: str, at: str,
    ) -> None:  # fmt: skip
        ids = self.ids.next
        kid = ids["contacts"]
        ids["contacts"] = kid + 1
        agent = _AGENTS[kid % len(_AGENTS)] if channel in ("call", "note") else self.null
        contacts.append(
            (str(kid), self.tenant, cid, channel, direction or self.null, at, summary, body, agent, self.null)
        )

    def _custom(self, person: Person, r: Callable[[], float]) -> str:
        """Answers of the mailed questionnaire; only for fields that exist with the expected type."""
        age = person.age()
        married = r() < (0.3 if age < 30 else 0.7)
        values: dict[str, Any] = {
            "married": married,
            "children": (int(r() * 4) if married else int(r() * 1.2)) if age >= 25 else 0,
            "questionnaire_date": self.days[-1 - int(r() * 700)],
        }
        if r() < 0.9:
            values["hobby"] = _HOBBIES[int(r() * len(_HOBBIES))]
        return json.dumps(
            {k: v for k, v in values.items() if self.custom_types.get(k) == _CUSTOM_TYPES[k]}, ensure_ascii=False
        )


def ensure_custom_fields(session: Session, actor: Actor) -> list[str]:
    """Define the questionnaire fields (:data:`CUSTOM_FIELDS`) the tenant lacks; return their keys."""
    existing = {d.key for d in customer_service.list_custom_fields(session, actor)}
    defined = []
    for spec in CUSTOM_FIELDS:
        if spec.key not in existing:
            customer_service.define_custom_field(session, actor, spec)
            defined.append(spec.key)
    return defined


def _prepare(conn: Connection, tenant_code: str) -> tuple[int, list[str], dict[str, str], int]:
    """Tenant and custom fields through the services; returns (tenant id, fields defined, types, count)."""
    with Session(bind=conn, join_transaction_mode="create_savepoint", autoflush=False) as session:
        tenant = tenants.ensure(session, tenant_code)
        actor = Actor(tenant_id=tenant.id, username="seed")
        defined = ensure_custom_fields(session, actor)
        types = {key: kind for key, _label, kind in customer_service.active_field_labels(session, actor)}
        count = session.execute(
            select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant.id)
        ).scalar_one()
        session.commit()
        return tenant.id, defined, types, count


def _reserve_ids(cursor: Any, postgres: bool) -> dict[str, int]:
    if postgres:
        cursor.execute(f"LOCK TABLE {', '.join(_TABLES)} IN SHARE ROW EXCLUSIVE MODE")
    first = {}
    for table in _TABLES:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608 - fixed table names
        top = cursor.fetchone()[0]
        if postgres:
            cursor.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')")
            seq = cursor.fetchone()[0]
            cursor.execute(f"SELECT last_value, is_called FROM {seq}")  # noqa: S608
            last_value, is_called = cursor.fetchone()
            top = max(top, last_value if is_called else last_value - 1)
        first[table] = top + 1
    return first


def _skip_fk_triggers(cursor: Any) -> bool:
    """Skip the per-row foreign-key checks for this transaction when the role may (superuser).

    The rows reference ids assigned here in the same transaction, so the checks cannot fail; they
    halve the load speed. Without the privilege the checks simply run.
    """
    cursor.execute("SAVEPOINT seed_triggers")
    try:
        cursor.execute("SET LOCAL session_replication_role = replica")
    except Exception:  # InsufficientPrivilege
        cursor.execute("ROLLBACK TO SAVEPOINT seed_triggers")
        return False
    cursor.execute("RELEASE SAVEPOINT seed_triggers")
    return True


def _existing_phones(conn: Connection, tenant_id: int) -> set[str]:
    rows = conn.execute(select(CustomerPhone.e164).where(CustomerPhone.tenant_id == tenant_id))
    return {e164 for (e164,) in rows}


def _write_postgres(cursor: Any, batch: _Batch) -> None:
    for table in _TABLES:
        rows = batch.rows[table]
        if not rows:
            continue
        with cursor.copy(f"COPY {table} ({', '.join(_COLUMNS[table])}) FROM STDIN") as copy:
            chunk: list[str] = []
            for row in rows:
                chunk.append("\t".join(row))
                if len(chunk) == 2000:
                    copy.write("\n".join(chunk) + "\n")
                    chunk = []
            if chunk:
                copy.write("\n".join(chunk) + "\n")


def _write_sqlite(cursor: Any, batch: _Batch) -> None:
    for table in _TABLES:
        rows = batch.rows[table]
        if rows:
            cols = _COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608
            cursor.executemany(sql, rows)


def seed(
    target: Engine | Connection,
    n: int,
    *,
    tenant_code: str = "center",
    seed: int = 1,
    progress: bool = True,
    start: int | None = None,
    console: Console | None = None,
) -> SeedResult:
    """Generate ``n`` customers with their history into the tenant (created when missing).

    ``target`` is an engine (committed here) or a connection (the caller's transaction is used and
    left open). ``start`` is the first synthetic person index; by default the tenant's customer
    count, so seeding again adds new people with new numbers. Numbers already taken in the tenant
    are skipped.
    """
    if isinstance(target, Engine):
        with target.connect() as conn:
            result = _seed(conn, n, tenant_code, seed, progress, start, console)
            conn.commit()
            return result
    return _seed(target, n, tenant_code, seed, progress, start, console)


def _seed(
    conn: Connection,
    n: int,
    tenant_code: str,
    seed: int,
    progress: bool,
    start: int | None,
    console: Console | None,
) -> SeedResult:
    began = time.perf_counter()
    postgres = conn.dialect.name == "postgresql"
    if not conn.in_transaction():
        conn.begin()
    tenant_id, defined, types, count = _prepare(conn, tenant_code)
    first_index = count if start is None else start
    if first_index + n > CAPACITY:
        raise ValueError(f"at most {CAPACITY} synthetic people per tenant")
    result = SeedResult(
        tenant_id=tenant_id, database=conn.dialect.name, start=first_index, custom_fields_defined=defined
    )
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    ids = _Ids(_reserve_ids(cursor, postgres))  # locks out other writers first (PostgreSQL)
    taken = _existing_phones(conn, tenant_id) if count else set()
    skip_triggers = postgres and _skip_fk_triggers(cursor)
    first_ids = dict(ids.next)
    generator = _Generator(
        tenant_id=tenant_id,
        seed=seed,
        ids=ids,
        null="\\N" if postgres else None,
        ts_suffix="+00" if postgres else ".000000",
        custom_types=types,
        taken=taken,
    )
    write = _write_postgres if postgres else _write_sqlite
    bar = _progress(console, n) if progress else None
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of live rows: collections would cost more than the work
    try:
        if bar is not None:
            bar.start()
            task = bar.add_task("seeding customers", total=n)
        for batch in _batches(generator, n, seed, first_index):
            write(cursor, batch)
            result.customers += batch.customers
            result.returns += batch.returns
            result.complaints += batch.complaints
            result.skipped_phones += batch.skipped_phones
            if bar is not None:
                bar.update(task, advance=batch.customers)
    finally:
        if gc_was_enabled:
            gc.enable()
        if bar is not None:
            bar.stop()
    if skip_triggers:
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    counts = {t: ids.next[t] - first_ids[t] for t in _TABLES}
    result.phones = counts["customer_phones"]
    result.orders = counts["orders"]
    result.order_lines = counts["order_lines"]
    result.contacts = counts["contacts"]
    if postgres:
        for table in _TABLES:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, max(ids.next[table] - 1, 1)))
        if result.customers >= 100_000:  # fresh statistics, so the planner knows the tables grew
            cursor.execute("ANALYZE " + ", ".join(_TABLES))
    cursor.close()
    result.seconds = time.perf_counter() - began
    return result


def _batches(generator: _Generator, n: int, seed: int, start: int) -> Iterator[_Batch]:
    """Batches made by a worker thread, so generating overlaps with the database storing."""
    out: queue.Queue[_Batch | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work() -> None:
        try:
            people: list[Person] = []
            for person in generate_people(n, seed=seed, start=start):
                people.append(person)
                if len(people) == BATCH:
                    out.put(generator.batch(people))
                    people = []
                    if stop.is_set():
                        return
            if people:
                out.put(generator.batch(people))
            out.put(None)
        except BaseException as exc:
            out.put(exc)

    worker = threading.Thread(target=work, name="seed-generator", daemon=True)
    worker.start()
    try:
        while (item := out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full queue
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.1)
        worker.join()


def _progress(console: Console | None, total: int) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
