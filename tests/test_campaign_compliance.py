"""Compliance and lead handling of campaigns (issue 17): the DNC list in bulk (import with row/column errors,
formula-safe audited export, CLI), refusals by product line (at load, at reservation, for a manual dial),
stale reservations released, and a lead's campaign history on the screen pop — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.campaigns import compliance, service
from kakehashi.campaigns.models import Campaign, DncNumber, Lead, LeadAttempt, Refusal
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn, OutcomeIn, Window
from kakehashi.campaigns.segment_scheduler import SegmentScheduler
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine
from kakehashi.kit.errors import NotFound, ValidationFailed
from kakehashi.kit.timers import VirtualClock

#: Monday 2026-12-07 10:00 in Japan (01:00 UTC).
MONDAY_10 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
WEEKDAYS = [Window(weekday=d, start="09:00", end="20:00") for d in range(5)]
ALWAYS = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]


def make_campaign(session: Session, actor: Actor, name: str, **kw: object) -> Campaign:
    data = {"name": name, "kind": "sales", "caller_id": "03-1234-5678", "windows": WEEKDAYS, **kw}
    return service.create_campaign(session, actor, CampaignCreate.model_validate(data))


def running(session: Session, actor: Actor, name: str, phones: list[str], **kw: object) -> Campaign:
    campaign = make_campaign(session, actor, name, **kw)
    service.add_leads(session, actor, campaign.id, LeadsIn(phones=phones))
    service.set_status(session, actor, campaign.id, "running")
    return campaign


def operator(actor: Actor, name: str = "a1") -> Actor:
    return Actor(tenant_id=actor.tenant_id, username=name, role=Role.OPERATOR)


def actions(session: Session, actor: Actor, prefix: str) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == actor.tenant_id, AuditEvent.action.startswith(prefix))
    return list(session.scalars(stmt.order_by(AuditEvent.id)))


def refuse_in(session: Session, actor: Actor, campaign: Campaign, at: datetime = MONDAY_10) -> Lead:
    """An agent reserves the campaign's next lead and records that the person said no."""
    agent = operator(actor)
    lead = service.reserve_next(session, agent, campaign.id, agent.username, at).lead
    assert lead is not None
    return service.record_outcome(session, agent, campaign.id, lead.id, OutcomeIn(result="answered", refusal=True), at)


# -- refusal scope per product line


def test_given_a_product_line_campaign_when_a_person_refuses_then_the_refusal_is_of_that_line(
    session: Session, actor: Actor
) -> None:
    campaign = running(
        session, actor, "保険A", ["090-1111-0001"], product_line="insurance", refusal_scope="product_line"
    )
    refuse_in(session, actor, campaign)
    refusal = session.scalars(select(Refusal).where(Refusal.tenant_id == actor.tenant_id)).one()
    assert (refusal.scope, refusal.product_line, refusal.campaign_id) == ("product_line", "insurance", campaign.id)
    assert actions(session, actor, "campaign.refusal")[-1].detail == {"scope": "product_line"}


def test_given_a_company_scope_campaign_when_a_person_refuses_then_the_refusal_is_company_wide(
    session: Session, actor: Actor
) -> None:
    campaign = running(session, actor, "保険B", ["090-1111-0001"], product_line="insurance")
    refuse_in(session, actor, campaign)
    refusal = session.scalars(select(Refusal).where(Refusal.tenant_id == actor.tenant_id)).one()
    assert (refusal.scope, refusal.product_line) == ("company", None)


def test_given_a_line_refusal_then_loading_scrubs_it_only_from_campaigns_of_that_line(
    session: Session, actor: Actor
) -> None:
    first = running(session, actor, "保険A", ["090-1111-0001"], product_line="insurance", refusal_scope="product_line")
    refuse_in(session, actor, first)
    same_line = make_campaign(session, actor, "保険C", product_line="insurance")
    other_line = make_campaign(session, actor, "電気", product_line="energy")
    no_line = make_campaign(session, actor, "調査")
    phones = LeadsIn(phones=["090-1111-0001"])
    assert service.add_leads(session, actor, same_line.id, phones).scrubbed[0].reason == "refused"
    assert service.add_leads(session, actor, other_line.id, phones).added == 1
    assert service.add_leads(session, actor, no_line.id, phones).added == 1


def test_given_a_company_refusal_then_every_campaign_scrubs_it(session: Session, actor: Actor) -> None:
    first = running(session, actor, "総合", ["090-1111-0001"])
    refuse_in(session, actor, first)
    for name, line in (("保険", "insurance"), ("電気", "energy"), ("無印", None)):
        campaign = make_campaign(session, actor, name, product_line=line)
        added = service.add_leads(session, actor, campaign.id, LeadsIn(phones=["090-1111-0001"]))
        assert added.added == 0 and added.scrubbed[0].reason == "refused"


def test_given_a_line_refusal_then_a_company_refusal_is_still_recorded_when_heard_elsewhere(
    session: Session, actor: Actor
) -> None:
    line = running(session, actor, "保険A", ["090-1111-0001"], product_line="insurance", refusal_scope="product_line")
    refuse_in(session, actor, line)
    company = make_campaign(session, actor, "総合")
    service._refuse(session, actor, company, "+819011110001", MONDAY_10)
    scopes = sorted(session.scalars(select(Refusal.scope).where(Refusal.tenant_id == actor.tenant_id)))
    assert scopes == ["company", "product_line"]
    # A second refusal of the same line adds nothing: one in force already blocks those campaigns.
    again = make_campaign(session, actor, "保険D", product_line="insurance", refusal_scope="product_line")
    service._refuse(session, actor, again, "+819011110001", MONDAY_10)
    assert len(list(session.scalars(select(Refusal).where(Refusal.tenant_id == actor.tenant_id)))) == 2


def test_refusal_for_a_manual_dial_blocks_on_any_refusal_and_per_campaign_by_scope(
    session: Session, actor: Actor
) -> None:
    line = running(session, actor, "保険A", ["090-1111-0001"], product_line="insurance", refusal_scope="product_line")
    refuse_in(session, actor, line)
    energy = make_campaign(session, actor, "電気", product_line="energy")
    found = service.refusal_for(session, actor, "+819011110001")
    assert found is not None and found.scope == "product_line"
    assert service.refusal_for(session, actor, "+819011110001", line) is found
    assert service.refusal_for(session, actor, "+819011110001", energy) is None
    assert service.refusal_for(session, actor, "+819099990000") is None
    service.lift_refusal(session, Actor(tenant_id=actor.tenant_id, role=Role.ADMIN), found.id, "本人の依頼", MONDAY_10)
    assert service.refusal_for(session, actor, "+819011110001") is None


def test_given_a_line_refusal_after_loading_then_reservation_in_that_line_excludes_the_lead(
    session: Session, actor: Actor
) -> None:
    line = running(session, actor, "保険A", ["090-1111-0001"], product_line="insurance", refusal_scope="product_line")
    later = running(session, actor, "保険B", ["090-1111-0001"], product_line="insurance")
    refuse_in(session, actor, line)
    found = service.reserve_next(session, operator(actor, "a2"), later.id, "a2", MONDAY_10)
    assert found.lead is None
    lead = session.scalars(select(Lead).where(Lead.campaign_id == later.id)).one()
    assert (lead.status, lead.last_result) == ("excluded", "refused")


def test_given_a_line_refusal_then_scrub_for_a_campaign_of_another_line_lets_the_number_through(
    session: Session, actor: Actor
) -> None:
    line = running(session, actor, "保険A", ["090-1111-0001"], product_line="insurance", refusal_scope="product_line")
    energy = running(session, actor, "電気", ["090-1111-0001"], product_line="energy")
    refuse_in(session, actor, line)
    assert service.scrub(session, actor, energy, ["+819011110001"], duplicates=False) == {}
    assert service.scrub(session, actor, line, ["+819011110001"], duplicates=False) == {"+819011110001": "refused"}
    assert service.scrub(session, actor, None, ["+819011110001"]) == {"+819011110001": "refused"}


def test_given_a_line_refusal_then_a_campaign_of_another_line_still_reserves_the_number(
    session: Session, actor: Actor
) -> None:
    line = running(session, actor, "保険A", ["090-1111-0001"], product_line="insurance", refusal_scope="product_line")
    energy = running(session, actor, "電気", ["090-1111-0001"], product_line="energy")
    refuse_in(session, actor, line)
    found = service.reserve_next(session, operator(actor, "a2"), energy.id, "a2", MONDAY_10)
    assert found.lead is not None and found.lead.phone == "+819011110001"


# -- stale reservations


def reserve(session: Session, actor: Actor, campaign: Campaign, agent: str, at: datetime) -> Lead:
    lead = service.reserve_next(session, operator(actor, agent), campaign.id, agent, at).lead
    assert lead is not None
    return lead


def test_given_a_reservation_older_than_the_limit_then_it_is_released_once_audited(
    session: Session, actor: Actor
) -> None:
    campaign = running(session, actor, "解放", ["090-1111-0001", "090-1111-0002", "090-1111-0003"])
    old = reserve(session, actor, campaign, "a1", MONDAY_10)
    fresh = reserve(session, actor, campaign, "a2", MONDAY_10 + timedelta(minutes=25))
    now = MONDAY_10 + timedelta(minutes=31)
    released = compliance.release_stale(session, actor.tenant_id, now, timedelta(minutes=30))
    assert released.lead_ids == [old.id]
    assert (old.status, old.reserved_by, old.reserved_at) == ("new", None, None)
    assert fresh.reserved_by == "a2"
    rows = actions(session, actor, "campaign.leads.release")
    assert len(rows) == 1 and rows[0].username == "system" and rows[0].detail["leads"] == [old.id]
    # The freed lead is handed out again.
    assert reserve(session, actor, campaign, "a3", now).id == old.id
    assert compliance.release_stale(session, actor.tenant_id, now, timedelta(minutes=30)).released == 0
    assert len(actions(session, actor, "campaign.leads.release")) == 1  # nothing freed, nothing written


def test_given_a_tried_lead_or_a_personal_callback_when_released_then_it_keeps_its_place(
    session: Session, actor: Actor
) -> None:
    campaign = running(session, actor, "再試行", ["090-1111-0001", "090-1111-0002"])
    agent = operator(actor)
    first = reserve(session, actor, campaign, "a1", MONDAY_10)
    service.record_outcome(session, agent, campaign.id, first.id, OutcomeIn(result="busy"), MONDAY_10)
    second = reserve(session, actor, campaign, "a1", MONDAY_10 + timedelta(minutes=1))
    callback = OutcomeIn(result="answered", callback_at=MONDAY_10 + timedelta(minutes=5))
    service.record_outcome(session, agent, campaign.id, second.id, callback, MONDAY_10 + timedelta(minutes=1))
    later = MONDAY_10 + timedelta(minutes=20)
    held = [reserve(session, actor, campaign, "a1", later), reserve(session, actor, campaign, "a9", later)]
    assert {lead.id for lead in held} == {first.id, second.id}
    assert compliance.release_agent(session, actor, "a1").released == 1
    assert compliance.release_agent(session, actor, "a9").released == 1
    assert (second.status, second.callback_agent) == ("callback", "a1")
    assert (first.status, first.attempts) == ("in_progress", 1)
    assert [r.detail["agent"] for r in actions(session, actor, "campaign.leads.release_agent")] == ["a1", "a9"]


def test_given_a_call_still_up_then_its_lead_stays_reserved_until_the_call_limit(
    session: Session, actor: Actor
) -> None:
    campaign = running(session, actor, "通話中", ["090-1111-0001"])
    lead = reserve(session, actor, campaign, "a1", MONDAY_10)
    session.add(
        LeadAttempt(
            tenant_id=actor.tenant_id,
            campaign_id=campaign.id,
            lead_id=lead.id,
            agent="a1",
            mode="preview",
            call_ref="sim-still-up",  # dialled: its call has not ended
            started_at=MONDAY_10 + timedelta(minutes=1),
        )
    )
    session.flush()
    assert compliance.release_stale(session, actor, MONDAY_10 + timedelta(hours=1)).released == 0
    gone = compliance.release_stale(session, actor, MONDAY_10 + compliance.CALL_LIMIT + timedelta(minutes=1))
    assert gone.lead_ids == [lead.id]
    # The dial made during the reservation counts against the caps.
    assert (lead.attempts, lead.last_result, lead.status) == (1, "released", "in_progress")


def test_release_stale_is_per_tenant_and_per_campaign(session: Session, actor: Actor, other_actor: Actor) -> None:
    mine = running(session, actor, "自社", ["090-1111-0001"])
    other = running(session, actor, "別件", ["090-1111-0002"])
    theirs = running(session, other_actor, "他社", ["090-1111-0003"])
    leads = [reserve(session, actor, mine, "a1", MONDAY_10), reserve(session, actor, other, "a1", MONDAY_10)]
    foreign = service.reserve_next(session, other_actor, theirs.id, "b1", MONDAY_10).lead
    assert foreign is not None
    later = MONDAY_10 + timedelta(hours=1)
    assert compliance.release_stale(session, actor, later, campaign_id=mine.id).lead_ids == [leads[0].id]
    assert leads[1].reserved_by == "a1" and foreign.reserved_by == "b1"
    with pytest.raises(NotFound):
        compliance.release_stale(session, actor, later, campaign_id=theirs.id)


def test_the_per_minute_check_frees_stale_reservations_in_every_tenant_on_a_virtual_clock(
    session: Session, session_factory: sessionmaker[Session], actor: Actor, other_actor: Actor
) -> None:
    mine = running(session, actor, "自社", ["090-1111-0001"])
    theirs = running(session, other_actor, "他社", ["090-1111-0002"])
    leads = [reserve(session, actor, mine, "a1", MONDAY_10), reserve(session, other_actor, theirs, "b1", MONDAY_10)]
    session.commit()
    clock = VirtualClock(MONDAY_10)
    scheduler = SegmentScheduler(session_factory, clock, period=60)
    scheduler.schedule()
    clock.advance(29 * 60)  # 29 minutes: still held
    session.expire_all()
    assert all(lead.reserved_by for lead in leads)
    clock.advance(2 * 60)  # past 30 minutes: both tenants' leads are free again
    session.expire_all()
    assert [(lead.status, lead.reserved_by) for lead in leads] == [("new", None), ("new", None)]
    for who in (actor, other_actor):
        assert len(actions(session, who, "campaign.leads.release_stale")) == 1
    scheduler.stop()


def test_release_stale_route_is_for_managers(client_as: ClientAs) -> None:
    admin = client_as(Role.ADMIN)
    body = {"name": "経路", "kind": "sales", "caller_id": "03-1234-5678", "windows": ALWAYS,
            "holidays_off": False, "night_reason": "試験: 終日"}  # fmt: skip
    cid = admin.post("/api/v1/campaigns", json=body).json()["id"]
    admin.post(f"/api/v1/campaigns/{cid}/leads", json={"phones": ["090-1234-5678"]})
    admin.post(f"/api/v1/campaigns/{cid}/start")
    op = client_as(Role.OPERATOR)
    assert op.post(f"/api/v1/campaigns/{cid}/reserve").json()["lead"] is not None
    assert op.post(f"/api/v1/campaigns/{cid}/release-stale").status_code == 403
    supervisor = client_as(Role.SUPERVISOR)
    assert supervisor.post(f"/api/v1/campaigns/{cid}/release-stale").json() == {"released": 0, "lead_ids": []}
    r = supervisor.post(f"/api/v1/campaigns/{cid}/release-stale", params={"older_than_min": 0})
    assert r.status_code == 422
    stranger = client_as(Role.SUPERVISOR, "client-b")
    assert stranger.post(f"/api/v1/campaigns/{cid}/release-stale").status_code == 404


# -- the DNC list in bulk


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_given_a_csv_then_valid_rows_are_added_bad_ones_named_and_duplicates_counted(
    session: Session, actor: Actor, tmp_path: Path
) -> None:
    service.add_dnc(session, actor, "03-5555-0000", "前から")
    path = write_csv(
        tmp_path / "dnc.csv",
        [
            ["電話番号", "理由"],
            ["090-1111-0001", "本人の申し出"],
            ["abc", "x"],
            ["03-5555-0000", "重複"],
            ["０９０－１１１１－０００２", ""],
            ["090-1111-0001", "同じ番号"],
            ["090-1111-0003", "長" * 201],
        ],
    )
    result = compliance.import_dnc_file(session, actor, path)
    assert (result.rows, result.added, result.duplicates, result.bad) == (6, 2, 2, 2)
    assert [(b.row, b.column) for b in result.bad_rows] == [(3, "電話番号"), (7, "理由")]
    listed = {
        r.e164: r.reason for r in session.scalars(select(DncNumber).where(DncNumber.tenant_id == actor.tenant_id))
    }
    assert listed == {"+81355550000": "前から", "+819011110001": "本人の申し出", "+819011110002": ""}
    audit_row = actions(session, actor, "campaign.dnc.import")[-1]
    assert audit_row.detail["added"] == 2 and audit_row.detail["file"] == "dnc.csv"


def test_given_an_xlsx_with_numbers_typed_as_numbers_then_the_leading_zero_comes_back(
    session: Session, actor: Actor, tmp_path: Path
) -> None:
    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.append(["名前", "Phone", "Reason"])
    sheet.append(["山田", 312345678, "苦情"])
    sheet.append(["佐藤", "090-2222-0001", None])
    sheet.append(["鈴木", "", "空"])
    wb.save(tmp_path / "dnc.xlsx")
    result = compliance.import_dnc_file(session, actor, tmp_path / "dnc.xlsx")
    assert (result.added, result.bad) == (2, 1) and result.bad_rows[0].model_dump()["row"] == 4
    assert result.bad_rows[0].column == "Phone"
    assert service.scrub(session, actor, None, ["+81312345678", "+819022220001"]) == {
        "+81312345678": "dnc",
        "+819022220001": "dnc",
    }


def test_given_a_headerless_cp932_csv_then_its_first_row_is_a_number_too(
    session: Session, actor: Actor, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "list.csv", [["090-3333-0001", "社内"], ["090-3333-0002", "本人"]], "cp932")
    result = compliance.import_dnc_file(session, actor, path)
    assert (result.rows, result.added) == (2, 2)


def test_given_a_file_without_a_phone_column_then_422_on_file_and_nothing_added(
    session: Session, actor: Actor, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "x.csv", [["氏名", "住所"], ["山田", "東京"]])
    with pytest.raises(ValidationFailed) as err:
        compliance.import_dnc_file(session, actor, path)
    assert err.value.errors[0]["field"] == "file"
    with pytest.raises(ValidationFailed):
        compliance.import_dnc_upload(session, actor, "list.pdf", b"%PDF")


def test_import_and_export_over_http_formula_safe_and_audited(client_as: ClientAs, session: Session) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    content = b'phone,reason\n090-1111-0001,=HYPERLINK("x")\nnot a number,x\n'
    r = supervisor.post("/api/v1/campaigns/dnc/import", files={"file": ("dnc.csv", content, "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "rows": 2,
        "added": 1,
        "duplicates": 0,
        "bad": 1,
        "bad_rows": [{"row": 3, "column": "phone", "problem": r.json()["bad_rows"][0]["problem"]}],
    }
    bad = supervisor.post("/api/v1/campaigns/dnc/import", files={"file": ("dnc.csv", b"name,city\nx,y\n", "text/csv")})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "file"
    exported = supervisor.get("/api/v1/campaigns/dnc.csv")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0] == ["phone", "reason", "added_by", "added_at"]
    assert rows[1][:2] == ["+819011110001", '\'=HYPERLINK("x")']
    xlsx = supervisor.get("/api/v1/campaigns/dnc.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet["A2"].value == "+819011110001" and sheet["B2"].data_type == "s"
    tenant_id = supervisor.user.tenant_id  # type: ignore[attr-defined]
    formats = [
        e.detail["format"]
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == "campaign.dnc.export")
        )
    ]
    assert formats == ["csv", "xlsx"]
    op = client_as(Role.OPERATOR)
    assert op.get("/api/v1/campaigns/dnc.csv").status_code == 403
    assert op.post("/api/v1/campaigns/dnc/import", files={"file": ("d.csv", content, "text/csv")}).status_code == 403


def test_the_cli_imports_the_dnc_list_and_exports_it(cli_database: str, tmp_path: Path) -> None:
    from kakehashi.cli import app

    path = write_csv(tmp_path / "dnc.csv", [["電話番号", "理由"], ["090-4444-0001", "本人"], ["bad", ""]])
    out = CliRunner().invoke(app, ["campaign", "dnc-import", str(path)])
    assert out.exit_code == 1, out.output  # one bad row; the good one is added
    assert json.loads(out.stdout.strip().splitlines()[0])["added"] == 1
    again = CliRunner().invoke(app, ["campaign", "dnc-import", str(path)])
    assert json.loads(again.stdout.strip().splitlines()[0])["duplicates"] == 1
    target = tmp_path / "out.xlsx"
    assert CliRunner().invoke(app, ["campaign", "dnc-export", str(target)]).exit_code == 0
    sheet = load_workbook(target).active
    assert sheet is not None and (sheet["A2"].value, sheet["B2"].value) == ("+819044440001", "本人")
    assert CliRunner().invoke(app, ["campaign", "dnc-export", str(tmp_path / "x.pdf")]).exit_code == 2
    unusable = write_csv(tmp_path / "no.csv", [["氏名", "住所"], ["山田", "東京"]])
    assert CliRunner().invoke(app, ["campaign", "dnc-import", str(unusable)]).exit_code == 2
    engine = make_engine(cli_database)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(DncNumber)).scalar_one() == 1
            exports = conn.execute(select(AuditEvent.route).where(AuditEvent.action == "campaign.dnc.export"))
            assert list(exports.scalars()) == ["cli campaign dnc-export"]
    finally:
        engine.dispose()


# -- a lead calling back: the screen pop


def test_given_a_lead_calling_in_then_the_screen_pop_shows_its_campaigns(
    client_as: ClientAs, session: Session, actor: Actor
) -> None:
    admin = client_as(Role.ADMIN)
    tenant_id = admin.user.tenant_id  # type: ignore[attr-defined]
    me = Actor(tenant_id=tenant_id, username="tester")
    first = running(session, me, "秋の見直し", ["090-1111-0001"])
    second = running(session, me, "冬の案内", ["090-1111-0001", "090-1111-0002"])
    lead = reserve(session, me, first, "a1", MONDAY_10)
    session.add(
        LeadAttempt(
            tenant_id=tenant_id, campaign_id=first.id, lead_id=lead.id, agent="a1", mode="preview",
            started_at=MONDAY_10, ended_at=MONDAY_10 + timedelta(minutes=1), result="busy",
        )
    )  # fmt: skip
    service.record_outcome(session, operator(me), first.id, lead.id, OutcomeIn(result="busy"), MONDAY_10)
    session.flush()
    pop = client_as(Role.OPERATOR).get("/api/v1/screenpop", params={"phone": "090-1111-0001"}).json()
    assert not pop["known"]  # a lead without a customer record: the history shows all the same
    history = pop["campaign_history"]
    assert [h["campaign"] for h in history] == ["冬の案内", "秋の見直し"]
    assert history[1] | {"last_attempt_at": None} == {
        "campaign_id": first.id,
        "campaign": "秋の見直し",
        "lead_id": lead.id,
        "status": "in_progress",
        "attempts": 1,
        "last_result": "busy",
        "last_attempt_at": None,
    }
    assert datetime.fromisoformat(history[1]["last_attempt_at"]) == MONDAY_10
    assert history[0]["status"] == "new" and history[0]["last_attempt_at"] is None
    assert pop_of(client_as, "090-1111-0009")["campaign_history"] == []
    reads = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.resource == "lead_history")
    )
    assert [r.detail["leads"] for r in reads] == [[h["lead_id"] for h in history]]
    del second


def pop_of(client_as: ClientAs, phone: str) -> dict[str, object]:
    body: dict[str, object] = client_as(Role.OPERATOR).get("/api/v1/screenpop", params={"phone": phone}).json()
    return body


def test_given_a_known_customer_who_is_a_lead_then_the_card_carries_the_history_and_no_other_tenant_sees_it(
    session: Session, actor: Actor, other_actor: Actor
) -> None:
    from kakehashi.screenpop import service as screenpop

    customers.create_customer(
        session, actor, CustomerCreate(name="山田 花子", phones=[PhoneIn(number="090-1111-0001")])
    )
    running(session, actor, "秋の見直し", ["090-1111-0001"])
    pop = screenpop.with_campaign_history(session, actor, screenpop.screen_pop(session, actor, "090-1111-0001"))
    assert pop.known and [h.campaign for h in pop.campaign_history] == ["秋の見直し"]
    theirs = screenpop.with_campaign_history(
        session, other_actor, screenpop.screen_pop(session, other_actor, "090-1111-0001")
    )
    assert theirs.campaign_history == []
