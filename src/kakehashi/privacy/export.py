"""A disclosure as a file for the data subject: JSON, or an XLSX workbook with one sheet per section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from kakehashi.kit.context import Actor
from kakehashi.kit.masking import full_context
from kakehashi.privacy.schemas import Disclosure

FORMATS = (".json", ".xlsx")

#: Sheet titles (Excel allows 31 characters) for the list sections, in reading order.
_SECTIONS = {
    "phones": "電話番号 phones",
    "custom_fields": "追加項目 custom fields",
    "orders": "購入履歴 orders",
    "complaints": "クレーム・返品 complaints",
    "contacts": "対応履歴 contacts",
    "sources": "取得元 sources",
    "privacy_requests": "請求 requests",
    "access_log": "アクセス記録 access log",
}


def disclosure_dict(disclosure: Disclosure, actor: Actor) -> dict[str, Any]:
    """Plain JSON values, masked exactly as the API would mask them for this actor."""
    data: dict[str, Any] = disclosure.model_dump(mode="json", context=full_context(actor.sees_personal_data))
    return data


def write(disclosure: Disclosure, actor: Actor, out: Path) -> None:
    """Write the file; the format follows the suffix (``.json`` or ``.xlsx``)."""
    data = disclosure_dict(disclosure, actor)
    suffix = out.suffix.lower()
    if suffix == ".json":
        out.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    elif suffix == ".xlsx":
        write_xlsx(data, out)
    else:
        raise ValueError(f"unsupported file type '{out.suffix}': use {' or '.join(FORMATS)}")


def write_xlsx(data: dict[str, Any], out: Path) -> None:
    wb = Workbook()
    summary = wb.active
    summary.title = "顧客 customer"
    customer = dict(data["customer"])
    phones = customer.pop("phones", [])
    _rows(summary, ["項目 field", "値 value"], [[key, value] for key, value in customer.items()])
    summary.append([])
    _rows(summary, ["開示日時 generated at", data["generated_at"]], [["請求ID request id", data["request_id"]]])
    sections = {"phones": phones, **{key: data[key] for key in _SECTIONS if key != "phones"}}
    for key, title in _SECTIONS.items():
        rows = [line for o in sections[key] for line in _flat_order(o)] if key == "orders" else sections[key]
        columns = list(dict.fromkeys(col for row in rows for col in row)) or ["(none)"]
        _rows(wb.create_sheet(title), columns, [[row.get(col) for col in columns] for row in rows])
    wb.save(out)


def _flat_order(order: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per order line (an order without lines still gets a row)."""
    head = {k: v for k, v in order.items() if k != "lines"}
    lines = order.get("lines") or [{}]
    return [{**head, **{f"line_{k}": v for k, v in line.items()}} for line in lines]


def _rows(sheet: Any, header: list[Any], rows: list[list[Any]]) -> None:
    sheet.append(header)
    for row in rows:
        sheet.append([_cell(v) for v in row])
        for cell in sheet[sheet.max_row]:
            # Text typed by operators or customers may start with "=": keep it text, never a formula.
            if isinstance(cell.value, str):
                cell.data_type = "s"


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value
