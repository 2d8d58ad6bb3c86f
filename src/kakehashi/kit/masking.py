"""Masked forms of personal data, and field types that mask themselves when serialized.

Output schemas type personal fields as ``PhoneText``, ``StreetText``… Serializing with the context
``{"personal_data": True}`` gives full values; with anything else — including no context at all —
the values leave masked. Forgetting the context therefore hides data instead of leaking it.
Whether an actor gets full values is decided in ``auth.masking``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from pydantic import SerializationInfo, SerializerFunctionWrapHandler, WrapSerializer

HIDDEN = "***"
_DIGIT = re.compile(r"\d")


def full_context(sees_personal_data: bool) -> dict[str, bool]:
    return {"personal_data": sees_personal_data}


def mask_phone(number: str) -> str:
    """``090-1234-5678`` → ``090-****-5678``; ``+819012345678`` → ``+8190****5678``: area and last 4 stay."""
    if "-" in number:
        parts = number.split("-")
        if len(parts) >= 3:
            return "-".join([parts[0], *(_DIGIT.sub("*", p) for p in parts[1:-1]), parts[-1]])
        return _DIGIT.sub("*", parts[0]) + "-" + parts[-1]
    head = 5 if number.startswith("+") else 3
    if len(number) <= head + 4:
        return _DIGIT.sub("*", number)
    return number[:head] + "*" * (len(number) - head - 4) + number[-4:]


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}{HIDDEN}@{domain}" if domain else HIDDEN


def mask_name(name: str) -> str:
    """Family name stays, given name goes: ``山田 花子`` → ``山田 ＊＊``."""
    family, sep, _ = name.replace("　", " ").partition(" ")
    return f"{family} ＊＊" if sep else (name[:1] + "＊＊")


def mask_text(_: str) -> str:
    return HIDDEN


def _masked(mask: Callable[[Any], Any]) -> WrapSerializer:
    def serialize(value: Any, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        if value is None or (info.context or {}).get("personal_data") is True:
            return handler(value)
        return mask(value)

    return WrapSerializer(serialize)


def _mask_custom(values: dict[str, Any]) -> dict[str, Any]:
    # Free text and dates may identify a person; counts, flags and choices are kept for reports.
    return {k: HIDDEN if isinstance(v, str) else v for k, v in values.items()}


def _no_date(_: date) -> None:
    return None


PhoneText = Annotated[str, _masked(mask_phone)]
NameText = Annotated[str, _masked(mask_name)]
EmailText = Annotated[str, _masked(mask_email)]
#: Street, building, notes, free text: hidden entirely (the address stays down to the town).
HiddenText = Annotated[str, _masked(mask_text)]
HiddenDate = Annotated[date, _masked(_no_date)]
CustomValues = Annotated[dict[str, Any], _masked(_mask_custom)]
CustomValue = Annotated[Any, _masked(lambda v: HIDDEN if isinstance(v, str) else v)]
