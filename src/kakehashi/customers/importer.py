"""Bulk import of customers from CSV (UTF-8 / Shift_JIS) and XLSX.

The pipeline per batch of ``batch_size`` rows:

1. *parse* (pure Python, no database): map columns to fields, normalize and validate each row
   with the same helpers as the API (:func:`kakehashi.customers.service.normalized_fields`,
   :func:`kakehashi.customers.custom_fields.validate_values`, :func:`kakehashi.kit.phone.parse_phone`);
2. *plan* (one query): find which numbers are already taken, decide insert / update / merge /
   skip / error per row (rows are keyed by their normalized phone numbers);
3. *write* (one transaction): bulk-insert new customers and numbers (``COPY`` on PostgreSQL,
   ``executemany`` elsewhere), bulk-update existing ones. A batch with any bad row writes nothing.

The user guide is ``docs/import.md``.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import multiprocessing
import os
import re
import threading
import time as clock
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import psycopg
from annotated_types import MaxLen
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.customers import custom_fields
from kakehashi.customers.models import Customer, CustomerPhone, CustomFieldDef
from kakehashi.customers.repository import CustomFieldRepository
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.customers.service import normalized_fields
from kakehashi.kit.db import make_session_factory, utcnow
from kakehashi.kit.events import Event, publish_on_commit
from kakehashi.kit.phone import InvalidPhone, Phone, parse_phone
from kakehashi.kit.text import nfkc
from kakehashi.tenants import repository as tenants

OnDuplicate = Literal["update", "skip", "error"]
ON_DUPLICATE: tuple[str, ...] = ("update", "skip", "error")

#: Fields a column can be mapped to (besides ``cf.<key>`` for a custom field).
FIELDS: tuple[str, ...] = (
    "name", "name_kana", "family_name", "given_name", "family_kana", "given_kana",
    "phone", "phone2", "postal_code", "prefecture", "city", "town", "street", "building",
    "birthday", "gender", "email", "notes", "rank",
)  # fmt: skip
_PHONE_FIELDS = ("phone", "phone2")
_PHONE_LABELS = {"phone": None, "phone2": "携帯"}
_NAME_PARTS = {"name": ("family_name", "given_name"), "name_kana": ("family_kana", "given_kana")}
IGNORE = "-"

# Header spellings recognized without --map, compared after _header_key() (NFKC, lower case,
# no spaces or brackets), so "電話 番号", "ＴＥＬ" and "Tel." all match.
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("氏名", "名前", "お名前", "顧客名", "お客様名", "氏名漢字", "name", "fullname", "customername"),
    "name_kana": (
        "フリガナ", "ふりがな", "カナ", "かな", "氏名カナ", "カナ氏名", "氏名フリガナ", "お名前カナ",
        "お名前フリガナ", "名前カナ", "よみ", "ヨミ", "namekana", "kana", "furigana", "reading",
    ),
    "family_name": ("姓", "苗字", "名字", "familyname", "lastname", "surname"),
    "given_name": ("名", "下の名前", "givenname", "firstname"),
    "family_kana": ("セイ", "せい", "姓カナ", "姓フリガナ", "フリガナ姓", "familykana", "lastnamekana"),
    "given_kana": ("メイ", "めい", "名カナ", "名フリガナ", "フリガナ名", "givenkana", "firstnamekana"),
    "phone": (
        "電話番号", "電話", "tel", "telno", "電話番号1", "自宅電話", "自宅電話番号", "連絡先", "連絡先電話番号",
        "phone", "phonenumber", "telephone", "phone1", "tel1",
    ),
    "phone2": (
        "携帯", "携帯電話", "携帯番号", "携帯電話番号", "電話番号2", "mobile", "mobilephone", "cell",
        "cellphone", "phone2", "tel2",
    ),
    "postal_code": ("郵便番号", "〒", "郵便", "zip", "zipcode", "postalcode", "postcode"),
    "prefecture": ("都道府県", "県", "prefecture", "state"),
    "city": ("市区町村", "市町村", "市区郡", "city"),
    "town": ("町域", "町名", "町域名", "住所", "住所1", "town", "address", "address1"),
    "street": ("番地", "丁目番地", "street"),
    "building": ("建物名", "建物", "住所2", "建物名・部屋番号", "マンション名", "building", "address2"),
    "birthday": ("生年月日", "誕生日", "birthday", "birthdate", "dateofbirth", "dob"),
    "gender": ("性別", "gender", "sex"),
    "email": ("メール", "メールアドレス", "eメール", "email", "mail", "emailaddress", "mailaddress"),
    "notes": ("備考", "メモ", "特記事項", "notes", "note", "memo", "remarks", "comment"),
    "rank": ("ランク", "顧客ランク", "会員ランク", "rank"),
}  # fmt: skip
_TARGET_ALIASES = {"mobile": "phone2", "kana": "name_kana", "zip": "postal_code", "memo": "notes"}

_GENDERS = {
    **dict.fromkeys(("男", "男性", "m", "male", "man", "おとこ"), "male"),
    **dict.fromkeys(("女", "女性", "f", "female", "woman", "おんな"), "female"),
    **dict.fromkeys(("その他", "other", "x"), "other"),
    **dict.fromkeys(("不明", "未回答", "無回答", "unknown"), "unknown"),
}
_ERAS = {"明治": 1867, "大正": 1911, "昭和": 1925, "平成": 1988, "令和": 2018,
         "m": 1867, "t": 1911, "s": 1925, "h": 1988, "r": 2018}  # fmt: skip
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$")
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATE_ERA = re.compile(r"^(明治|大正|昭和|平成|令和|[mtshr])\s*(\d{1,2}|元)[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_HEADER_DROP = re.compile(r"[\s_\-・.:：()\[\]【】「」<>＜＞*※]")

# Max lengths are the API's (CustomerCreate), so a row fails exactly where a form would.
_MAX_LEN: dict[str, int] = {
    name: next(m.max_length for m in info.metadata if isinstance(m, MaxLen))
    for name, info in CustomerCreate.model_fields.items()
    if any(isinstance(m, MaxLen) for m in info.metadata) and name not in ("phones", "custom")
}
_PHONE_MAX = next(m.max_length for m in PhoneIn.model_fields["number"].metadata if isinstance(m, MaxLen))

NOT_IMPORTED = "not imported: batch had errors"
_CUSTOMERS = cast(Table, Customer.__table__)
_PHONES = cast(Table, CustomerPhone.__table__)
#: Columns the importer writes besides ids, flags, custom values and timestamps (``rank`` last).
_CUSTOMER_COLS = ("name", "name_kana", "name_key", "kana_key", "gender", "birthday", "postal_code",
                  "prefecture", "city", "town", "street", "building", "email", "notes", "rank")  # fmt: skip
_COPY_CUSTOMERS = (
    ("id", "int8"), ("tenant_id", "int8"),
    *((c, "date" if c == "birthday" else "text") for c in _CUSTOMER_COLS),
    ("caution", "bool"), ("outbound_excluded", "bool"), ("custom", "jsonb"),
    ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
)  # fmt: skip
_COPY_PHONES = (("tenant_id", "int8"), ("customer_id", "int8"), ("e164", "text"), ("national", "text"),
                ("kind", "text"), ("label", "text"), ("is_primary", "bool"), ("created_at", "timestamptz"))  # fmt: skip


class ImportSetupError(ValueError):
    """The file cannot be imported at all (unreadable, no phone column, bad --map); nothing was written."""


# --- mapping --------------------------------------------------------------------------------


def _header_key(header: str) -> str:
    return _HEADER_DROP.sub("", nfkc(header)).lower()


_ALIAS_INDEX = {_header_key(alias): target for target, aliases in _ALIASES.items() for alias in aliases}


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["電話番号=phone", "会員区分=cf.member_type", "FAX=-"]`` → {source header: target}.

    A target is a field of :data:`FIELDS`, ``cf.<key>`` (custom field) or ``-`` (ignore the column).
    """
    mapping: dict[str, str] = {}
    for item in items:
        source, sep, target = item.rpartition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source:
            raise ImportSetupError(f"--map '{item}': use SOURCE=field (e.g. 電話番号=phone)")
        target = _TARGET_ALIASES.get(target, target)
        if target in ("", "ignore"):
            target = IGNORE
        if target != IGNORE and target not in FIELDS and not target.startswith("cf."):
            raise ImportSetupError(
                f"--map '{item}': unknown field '{target}' (fields: {', '.join(FIELDS)}, cf.<key>, -)"
            )
        mapping[source] = target
    return mapping


@dataclass(frozen=True, slots=True)
class Column:
    """One source column and the field it feeds (``cf.<key>`` for a custom field)."""

    index: int
    header: str
    target: str


def resolve_columns(
    headers: Sequence[str], mapping: dict[str, str], defs: dict[str, CustomFieldDef]
) -> tuple[list[Column], list[str]]:
    """Columns to read and the headers left unused.

    Order of precedence: ``--map``, ``cf.<key>`` headers, built-in aliases, then a header equal to
    a custom field's key or label. A field fed by two columns keeps the first (phones take all).
    """
    custom_by_name: dict[str, str] = {}
    for defn in defs.values():
        if defn.active:
            custom_by_name.setdefault(_header_key(defn.key), defn.key)
            custom_by_name.setdefault(_header_key(defn.label), defn.key)
    by_key = {_header_key(source): target for source, target in mapping.items()}
    unknown_sources = [s for s in mapping if _header_key(s) not in {_header_key(h) for h in headers}]
    if unknown_sources:
        raise ImportSetupError(f"--map names column(s) not in the file: {', '.join(sorted(unknown_sources))}")
    columns: list[Column] = []
    ignored: list[str] = []
    taken: set[str] = set()
    for index, raw_header in enumerate(headers):
        header = raw_header.strip()
        key = _header_key(header)
        target: str | None
        if key in by_key:
            target = by_key[key]
        elif header[:3].lower() in ("cf.", "cf:"):
            target = "cf." + header[3:].strip()
        else:
            target = _ALIAS_INDEX.get(key) or (f"cf.{custom_by_name[key]}" if key in custom_by_name else None)
        if target is None or target == IGNORE:
            if header:
                ignored.append(header)
            continue
        if target.startswith("cf."):
            custom_def = defs.get(target[3:])
            if custom_def is None or not custom_def.active:
                raise ImportSetupError(f"column '{header}': unknown custom field '{target[3:]}'")
        if target in taken and target not in _PHONE_FIELDS:
            ignored.append(header)
            continue
        taken.add(target)
        columns.append(Column(index, header, target))
    if not taken & set(_PHONE_FIELDS):
        raise ImportSetupError(
            "no phone column found: customers are matched by phone number "
            f"(headers: {', '.join(h for h in headers if h)}; map one with --map COLUMN=phone)"
        )
    if not taken & {"name", "family_name", "given_name"}:
        raise ImportSetupError("no name column found (氏名 / 名前 / name, or --map COLUMN=name)")
    return columns, ignored


# --- reading --------------------------------------------------------------------------------

Cell = str | int | float | bool | date | datetime | time | timedelta | None
_ENCODING_ALIASES = {"shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "s-jis": "cp932",
                     "ms932": "cp932", "windows-31j": "cp932", "utf8": "utf-8"}  # fmt: skip


def detect_encoding(path: Path) -> tuple[str, int]:
    """(encoding, approximate line count) of a CSV file: BOM, else UTF-8 if it all decodes, else CP932.

    CP932 (Windows Shift_JIS) rather than ``shift_jis``: it is what Excel writes, with ① ㈱ 髙 etc.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    lines = 0
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", lines
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", lines
    return ("utf-8" if utf8 else "cp932"), lines


@dataclass
class SourceTable:
    """The rows of a sheet or CSV: the header cells, then (row number, cells) with 1-based row numbers."""

    headers: list[str]
    rows: Iterator[tuple[int, Sequence[Cell]]]
    total: int | None
    encoding: str | None
    close: Callable[[], None]


def open_table(path: Path, *, encoding: str | None = None, sheet: str | None = None) -> SourceTable:
    """Open a CSV/TSV or XLSX file; the first non-empty row is the header row."""
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"):
        return _open_xlsx(path, sheet)
    return _open_csv(path, encoding)


def _open_csv(path: Path, encoding: str | None) -> SourceTable:
    if encoding:
        enc = _ENCODING_ALIASES.get(encoding.lower(), encoding)
        try:
            codecs.lookup(enc)
        except LookupError:
            raise ImportSetupError(f"unknown encoding '{encoding}'") from None
        if enc.replace("_", "-").lower() in ("utf-8", "utf8"):
            enc = "utf-8-sig"  # a BOM is never part of the first header
        with path.open("rb") as raw:
            total: int | None = sum(chunk.count(b"\n") for chunk in iter(lambda: raw.read(1 << 20), b""))
    else:
        enc, total = detect_encoding(path)
    fh = path.open("r", encoding=enc, newline="")
    try:
        sample = fh.read(64 * 1024)
    except UnicodeDecodeError as exc:
        fh.close()
        raise ImportSetupError(f"{path.name} is not {enc}: {exc}; pass --encoding") from None
    fh.seek(0)
    first_line = sample.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(fh, delimiter=delimiter)
    numbered = ((n, row) for n, row in enumerate(reader, start=1) if any(c.strip() for c in row))
    try:
        first = next(numbered, None)
    except UnicodeDecodeError as exc:
        fh.close()
        raise ImportSetupError(f"{path.name} is not {enc}: {exc}; pass --encoding") from None
    if first is None:
        fh.close()
        raise ImportSetupError(f"{path.name} is empty")
    return SourceTable([str(h) for h in first[1]], _guard_decoding(numbered, path, enc), total, enc, fh.close)


def _guard_decoding(
    rows: Iterator[tuple[int, list[str]]], path: Path, enc: str
) -> Iterator[tuple[int, Sequence[Cell]]]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:  # only with an explicit --encoding: detection read the whole file
        raise ImportSetupError(f"{path.name} is not {enc}: {exc}; pass another --encoding") from None


def _open_xlsx(path: Path, sheet: str | None) -> SourceTable:
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except CalamineError as exc:
        raise ImportSetupError(f"cannot read {path.name}: {exc}") from None
    names: list[str] = book.sheet_names
    if sheet is not None and sheet not in names:
        book.close()
        raise ImportSetupError(f"no sheet '{sheet}' in {path.name} (sheets: {', '.join(names)})")
    ws = book.get_sheet_by_name(sheet) if sheet else book.get_sheet_by_index(0)
    start_row = ws.start[0] if ws.start else 0
    numbered = (
        (start_row + i + 1, row)
        for i, row in enumerate(ws.iter_rows())
        if any(c is not None and str(c).strip() for c in row)
    )
    first = next(numbered, None)
    if first is None:
        book.close()
        raise ImportSetupError(f"sheet '{ws.name}' of {path.name} is empty")
    return SourceTable([_cell_text(h) for h in first[1]], numbered, ws.height, None, book.close)


def _cell_text(value: Cell) -> str:
    """A cell as text: Excel stores ``0312345678`` typed as a number as 312345678.0."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and not (value.hour or value.minute or value.second):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --- parsing (no database) -----------------------------------------------------------------


# Parsed rows travel back from worker processes: named tuples and a plain dataclass unpickle in C,
# 2.5x faster than slotted dataclasses (whose __setstate__ is Python), and the main process is the
# bottleneck once parsing runs in parallel.


class RowError(NamedTuple):
    """One problem of one row: ``row`` is the spreadsheet row number (the header is row 1)."""

    row: int
    column: str
    field: str
    value: str
    message: str


class PhoneCell(NamedTuple):
    """A valid number of a row and where it came from."""

    e164: str
    national: str
    kind: str
    label: str | None
    column: str
    raw: str


@dataclass
class ParsedRow:
    row: int
    fields: dict[str, Any]
    custom: dict[str, Any]
    phones: list[PhoneCell]
    errors: list[RowError]


@functools.lru_cache(maxsize=65536)
def _phone(raw: str, region: str) -> Phone | str:
    """parse_phone with a cache (lists repeat numbers); the error message instead of raising."""
    try:
        return parse_phone(raw, region)
    except InvalidPhone as exc:
        return str(exc)


def parse_date(value: Cell) -> date | None:
    """A birthday from a date cell or ``1980-01-02``, ``1980/1/2``, ``1980年1月2日``, ``19800102``,
    ``昭和55年1月2日`` / ``S55.1.2``; None when it is none of these."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text_ = nfkc(str(value)).strip().lower()
    m = _DATE.match(text_) or _DATE_COMPACT.match(text_)
    try:
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
        m = _DATE_ERA.match(text_)
        if m:
            year = 1 if m[2] == "元" else int(m[2])
            return date(_ERAS[m[1]] + year, int(m[3]), int(m[4]))
    except ValueError:
        return None
    return None


@dataclass
class RowParser:
    """Turns the cells of one row into normalized fields, phones and custom values (picklable)."""

    columns: list[Column]
    defs: dict[str, CustomFieldDef]
    region: str = "JP"

    def parse(self, rowno: int, cells: Sequence[Cell]) -> ParsedRow:
        errors: list[RowError] = []
        data: dict[str, Any] = {}
        parts: dict[str, str] = {}
        custom_raw: dict[str, Cell] = {}
        phones: list[PhoneCell] = []
        source: dict[str, Column] = {}  # field → column, to put a column name on each error
        width = len(cells)
        for col in self.columns:
            value = cells[col.index] if col.index < width else None
            if value is None:
                continue
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
            target = col.target
            source[target] = col
            if target.startswith("cf."):
                custom_raw[target[3:]] = value
                continue
            if target == "birthday":
                birthday = parse_date(value)
                if birthday is None:
                    errors.append(
                        RowError(
                            rowno,
                            col.header,
                            target,
                            _cell_text(value),
                            "not a date (YYYY-MM-DD, YYYY/MM/DD, 1980年1月2日, 昭和55年1月2日)",
                        )
                    )
                else:
                    data["birthday"] = birthday
                continue
            text_ = value if isinstance(value, str) else _cell_text(value)
            if target in _PHONE_FIELDS:
                self._add_phone(rowno, col, text_, phones, errors)
                continue
            if target == "postal_code" and not isinstance(value, str) and len(text_) < 7:
                text_ = text_.zfill(7)  # Excel drops the leading 0 of 060-0000 typed as a number
            if target == "gender":
                gender = _GENDERS.get(nfkc(text_).lower())
                if gender is None:
                    errors.append(RowError(rowno, col.header, target, text_, "gender must be 男/女/男性/女性/M/F"))
                else:
                    data["gender"] = gender
            elif target in ("family_name", "given_name", "family_kana", "given_kana"):
                parts[target] = text_
            else:
                data[target] = text_
        for whole, (family, given) in _NAME_PARTS.items():
            if whole not in data and (family in parts or given in parts):
                data[whole] = " ".join(p for p in (parts.get(family), parts.get(given)) if p)
                source.setdefault(whole, source.get(family) or source[given])
        for key, limit in _MAX_LEN.items():
            value_ = data.get(key)
            if isinstance(value_, str) and len(value_) > limit:
                errors.append(
                    RowError(rowno, source[key].header, key, value_[:40] + "…", f"at most {limit} characters")
                )
                del data[key]
        problems: list[dict[str, Any]] = []
        fields = normalized_fields(data, problems)
        custom, custom_problems = custom_fields.validate_values(self.defs, custom_raw, check_required=False)
        for problem in problems + custom_problems:
            name = problem["field"]
            key = "cf." + name[7:] if name.startswith("custom.") else name
            col_ = source.get(key)
            raw = custom_raw.get(key[3:]) if key.startswith("cf.") else data.get(key)
            errors.append(RowError(rowno, col_.header if col_ else "", key, _cell_text(raw), problem["message"]))
        return ParsedRow(rowno, fields, custom, phones, errors)

    def _add_phone(self, rowno: int, col: Column, raw: str, phones: list[PhoneCell], errors: list[RowError]) -> None:
        if len(raw) > _PHONE_MAX:
            errors.append(RowError(rowno, col.header, col.target, raw[:50] + "…", "not a phone number (too long)"))
            return
        parsed = _phone(raw, self.region)
        if isinstance(parsed, str):
            errors.append(RowError(rowno, col.header, col.target, raw, parsed))
        elif all(p.e164 != parsed.e164 for p in phones):  # same number in 電話 and 携帯: keep one
            phones.append(
                PhoneCell(parsed.e164, parsed.national, parsed.kind, _PHONE_LABELS[col.target], col.header, raw)
            )

    def parse_many(self, rows: Iterable[tuple[int, Sequence[Cell]]]) -> list[ParsedRow]:
        out = [self.parse(n, cells) for n, cells in rows]
        header = next(c.header for c in self.columns if c.target in _PHONE_FIELDS)
        for row in out:
            if not row.phones and not row.errors:  # rows are matched by number: none, no customer
                row.errors.append(RowError(row.row, header, "phone", "", "a phone number is required"))
        return out


# Parsing in worker processes: phonenumbers costs ~100-130 µs per number on a small server, far
# more than the database work per row, and it is pure Python (GIL-bound), so it scales by process.
#: Files with fewer rows than this are parsed in-process (starting workers costs about a second).
POOL_MIN_ROWS = 20_000
_worker_parser: RowParser | None = None


def _init_worker(parser: RowParser) -> None:
    global _worker_parser
    _worker_parser = parser


def _parse_in_worker(chunk: list[tuple[int, Sequence[Cell]]]) -> list[ParsedRow]:
    assert _worker_parser is not None, "worker not initialized"
    return _worker_parser.parse_many(chunk)


def _ping() -> None:
    return None


@contextmanager
def _parse_stage(
    parser: RowParser, workers: int
) -> Iterator[Callable[[Iterator[list[tuple[int, Sequence[Cell]]]]], Iterator[list[ParsedRow]]]]:
    """A function from chunks to parsed batches, in file order.

    With ``workers`` ≥ 1 the batches are parsed ahead in that many processes while the caller
    writes (at most two batches per worker in flight: memory stays bounded on any file size).
    Enter it before starting any thread: a single-threaded process forks its workers at once;
    otherwise they come from a forkserver (forking a threaded process can deadlock; the
    forkserver costs about a second to import the code).
    """
    if workers < 1:
        yield lambda chunks: (parser.parse_many(chunk) for chunk in chunks)
        return
    ctx: BaseContext
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("fork")
    else:
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload([__name__])
        ctx = server
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(parser,)) as pool:
        pool.submit(_ping).result()  # start the workers now, before the caller starts threads

        def parse(chunks: Iterator[list[tuple[int, Sequence[Cell]]]]) -> Iterator[list[ParsedRow]]:
            pending: deque[Future[list[ParsedRow]]] = deque()
            for chunk in chunks:
                pending.append(pool.submit(_parse_in_worker, chunk))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        yield parse


# --- planning and writing (one transaction per batch) ---------------------------------------


@dataclass(slots=True)
class _Plan:
    """What one customer becomes after this batch: new (``customer_id`` None) or an update."""

    first_row: int
    customer_id: int | None
    fields: dict[str, Any]
    custom: dict[str, Any]
    phones: list[PhoneCell]

    def merge(self, row: ParsedRow) -> None:
        """Non-empty values of the later row win; custom values merge; new numbers are added."""
        self.fields.update(row.fields)
        self.custom.update(row.custom)
        have = {p.e164 for p in self.phones}
        self.phones.extend(p for p in row.phones if p.e164 not in have)


@dataclass
class ImportReport:
    """What an import did. ``total_rows`` = inserted + updated + merged + skipped + failed + not imported."""

    file: str
    tenant: str
    encoding: str | None = None
    workers: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    total_rows: int = 0
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    skipped: int = 0
    failed_rows: int = 0
    not_imported: int = 0
    batches_committed: int = 0
    batches_rejected: int = 0
    seconds: float = 0.0
    errors_path: str | None = None
    first_errors: list[RowError] = field(default_factory=list)
    #: Seconds spent reading the file, parsing/validating rows, and in the database (plan + write).
    phases: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "parse": 0.0, "database": 0.0})

    @property
    def rows_per_s(self) -> float:
        return self.total_rows / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "tenant": self.tenant,
            "encoding": self.encoding,
            "workers": self.workers,
            "columns": self.columns,
            "ignored_columns": self.ignored_columns,
            "total_rows": self.total_rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "merged": self.merged,
            "skipped": self.skipped,
            "failed_rows": self.failed_rows,
            "not_imported": self.not_imported,
            "batches_committed": self.batches_committed,
            "batches_rejected": self.batches_rejected,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows_per_s, 1),
            "errors_path": self.errors_path,
            "phases_s": {k: round(v, 3) for k, v in self.phases.items()},
            "first_errors": [e._asdict() for e in self.first_errors],
        }


@dataclass
class _BatchResult:
    errors: list[RowError]
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    skipped: int = 0
    new_ids: list[int] = field(default_factory=list)


class _ErrorReport:
    """The per-row error CSV, opened at the first error (UTF-8 with BOM so Excel reads the kanji)."""

    HEADER = ("row", "column", "field", "value", "message")

    def __init__(self, path: Path, *, always: bool) -> None:
        self.path = path
        self.count = 0
        self._fh: io.TextIOWrapper | None = None
        self._writer: Any = None
        if always:
            self._open()
        elif path.exists():
            path.unlink()  # a report of an earlier run must not be mistaken for this one's

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(self.HEADER)

    def write(self, errors: Iterable[RowError]) -> None:
        for e in errors:
            if self._writer is None:
                self._open()
            self._writer.writerow((e.row, e.column, e.field, e.value, e.message))
            self.count += 1

    def close(self) -> str | None:
        if self._fh is None:
            return None
        self._fh.close()
        return str(self.path)


class _Importer:
    """Plans and writes batches for one tenant; remembers the customers this import created."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        tenant_id: int,
        on_duplicate: str,
        defs: dict[str, CustomFieldDef],
        columns: list[Column],
        source: str,
    ) -> None:
        self.factory = factory
        self.tenant_id = tenant_id
        self.on_duplicate = on_duplicate
        self.defs = defs
        self.source = source
        self.created: set[int] = set()  # customers inserted by this import: a later row merges into them
        self.column_of = {c.target: c.header for c in columns}
        self.batch_no = 0

    def run_batch(self, rows: list[ParsedRow]) -> _BatchResult:
        """Plan and write one batch in one transaction; a batch with any error writes nothing."""
        self.batch_no += 1
        for attempt in (1, 2):
            session = self.factory()
            try:
                result, new, updates = self._plan(session, rows)
                if result.errors:
                    session.rollback()
                    return result
                result.new_ids = self._write(session, new, updates)
                publish_on_commit(
                    session,
                    Event(
                        "import.completed",
                        self.tenant_id,
                        {
                            "source": self.source,
                            "batch": self.batch_no,
                            "rows": [rows[0].row, rows[-1].row],
                            "inserted": result.inserted,
                            "updated": result.updated,
                            "merged": result.merged,
                            "skipped": result.skipped,
                            "customer_ids": result.new_ids + [p.customer_id for p in updates if p.customer_id],
                        },
                    ),
                )
                session.commit()
                self.created.update(result.new_ids)
                return result
            except (IntegrityError, psycopg.IntegrityError) as exc:
                # Someone else took a number between our lookup and our insert: look again once.
                session.rollback()
                if attempt == 2:
                    return _BatchResult(self._whole_batch(rows, f"database refused the batch: {_first_line(exc)}"))
            except (DBAPIError, psycopg.Error) as exc:
                session.rollback()
                return _BatchResult(self._whole_batch(rows, f"database refused the batch: {_first_line(exc)}"))
            finally:
                session.close()
        raise AssertionError("unreachable")

    def _whole_batch(self, rows: list[ParsedRow], message: str) -> list[RowError]:
        return [RowError(r.row, "", "", "", message) for r in rows]

    def _plan(self, session: Session, rows: list[ParsedRow]) -> tuple[_BatchResult, list[_Plan], list[_Plan]]:
        result = _BatchResult([e for r in rows for e in r.errors])
        good = [r for r in rows if not r.errors]
        owners = self._owners(session, [p.e164 for r in good for p in r.phones])
        by_number: dict[str, _Plan] = {}  # numbers seen in this batch → the plan that holds them
        by_customer: dict[int, _Plan] = {}
        new: list[_Plan] = []
        for row in good:
            targets: dict[int, _Plan | int] = {}
            for p in row.phones:
                plan = by_number.get(p.e164)
                if plan is not None:
                    targets[id(plan)] = plan
                elif (owner := owners.get(p.e164)) is not None:
                    existing = by_customer.get(owner)
                    targets[id(existing) if existing else -owner] = existing or owner
            if len(targets) > 1:
                result.errors.append(self._conflict(row, owners, by_number))
                continue
            if not targets:
                plan = _Plan(row.row, None, dict(row.fields), dict(row.custom), list(row.phones))
                new.append(plan)
                result.inserted += 1
            else:
                target = next(iter(targets.values()))
                if isinstance(target, _Plan):
                    target.merge(row)
                    if target.customer_id is None or target.customer_id in self.created:
                        result.merged += 1
                    else:
                        result.updated += 1
                    plan = target
                elif target in self.created:  # an earlier batch of this file created it
                    plan = by_customer[target] = _Plan(row.row, target, {}, {}, [])
                    plan.merge(row)
                    result.merged += 1
                elif self.on_duplicate == "skip":
                    result.skipped += 1
                    continue
                elif self.on_duplicate == "error":
                    taken = next(p for p in row.phones if owners.get(p.e164) == target)
                    result.errors.append(
                        RowError(
                            row.row,
                            taken.column,
                            "phone",
                            taken.raw,
                            f"{taken.national} already belongs to customer {target}",
                        )
                    )
                    continue
                else:
                    plan = by_customer[target] = _Plan(row.row, target, {}, {}, [])
                    plan.merge(row)
                    result.updated += 1
            for p in row.phones:
                by_number[p.e164] = plan
        for plan in new:
            self._check_new(plan, result.errors)
        updates = list(by_customer.values())
        self._load_current(session, updates, owners)
        return result, new, updates

    def _conflict(self, row: ParsedRow, owners: dict[str, int], by_number: dict[str, _Plan]) -> RowError:
        who = []
        for p in row.phones:
            plan = by_number.get(p.e164)
            owner = plan.customer_id if plan is not None else owners.get(p.e164)
            if plan is not None and owner is None:
                who.append(f"{p.national} → row {plan.first_row}")
            elif owner is not None:
                who.append(f"{p.national} → customer {owner}")
        return RowError(
            row.row,
            " / ".join(p.column for p in row.phones),
            "phone",
            " / ".join(p.raw for p in row.phones),
            "the numbers belong to different customers: " + ", ".join(who),
        )

    def _check_new(self, plan: _Plan, errors: list[RowError]) -> None:
        if "name" not in plan.fields:
            errors.append(
                RowError(
                    plan.first_row, self.column_of.get("name", ""), "name", "", "name is required for a new customer"
                )
            )
        _, problems = custom_fields.validate_values(self.defs, {}, current=plan.custom, check_required=True)
        for problem in problems:
            key = "cf." + problem["field"][7:]
            errors.append(RowError(plan.first_row, self.column_of.get(key, ""), key, "", problem["message"]))

    def _owners(self, session: Session, e164s: list[str]) -> dict[str, int]:
        """Existing owners of these numbers (one query per batch)."""
        owners: dict[str, int] = {}
        t = _PHONES
        for condition in _among(session, t.c.e164, list(dict.fromkeys(e164s)), String()):
            stmt = select(t.c.e164, t.c.customer_id).where(t.c.tenant_id == self.tenant_id, condition)
            owners.update({e: c for e, c in session.execute(stmt)})
        return owners

    def _load_current(self, session: Session, updates: list[_Plan], owners: dict[str, int]) -> None:
        """Overlay incoming values on the stored ones, so every UPDATE has the same shape (executemany)."""
        if not updates:
            return
        t = _CUSTOMERS
        cols = [t.c[name] for name in _CUSTOMER_COLS]
        current: dict[int, Any] = {}
        ids = [p.customer_id for p in updates if p.customer_id is not None]
        for condition in _among(session, t.c.id, ids, BigInteger()):
            stmt = select(t.c.id, t.c.custom, *cols).where(t.c.tenant_id == self.tenant_id, condition)
            current.update({row.id: row for row in session.execute(stmt)})
        for plan in updates:
            assert plan.customer_id is not None
            row = current[plan.customer_id]
            stored = {name: getattr(row, name) for name in _CUSTOMER_COLS}
            stored.update(plan.fields)
            plan.fields = stored
            plan.custom = {**(row.custom or {}), **plan.custom}
            plan.phones = [p for p in plan.phones if p.e164 not in owners]

    def _write(self, session: Session, new: list[_Plan], updates: list[_Plan]) -> list[int]:
        """Insert the new customers and all new numbers, update the existing customers; return new ids."""
        now = utcnow()
        conn = session.connection()
        postgres = conn.dialect.name == "postgresql"
        cols = _CUSTOMER_COLS
        values = [[plan.fields.get(c) for c in cols] for plan in new]
        for row in values:
            row[-1] = row[-1] or "normal"  # rank
        ids: list[int] = []
        if postgres and new:
            allocate = text("SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, :n)")
            ids = list(conn.execute(allocate, {"n": len(new)}).scalars())
            rows = (
                (cid, self.tenant_id, *row, False, False, plan.custom, now, now)
                for cid, row, plan in zip(ids, values, new, strict=True)
            )
            _copy(session, "customers", _COPY_CUSTOMERS, rows)
        elif new:
            stmt = insert(_CUSTOMERS).returning(_CUSTOMERS.c.id, sort_by_parameter_order=True)
            extra = {"tenant_id": self.tenant_id, "caution": False, "outbound_excluded": False}
            params = [
                {**dict(zip(cols, row, strict=True)), **extra, "custom": plan.custom, "created_at": now,
                 "updated_at": now}
                for row, plan in zip(values, new, strict=True)
            ]  # fmt: skip
            ids = list(conn.execute(stmt, params).scalars())
        for cid, plan in zip(ids, new, strict=True):
            plan.customer_id = cid
        if updates:
            stmt_u = (
                update(_CUSTOMERS)
                .where(_CUSTOMERS.c.id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in (*cols, "custom", "updated_at")})
            )
            conn.execute(stmt_u, [
                {"b_id": p.customer_id, "b_custom": p.custom, "b_updated_at": now,
                 **{f"b_{c}": p.fields.get(c) for c in cols}}
                for p in updates
            ])  # fmt: skip
        # The first number of a new customer is its primary one; added numbers never take that over.
        phone_rows = [
            (self.tenant_id, plan.customer_id, p.e164, p.national, p.kind, p.label, primary and i == 0, now)
            for plans, primary in ((new, True), (updates, False))
            for plan in plans
            for i, p in enumerate(plan.phones)
        ]
        if postgres:
            _copy(session, "customer_phones", _COPY_PHONES, phone_rows)
        elif phone_rows:
            names = [name for name, _ in _COPY_PHONES]
            conn.execute(insert(_PHONES), [dict(zip(names, r, strict=True)) for r in phone_rows])
        return ids


def _among(session: Session, column: Any, values: list[Any], item_type: Any) -> Iterator[ColumnElement[bool]]:
    """``column IN values`` as few conditions as possible.

    On PostgreSQL one array parameter (``= ANY(:values)``): an IN list of 2,000 bound values
    cost 50 ms per batch to compile and plan. Elsewhere IN lists of 5,000 (SQLite's limit is 32,766).
    """
    if session.connection().dialect.name == "postgresql":
        yield column == any_(bindparam("values", values, type_=postgresql.ARRAY(item_type)))
        return
    for i in range(0, len(values), 5000):
        yield column.in_(values[i : i + 5000])


def _copy(session: Session, table: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table FROM STDIN`` on the session's own connection (so inside its transaction).

    ``columns`` are (name, PostgreSQL type): with the types given, psycopg picks each column's
    dumper once instead of per value (-25% of the client's time per row).
    """
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    names = ", ".join(name for name, _ in columns)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]


# --- entry points --------------------------------------------------------------------------


def import_customers(
    factory: sessionmaker[Session],
    path: Path,
    *,
    tenant_code: str,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    on_duplicate: str = "update",
    batch_size: int = 1000,
    errors_path: Path | None = None,
    progress: bool = False,
    region: str = "JP",
    workers: int | None = None,
) -> ImportReport:
    """Import customers from ``path`` through ``factory`` (one transaction per batch).

    Raises :class:`ImportSetupError` (nothing written) when the file or options are unusable;
    row problems go to the report and to the error CSV. ``workers``: processes that parse rows
    while this one writes (0: parse in-process; default: CPUs - 1 for files of :data:`POOL_MIN_ROWS`
    rows or more, else 0). Worker processes start by ``forkserver``: a calling script needs the
    usual ``if __name__ == "__main__":`` guard.
    """
    if on_duplicate not in ON_DUPLICATE:
        raise ImportSetupError(f"on_duplicate must be one of {', '.join(ON_DUPLICATE)}")
    if batch_size < 1:
        raise ImportSetupError("batch_size must be at least 1")
    started = clock.perf_counter()
    path = Path(path)
    with factory() as session:
        tenant = tenants.get_or_create(
            session, tenant_code, "コールセンター" if tenant_code == "center" else tenant_code
        )
        defs = CustomFieldRepository(session, tenant.id).by_key()
        for defn in defs.values():
            session.expunge(defn)  # plain values from here on; no lazy loads outside the session
        session.commit()
    table = open_table(path, encoding=encoding, sheet=sheet)
    report = ImportReport(file=str(path), tenant=tenant_code, encoding=table.encoding)
    try:
        columns, report.ignored_columns = resolve_columns(table.headers, mapping or {}, defs)
        seen = [c.header for c in columns]
        report.columns = {  # a header used twice (two 電話 columns) is told apart by its position
            (c.header if seen.count(c.header) == 1 else f"{c.header} (column {c.index + 1})"): c.target for c in columns
        }
        parser = RowParser(columns, defs, region)
        importer = _Importer(factory, tenant.id, on_duplicate, defs, columns, path.name)
        errors_file = _ErrorReport(
            errors_path or path.with_name(f"{path.stem}.errors.csv"), always=errors_path is not None
        )
        if workers is None:  # one per CPU measured best on 2 cores, with the main process and PostgreSQL
            workers = (os.cpu_count() or 1) if (table.total or 0) >= POOL_MIN_ROWS else 0
        report.workers = max(workers, 0)
        phases = report.phases
        chunks = _timed(_chunks(table.rows, batch_size), phases, "read")
        with _parse_stage(parser, workers) as parse, _progress_bar(progress, table.total, path.name) as advance:
            for parsed in _timed(parse(chunks), phases, "parse"):
                started_db = clock.perf_counter()
                result = importer.run_batch(parsed)
                _account(report, parsed, result, errors_file)
                advance(len(parsed))
                phases["database"] += clock.perf_counter() - started_db
        phases["parse"] -= phases["read"]  # reading happens inside the parse stage's next()
        report.errors_path = errors_file.close()
    finally:
        table.close()
    report.seconds = clock.perf_counter() - started
    return report


def _account(report: ImportReport, parsed: list[ParsedRow], result: _BatchResult, errors: _ErrorReport) -> None:
    report.total_rows += len(parsed)
    if result.errors:
        bad = {e.row for e in result.errors}
        lost = [RowError(r.row, "", "", "", NOT_IMPORTED) for r in parsed if r.row not in bad]
        report.failed_rows += len(bad)
        report.not_imported += len(lost)
        report.batches_rejected += 1
        batch_errors = sorted(result.errors + lost, key=lambda e: e.row)
        errors.write(batch_errors)
        room = 20 - len(report.first_errors)
        if room > 0:
            report.first_errors.extend([e for e in batch_errors if e.message != NOT_IMPORTED][:room])
    else:
        report.inserted += result.inserted
        report.updated += result.updated
        report.merged += result.merged
        report.skipped += result.skipped
        report.batches_committed += 1


def _timed(items: Iterator[Any], phases: dict[str, float], phase: str) -> Iterator[Any]:
    """``items``, adding the time spent producing each one to ``phases[phase]``."""
    while True:
        started = clock.perf_counter()
        item = next(items, None)
        phases[phase] += clock.perf_counter() - started
        if item is None:
            return
        yield item


def _chunks(rows: Iterator[tuple[int, Sequence[Cell]]], size: int) -> Iterator[list[tuple[int, Sequence[Cell]]]]:
    chunk: list[tuple[int, Sequence[Cell]]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _progress_bar:  # noqa: N801 - used like a function
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int | None, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._progress: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._progress.start()
        task = self._progress.add_task(self.label, total=max((self.total or 1) - 1, 1), rate="-")
        started = clock.perf_counter()
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(clock.perf_counter() - started, 1e-9)
            self._progress.update(task, advance=n, rate=f"{rate:,.0f}")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def import_file(engine: Engine, path: Path, **options: Any) -> ImportReport:
    """:func:`import_customers` on ``engine`` (the CLI entry point); see it for the options."""
    return import_customers(make_session_factory(engine), path, **options)
