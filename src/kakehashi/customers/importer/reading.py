"""Reading CSV (encoding detection) and spreadsheets into header + numbered rows."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

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
