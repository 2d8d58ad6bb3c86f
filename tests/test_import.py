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
from sqlalchemy import Engine, func, insert, select, text
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
        strict_args = ["--strict", "--errors", str(errors_out), *sourced]
        strict = runner.invoke(app, ["import", "customers", str(FIXTURES / "customers_errors.csv"), *strict_args])
        assert strict.exit_code == 1
        assert {k: json.loads(strict.stdout)[k] for k in ("strict", "inserted", "updated", "failed_rows")} == {
            "strict": True, "inserted": 0, "updated": 0, "failed_rows": 6,
        }  # fmt: skip
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


def test_totals_add_up(tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor) -> None:
    """The totals add up: every row is inserted, updated, merged, skipped, failed or not imported."""
    parts = ("inserted", "updated", "merged", "skipped", "failed_rows", "not_imported")
    for strict in (False, True):
        report = run(
            session_factory, FIXTURES / "customers_errors.csv", batch_size=3, strict=strict, errors_path=tmp_path / "e"
        )
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
    # The fair floor: the stored rows COPYd back into the same indexed tables; per-batch database times.
    assert result["floor_rows_per_s"] > 0 and result["ratio_floor"] > 0
    assert result["batches_ms"]["batches"] == 1 and result["batches_ms"]["last_over_first"] == 1.0


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


# --- issue 15: good rows kept, database refusals narrowed, addresses split, caps, NUL ------------------------


def _messy_list(path: Path, rows: int, bad_every: int) -> tuple[Path, set[int]]:
    """A Shift_JIS list whose every ``bad_every``-th row has a bad number: a bad row in every batch."""
    lines = [["氏名", "電話番号", "郵便番号"]]
    bad: set[int] = set()
    for i in range(rows):
        number = f"03-6200-{i:04d}"
        if i % bad_every == 3:
            number = f"03-62{i:03d}"  # too short: not a phone number
            bad.add(i + 2)  # the sheet's row number (header is row 1)
        lines.append([f"顧客 {i}号", number, "100-0001"])
    return write_csv(path, lines, encoding="cp932"), bad


def test_a_bad_row_in_every_batch_keeps_all_the_good_rows(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    """The messy list of issue 15: before, every batch held a bad row and nothing was imported."""
    path, bad = _messy_list(tmp_path / "messy.csv", 300, 13)
    report = run(session_factory, path, batch_size=50)
    assert report.encoding == "cp932"
    assert (report.total_rows, report.inserted, report.failed_rows, report.not_imported) == (
        300,
        300 - len(bad),
        len(bad),
        0,
    )
    assert (report.batches_committed, report.batches_rejected) == (6, 0)
    assert count_customers(session, actor) == 300 - len(bad)
    lines = read_errors(tmp_path / "messy.errors.csv")
    assert {int(r["row"]) for r in lines} == bad
    assert {(r["column"], r["field"]) for r in lines} == {("電話番号", "phone")}
    assert len(report.as_dict()["batches_ms"]) and report.as_dict()["batches_ms"]["batches"] == 6


def test_strict_imports_nothing_and_reports_every_bad_row(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    seen: list[Event] = []
    unsubscribe = bus.subscribe("import.*", seen.append)
    try:
        path, bad = _messy_list(tmp_path / "messy.csv", 120, 40)
        report = run(session_factory, path, batch_size=50, strict=True)
    finally:
        unsubscribe()
    assert (report.inserted, report.failed_rows, report.not_imported) == (0, len(bad), 120 - len(bad))
    assert (report.batches_committed, report.batches_rejected, report.strict) == (0, 3, True)
    assert count_customers(session, actor) == 0 and seen == []  # nothing written, no event
    assert {int(r["row"]) for r in read_errors(tmp_path / "messy.errors.csv")} == bad
    clean = write_csv(tmp_path / "clean.csv", [["氏名", "電話"], ["a", "03-6300-0001"], ["b", "03-6300-0002"]])
    report = run(session_factory, clean, batch_size=1, strict=True)
    assert (report.inserted, report.failed_rows, report.batches_committed) == (2, 0, 2)
    assert count_customers(session, actor) == 2


def test_a_batch_the_database_refuses_is_narrowed_to_its_bad_row(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    session: Session,
    actor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A number another writer takes between the batch's lookup and its write (validation cannot see it):
    the database refuses the batch; the other rows are written, the refused one is reported."""
    from kakehashi.customers.importer.batches import BatchWriter
    from kakehashi.kit.db import utcnow

    other = customers.create_customer(
        session, actor, CustomerCreate(name="先客", phones=[PhoneIn(number="03-6400-9999")])
    )
    session.commit()
    taken = "+81364000007"
    write = BatchWriter._write

    def racing_write(self: BatchWriter, session: Session, new: list[Any], updates: list[Any]) -> list[int]:
        if any(p.e164 == taken for plan in new for p in plan.phones):  # the other writer, just before us
            session.execute(
                insert(CustomerPhone).values(
                    tenant_id=actor.tenant_id, customer_id=other.id, e164=taken, national="03-6400-0007",
                    kind="fixed", is_primary=False, created_at=utcnow(),
                )
            )  # fmt: skip
        return write(self, session, new, updates)

    monkeypatch.setattr(BatchWriter, "_write", racing_write)
    rows = [["氏名", "電話"]] + [[f"客 {i}", f"03-6400-{i:04d}"] for i in range(1, 21)]
    path = write_csv(tmp_path / "race.csv", rows)
    strict = run(session_factory, path, strict=True)  # the savepoints narrow it too; then nothing is kept
    assert (strict.inserted, strict.failed_rows, strict.not_imported) == (0, 1, 19)
    assert strict.first_errors[0].row == 8 and count_customers(session, actor) == 1
    report = run(session_factory, path)
    assert (report.inserted, report.failed_rows, report.not_imported) == (19, 1, 0)
    (error,) = report.first_errors
    assert (error.row, error.column, error.field, error.value) == (8, "電話", "phone", "03-6400-0007")
    assert "taken by another customer meanwhile" in error.message
    assert count_customers(session, actor) == 1 + 19
    assert CustomerRepository(session, actor.tenant_id).find_id_by_phone(taken) is None  # rolled back with it


def test_nul_in_a_cell_refuses_that_row_with_its_column(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    rows = [["氏名", "電話", "備考"], ["一", "03-6500-0001", "ok"], ["二", "03-6500-0002", "a\x00b"]]
    rows += [["三", "03-6500-0003", ""]]
    report = run(session_factory, write_csv(tmp_path / "nul.csv", rows))
    assert (report.inserted, report.failed_rows) == (2, 1)
    (error,) = report.first_errors
    assert (error.row, error.column, error.field, error.value) == (3, "備考", "notes", "a\\0b")
    assert "NUL" in error.message
    assert count_customers(session, actor) == 2


def _xlsx_bomb(path: Path, rows: int, cols: int = 1) -> Path:
    """A valid XLSX of ``rows`` × ``cols`` tiny cells: megabytes of XML in a few hundred KB."""
    import zipfile

    ns = 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            f'<?xml version="1.0"?><Relationships {ns}><Relationship Id="rId1" Type="{rel}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0"?><workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="顧客" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<?xml version="1.0"?><Relationships {ns}><Relationship Id="rId1" Type="{rel}/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>',
        )
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(f'<?xml version="1.0"?><worksheet xmlns="{main}"><sheetData>'.encode())
            sheet.write(b'<row r="1"><c r="A1" t="inlineStr"><is><t>tel</t></is></c></row>')
            row = b"<row>" + b"<c><v>312345678</v></c>" * cols + b"</row>"
            for _ in range(rows // 10_000):
                sheet.write(row * 10_000)
            sheet.write(row * (rows % 10_000) + b"</sheetData></worksheet>")
    return path


def test_xlsx_bomb_refused_before_loading(tmp_path: Path, session_factory: sessionmaker[Session], actor: Actor) -> None:
    """1.1M rows in ~1 MB: over Excel's row limit (the default cap), refused in bounded time and memory."""
    import time
    import tracemalloc

    from kakehashi.kit.config import Settings

    bomb = _xlsx_bomb(tmp_path / "bomb.xlsx", 1_100_000)
    assert bomb.stat().st_size < 2_000_000
    started = time.perf_counter()
    with pytest.raises(importer.ImportSetupError, match=r"more than 1,048,576 rows in its first sheet"):
        run(session_factory, bomb)
    assert time.perf_counter() - started < 15  # ~0.3 s quiet (the loader took > 100 s for 3M rows)
    tracemalloc.start()
    try:
        with pytest.raises(importer.ImportSetupError, match="rows"):
            run(session_factory, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024  # the sheet is streamed 1 MB at a time (the loader held ~900 MB for 3M rows)
    small = _xlsx_bomb(tmp_path / "small.xlsx", 2_000, cols=3)
    limits = importer.XlsxLimits.from_settings(Settings(import_max_cells=5_000))
    with pytest.raises(importer.ImportSetupError, match=r"more than 5,000 cells in its first sheet.*MAX_CELLS"):
        run(session_factory, small, limits=limits)
    limits = importer.XlsxLimits.from_settings(Settings(import_max_unpacked_bytes=64 * 1024))
    with pytest.raises(importer.ImportSetupError, match=r"unpacks to .* MB, more than .*UNPACKED_BYTES"):
        run(session_factory, small, limits=limits)
    limits = importer.XlsxLimits.from_settings(Settings(import_max_rows=1_000))
    with pytest.raises(importer.ImportSetupError, match=r"more than 1,000 rows in sheet '顧客'"):
        run(session_factory, small, sheet="顧客", limits=limits)


@pytest.mark.parametrize(
    ("written", "postal", "expected"),
    [
        ("大阪府大阪市北区梅田3-4-5", "530-0001", ("大阪府", "大阪市北区", "梅田", "3-4-5", None)),
        (  # full-width digits (folded in the place and number), 丁目番号, a building after the number
            "大阪府大阪市北区梅田３丁目４番５号　梅田ビル５Ｆ",
            None,
            ("大阪府", "大阪市北区", "梅田", "3丁目4番5号", "梅田ビル５Ｆ"),  # the building as written
        ),
        (
            "東京都千代田区丸の内1-9-1 グラントウキョウ 10階",
            None,
            ("東京都", "千代田区", "丸の内", "1-9-1", "グラントウキョウ 10階"),
        ),
        ("北海道札幌市中央区北一条西2丁目", "060-0001", ("北海道", "札幌市中央区", "北一条西", "2丁目", None)),
        ("神奈川県横浜市西区みなとみらい2-2-1", None, ("神奈川県", "横浜市西区", "みなとみらい", "2-2-1", None)),
        ("北海道石狩郡当別町青山123番地の4", None, ("北海道", "石狩郡当別町", "青山", "123番地の4", None)),
        ("北海道当別町青山１２３", None, ("北海道", "石狩郡当別町", "青山", "123", None)),  # 郡 left out
        ("長野県北佐久郡軽井沢町大字軽井沢1323-1", None, ("長野県", "北佐久郡軽井沢町", "軽井沢", "1323-1", None)),
        (  # Kyoto: the street directions come before the town and stay with it
            "京都府京都市中京区河原町通三条上る恵比須町123",
            "604-8005",
            ("京都府", "京都市中京区", "河原町通三条上る恵比須町", "123", None),
        ),
        (
            "京都市中京区寺町通御池下ル下本能寺前町492-1",
            None,
            ("京都府", "京都市中京区", "寺町通御池下ル下本能寺前町", "492-1", None),
        ),
        (
            "福岡県福岡市博多区博多駅前2丁目1-1-201号室",
            None,
            ("福岡県", "福岡市博多区", "博多駅前", "2丁目1-1", "201号室"),
        ),
        ("沖縄県那覇市泉崎1-2-2", None, ("沖縄県", "那覇市", "泉崎", "1-2-2", None)),
        ("渋谷2-1", "150-0002", ("東京都", "渋谷区", "渋谷", "2-1", None)),  # the rest from the postal code
    ],
)
def test_split_address(written: str, postal: str | None, expected: tuple[str | None, ...]) -> None:
    from kakehashi.postal.address import split_address

    split = split_address(written, postal_code=postal)
    assert (split.prefecture, split.city, split.town, split.street, split.building) == expected
    assert split.warnings == []


def test_split_address_warnings() -> None:
    from kakehashi.postal.address import split_address

    mismatch = split_address("神奈川県横浜市西区みなとみらい2-2-1", postal_code="100-0001")
    assert mismatch.city == "横浜市西区"  # split all the same
    assert mismatch.warnings == [
        "the address (神奈川県横浜市西区みなとみらい) does not match the postal code: "
        "〒100-0001 is 東京都千代田区千代田"
    ]
    unknown = split_address("どこか1-2")
    assert (unknown.prefecture, unknown.town) == (None, "どこか1-2") and "not split" in unknown.warnings[0]
    assert "not in Japan Post's data" in split_address("大阪府大阪市北区梅田1", postal_code="999-9999").warnings[0]


def test_one_column_address_is_split_and_a_mismatch_is_a_warning(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    rows = [
        ["氏名", "電話", "郵便番号", "住所", "建物名"],
        ["梅田 一", "06-6300-0001", "530-0001", "大阪府大阪市北区梅田３－４－５ 梅田ビル", "501号室"],
        ["横浜 二", "045-630-0002", "100-0001", "神奈川県横浜市西区みなとみらい2-2-1", ""],  # wrong postal code
    ]
    report = run(session_factory, write_csv(tmp_path / "addr.csv", rows))
    assert (report.inserted, report.failed_rows, report.warnings) == (2, 0, 1)
    assert report.columns["住所"] == "address"
    umeda = by_phone(session, actor, "+81663000001")
    address = (umeda.postal_code, umeda.prefecture, umeda.city, umeda.town, umeda.street, umeda.building)
    assert address == ("5300001", "大阪府", "大阪市北区", "梅田", "3-4-5", "梅田ビル 501号室")
    assert by_phone(session, actor, "+81456300002").city == "横浜市西区"  # imported, with a warning
    (warning,) = report.first_warnings
    assert (warning.row, warning.column, warning.field) == (3, "住所", "address")
    lines = read_errors(tmp_path / "addr.errors.csv")
    assert [(r["row"], r["message"][:38]) for r in lines] == [
        ("3", "warning: the address (神奈川県横浜市西区みなとみらい)")
    ]


def test_import_links_new_and_updated_customers_to_the_list_source(
    tmp_path: Path, session_factory: sessionmaker[Session], session: Session, actor: Actor
) -> None:
    """New customers are linked in bulk (no checks: created in the batch), updated ones after the tenant check."""
    from kakehashi.privacy import service as privacy
    from kakehashi.privacy.schemas import SourceCreate

    def source() -> int:
        data = SourceCreate(
            provider_name="提供元", acquisition_method="同意", received_on=date(2026, 11, 1), items=["氏名"]
        )
        source_id = privacy.record_source(session, actor, data).id
        session.commit()
        return source_id

    first, second = source(), source()
    rows = [["氏名", "電話"], ["一", "03-6600-0001"], ["二", "03-6600-0002"]]
    assert run(session_factory, write_csv(tmp_path / "a.csv", rows), source_id=first).inserted == 2
    rows += [["三", "03-6600-0003"]]
    report = run(session_factory, write_csv(tmp_path / "b.csv", rows), source_id=second)
    assert (report.inserted, report.updated) == (1, 2)
    assert [privacy.get_source(session, actor, s)[1] for s in (first, second)] == [2, 3]


def test_split_address_of_generated_people_from_all_over_japan() -> None:
    """Real Japan Post rows (every prefecture, 政令市 wards, 郡, Hokkaido's 条/線 towns written with full-width
    digits in the data) written as one column, with street numbers and buildings: all come back as they were."""
    from kakehashi.demo.synthetic import generate_people
    from kakehashi.postal.address import split_address

    people = list(generate_people(3000, seed=11))
    assert len({p.prefecture for p in people}) == 47
    wrong = []
    for p in people:
        written = f"{p.prefecture}{p.city}{p.town}{p.street or ''}" + (f" {p.building}" if p.building else "")
        split = split_address(written, postal_code=p.postal_code)
        got = (split.prefecture, split.city, split.town, split.street, split.building, split.warnings)
        if got != (p.prefecture, p.city, p.town or None, p.street or None, p.building or None, []):
            wrong.append((written, got))
    assert wrong == []
