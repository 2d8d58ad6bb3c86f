"""Demo routing for ``kakehashi demo``: break reasons, result codes, a dozen agents, four queues, the order-desk
IVR flow and three toll-free numbers, all made through the real services (validation, events) in the default tenant.

===================  ==========================================  ===========================================
number               what answers                                 notes
===================  ==========================================  ===========================================
0120-555-010         IVR ``order-desk`` (テレビショッピング受注)   ivr/templates.py ORDER_DESK_EXAMPLE; v2 open 24 h
0120-555-020         queue ``vip`` (VIP窓口)                       rank priority: vip before gold before others
0120-555-030         queue ``support`` (お問い合わせ)              skill ``inquiry``, level 2 after 20 s
===================  ==========================================  ===========================================

The agent named ``operator`` is the demo operator user (an agent is matched to a user by name = username);
the other agents are simulated by ``demo/traffic.py`` while the demo server runs.

Running it again changes nothing: each aux code, agent, queue, flow and number is made only when missing, and
the result codes only while the center has none of its own, so an admin's later edits stay.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kakehashi.agents import service as agents
from kakehashi.dispositions import service as dispositions
from kakehashi.dispositions.schemas import DispositionIn
from kakehashi.ivr import service as ivr
from kakehashi.ivr.schemas import FlowCreate, VersionCreate
from kakehashi.ivr.templates import order_desk_example
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.routing import service as routing
from kakehashi.tenants import service as tenants

#: Break reasons (離席理由): code → label.
AUX_CODES = {"lunch": "昼休憩", "training": "研修", "meeting": "会議", "away": "離席"}

#: The mail-order center's result codes (対応結果), in the order agents see them: code, English label, kind.
DISPOSITIONS = (
    ("注文受付", "Order taken", "sale"),
    ("お届け日の確認", "Delivery date", "contact"),
    ("住所変更", "Address change", "contact"),
    ("商品のご質問", "Product question", "contact"),
    ("返品受付", "Return", "contact"),
    ("折り返し予定", "Call back later", "callback"),
    ("クレーム対応", "Complaint handled", "contact"),
    ("間違い電話", "Wrong number", "no_contact"),
    ("その他", "Other", "other"),
)

#: The agent the demo operator user works as (users and agents are matched by name).
OPERATOR = "operator"

#: name → (display name, skills). Skills feed the skill queues: ``inquiry`` → support, ``complaint`` → complaints.
AGENTS: dict[str, tuple[str, dict[str, int]]] = {
    OPERATOR: ("佐藤 オペレーター", {"inquiry": 2}),
    "tanaka": ("田中 優子", {"complaint": 2}),
    "suzuki": ("鈴木 大輔", {"complaint": 1}),
    "ito": ("伊藤 直樹", {"inquiry": 1, "complaint": 2}),
    "watanabe": ("渡辺 さくら", {"inquiry": 1}),
    "yamamoto": ("山本 翔太", {}),
    "nakamura": ("中村 愛", {"inquiry": 1}),
    "kobayashi": ("小林 健一", {"complaint": 1}),
    "kato": ("加藤 由美", {"inquiry": 2}),
    "yoshida": ("吉田 拓也", {}),
    "matsumoto": ("松本 恵", {"inquiry": 2}),
    "inoue": ("井上 陽介", {"inquiry": 2}),
}

#: The agents the demo traffic plays (everyone but the real operator).
SIMULATED_AGENTS = tuple(name for name in AGENTS if name != OPERATOR)

#: Queues in creation order (an overflow queue must exist before the queue that overflows into it), with
#: their settings and listed members (name → level; a skill queue lists none).
QUEUES: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    "orders": (
        {"label": "注文受付", "strategy": "longest_idle", "wrap_up_s": 20, "ring_timeout_s": 15, "max_wait_s": 150,
         "overflow_action": "callback", "sl_threshold_s": 20},
        {OPERATOR: 1, "tanaka": 1, "yamamoto": 1, "kato": 1, "yoshida": 1, "inoue": 1, "matsumoto": 1,
         "watanabe": 2, "nakamura": 2},
    ),
    "vip": (
        {"label": "VIP窓口", "strategy": "longest_idle", "weight": 10, "wrap_up_s": 30, "ring_timeout_s": 15,
         "max_wait_s": 90, "overflow_action": "queue", "overflow_queue": "orders",
         "rank_priority": {"vip": 20, "gold": 10}, "sl_threshold_s": 10},
        {"tanaka": 1, "suzuki": 1, "kobayashi": 2, "yoshida": 2},
    ),
    "support": (
        {"label": "お問い合わせ", "strategy": "fewest_calls", "skill": "inquiry", "wrap_up_s": 30,
         "ring_timeout_s": 15, "escalation": [{"after_s": 20, "max_level": 2}], "max_wait_s": 240,
         "overflow_action": "voicemail", "sl_threshold_s": 30},
        {},
    ),
    "complaints": (
        {"label": "ご意見・不具合", "strategy": "ring_all", "skill": "complaint", "wrap_up_s": 45,
         "ring_timeout_s": 20, "escalation": [{"after_s": 30, "max_level": 2}], "max_wait_s": 180,
         "overflow_action": "callback", "sticky_agent_minutes": 60, "sl_threshold_s": 30},
        {},
    ),
}  # fmt: skip

FLOW = "order-desk"

#: number → (label, IVR flow, queue), in the order they are offered in the README.
NUMBERS: dict[str, tuple[str, str | None, str | None]] = {
    "0120-555-010": ("テレビショッピング受注センター", FLOW, None),
    "0120-555-020": ("VIP専用ダイヤル", None, "vip"),
    "0120-555-030": ("お問い合わせ窓口（直通）", None, "support"),
}


def open_all_day(definition: dict[str, Any]) -> dict[str, Any]:
    """The order-desk flow open 24 hours every day (the demo's calls then reach agents at any hour)."""
    flow = copy.deepcopy(definition)
    schedule = flow["nodes"]["hours"]["schedule"]
    schedule["weekly"] = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    schedule["closed_on_holidays"] = False
    schedule["closed_dates"] = []
    return flow


@dataclass
class RoutingDemoResult:
    created: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, name: str) -> None:
        self.created.setdefault(kind, []).append(name)

    @property
    def anything(self) -> bool:
        return bool(self.created)


def ensure(session: Session, actor: Actor) -> RoutingDemoResult:
    """Make whatever of the demo routing is missing in the actor's tenant (one transaction, the caller's)."""
    result = RoutingDemoResult()
    codes = {c.code for c in agents.aux_codes(session, actor)}
    for code, label in AUX_CODES.items():
        if code not in codes:
            agents.add_aux_code(session, actor, code, label)
            result.add("aux_codes", code)
    if all(d.builtin for d in dispositions.list_dispositions(session, actor)):  # the center has not set its own
        items = [DispositionIn(code=c, label_en=label, kind=kind) for c, label, kind in DISPOSITIONS]
        dispositions.replace_dispositions(session, actor, items)
        for item in items:
            result.add("dispositions", item.code)
    existing = {a.name for a in agents.list_agents(session, actor)}
    for name, (display, skills) in AGENTS.items():
        if name not in existing:
            agents.create_agent(session, actor, name, display, skills)
            result.add("agents", name)
    queues = {q.name for q in routing.list_queues(session, actor)}
    for name, (settings, members) in QUEUES.items():
        if name in queues:
            continue
        queue = routing.create_queue(session, actor, name, settings)
        if members:
            routing.set_members(session, actor, queue.id, members)
        result.add("queues", name)
    if all(flow.name != FLOW for flow in ivr.list_flows(session, actor)):
        template = order_desk_example()
        first = FlowCreate(name=FLOW, definition=template, comment="テンプレート ORDER_DESK_EXAMPLE から作成")
        saved = ivr.create_flow(session, actor, first)
        ivr.save_version(
            session,
            actor,
            saved.flow.id,
            VersionCreate(
                definition=open_all_day(template),
                comment="デモ: 24時間受付（営業時間外の流れは v1 を参照）",
                base_version=saved.version.version,
            ),
        )
        result.add("flows", FLOW)
    taken = {n.number_e164 for n in routing.list_numbers(session, actor)}
    for number, (label, flow, target) in NUMBERS.items():
        if try_normalize_phone(number) not in taken:
            routing.add_number(session, actor, number, flow=flow, queue=target, label=label)
            result.add("numbers", number)
    return result


def ensure_demo_routing(engine: Engine, settings: Settings, console: Console | None = None) -> RoutingDemoResult:
    """The demo routing in the default tenant, made once (see the module doc)."""
    with unit_of_work(make_session_factory(engine)) as session:
        tenant = tenants.ensure(session, settings.default_tenant)
        result = ensure(session, Actor(tenant_id=tenant.id, username="demo"))
    if console is not None:
        if result.anything:
            made = ", ".join(f"{len(names)} {kind}" for kind, names in result.created.items())
            console.print(f"[green]demo routing ready[/] ({made})")
        else:
            console.print("demo routing already present")
        console.print(
            "inbound numbers: "
            + ", ".join(f"{number} {label}" for number, (label, _f, _q) in NUMBERS.items())
            + " — log in as supervisor and open /routing"
        )
    return result
