"""Customer import: formats, mapping, validation, batches, duplicates, error report, CLI.

Imports go through the rolled-back ``session_factory`` (each batch's commit releases a savepoint),
so every test runs on SQLite and PostgreSQL (the COPY path) and leaves nothing behind.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from kakehashi.customers import importer
from kakehashi.customers import service as customers
from kakehashi.customers.models import Customer, CustomerPhone
from kakehashi.customers.repository import CustomerRepository
from kakehashi.customers.schemas import CustomerCreate, CustomFieldCreate, FieldType, PhoneIn
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_engine
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.kit.events import Event, bus

FIXTURES = Path(__file__).parent / "fixtures"


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def run(factory: sessionmaker[Session], path: Path, **options: Any) -> importer.ImportReport:
    options.setdefault("tenant_code", "center")
    return importer.import_customers(factory, path, **options)


def by_phone(session: Session, actor: Actor, e164: str) -> Customer:
    session.expire_all()
    cid = CustomerRepository(session, actor.tenant_id).find_id_by_phone(e164)
    assert cid is not None, f"no customer with {e164}"
    return customers.get_customer(session, actor, cid)


def count_customers(session: Session, actor: Actor) -> int:
    return session.scalar(select(func.count()).select_from(Customer).where(Customer.tenant_id == actor.tenant_id)) or 0


def read_errors(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "the error report starts with a BOM so Excel reads UTF-8"
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


@pytest.fixture
def children(session: Session, actor: Actor) -> None:
    customers.define_custom_field(
        session, actor, CustomFieldCreate(key="children", label="子供の人数", type=FieldType.number)
    )
    customers.define_custom_field(
        session,
        actor,
        CustomFieldCreate(key="member", label="会員区分", type=FieldType.choice, choices=["正会員", "準会員"]),
    )
    session.commit()


# --- formats -----------------------------------------------------------------------------------


def test_utf8_csv_with_bom(
    session_factory: sessionmaker[Session], session: Session, actor: Actor, children: None
) -> None:
    report = run(session_factory, FIXTURES / "customers_utf8.csv")
    assert report.encoding == "utf-8-sig"
    assert (report.total_rows, report.inserted, report.failed_rows) == (3, 3, 0)
    assert report.columns["children"] == "cf.children"  # a header equal to a custom field's key
    hanako = by_phone(session, actor, "+81312345678")
    assert (hanako.name, hanako.name_kana, hanako.gender, hanako.birthday) == (
        "山田 花子",
        "ヤマダ ハナコ",
        "female",
        date(1980, 4, 1),
    )
    assert (hanako.postal_code, hanako.prefecture, hanako.rank, hanako.custom) == (
        "1000001",
        "東京都",
        "vip",
        {"children": 2},
    )
    assert [(p.e164, p.kind, p.label, p.is_primary) for p in hanako.phones] == [
        ("+81312345678", "fixed", None, True),
        ("+819011112222", "mobile", "携帯", False),
    ]
    assert by_phone(session, actor, "+81661234567").name_kana == "サトウ イチロウ"  # hiragana → katakana
    assert by_phone(session, actor, "+81120123456").phones[0].kind == "free_dial"


def test_shift_jis_csv_detected(session_factory: sessionmaker[Session], session: Session, actor: Actor) -> None:
    report = run(session_factory, FIXTURES / "customers_sjis.csv")
    assert report.encoding == "cp932"
    assert (report.inserted, report.failed_rows) == (2, 0)
    misaki = by_phone(session, actor, "+81332109876")  # ０３（３２１０）９８７６
    assert misaki.name == "髙橋 美咲"  # a CP932-only character
    assert misaki.birthday == date(1980, 1, 2)  # 昭和55年1月2日
    assert misaki.postal_code == "1600023"
    assert misaki.notes == "①折り返し希望"
    assert [p.national for p in misaki.phones] == ["03-3210-9876", "080-2222-3333"]
    assert by_phone(session, actor, "+81521234567").birthday == date(1990, 3, 4)  # H2.3.4


def test_explicit_encoding_alias(session_factory: sessionmaker[Session], actor: Actor) -> None:
    assert run(session_factory, FIXTURES / "customers_sjis.csv", encoding="Shift_JIS").encoding == "cp932"
    with pytest.raises(importer.ImportSetupError, match="not utf-8"):
        run(session_factory, FIXTURES / "customers_sjis.csv", encoding="utf-8")


def test_xlsx(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, children: None
) -> None:
    report = run(session_factory, FIXTURES / "customers.xlsx", errors_path=tmp_path / "errors.csv")
    assert (report.inserted, report.failed_rows) == (2, 0)
    assert report.columns["会員区分"] == "cf.member"  # a header equal to a custom field's label
    sakura = by_phone(session, actor, "+81312340001")  # typed as the number 312340001
    assert sakura.postal_code == "0600000"  # typed as 600000: the leading zero comes back
    assert sakura.birthday == date(1992, 7, 7)
    assert (sakura.prefecture, sakura.city, sakura.town) == ("北海道", "札幌市中央区", None)  # 住所, split
    assert sakura.custom == {"member": "正会員"}
    assert by_phone(session, actor, "+819033334444").gender == "male"


def test_xlsx_sheet_choice(session_factory: sessionmaker[Session], actor: Actor) -> None:
    with pytest.raises(importer.ImportSetupError, match="no sheet 'なし'"):
        run(session_factory, FIXTURES / "customers.xlsx", sheet="なし")
    with pytest.raises(importer.ImportSetupError, match="no phone column"):
        run(session_factory, FIXTURES / "customers.xlsx", sheet="メモ")


def test_tab_separated_utf16(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    """Excel's "Unicode text" export."""
    path = tmp_path / "list.txt"
    path.write_text("氏名\t電話番号\r\n小林 誠\t045-123-4567\r\n", encoding="utf-16")
    assert run(session_factory, path).inserted == 1
    assert by_phone(session, actor, "+81451234567").name == "小林 誠"


# --- mapping -----------------------------------------------------------------------------------


def test_column_mapping(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, children: None
) -> None:
    path = write_csv(
        tmp_path / "m.csv",
        [
            ["お客様のお名前", "連絡先番号", "予備番号", "FAX", "子供", "姓", "名"],
            ["松本 恵", "06-6000-1111", "080-6000-1111", "06-6000-2222", "3", "", ""],
        ],
    )
    mapping = importer.parse_mapping(
        ["お客様のお名前=name", "連絡先番号=phone", "予備番号=mobile", "FAX=-", "子供=cf.children", "姓=-", "名=ignore"]
    )
    report = run(session_factory, path, mapping=mapping)
    assert report.failed_rows == 0, report.first_errors
    assert set(report.ignored_columns) == {"FAX", "姓", "名"}
    megumi = by_phone(session, actor, "+81660001111")
    assert megumi.name == "松本 恵" and megumi.custom == {"children": 3}
    assert [p.e164 for p in megumi.phones] == ["+81660001111", "+818060001111"]


def test_name_in_two_columns(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    path = write_csv(
        tmp_path / "n.csv", [["姓", "名", "セイ", "メイ", "TEL"], ["木村", "拓", "キムラ", "タク", "03-5000-0001"]]
    )
    assert run(session_factory, path).inserted == 1
    taku = by_phone(session, actor, "+81350000001")
    assert (taku.name, taku.name_kana) == ("木村 拓", "キムラ タク")


def test_bad_mapping() -> None:
    with pytest.raises(importer.ImportSetupError, match="unknown field 'telephone'"):
        importer.parse_mapping(["電話=telephone"])
    with pytest.raises(importer.ImportSetupError, match="SOURCE=field"):
        importer.parse_mapping(["phone"])


def test_mapping_names_missing_column(tmp_path: Path, session_factory: sessionmaker[Session], actor: Actor) -> None:
    path = write_csv(tmp_path / "x.csv", [["氏名", "電話"], ["a", "03-5000-0002"]])
    with pytest.raises(importer.ImportSetupError, match="not in the file: 携帯"):
        run(session_factory, path, mapping=importer.parse_mapping(["携帯=phone2"]))


def test_unknown_custom_field_column(tmp_path: Path, session_factory: sessionmaker[Session], actor: Actor) -> None:
    path = write_csv(tmp_path / "x.csv", [["氏名", "電話", "cf.pets"], ["a", "03-5000-0002", "1"]])
    with pytest.raises(importer.ImportSetupError, match="unknown custom field 'pets'"):
        run(session_factory, path)


# --- row errors, batches and the error report -----------------------------------------------------


def test_row_errors_reported_with_row_numbers(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    errors_path = tmp_path / "report.csv"
    report = run(session_factory, FIXTURES / "customers_errors.csv", errors_path=errors_path)
    assert (report.total_rows, report.inserted, report.failed_rows, report.not_imported) == (7, 1, 6, 0)
    assert (report.batches_committed, report.batches_rejected) == (1, 0)
    assert report.errors_path == str(errors_path)
    rows = read_errors(errors_path)
    found = {(r["row"], r["column"], r["field"]) for r in rows}
    assert found == {
        ("3", "電話番号", "phone"),
        ("4", "生年月日", "birthday"),
        ("5", "郵便番号", "postal_code"),
        ("6", "性別", "gender"),
        ("6", "メール", "email"),
        ("7", "氏名", "name"),
        ("8", "電話番号", "phone"),
    }
    bad_phone = next(r for r in rows if r["row"] == "3")
    assert bad_phone["value"] == "12345" and "not a valid phone number" in bad_phone["message"]
    assert next(r for r in rows if r["row"] == "5")["message"] == "'12-34' is not a 7-digit postal code"
    assert count_customers(session, actor) == 1
    assert report.as_dict()["first_errors"][0]["row"] == 3


def test_a_bad_row_does_not_stop_the_other_rows_of_its_batch(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    rows = [["氏名", "電話番号", "郵便番号"]]
    rows += [[f"客 {i}", f"03-6000-{i:04d}", "100-0001"] for i in range(1, 7)]
    rows[4][2] = "999"  # row 5 of the sheet: second batch (rows 4-5)
    path = write_csv(tmp_path / "batches.csv", rows)
    report = run(session_factory, path, batch_size=2)
    assert (report.batches_committed, report.batches_rejected) == (3, 0)
    assert (report.inserted, report.failed_rows, report.not_imported) == (5, 1, 0)
    assert count_customers(session, actor) == 5
    repo = CustomerRepository(session, actor.tenant_id)
    assert repo.find_id_by_phone("+81360000003") is not None  # the good row of the batch with the bad one
    assert repo.find_id_by_phone("+81360000004") is None  # the bad row
    lines = read_errors(tmp_path / "batches.errors.csv")  # the default place, next to the input
    assert [(r["row"], r["column"], r["field"], r["message"]) for r in lines] == [
        ("5", "郵便番号", "postal_code", "'999' is not a 7-digit postal code"),
    ]


def test_no_error_file_when_clean(tmp_path: Path, session_factory: sessionmaker[Session], actor: Actor) -> None:
    path = write_csv(tmp_path / "ok.csv", [["氏名", "電話"], ["a", "03-5000-0003"]])
    stale = tmp_path / "ok.errors.csv"
    stale.write_text("from an earlier run")
    report = run(session_factory, path)
    assert report.errors_path is None and not stale.exists()


def test_committed_batches_publish_events(tmp_path: Path, session_factory: sessionmaker[Session], actor: Actor) -> None:
    seen: list[Event] = []
    unsubscribe = bus.subscribe("import.*", seen.append)
    try:
        rows = [["氏名", "電話"]] + [[f"客 {i}", f"03-6100-{i:04d}"] for i in range(1, 4)] + [["", "03-6100-9999"]]
        run(session_factory, write_csv(tmp_path / "e.csv", rows), batch_size=2)
    finally:
        unsubscribe()
    assert [e.name for e in seen] == ["import.completed"] * 2  # the second batch without its bad row
    assert seen[0].tenant_id == actor.tenant_id
    assert seen[0].payload["rows"] == [2, 3] and len(seen[0].payload["customer_ids"]) == 2
    assert seen[1].payload["rows"] == [4, 4] and len(seen[1].payload["customer_ids"]) == 1


def test_custom_field_values_validated(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, children: None
) -> None:
    path = write_csv(
        tmp_path / "cf.csv",
        [
            ["氏名", "電話", "子供の人数", "会員区分"],
            ["a", "03-5000-0010", "たくさん", "正会員"],
            ["b", "03-5000-0011", "1", "ゴールド"],
            ["c", "03-5000-0012", "２", ""],
        ],
    )
    report = run(session_factory, path, batch_size=1)
    assert report.inserted == 1
    errors = {(e.row, e.column, e.field) for e in report.first_errors}
    assert errors == {(2, "子供の人数", "cf.children"), (3, "会員区分", "cf.member")}
    assert by_phone(session, actor, "+81350000012").custom == {"children": 2}


def test_required_custom_field_for_new_customers(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    customers.define_custom_field(
        session, actor, CustomFieldCreate(key="area", label="地区", type=FieldType.text, required=True)
    )
    session.commit()
    path = write_csv(
        tmp_path / "r.csv", [["氏名", "電話", "地区"], ["a", "03-5000-0020", ""], ["b", "03-5000-0021", "北"]]
    )
    report = run(session_factory, path, batch_size=1)
    assert report.inserted == 1
    assert [(e.row, e.field, e.message) for e in report.first_errors] == [(2, "cf.area", "地区 is required")]


# --- duplicates ---------------------------------------------------------------------------------


@pytest.fixture
def existing(session: Session, actor: Actor, children: None) -> Customer:
    customer = customers.create_customer(
        session,
        actor,
        CustomerCreate(
            name="既存 太郎",
            name_kana="キソン タロウ",
            prefecture="東京都",
            notes="古いメモ",
            phones=[PhoneIn(number="03-7000-0001")],
            custom={"member": "正会員"},
        ),
    )
    session.commit()
    return customer


DUP_ROWS = [
    ["氏名", "フリガナ", "電話番号", "携帯電話", "都道府県", "備考", "子供の人数"],
    ["", "キソン タロウ", "０３（７０００）０００１", "090-7000-0001", "", "新しいメモ", "2"],
]


def test_duplicate_update(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, existing: Customer
) -> None:
    report = run(session_factory, write_csv(tmp_path / "d.csv", DUP_ROWS))
    assert (report.updated, report.inserted, report.failed_rows) == (1, 0, 0)
    customer = by_phone(session, actor, "+81370000001")
    assert customer.id == existing.id
    assert customer.name == "既存 太郎"  # empty in the file: kept
    assert customer.prefecture == "東京都"  # empty in the file: kept
    assert customer.notes == "新しいメモ"  # non-empty: overwritten
    assert customer.custom == {"member": "正会員", "children": 2}  # merged
    assert [(p.e164, p.is_primary) for p in customer.phones] == [("+81370000001", True), ("+819070000001", False)]


def test_duplicate_skip(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, existing: Customer
) -> None:
    report = run(session_factory, write_csv(tmp_path / "d.csv", DUP_ROWS), on_duplicate="skip")
    assert (report.skipped, report.updated, report.failed_rows) == (1, 0, 0)
    customer = by_phone(session, actor, "+81370000001")
    assert customer.notes == "古いメモ" and len(customer.phones) == 1


def test_duplicate_error(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, existing: Customer
) -> None:
    report = run(session_factory, write_csv(tmp_path / "d.csv", DUP_ROWS), on_duplicate="error")
    assert report.failed_rows == 1
    error = report.first_errors[0]
    assert (error.row, error.column, error.value) == (2, "電話番号", "０３（７０００）０００１")
    assert error.message == f"03-7000-0001 already belongs to customer {existing.id}"
    assert by_phone(session, actor, "+81370000001").notes == "古いメモ"


def test_numbers_of_two_customers_in_one_row(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, existing: Customer
) -> None:
    other = customers.create_customer(
        session, actor, CustomerCreate(name="別人", phones=[PhoneIn(number="090-7000-0002")])
    )
    session.commit()
    path = write_csv(tmp_path / "two.csv", [["氏名", "電話", "携帯"], ["x", "03-7000-0001", "090-7000-0002"]])
    report = run(session_factory, path)
    assert report.failed_rows == 1
    message = report.first_errors[0].message
    assert message.startswith("the numbers belong to different customers")
    assert f"customer {existing.id}" in message and f"customer {other.id}" in message


def test_duplicates_inside_the_file_merge(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    rows = [
        ["氏名", "電話番号", "携帯電話", "都道府県", "備考"],
        ["森 陽子", "03-8000-0001", "", "東京都", "初回"],
        ["森 陽子", "03-8000-0002", "", "", ""],
        ["森 ようこ", "", "03-8000-0001", "", "2回目"],  # same number in the other column: merges into row 2
        ["", "03-8000-0001", "090-8000-0001", "", ""],  # no name: fine for a merge
    ]
    for batch_size, on_duplicate in ((1000, "update"), (1, "skip")):  # within one batch, and across batches
        report = run(
            session_factory, write_csv(tmp_path / "in.csv", rows), batch_size=batch_size, on_duplicate=on_duplicate
        )
        assert (report.inserted, report.merged, report.failed_rows) == (2, 2, 0), (batch_size, report)
        yoko = by_phone(session, actor, "+81380000001")
        assert (yoko.name, yoko.prefecture, yoko.notes) == ("森 ようこ", "東京都", "2回目")
        assert [p.e164 for p in yoko.phones] == ["+81380000001", "+819080000001"]
        session.delete(yoko)
        session.delete(by_phone(session, actor, "+81380000002"))
        session.commit()


def test_in_file_conflict_between_two_new_rows(
    tmp_path: Path, session_factory: sessionmaker[Session], actor: Actor
) -> None:
    rows = [
        ["氏名", "電話", "携帯"],
        ["a", "03-8100-0001", ""],
        ["b", "03-8100-0002", ""],
        ["c", "03-8100-0001", "03-8100-0002"],
    ]
    report = run(session_factory, write_csv(tmp_path / "c.csv", rows))
    assert report.failed_rows == 1 and report.first_errors[0].row == 4
    assert "→ row 2" in report.first_errors[0].message and "→ row 3" in report.first_errors[0].message


def test_bad_options(session_factory: sessionmaker[Session], actor: Actor) -> None:
    with pytest.raises(importer.ImportSetupError, match="on_duplicate"):
        run(session_factory, FIXTURES / "customers_utf8.csv", on_duplicate="merge")


# --- parsing helpers and the worker pool ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1980-04-01", date(1980, 4, 1)),
        ("1980/4/1", date(1980, 4, 1)),
        ("１９８０年４月１日", date(1980, 4, 1)),
        ("19800401", date(1980, 4, 1)),
        ("昭和55年4月1日", date(1980, 4, 1)),
        ("S55.4.1", date(1980, 4, 1)),
        ("平成元年1月8日", date(1989, 1, 8)),
        ("R2/2/29", date(2020, 2, 29)),
        ("1980-02-30", None),
        ("いつか", None),
    ],
)
def test_parse_date(text: str, expected: date | None) -> None:
    assert importer.parse_date(text) == expected


@pytest.mark.parametrize("threaded", [False, True], ids=["fork", "forkserver"])
def test_parse_in_worker_processes(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor, threaded: bool
) -> None:
    """Workers fork from a single-threaded process, else come from a forkserver; results are the same."""
    rows = [["氏名", "電話"]] + [[f"客 {i}", f"03-6200-{i:04d}"] for i in range(1, 51)] + [["x", "bad"]]
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    if threaded:
        other.start()
    try:
        report = run(session_factory, write_csv(tmp_path / "w.csv", rows), batch_size=10, workers=2)
    finally:
        stop.set()
    assert report.workers == 2
    assert (report.inserted, report.failed_rows, report.not_imported, report.batches_rejected) == (50, 1, 0, 1)
    assert by_phone(session, actor, "+81362000050").name == "客 50"


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kakehashi.cli import app
    from kakehashi.kit.config import get_settings

    monkeypatch.setenv("KAKEHASHI_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        sjis = str(FIXTURES / "customers_sjis.csv")
        unsourced = runner.invoke(app, ["import", "customers", sjis])
        assert unsourced.exit_code == 2 and "where the list came from" in unsourced.stderr
        inline = [
            "--provider",
            "株式会社リスト",
            "--method",
            "懸賞応募者から同意を得て取得",
            "--received",
            "2026-11-01",
        ]
        ok = runner.invoke(app, ["import", "customers", sjis, "--map", "ランク=-", *inline])
        assert ok.exit_code == 0, ok.output
        result = json.loads(ok.stdout)
        assert (result["inserted"], result["encoding"], result["columns"].get("ランク")) == (2, "cp932", None)
        engine = make_engine(os.environ["KAKEHASHI_DATABASE_URL"])
        with engine.connect() as conn:
            source_id, items = conn.execute(text("SELECT id, items FROM data_sources")).one()
            items = json.loads(items) if isinstance(items, str) else items
            assert "氏名" in items
            linked = conn.execute(text("SELECT count(*) FROM customer_sources WHERE source_id = :s"), {"s": source_id})
            assert linked.scalar() == 2
            imports = conn.execute(text("SELECT username, resource_id FROM audit_events WHERE action = 'import'"))
            assert [(u.startswith("cli:"), r) for u, r in imports] == [(True, source_id)]
        engine.dispose()
        sourced = ["--source", str(source_id)]
        errors_out = tmp_path / "errors.csv"
        bad = runner.invoke(
            app,
            [
                "import",
                "customers",
                str(FIXTURES / "customers_errors.csv"),
                "--batch-size",
                "1",
                "--errors",
                str(errors_out),
                *sourced,
            ],
        )
        assert bad.exit_code == 1
        assert json.loads(bad.stdout)["failed_rows"] == 6 and len(read_errors(errors_out)) == 7
        again = runner.invoke(
            app, ["import", "customers", str(FIXTURES / "customers_sjis.csv"), "--on-duplicate", "skip", *sourced]
        )
        assert json.loads(again.stdout)["skipped"] == 2
        unusable = runner.invoke(
            app, ["import", "customers", str(FIXTURES / "customers.xlsx"), "--sheet", "メモ", *sourced]
        )
        assert runner.invoke(app, ["import", "customers", sjis, "--source", "999"]).exit_code == 2
        assert unusable.exit_code == 2 and "no phone column" in unusable.stderr
    finally:
        get_settings.cache_clear()


def test_totals_add_up(session_factory: sessionmaker[Session], session: Session, actor: Actor) -> None:
    """The totals add up: every row is inserted, updated, merged, skipped, failed or not imported."""
    parts = ("inserted", "updated", "merged", "skipped", "failed_rows", "not_imported")
    for strict in (False, True):
        report = run(session_factory, FIXTURES / "customers_errors.csv", batch_size=3, strict=strict)
        d = report.as_dict()
        assert sum(d[k] for k in parts) == d["total_rows"] == 7, d
        assert (d["inserted"], d["failed_rows"], d["not_imported"]) == ((0, 6, 1) if strict else (1, 6, 0))
    assert session.scalar(select(func.count()).select_from(CustomerPhone)) == 1  # the good row, once


def test_bench_import_smoke(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """``kakehashi bench import`` end to end, on a database of its own (dropped afterwards)."""
    from kakehashi.bench import importing

    if engine.dialect.name != "postgresql":
        pytest.skip("the benchmark runs on PostgreSQL")
    url = engine.url.set(database=f"{engine.url.database}_bench")
    monkeypatch.setenv("KAKEHASHI_BENCH_PG_URL", url.render_as_string(hide_password=False))
    try:
        result = importing.run(rows=300)
    finally:
        recreate_database(url, create=False)
    assert (result["rows"], result["inserted"], result["failed"], result["customers_stored"]) == (300, 300, 0, 300)
    assert result["ratio"] > 0 and result["copy_rows_per_s"] > result["rows_per_s"] > 0


def test_text_with_tabs_backslashes_and_line_breaks_is_stored_as_written(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    """On PostgreSQL new customers go through COPY text encoded in the parser: escaping must be exact."""
    notes = "折り返し\t要\\確認\n2行目\r\n3行目 \\N"
    path = write_csv(tmp_path / "esc.csv", [["氏名", "電話", "備考"], ["山本 一\\郎", "03-5000-0030", notes]])
    assert run(session_factory, path).inserted == 1
    customer = by_phone(session, actor, "+81350000030")
    assert (customer.name, customer.notes) == ("山本 一\\郎", notes.strip())


def test_rows_merged_in_a_batch_and_rejected_batches_leave_the_database_consistent(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    """A merged row (re-encoded), a rejected batch (nothing of it), and the batch after it (kept)."""
    rows = [["氏名", "電話", "携帯", "備考"]]
    rows += [["一", "03-5100-0001", "", "a"], ["", "03-5100-0001", "090-5100-0001", "b"]]  # batch 1: merge
    rows += [["二", "03-5100-0002", "", ""], ["三", "03-5100-0003", "", "x" * 5]]  # batch 2: fine
    rows += [["四", "03-5100-0004", "", ""], ["", "03-5100-0005", "", ""]]  # batch 3: no name → that row fails
    rows += [["", "03-5100-0006", "", ""]]  # batch 4: its only row fails
    report = run(session_factory, write_csv(tmp_path / "mix.csv", rows), batch_size=2)
    assert (report.inserted, report.merged, report.failed_rows, report.not_imported) == (4, 1, 2, 0)
    assert (report.batches_committed, report.batches_rejected) == (3, 1)
    first = by_phone(session, actor, "+81351000001")
    assert (first.notes, [p.e164 for p in first.phones]) == ("b", ["+81351000001", "+819051000001"])
    assert [p.is_primary for p in first.phones] == [True, False]
    repo = CustomerRepository(session, actor.tenant_id)
    assert repo.find_id_by_phone("+81351000004") is not None and count_customers(session, actor) == 4
    assert repo.find_id_by_phone("+81351000005") is None
