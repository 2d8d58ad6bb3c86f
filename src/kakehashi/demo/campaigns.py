"""The demo's outbound campaign for ``kakehashi demo``: a progressive appointment campaign (保険見直しのご案内)
worked by three simulated agents and the ``operator`` beside the inbound traffic, with a call list of synthetic
people loaded through the real list upload (``campaigns.lists.load_list``: the importer, the APPI source record,
scrubbing) and the simulator's outcome mix for it (answer, busy, no answer, answering machine, invalid).

Calls only the simulator's made-up numbers: the calling window is the whole day with a written night reason
(that is the rule for any window inside 21:00–08:00), so a newcomer sees it work at any hour. Made once: running
it again changes nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.campaigns import lists
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.schemas import CampaignCreate
from kakehashi.demo.routing import OPERATOR
from kakehashi.demo.synthetic import generate_people
from kakehashi.dispositions import service as dispositions
from kakehashi.dispositions.schemas import DispositionIn
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.kit.export import csv_bytes
from kakehashi.tenants import service as tenants

CAMPAIGN = "保険見直しのご案内（デモ）"
#: The outbound result codes (code, English label, kind) and their outcome flags in the campaign.
OUTBOUND_CODES: tuple[tuple[str, str, str, dict[str, bool]], ...] = (
    ("アポ獲得", "Appointment made", "sale", {"contact": True, "success": True, "final": True}),
    ("資料送付", "Brochure to be sent", "contact", {"contact": True, "final": True}),
    ("お断り", "Refused (no more calls)", "contact", {"contact": True, "refusal": True}),
    ("再架電", "Call back", "callback", {"contact": True, "callback": True}),
    ("本人不在", "Not the right person", "no_contact", {}),
    ("番号違い", "Wrong number", "no_contact", {"unworkable": True}),
)
#: How often the simulated agents pick each code (same order).
OUTBOUND_WEIGHTS = (0.15, 0.2, 0.1, 0.15, 0.3, 0.1)
#: The simulated agents who work the campaign (and the operator, who can join from the desk).
OUTBOUND_AGENTS = ("yamamoto", "yoshida", "inoue")
SIM_OUTCOMES = {"answer": 0.45, "busy": 0.1, "no_answer": 0.3, "answering_machine": 0.1, "invalid": 0.05}
LEADS = 400
OPENING = (
    "お忙しいところ失礼いたします。株式会社かけはし保険サービスの〇〇と申します。"
    "本日は保険の見直しのご案内（勧誘）でお電話いたしました。"
)


def ensure(engine: Engine, settings: Settings, console: Console | None = None) -> bool:
    """The demo campaign in the default tenant, made once; True when it was made now."""
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        tenant = tenants.ensure(session, settings.default_tenant)
    made = ensure_in(factory, Actor(tenant_id=tenant.id, username="demo"))
    if console is not None:
        console.print(f"[green]demo campaign ready[/] ({CAMPAIGN}, progressive)" if made
                      else "demo campaign already present")  # fmt: skip
    return made


def ensure_in(factory: sessionmaker[Session], actor: Actor) -> bool:
    """The demo campaign in the actor's tenant (its own transactions: the list loads in batches), made once."""
    with unit_of_work(factory) as session:
        if any(c.name == CAMPAIGN for c in campaigns.list_campaigns(session, actor)):
            return False
        _ensure_codes(session, actor)
        campaign = campaigns.create_campaign(session, actor, CampaignCreate.model_validate({
            "name": CAMPAIGN, "kind": "appointment", "caller_id": "0120-555-010", "dial_mode": "progressive",
            "goal": 60, "opening_statement": OPENING,
            "windows": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)],
            "holidays_off": False,
            "night_reason": "デモ: シミュレーターの架空の番号にだけ発信します（実在の番号にはかけません）",
            "agents": [*OUTBOUND_AGENTS, OPERATOR],
            "result_codes": [{"code": code, "human": True, **flags} for code, _, _, flags in OUTBOUND_CODES],
            "ring_timeout_s": 25,
        }))  # fmt: skip
        campaign_id = campaign.id
    with tempfile.TemporaryDirectory(prefix="kakehashi-demo-") as folder:
        path = Path(folder) / "demo-call-list.csv"
        _write_list(path)
        lists.load_list(
            factory, actor, campaign_id, path, name="デモ架電リスト（架空の名簿）",
            source=lists.SourceSpec(provider="デモ用の合成名簿（実在しない人物）", method="合成データ"),
            sim_outcomes=SIM_OUTCOMES, workers=0,
        )  # fmt: skip
    with unit_of_work(factory) as session:
        campaigns.set_status(session, actor, campaign_id, "running")
    return True


def _ensure_codes(session: Session, actor: Actor) -> None:
    """The outbound result codes join the center's list (kept in its order, the new ones after)."""
    current = dispositions.list_dispositions(session, actor)
    have = {d.code for d in current}
    missing = [DispositionIn(code=code, label_en=label, kind=kind)
               for code, label, kind, _ in OUTBOUND_CODES if code not in have]  # fmt: skip
    if missing:
        kept = [DispositionIn(code=d.code, label_en=d.label_en, kind=d.kind) for d in current]
        dispositions.replace_dispositions(session, actor, kept + missing)


def _write_list(path: Path) -> None:
    """A call list as a center would get it: name, reading, phone, prefecture (synthetic people, their numbers in
    the ranges no carrier assigns — ``demo.synthetic``)."""
    people = generate_people(LEADS, seed=17, start=500_000)
    rows = ([p.name, p.name_kana, p.nationals[0], p.prefecture] for p in people)
    path.write_bytes(csv_bytes(["氏名", "フリガナ", "電話番号", "都道府県"], rows))
