"""Validation and coercion of custom-field values by their declared type."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from kakehashi.customers.models import CustomFieldDef
from kakehashi.kit.errors import field_error
from kakehashi.kit.text import nfkc

_TRUE = {"true", "1", "yes", "y", "はい", "有", "あり", "○", "〇"}
_FALSE = {"false", "0", "no", "n", "いいえ", "無", "なし", "×"}
MAX_TEXT = 2000
#: Types whose values are stored as strings, which ``kit.masking`` hides (``***``) from a role that does not
#: see personal data: text, dates and choices. Numbers and yes/no stay visible. A masked viewer may not
#: filter on these (``customers.service.parse_filter``): a filter would confirm the hidden value.
MASKED_TYPES = frozenset({"text", "date", "choice"})


class BadValue(ValueError):
    pass


def coerce(defn: CustomFieldDef, value: Any) -> Any:
    """The stored (JSON) form of ``value`` for this field; raise :class:`BadValue` if it does not fit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    kind = defn.type
    if kind == "text":
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            raise BadValue(f"at most {MAX_TEXT} characters")
        return text
    if kind == "number":
        return _number(value)
    if kind == "date":
        return _date(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "choice":
        text = nfkc(str(value)).strip()
        choices = defn.choices or []
        if text not in choices:
            raise BadValue(f"must be one of {', '.join(choices)}")
        return text
    raise BadValue(f"unknown field type {kind}")


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise BadValue("must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue("must be a finite number")
        return int(value) if value.is_integer() else value
    text = nfkc(str(value)).strip().replace(",", "")
    try:
        number = float(text)
    except ValueError:
        raise BadValue(f"'{value}' is not a number") from None
    if not math.isfinite(number):
        raise BadValue("must be a finite number")
    return int(number) if number.is_integer() else number


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = nfkc(str(value)).strip().replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        try:
            return date(int(parts[0]), int(parts[1]), int(parts[2])).isoformat()
        except ValueError:
            pass
    raise BadValue(f"'{value}' is not a date (YYYY-MM-DD)")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = nfkc(str(value)).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue(f"'{value}' is not yes/no (true/false)")


def validate_values(
    defs: dict[str, CustomFieldDef],
    values: dict[str, Any],
    *,
    current: dict[str, Any] | None = None,
    check_required: bool = True,
    field_prefix: str = "custom",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge ``values`` into ``current`` after validation; return (merged, errors).

    ``check_required`` (on create) reports every required field left empty; without it (on a
    partial update) only a required field that ``values`` clears is an error, because a field
    added later is filled in over time (e.g. from mailed questionnaires).
    """
    merged = dict(current or {})
    errors: list[dict[str, Any]] = []
    for key, raw in values.items():
        defn = defs.get(key)
        if defn is None or not defn.active:
            errors.append(field_error(f"{field_prefix}.{key}", f"unknown custom field '{key}'"))
            continue
        try:
            coerced = coerce(defn, raw)
        except BadValue as exc:
            errors.append(field_error(f"{field_prefix}.{key}", f"{defn.label}: {exc}"))
            continue
        if coerced is None:
            if defn.required and not check_required:
                errors.append(field_error(f"{field_prefix}.{key}", f"{defn.label} is required"))
                continue
            merged.pop(key, None)
        else:
            merged[key] = coerced
    for defn in defs.values() if check_required else ():
        if defn.active and defn.required and merged.get(defn.key) is None:
            errors.append(field_error(f"{field_prefix}.{defn.key}", f"{defn.label} is required"))
    return merged, errors
