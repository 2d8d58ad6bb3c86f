"""Phone numbers: every Japanese input form to one E.164 key (phonenumbers does the parsing).

Bulk imports parse hundreds of thousands of numbers, and phonenumbers costs ~65 µs a number.
:class:`_PrefixMemo` answers most of them from a memo instead, built from phonenumbers' own
answers and only where they provably cannot differ (see its docstring; tests/test_phone.py checks
it against phonenumbers directly).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberFormat, PhoneNumberType

# Dash-like characters Japanese users type between digit groups that NFKC leaves alone.
_DASHES = re.compile("[\u2010-\u2015\u2212\u30fc\u2500\uff70\ufe63]")
# A number written with digits and the usual separators only: the memo's input (anything else,
# +81…, tel:, extensions, letters, goes to phonenumbers as written).
_PLAIN = re.compile(r"[0-9][0-9() -]*")
_NOT_DIGIT = re.compile(r"[^0-9]")

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
    memo = _memo(region) if _PLAIN.fullmatch(text) else None
    found = memo.lookup(_NOT_DIGIT.sub("", text)) if memo is not None else None
    if memo is not None and found is not None:
        entry, nsn = found
        if entry.kind is None:
            raise InvalidPhone(f"'{raw}' is not a valid phone number")
        national = entry.template.format(*[nsn[a:b] for a, b in entry.slices])
        return Phone(memo.prefix_e164 + nsn, national, entry.kind)
    return _parse(text, str(raw), region)


def _parse(text: str, raw: str, region: str) -> Phone:
    """parse_phone through phonenumbers itself."""
    if not re.search(r"\d", text):
        raise InvalidPhone(f"'{raw}' contains no digits")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"'{raw}' is not a phone number ({exc._msg})") from exc
    # number_type() does the same pattern matching as is_valid_number() and says UNKNOWN for numbers
    # that match no valid pattern; calling only it saves a third of the parse (import throughput).
    kind = _kind(number)
    if kind is None:
        raise InvalidPhone(f"'{raw}' is not a valid phone number")
    return Phone(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        national=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        kind=kind,
    )


def _kind(number: PhoneNumber) -> str | None:
    number_type = phonenumbers.number_type(number)
    return None if number_type == PhoneNumberType.UNKNOWN else _TYPE_NAMES.get(number_type, "other")


def normalize_phone(raw: str, region: str = "JP") -> str:
    """E.164 of any written form (``０３（１２３４）５６７８`` → ``+81312345678``)."""
    return parse_phone(raw, region).e164


def try_normalize_phone(raw: str, region: str = "JP") -> str | None:
    """E.164, or None when the text is not a valid number."""
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        return None


def national_form(number: str, region: str = "JP") -> str:
    """``+81312345678`` → ``03-1234-5678``, as people write it; the text as it is when it is not a number."""
    try:
        return parse_phone(number, region).national
    except InvalidPhone:
        return number


# --- the prefix memo ----------------------------------------------------------------------------


class _Unsupported(ValueError):
    """A metadata pattern uses regex features the memo does not reason about (then: no memo)."""


def widen(pattern: str, *, everything: bool) -> str:
    r"""``pattern`` with the letter ``X`` standing for "any digit".

    ``X`` is accepted where ``\d`` is; with ``everything`` also where a literal digit or a digit
    class is. Matching ``prefix + "XXX…"`` then decides the pattern for *every* number of that
    prefix and length: the narrow form matches → all of them match (the ``X`` positions only went
    through ``\d``); the wide form does not match → none does (any match of a real number is a
    path the wide form also accepts). Only digits, digit classes, ``\d``, groups, alternation and
    quantifiers are accepted: phonenumbers' metadata uses nothing else.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if pattern[i + 1 : i + 2] != "d":
                raise _Unsupported(pattern)
            out.append("[0-9X]")
            i += 2
        elif c == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            if not re.fullmatch(r"[0-9-]+", body):
                raise _Unsupported(pattern)
            out.append(f"[{body}X]" if everything else f"[{body}]")
            i = end + 1
        elif c == "{":
            end = pattern.index("}", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        elif c.isdigit():
            out.append(f"[{c}X]" if everything else c)
            i += 1
        elif c == "(" and pattern.startswith("(?", i):
            if not pattern.startswith("(?:", i):  # lookarounds, named groups
                raise _Unsupported(pattern)
            out.append("(?:")
            i += 3
        elif c in "()|?*+$":
            out.append(c)
            i += 1
        else:
            raise _Unsupported(pattern)
    return "".join(out)


class _Decider:
    """Whether one metadata pattern gives the same answer for every number of a prefix and length."""

    def __init__(self, pattern: str, *, prefix_match: bool) -> None:
        narrow, wide = re.compile(widen(pattern, everything=False)), re.compile(widen(pattern, everything=True))
        self._narrow = narrow.match if prefix_match else narrow.fullmatch
        self._wide = wide.match if prefix_match else wide.fullmatch

    def decided(self, probe: str) -> bool:
        return self._narrow(probe) is not None or self._wide(probe) is None


@dataclass(frozen=True, slots=True)
class _Entry:
    """What every number of one (prefix, length) class is: its kind (None: invalid) and display form."""

    kind: str | None
    template: str  # str.format template of the national form, one field per slice
    slices: tuple[tuple[int, int], ...]


_NOT_MEMOIZABLE = _Entry(None, "", ())


class _PrefixMemo:
    """phonenumbers' answer for a national number (``0`` + significant number), memoized by the
    shortest prefix of the significant number that decides it.

    phonenumbers decides a number's type by full-matching the significant number against the
    region's patterns (with their possible lengths), and its national display form by prefix-
    matching the formats' leading-digit patterns and full-matching their group patterns. When every
    one of those patterns is decided for (prefix, length) — see :func:`widen` — every number of that
    class has the same type and the same format; the format's group patterns are plain ``\\d``
    groups (checked), so the groups fall on the same positions. The entry is learnt from
    phonenumbers on the first number of the class and checked on a second one.
    Only numbers written ``0`` + a significant number not starting with ``0`` use the memo (not
    the international prefix ``010``, not ``00…`` service numbers); the learnt number must parse to
    exactly that significant number, else the class is not memoized.
    """

    MAX_ENTRIES = 200_000

    def __init__(self, region: str) -> None:
        metadata: Any = PhoneMetadata.metadata_for_region(region)
        if metadata is None or not metadata.national_prefix:
            raise _Unsupported(region)
        self.region = region
        self.national_prefix: str = metadata.national_prefix
        self.prefix_e164 = f"+{metadata.country_code}"
        self.country_code: int = metadata.country_code
        self._international = re.compile(metadata.international_prefix or "(?!)")
        descs = [metadata.general_desc, metadata.premium_rate, metadata.toll_free, metadata.shared_cost,
                 metadata.voip, metadata.personal_number, metadata.pager, metadata.uan, metadata.voicemail,
                 metadata.fixed_line, metadata.mobile]  # fmt: skip
        self._deciders = [
            _Decider(d.national_number_pattern, prefix_match=False)
            for d in descs
            if d is not None and d.national_number_pattern
        ]
        for fmt in metadata.number_format:
            if widen(fmt.pattern, everything=True) != widen(fmt.pattern, everything=False):
                raise _Unsupported(fmt.pattern)  # group positions could depend on the digits
            self._deciders.append(_Decider(fmt.pattern, prefix_match=False))
            if fmt.leading_digits_pattern:  # phonenumbers uses the last (most detailed) one
                self._deciders.append(_Decider(fmt.leading_digits_pattern[-1], prefix_match=True))
        self._entries: dict[tuple[str, int], _Entry] = {}
        # significant-number length → prefix lengths learnt (replaced whole: readers in other threads)
        self._depths: dict[int, tuple[int, ...]] = {}

    def lookup(self, digits: str) -> tuple[_Entry, str] | None:
        """(entry, significant number) for these national digits, or None: ask phonenumbers."""
        np = self.national_prefix
        if not digits.startswith(np) or len(digits) <= len(np) + 1:
            return None
        nsn = digits[len(np) :]
        if nsn[0] == "0" or self._international.match(digits):
            return None
        n = len(nsn)
        entry = None
        for k in self._depths.get(n, ()):
            entry = self._entries.get((nsn[:k], n))
            if entry is not None:
                break
        else:
            entry = self._learn(digits, nsn)
        return None if entry is _NOT_MEMOIZABLE else (entry, nsn)

    def _learn(self, digits: str, nsn: str) -> _Entry:
        n = len(nsn)
        k = next((k for k in range(1, n + 1) if self._decided(nsn[:k], n)), n)
        entry = self._entry(digits, nsn, k)
        if len(self._entries) < self.MAX_ENTRIES:
            self._entries[(nsn[:k], n)] = entry
            self._depths[n] = tuple(sorted({*self._depths.get(n, ()), k}))
        return entry

    def _decided(self, prefix: str, n: int) -> bool:
        probe = prefix + "X" * (n - len(prefix))
        return all(d.decided(probe) for d in self._deciders)

    def _entry(self, digits: str, nsn: str, k: int) -> _Entry:
        try:
            number = phonenumbers.parse(digits, self.region)
        except phonenumbers.NumberParseException:
            return _NOT_MEMOIZABLE
        if (
            number.country_code != self.country_code
            or str(number.national_number) != nsn
            or number.italian_leading_zero
            or number.extension
        ):
            return _NOT_MEMOIZABLE
        template, slices = _template(phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL), nsn)
        entry = _Entry(_kind(number), template, slices)
        # A second number of the class, every free digit changed: phonenumbers must agree.
        other = nsn[:k] + "".join(str((int(c) + 5) % 10) for c in nsn[k:])
        check = PhoneNumber(country_code=self.country_code, national_number=int(other))
        if (
            _kind(check) != entry.kind
            or phonenumbers.format_number(check, PhoneNumberFormat.NATIONAL)
            != template.format(*[other[a:b] for a, b in slices])
            or phonenumbers.format_number(check, PhoneNumberFormat.E164) != self.prefix_e164 + other
        ):
            return _NOT_MEMOIZABLE
        return entry


def _template(national: str, nsn: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """``03-1234-5678``, ``312345678`` → (``"0{}-{}-{}"``, ((0, 1), (1, 5), (5, 9))).

    The significant number's digits are found in the display form from the right (what is left of
    them, the national prefix ``0``, is literal text).
    """
    slot = [False] * len(national)
    j = len(nsn)
    for i in range(len(national) - 1, -1, -1):
        if j and national[i] == nsn[j - 1]:
            slot[i] = True
            j -= 1
    if j:
        raise ValueError(f"{nsn} is not in {national}")
    parts: list[str] = []
    slices: list[tuple[int, int]] = []
    pos = 0
    i = 0
    while i < len(national):
        if slot[i]:
            start = pos
            while i < len(national) and slot[i]:
                i += 1
                pos += 1
            slices.append((start, pos))
            parts.append("{}")
        else:
            parts.append(national[i].replace("{", "{{").replace("}", "}}"))
            i += 1
    return "".join(parts), tuple(slices)


_MEMOS: dict[str, _PrefixMemo | None] = {}


def _memo(region: str) -> _PrefixMemo | None:
    """The region's memo, or None when its metadata is beyond :func:`widen`."""
    if region not in _MEMOS:
        try:
            _MEMOS[region] = _PrefixMemo(region)
        except _Unsupported:
            _MEMOS[region] = None
    return _MEMOS[region]
