"""File exports for HTTP: CSV (UTF-8 with a BOM, so Japanese Excel opens it without garbling) and XLSX, and
the download response that carries them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A header row, then the rows; times in ISO 8601 with their offset, ``None`` as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in row])
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
