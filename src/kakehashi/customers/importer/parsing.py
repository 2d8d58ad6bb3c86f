"""Cells of one row → normalized fields, phones and custom values (no database)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from annotated_types import MaxLen

from kakehashi.customers import custom_fields
from kakehashi.customers.importer.copytext import customer_text
from kakehashi.customers.importer.mapping import NAME_PARTS, PHONE_FIELDS, PHONE_LABELS, Column
from kakehashi.customers.importer.reading import Cell, cell_text
from kakehashi.customers.models import CustomFieldDef
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.customers.service import normalized_fields
from kakehashi.kit.phone import InvalidPhone, Phone, parse_phone
from kakehashi.kit.text import nfkc
from kakehashi.postal.address import split_address

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

# Max lengths are the API's (CustomerCreate), so a row fails exactly where a form would.
_MAX_LEN: dict[str, int] = {
    name: next(m.max_length for m in info.metadata if isinstance(m, MaxLen))
    for name, info in CustomerCreate.model_fields.items()
    if any(isinstance(m, MaxLen) for m in info.metadata) and name not in ("phones", "custom")
}
_PHONE_MAX = next(m.max_length for m in PhoneIn.model_fields["number"].metadata if isinstance(m, MaxLen))

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
    #: The row as a new customer's COPY text (:func:`.copytext.customer_text`), when asked for and valid.
    copy_text: str | None = None
    #: Problems that do not stop the row (e.g. an address that does not match its postal code).
    warnings: list[RowError] = field(default_factory=list)


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
    #: Also encode each valid row as COPY text (PostgreSQL), here where it is parsed: see :mod:`.copytext`.
    encode_copy: bool = False

    def parse(self, rowno: int, cells: Sequence[Cell]) -> ParsedRow:
        errors: list[RowError] = []
        data: dict[str, Any] = {}
        parts: dict[str, str] = {}
        custom_raw: dict[str, Cell] = {}
        phones: list[PhoneCell] = []
        warnings: list[RowError] = []
        address: tuple[Column, str] | None = None
        source: dict[str, Column] = {}  # field → column, to put a column name on each error
        width = len(cells)
        for col in self.columns:
            value = cells[col.index] if col.index < width else None
            if value is None:
                continue
            target = col.target
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
                if "\x00" in value:  # PostgreSQL cannot store it (and would refuse the whole batch)
                    shown = value.replace("\x00", "\\0")
                    errors.append(RowError(rowno, col.header, target, shown[:50], "contains a NUL character (\\0)"))
                    continue
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
                            cell_text(value),
                            "not a date (YYYY-MM-DD, YYYY/MM/DD, 1980年1月2日, 昭和55年1月2日)",
                        )
                    )
                else:
                    data["birthday"] = birthday
                continue
            text_ = value if isinstance(value, str) else cell_text(value)
            if target in PHONE_FIELDS:
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
            elif target == "address":
                address = (col, text_)
            else:
                data[target] = text_
        for whole, (family, given) in NAME_PARTS.items():
            if whole not in data and (family in parts or given in parts):
                data[whole] = " ".join(p for p in (parts.get(family), parts.get(given)) if p)
                source.setdefault(whole, source.get(family) or source[given])
        if address is not None:
            self._split_address(rowno, *address, data, source, warnings)
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
            errors.append(RowError(rowno, col_.header if col_ else "", key, cell_text(raw), problem["message"]))
        copy_text = customer_text(fields, custom) if self.encode_copy and not errors else None
        return ParsedRow(rowno, fields, custom, phones, errors, copy_text, warnings)

    def _split_address(
        self,
        rowno: int,
        col: Column,
        text_: str,
        data: dict[str, Any],
        source: dict[str, Column],
        warnings: list[RowError],
    ) -> None:
        """A one-column address (住所) → prefecture … building; the row's own columns of these win."""
        postal = data.get("postal_code")
        split = split_address(
            text_, postal_code=str(postal) if postal else None, prefecture=data.get("prefecture"), city=data.get("city")
        )
        for key in ("prefecture", "city", "town", "street", "building"):
            value = getattr(split, key)
            if not value:
                continue
            if key not in data:
                data[key] = value
                source[key] = col
            elif key == "building":  # 住所 "…3-4-5 梅田ビル" and 建物名 "501号室"
                data[key] = f"{value} {data[key]}"
        warnings.extend(RowError(rowno, col.header, "address", text_, message) for message in split.warnings)

    def _add_phone(self, rowno: int, col: Column, raw: str, phones: list[PhoneCell], errors: list[RowError]) -> None:
        if len(raw) > _PHONE_MAX:
            errors.append(RowError(rowno, col.header, col.target, raw[:50] + "…", "not a phone number (too long)"))
            return
        parsed = _phone(raw, self.region)
        if isinstance(parsed, str):
            errors.append(RowError(rowno, col.header, col.target, raw, parsed))
        elif all(p.e164 != parsed.e164 for p in phones):  # same number in 電話 and 携帯: keep one
            phones.append(
                PhoneCell(parsed.e164, parsed.national, parsed.kind, PHONE_LABELS[col.target], col.header, raw)
            )

    def parse_many(self, rows: Iterable[tuple[int, Sequence[Cell]]]) -> list[ParsedRow]:
        out = [self.parse(n, cells) for n, cells in rows]
        header = next(c.header for c in self.columns if c.target in PHONE_FIELDS)
        for row in out:
            if not row.phones and not row.errors:  # rows are matched by number: none, no customer
                row.errors.append(RowError(row.row, header, "phone", "", "a phone number is required"))
        return out
