"""Loading call lists into a campaign (issue 17): the service, the API and ``kakehashi campaign load``.

Every load goes through the customer importer against a real database (SQLite and PostgreSQL); each batch's
commit only releases a savepoint of the test's transaction.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.campaigns import lists
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import CampaignList, Lead, Refusal
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn, Window
from kakehashi.customers import service as customers
from kakehashi.customers.models import Customer, CustomerPhone
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.kit.config import get_settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed
from kakehashi.privacy.models import CustomerSource, DataSource
from kakehashi.tenants import service as tenants

SOURCE = lists.SourceSpec(provider="株式会社リストワークス", method="懸賞応募者から第三者提供の同意を得て取得")
WINDOWS = [Window(weekday=d, start="09:00", end="20:00") for d in range(7)]
CSV_HEADER = "氏名,電話番号,携帯電話,備考\n"


def make_campaign(session: Session, actor: Actor, name: str = "秋の見直し", **kw: Any) -> int:
    data = CampaignCreate(name=name, kind="sales", caller_id="03-1234-5678", windows=WINDOWS, **kw)
    campaign = campaigns.create_campaign(session, actor, data)
    session.flush()
    return campaign.id


def write_csv(path: Path, body: str, encoding: str = "utf-8") -> Path:
    path.write_bytes((CSV_HEADER + body).encode(encoding))
    return path


def leads_of(session: Session, campaign_id: int) -> dict[str, Lead]:
    session.expire_all()
    return {lead.phone: lead for lead in session.scalars(select(Lead).where(Lead.campaign_id == campaign_id))}


def test_given_a_utf8_csv_when_loaded_then_each_row_is_a_lead_linked_to_its_customer_matched_or_created(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    known = customers.create_customer(
        session, actor, CustomerCreate(name="既存 顧客", phones=[PhoneIn(number="090-1111-0001")])
    )
    session.flush()
    cid = make_campaign(session, actor)
    path = write_csv(
        tmp_path / "秋リスト.csv", "山田 太郎,03-3000-0001,,\n既存 顧客,090-1111-0001,,\n佐藤 花子,,090-2222-0002,\n"
    )
    report = lists.load_list(session_factory, actor, cid, path, source=SOURCE)
    assert (report.rows_total, report.rows_loaded, report.rows_bad, report.rows_scrubbed) == (3, 3, 0, 0)
    assert report.name == "秋リスト" and report.filename == "秋リスト.csv" and report.encoding == "utf-8"
    assert report.customers.created == 2 and report.customers.updated == 1
    leads = leads_of(session, cid)
    assert set(leads) == {"+81330000001", "+819011110001", "+819022220002"}
    assert leads["+819011110001"].customer_id == known.id  # matched by phone
    created = leads["+81330000001"].customer_id
    assert created is not None and created != known.id
    assert session.get(Customer, created).name == "山田 太郎"  # type: ignore[union-attr]
    assert {lead.list_id for lead in leads.values()} == {report.list_id}
    assert all(lead.status == "new" for lead in leads.values())
    stored = session.get(CampaignList, report.list_id)
    assert stored is not None and (stored.rows_total, stored.rows_loaded, stored.rows_bad) == (3, 3, 0)
    assert stored.created_by == actor.username and stored.source_id == report.source_id
    # The APPI source record: made with the load (the file's headers as its items), every customer linked.
    source = session.get(DataSource, report.source_id)
    assert source is not None and source.provider_name == SOURCE.provider and "電話番号" in source.items
    linked = session.scalars(select(CustomerSource.customer_id).where(CustomerSource.source_id == source.id))
    assert set(linked) == {lead.customer_id for lead in leads.values()}
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == actor.tenant_id)))
    assert {"campaign.list.load", "import"} <= actions


def test_a_shift_jis_csv_and_an_existing_source_record(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    cid = make_campaign(session, actor)
    first = lists.load_list(session_factory, actor, cid, write_csv(tmp_path / "a.csv", "髙橋 一郎,0120-444-444,,\n"),
                            source=SOURCE)  # fmt: skip
    path = write_csv(tmp_path / "sjis.csv", "髙橋 花子,06-6000-0002,,㈱テスト①\n", encoding="cp932")
    report = lists.load_list(
        session_factory, actor, cid, path, source=lists.SourceSpec(source_id=first.source_id), name="大阪"
    )
    assert report.encoding == "cp932" and report.rows_loaded == 1 and report.source_id == first.source_id
    lead = leads_of(session, cid)["+81660000002"]
    assert session.get(Customer, lead.customer_id).name == "髙橋 花子"  # type: ignore[union-attr]
    assert [row.name for row in lists.list_lists(session, actor, cid)] == ["a", "大阪"]


def test_an_xlsx_list_with_a_column_mapping(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["お名前", "連絡先番号", "FAX"])
    sheet.append(["鈴木 次郎", 312345678, "03-0000-0000"])  # Excel dropped the leading zero
    sheet.append(["田中 三郎", "080-3333-0003", ""])
    path = tmp_path / "list.xlsx"
    book.save(path)
    cid = make_campaign(session, actor)
    report = lists.load_list(
        session_factory, actor, cid, path, source=SOURCE, mapping={"連絡先番号": "phone", "FAX": "-"}
    )
    assert report.rows_loaded == 2 and report.columns == {"お名前": "name", "連絡先番号": "phone"}
    assert report.ignored_columns == ["FAX"] and report.encoding is None
    assert set(leads_of(session, cid)) == {"+81312345678", "+818033330003"}


def test_bad_rows_are_reported_with_their_column_and_the_good_rows_load(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    cid = make_campaign(session, actor)
    body = "山田 太郎,03-3000-0001,,\n,03-3000-0002,,\n佐藤 花子,12,,\n鈴木 一,03-3000-0004,,\n"
    report = lists.load_list(session_factory, actor, cid, write_csv(tmp_path / "bad.csv", body), source=SOURCE)
    assert (report.rows_total, report.rows_loaded, report.rows_bad) == (4, 2, 2)
    by_row = {bad.row: bad for bad in report.bad_rows}
    assert set(by_row) == {3, 4}
    assert by_row[3].column == "氏名" and "name" in by_row[3].message
    assert by_row[4].column == "電話番号" and by_row[4].field == "phone"
    assert set(leads_of(session, cid)) == {"+81330000001", "+81330000004"}
    stored = session.get(CampaignList, report.list_id)
    assert stored is not None and (stored.rows_loaded, stored.rows_bad) == (2, 2)


def test_every_scrubbed_row_is_listed_with_its_reason_and_none_becomes_a_lead(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    stopped = customers.create_customer(
        session, actor, CustomerCreate(name="停止 様", phones=[PhoneIn(number="03-5000-0001")])
    )
    complained = customers.create_customer(
        session, actor, CustomerCreate(name="苦情 様", phones=[PhoneIn(number="03-5000-0002")])
    )
    session.flush()
    customers.mark_do_not_contact(session, actor, stopped.id, "利用停止請求")
    customers.mark_caution(session, actor, complained.id, "苦情")
    campaigns.add_dnc(session, actor, "03-5000-0004", "本人申出")
    session.add(Refusal(tenant_id=actor.tenant_id, e164="+81350000003", scope="company", by="tester",
                        at=datetime.now(UTC)))  # fmt: skip
    cid = make_campaign(session, actor)
    campaigns.add_leads(session, actor, cid, LeadsIn(phones=["03-5000-0005"]))
    session.flush()
    body = (
        "停止 様,03-5000-0001,,\n"  # row 2: do_not_contact (APPI suspension)
        "苦情 様,03-5000-0002,,\n"  # row 3: outbound_excluded
        "拒否 様,03-5000-0003,,\n"  # row 4: refused (Art.17)
        "DNC 様,03-5000-0004,,\n"  # row 5: the DNC list
        "既存 様,03-5000-0005,,\n"  # row 6: already a lead of the campaign
        "新規 様,03-5000-0006,,\n"  # row 7: loaded
        "新規 様,03-5000-0006,,\n"  # row 8: the same number again in the file
        "携帯 様,03-5000-0007,03-5000-0001,\n"  # row 9: its second number is a do-not-contact customer's
    )
    report = lists.load_list(session_factory, actor, cid, write_csv(tmp_path / "s.csv", body), source=SOURCE,
                             batch_size=3)  # fmt: skip
    reasons = {row.row: (row.reason, row.phone) for row in report.scrubbed_rows}
    assert reasons == {
        2: ("do_not_contact", "+81350000001"),
        3: ("outbound_excluded", "+81350000002"),
        4: ("refused", "+81350000003"),
        5: ("dnc", "+81350000004"),
        6: ("duplicate", "+81350000005"),
        8: ("duplicate", "+81350000006"),
        9: ("do_not_contact", "+81350000007"),
    }
    assert report.rows_loaded == 1 and report.rows_scrubbed == 7 and report.rows_bad == 0
    assert report.rows_total == report.rows_loaded + report.rows_scrubbed + report.rows_bad
    assert set(leads_of(session, cid)) == {"+81350000005", "+81350000006"}
    assert session.get(CampaignList, report.list_id).rows_scrubbed == report.rows_scrubbed  # type: ignore[union-attr]


def test_strict_loads_nothing_when_a_row_is_bad(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    cid = make_campaign(session, actor)
    before = session.scalar(select(func.count()).select_from(Customer))
    body = "山田 太郎,03-3000-0001,,\n佐藤 花子,12,,\n鈴木 一,03-3000-0004,,\n"
    report = lists.load_list(session_factory, actor, cid, write_csv(tmp_path / "x.csv", body), source=SOURCE,
                             strict=True, batch_size=1)  # fmt: skip
    assert (report.rows_loaded, report.rows_bad, report.rows_not_loaded, report.rows_scrubbed) == (0, 1, 2, 0)
    assert report.strict and [bad.row for bad in report.bad_rows] == [3]
    assert leads_of(session, cid) == {}
    assert session.scalar(select(func.count()).select_from(Customer)) == before
    stored = session.get(CampaignList, report.list_id)
    assert stored is not None and (stored.rows_total, stored.rows_loaded, stored.rows_bad) == (3, 0, 1)
    clean = lists.load_list(session_factory, actor, cid, write_csv(tmp_path / "y.csv", "山田 太郎,03-3000-0001,,\n"),
                            source=SOURCE, strict=True)  # fmt: skip
    assert clean.rows_loaded == 1 and clean.rows_not_loaded == 0


def test_the_outcome_mix_is_stored_and_checked(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    cid = make_campaign(session, actor)
    path = write_csv(tmp_path / "m.csv", "山田 太郎,03-3000-0001,,\n")
    mix = {"answer": 0.4, "busy": 0.1, "no_answer": 0.3, "answering_machine": 0.15, "invalid": 0.05}
    report = lists.load_list(session_factory, actor, cid, path, source=SOURCE, sim_outcomes=mix)
    assert session.get(CampaignList, report.list_id).sim_outcomes == mix  # type: ignore[union-attr]
    lists_before = len(lists.list_lists(session, actor, cid))
    for bad, field in (({"answer": 0.5}, "sim_outcomes"), ({"answer": 1.5}, "sim_outcomes.answer"),
                       ({"ringing": 1.0}, "sim_outcomes.ringing")):  # fmt: skip
        with pytest.raises(ValidationFailed) as caught:
            lists.load_list(session_factory, actor, cid, path, source=SOURCE, sim_outcomes=bad)
        assert caught.value.errors[0]["field"] == field and caught.value.errors[0]["message_ja"]
    assert len(lists.list_lists(session, actor, cid)) == lists_before  # nothing kept of a refused load


def test_setup_problems_keep_nothing(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    cid = make_campaign(session, actor)
    no_phone = tmp_path / "n.csv"
    no_phone.write_text("氏名,住所\n山田,東京都\n", encoding="utf-8")
    sources = session.scalar(select(func.count()).select_from(DataSource))
    with pytest.raises(ValidationFailed) as caught:
        lists.load_list(session_factory, actor, cid, no_phone, source=SOURCE)
    assert caught.value.errors[0]["code"] == "list.file.unusable" and "phone" in caught.value.errors[0]["message"]
    assert session.scalar(select(func.count()).select_from(DataSource)) == sources  # no record of a refused file
    ok = write_csv(tmp_path / "ok.csv", "山田 太郎,03-3000-0001,,\n")
    with pytest.raises(ValidationFailed) as caught:
        lists.load_list(session_factory, actor, cid, ok, source=lists.SourceSpec(provider="x"))
    assert caught.value.errors[0]["code"] == "list.source.required"
    first = lists.load_list(session_factory, actor, cid, ok, source=SOURCE)
    with pytest.raises(ValidationFailed):  # the mapping names a column the file lacks
        lists.load_list(session_factory, actor, cid, ok, source=lists.SourceSpec(source_id=first.source_id),
                        mapping={"連絡先": "phone"})  # fmt: skip
    assert [row.id for row in lists.list_lists(session, actor, cid)] == [first.list_id]
    campaigns.set_status(session, actor, cid, "stopped")
    session.flush()
    with pytest.raises(Conflict):
        lists.load_list(session_factory, actor, cid, ok, source=SOURCE)


def test_a_list_loads_only_into_the_actors_tenant(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, other_actor: Actor
) -> None:
    theirs = customers.create_customer(
        session, other_actor, CustomerCreate(name="B社 顧客", phones=[PhoneIn(number="03-3000-0001")])
    )
    b_campaign = make_campaign(session, other_actor, "B社キャンペーン")
    cid = make_campaign(session, actor)
    path = write_csv(tmp_path / "t.csv", "山田 太郎,03-3000-0001,,\n")
    with pytest.raises(NotFound):
        lists.load_list(session_factory, actor, b_campaign, path, source=SOURCE)
    b_path = write_csv(tmp_path / "b.csv", "B社 顧客,03-3000-0001,,\n")
    b_source = lists.load_list(session_factory, other_actor, b_campaign, b_path, source=SOURCE).source_id
    with pytest.raises(NotFound):  # another tenant's source record
        lists.load_list(session_factory, actor, cid, path, source=lists.SourceSpec(source_id=b_source))
    report = lists.load_list(session_factory, actor, cid, path, source=SOURCE)
    lead = leads_of(session, cid)["+81330000001"]
    assert report.customers.created == 1 and lead.customer_id != theirs.id and lead.tenant_id == actor.tenant_id
    assert session.get(Customer, theirs.id).name == "B社 顧客"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        lists.get_list(session, other_actor, cid, report.list_id)
    assert lists.list_lists(session, other_actor, b_campaign)[0].rows_loaded == 1


# -- over HTTP


def test_a_supervisor_uploads_a_list_and_a_client_viewer_reads_its_counts(
    client_as: ClientAs, session: Session
) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    body = {"name": "秋", "kind": "sales", "caller_id": "03-1234-5678",
            "windows": [{"weekday": 0, "start": "09:00", "end": "20:00"}]}  # fmt: skip
    cid = supervisor.post("/api/v1/campaigns", json=body).json()["id"]
    supervisor.post("/api/v1/campaigns/dnc", json={"phone": "03-3000-0002", "reason": "本人申出"})
    csv_bytes = (CSV_HEADER + "山田 太郎,03-3000-0001,,\n佐藤 花子,03-3000-0002,,\n鈴木,12,,\n").encode("cp932")
    form = {"name": "九月分", "provider": "自社", "method": "自社通販の購入者", "received": "2026-11-01",
            "sim_outcomes": json.dumps({"answer": 0.5, "no_answer": 0.5})}  # fmt: skip
    r = supervisor.post(
        f"/api/v1/campaigns/{cid}/lists", data=form, files={"file": ("九月.csv", csv_bytes, "text/csv")}
    )
    assert r.status_code == 201, r.text
    report = r.json()
    assert (report["rows_total"], report["rows_loaded"], report["rows_scrubbed"], report["rows_bad"]) == (3, 1, 1, 1)
    assert report["scrubbed_rows"] == [{"row": 3, "phone": "+81330000002", "reason": "dnc"}]
    assert report["bad_rows"][0]["row"] == 4 and report["bad_rows"][0]["column"] == "電話番号"
    assert report["filename"] == "九月.csv" and report["encoding"] == "cp932"
    assert report["sim_outcomes"]["answer"] == 0.5 and report["sim_outcomes"]["busy"] == 0.0
    viewer = client_as(Role.CLIENT_VIEWER)
    assert viewer.post(f"/api/v1/campaigns/{cid}/lists", data=form,
                       files={"file": ("v.csv", csv_bytes, "text/csv")}).status_code == 403  # fmt: skip
    listed = viewer.get(f"/api/v1/campaigns/{cid}/lists")
    assert listed.status_code == 200
    assert [(x["name"], x["rows_loaded"], x["rows_scrubbed"], x["rows_bad"]) for x in listed.json()] == [
        ("九月分", 1, 1, 1)
    ]
    one = viewer.get(f"/api/v1/campaigns/{cid}/lists/{report['list_id']}").json()
    assert one["rows_total"] == 3 and one["filename"] == "九月.csv"
    assert viewer.get(f"/api/v1/campaigns/{cid}/lists/{report['list_id'] + 999}").status_code == 404
    assert client_as(Role.OPERATOR).post(f"/api/v1/campaigns/{cid}/lists", data=form,
                                         files={"file": ("o.csv", csv_bytes)}).status_code == 403  # fmt: skip


def test_bad_uploads_are_problem_details_in_both_languages(client_as: ClientAs) -> None:
    admin = client_as(Role.ADMIN)
    body = {"name": "秋", "kind": "sales", "caller_id": "03-1234-5678"}
    cid = admin.post("/api/v1/campaigns", json=body).json()["id"]
    good = (CSV_HEADER + "山田 太郎,03-3000-0001,,\n").encode()
    url = f"/api/v1/campaigns/{cid}/lists"
    cases = [
        ({}, ("list.csv", good), "source_id", "list.source.required"),
        ({"source_id": "1", "sim_outcomes": "[1]"}, ("list.csv", good), "sim_outcomes", "list.sim_outcomes.json"),
        ({"provider": "p", "method": "m"}, ("list.pdf", good), "file", "list.file.type"),
        ({"provider": "p", "method": "m"}, ("list.csv", b"\xef\xbb\xbf"), "file", "list.file.unusable"),
        ({"provider": "p", "method": "m", "received": "昨日"}, ("list.csv", good), "received", "list.source.received"),
    ]
    for form, upload, field, code in cases:
        r = admin.post(url, data=form, files={"file": upload})
        assert r.status_code == 422, (form, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        error = r.json()["errors"][0]
        assert (error["field"], error["code"]) == (field, code) and error["message"] and error["message_ja"]
    other = client_as(Role.ADMIN, "client-b")
    r = other.post(url, data={"provider": "p", "method": "m"}, files={"file": ("list.csv", good)})
    assert r.status_code == 404 and "client-b" not in r.text
    assert other.get(url).status_code == 404


def test_the_upload_route_takes_a_body_larger_than_the_default_limit(client_as: ClientAs) -> None:
    from kakehashi.app import BODY_LIMITS
    from kakehashi.kit.body import BodyGuardMiddleware

    guard = BodyGuardMiddleware(lambda *a: None, max_bytes=1024, limits=BODY_LIMITS)  # type: ignore[arg-type]
    assert guard.limit_for("/api/v1/campaigns/12/lists") == 100 * 1024 * 1024
    assert guard.limit_for("/api/v1/campaigns/12/leads") == 1024
    assert guard.limit_for("/api/v1/campaigns/lists") == 1024


# -- the CLI


def test_the_cli_loads_a_list_by_campaign_name_and_exits_non_zero_when_nothing_loaded(
    cli_database: str, tmp_path: Path
) -> None:
    from kakehashi.cli import app

    engine = make_engine(cli_database)
    try:
        with unit_of_work(make_session_factory(engine)) as s:
            actor = Actor(tenant_id=tenants.ensure(s, get_settings().default_tenant).id, username="setup")
            make_campaign(s, actor, "春の案内")
        path = write_csv(tmp_path / "cli.csv", "山田 太郎,03-3000-0001,,\n佐藤 花子,12,,\n")
        source = ["--provider", "自社", "--method", "自社通販の購入者"]
        out = CliRunner().invoke(app, ["campaign", "load", "春の案内", str(path), "--name", "春", *source])
        assert out.exit_code == 0, out.output
        report = json.loads(out.stdout.strip().splitlines()[0])
        assert (report["rows_loaded"], report["rows_bad"], report["name"]) == (1, 1, "春")
        # The same file again: every number is a duplicate now, so nothing loads (exit 1); --strict also fails.
        again = CliRunner().invoke(app, ["campaign", "load", str(report["campaign_id"]), str(path), *source])
        assert again.exit_code == 1 and json.loads(again.stdout.strip().splitlines()[0])["rows_scrubbed"] == 1
        strict = CliRunner().invoke(app, ["campaign", "load", "春の案内", str(path), "--strict", *source])
        assert strict.exit_code == 1 and json.loads(strict.stdout.strip().splitlines()[0])["rows_not_loaded"] == 1
        missing = CliRunner().invoke(app, ["campaign", "load", "無い", str(path), *source])
        assert missing.exit_code == 2
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Lead)).scalar_one() == 1
            assert conn.execute(select(func.count()).select_from(CustomerPhone)).scalar_one() == 1
    finally:
        engine.dispose()


def test_with_on_duplicate_skip_a_rows_customer_is_found_by_its_other_number(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    """``skip`` adds no number to a customer already in the master: the row's new first number has no owner, so
    the lead's customer (and its flags) come from the row's other number."""
    kept = customers.create_customer(
        session, actor, CustomerCreate(name="既存 様", phones=[PhoneIn(number="03-6000-0001")])
    )
    excluded = customers.create_customer(
        session, actor, CustomerCreate(name="苦情 様", phones=[PhoneIn(number="03-6000-0002")])
    )
    session.flush()
    customers.mark_caution(session, actor, excluded.id, "苦情")
    cid = make_campaign(session, actor)
    body = "別名,03-6000-0009,03-6000-0001,\n別名2,03-6000-0008,03-6000-0002,\n"
    report = lists.load_list(session_factory, actor, cid, write_csv(tmp_path / "k.csv", body), source=SOURCE,
                             on_duplicate="skip")  # fmt: skip
    assert report.customers.skipped == 2 and report.rows_loaded == 1
    assert [(r.row, r.reason) for r in report.scrubbed_rows] == [(3, "outbound_excluded")]
    lead = leads_of(session, cid)["+81360000009"]
    assert lead.customer_id == kept.id
    assert session.get(Customer, kept.id).name == "既存 様"  # type: ignore[union-attr]  # skip: not updated
