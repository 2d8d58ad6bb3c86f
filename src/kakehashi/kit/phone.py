"""Phone numbers: every Japanese input form to one E.164 key (phonenumbers does the parsing)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

# Dash-like characters Japanese users type between digit groups that NFKC leaves alone.
_DASHES = re.compile("[\u2010-\u2015\u2212\u30fc\u2500\uff70\ufe63]")

_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed",
    PhoneNumberType.TOLL_FREE: "free_dial",
    PhoneNumberType.VOIP: "ip",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "navi_dial",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
}


class InvalidPhone(ValueError):
    """The text is not a valid phone number; ``str(err)`` says why, in words a user understands."""


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    national: str
    kind: str


def _prepare(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw)
    return _DASHES.sub("-", text).strip()


def parse_phone(raw: str, region: str = "JP") -> Phone:
    """Parse any written form into a validated :class:`Phone`; raise :class:`InvalidPhone`."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone("phone number is empty")
    text = _prepare(str(raw))
    if not re.search(r"\d", text):
        raise InvalidPhone(f"'{raw}' contains no digits")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"'{raw}' is not a phone number ({exc._msg})") from exc
    # number_type() does the same pattern matching as is_valid_number() and says UNKNOWN for numbers
    # that match no valid pattern; calling only it saves a third of the parse (import throughput).
    number_type = phonenumbers.number_type(number)
    if number_type == PhoneNumberType.UNKNOWN:
        raise InvalidPhone(f"'{raw}' is not a valid phone number")
    kind = _TYPE_NAMES.get(number_type, "other")
    return Phone(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        national=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        kind=kind,
    )


def normalize_phone(raw: str, region: str = "JP") -> str:
    """E.164 of any written form (``０３（１２３４）５６７８`` → ``+81312345678``)."""
    return parse_phone(raw, region).e164


def try_normalize_phone(raw: str, region: str = "JP") -> str | None:
    """E.164, or None when the text is not a valid number."""
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        return None
