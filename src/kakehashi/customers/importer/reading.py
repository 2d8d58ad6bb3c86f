"""Reading CSV (encoding detection) and spreadsheets into header + numbered rows."""

from __future__ import annotations

import codecs
import csv
import html
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from kakehashi.customers.importer.mapping import ImportSetupError

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


@dataclass(frozen=True)
class XlsxLimits:
    """What a spreadsheet may hold, checked before it is loaded (a 1 MB zip can unpack to millions of rows)."""

    max_rows: int
    max_cells: int
    max_unpacked_bytes: int

    @classmethod
    def from_settings(cls, settings: Any = None) -> XlsxLimits:
        from kakehashi.kit.config import get_settings

        s = settings or get_settings()
        return cls(s.import_max_rows, s.import_max_cells, s.import_max_unpacked_bytes)


SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")


def open_table(
    path: Path, *, encoding: str | None = None, sheet: str | None = None, limits: XlsxLimits | None = None
) -> SourceTable:
    """Open a CSV/TSV or XLSX file; the first non-empty row is the header row.

    A spreadsheet is first checked against ``limits`` (default: the settings' ``import_max_*``).
    """
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        check_spreadsheet(path, sheet, limits or XlsxLimits.from_settings())
        return _open_xlsx(path, sheet)
    return _open_csv(path, encoding)


# A row or cell start tag, with or without a namespace prefix (``<row …>``, ``<x:c>``): counted with bytes.count,
# which allocates nothing (a regex's list of matches for millions of cells would).
_ROW_TAGS = tuple(f"{lead}row{end}".encode() for lead in ("<", ":") for end in (" ", ">", "\n", "\r", "\t"))
_CELL_TAGS = tuple(f"{lead}c{end}".encode() for lead in ("<", ":") for end in (" ", ">", "/", "\n", "\r", "\t"))
_MB = 1024 * 1024


def check_spreadsheet(path: Path, sheet: str | None, limits: XlsxLimits) -> None:
    """Refuse (:class:`ImportSetupError`) a spreadsheet over ``limits``, reading only its zip directory and
    streaming the chosen sheet's XML once to count rows and cells (bounded memory, stops at the cap)."""
    fix = "save it as CSV, split it, or raise KAKEHASHI_IMPORT_MAX_{}"
    if not zipfile.is_zipfile(path):  # .xls (binary): its size is what it loads
        size = path.stat().st_size
        if size > limits.max_unpacked_bytes:
            raise ImportSetupError(
                f"{path.name} is {size / _MB:.0f} MB, more than the {limits.max_unpacked_bytes / _MB:.0f} MB "
                f"allowed: {fix.format('UNPACKED_BYTES')}"
            )
        return
    try:
        with zipfile.ZipFile(path) as book:
            unpacked = sum(info.file_size for info in book.infolist())
            if unpacked > limits.max_unpacked_bytes:
                raise ImportSetupError(
                    f"{path.name} unpacks to {unpacked / _MB:,.0f} MB, more than the "
                    f"{limits.max_unpacked_bytes / _MB:,.0f} MB allowed: {fix.format('UNPACKED_BYTES')}"
                )
            member = _sheet_member(book, sheet)
            if member is None:  # not an XLSX layout (.ods, .xlsb): the size cap above is the check
                return
            rows = cells = 0
            where = f"sheet '{sheet}'" if sheet else "its first sheet"
            tail = b""
            with book.open(member) as xml:
                while chunk := xml.read(1 << 20):
                    data = tail + chunk
                    cut = data.rfind(b"<")  # a tag cut by the chunk boundary is counted with the next chunk
                    data, tail = (data[:cut], data[cut:]) if cut >= 0 else (data, b"")
                    rows += sum(data.count(tag) for tag in _ROW_TAGS)
                    cells += sum(data.count(tag) for tag in _CELL_TAGS)
                    if rows > limits.max_rows:
                        raise ImportSetupError(
                            f"{path.name} has more than {limits.max_rows:,} rows in {where}: {fix.format('ROWS')}"
                        )
                    if cells > limits.max_cells:
                        raise ImportSetupError(
                            f"{path.name} has more than {limits.max_cells:,} cells in {where}: {fix.format('CELLS')}"
                        )
    except (zipfile.BadZipFile, zlib.error, KeyError, EOFError) as exc:
        raise ImportSetupError(f"cannot read {path.name}: {exc}") from None


_TAG_ATTRS = re.compile(r'([\w.:-]+)\s*=\s*"([^"]*)"')


def _tags(xml: str, name: str) -> list[dict[str, str]]:
    """The attributes of every ``<name …>`` (any namespace prefix) in a small XML part, unescaped; no XML
    parser (no entity expansion, nothing to configure safely)."""
    found = re.finditer(rf"<(?:[A-Za-z_][\w.-]*:)?{name}\b([^>]*)>", xml)
    return [{key.split(":")[-1]: html.unescape(value) for key, value in _TAG_ATTRS.findall(m[1])} for m in found]


def _sheet_member(book: zipfile.ZipFile, sheet: str | None) -> str | None:
    """The zip member of the sheet named (or the first sheet), from the workbook and its relationships."""
    names = set(book.namelist())
    parts = ("xl/workbook.xml", "xl/_rels/workbook.xml.rels")
    if not all(part in names for part in parts):
        return None
    if any(book.getinfo(part).file_size > 16 * _MB for part in parts):
        raise ImportSetupError("the workbook's list of sheets is implausibly large")
    workbook, rels = (book.read(part).decode("utf-8", "replace") for part in parts)
    sheets = _tags(workbook, "sheet")
    chosen = next((s.get("id") for s in sheets if sheet is None or s.get("name") == sheet), None)
    target = next((r.get("Target", "") for r in _tags(rels, "Relationship") if r.get("Id") == chosen), None)
    if chosen is None or not target:
        return None  # no such sheet: the reader says so, with the sheet names
    member = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
    return member if member in names else None


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
    return SourceTable([cell_text(h) for h in first[1]], numbered, ws.height, None, book.close)


def cell_text(value: Cell) -> str:
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
