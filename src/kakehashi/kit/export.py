"""File exports: CSV (UTF-8 with a BOM, so Japanese Excel opens it without garbling) and XLSX, and the
download response that carries them.

Every CSV the product writes goes through :class:`CsvWriter` (``csv_writer``/``csv_bytes``): a text cell that
starts with ``= + - @``, a tab or a carriage return would run as a formula when a spreadsheet opens the file
(CSV injection), so it is written with a leading ``'``. Numbers stay as they are: ``int``, ``float`` and
``Decimal`` values, and text that is nothing but a signed number (``-5``, an E.164 number ``+81312345678``),
which no spreadsheet can run — a formula needs an operator or a function after the sign (``-2-3``,
``+cmd|…``, ``=HYPERLINK(…)`` are prefixed). Integrators reading ``cdrs.csv`` get numbers unchanged.
``tests/test_csv_exports.py`` checks every CSV route and that no other module writes CSV by itself."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from fastapi import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from kakehashi.kit.clock import BUSINESS_TZ

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True, slots=True)
class Export:
    content: bytes
    filename: str
    media_type: str


def with_bom(text: str) -> bytes:
    return ("\ufeff" + text).encode("utf-8")


#: What a spreadsheet reads as the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: ``None`` empty, times in ISO 8601 with their offset, text that would start a
    formula prefixed with ``'``; numbers and everything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class CsvWriter:
    """``csv.writer`` whose every cell (header included) goes through :func:`csv_cell`."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: IO[str]) -> CsvWriter:
    """The one way to write CSV: formula-safe cells (see the module's docstring)."""
    return CsvWriter(out)


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A header row, then the rows, UTF-8 with a BOM; cells as :func:`csv_cell` writes them."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return with_bom(out.getvalue())


def xlsx_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str) -> bytes:
    """One sheet, written row by row (openpyxl write-only mode). Excel has no time zones: times are Japan
    local time. Text cells stay text, never formulas."""
    wb = Workbook(write_only=True)
    sheet = wb.create_sheet(title[:31])
    sheet.append(list(columns))
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value.astimezone(BUSINESS_TZ).replace(tzinfo=None))
        cell.number_format = "yyyy-mm-dd hh:mm"
        return cell
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # a name starting with "=" is text, not a formula
        return cell
    return value


def download(export: Export) -> Response:
    """The export as an attachment."""
    headers = {"Content-Disposition": f'attachment; filename="{export.filename}"'}
    return Response(export.content, media_type=export.media_type, headers=headers)
