"""Columns of the file → fields: header recognition (aliases) and ``--map``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kakehashi.customers.models import CustomFieldDef
from kakehashi.kit.text import nfkc

OnDuplicate = Literal["update", "skip", "error"]
ON_DUPLICATE: tuple[str, ...] = ("update", "skip", "error")

#: Fields a column can be mapped to (besides ``cf.<key>`` for a custom field).
FIELDS: tuple[str, ...] = (
    "name", "name_kana", "family_name", "given_name", "family_kana", "given_kana",
    "phone", "phone2", "postal_code", "address", "prefecture", "city", "town", "street", "building",
    "birthday", "gender", "email", "notes", "rank",
)  # fmt: skip
PHONE_FIELDS = ("phone", "phone2")
PHONE_LABELS = {"phone": None, "phone2": "携帯"}
NAME_PARTS = {"name": ("family_name", "given_name"), "name_kana": ("family_kana", "given_kana")}
IGNORE = "-"

# Header spellings recognized without --map, compared after _header_key() (NFKC, lower case,
# no spaces or brackets), so "電話 番号", "ＴＥＬ" and "Tel." all match.
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("氏名", "名前", "お名前", "顧客名", "お客様名", "氏名漢字", "name", "fullname", "customername"),
    "name_kana": (
        "フリガナ", "ふりがな", "カナ", "かな", "氏名カナ", "カナ氏名", "氏名フリガナ", "お名前カナ",
        "お名前フリガナ", "名前カナ", "よみ", "ヨミ", "namekana", "kana", "furigana", "reading",
    ),
    "family_name": ("姓", "苗字", "名字", "familyname", "lastname", "surname"),
    "given_name": ("名", "下の名前", "givenname", "firstname"),
    "family_kana": ("セイ", "せい", "姓カナ", "姓フリガナ", "フリガナ姓", "familykana", "lastnamekana"),
    "given_kana": ("メイ", "めい", "名カナ", "名フリガナ", "フリガナ名", "givenkana", "firstnamekana"),
    "phone": (
        "電話番号", "電話", "tel", "telno", "電話番号1", "自宅電話", "自宅電話番号", "連絡先", "連絡先電話番号",
        "phone", "phonenumber", "telephone", "phone1", "tel1",
    ),
    "phone2": (
        "携帯", "携帯電話", "携帯番号", "携帯電話番号", "電話番号2", "mobile", "mobilephone", "cell",
        "cellphone", "phone2", "tel2",
    ),
    "postal_code": ("郵便番号", "〒", "郵便", "zip", "zipcode", "postalcode", "postcode"),
    "prefecture": ("都道府県", "県", "prefecture", "state"),
    "city": ("市区町村", "市町村", "市区郡", "city"),
    "address": ("住所", "住所1", "所在地", "ご住所", "お届け先住所", "address", "address1"),
    "town": ("町域", "町名", "町域名", "town"),
    "street": ("番地", "丁目番地", "street"),
    "building": ("建物名", "建物", "住所2", "建物名・部屋番号", "マンション名", "building", "address2"),
    "birthday": ("生年月日", "誕生日", "birthday", "birthdate", "dateofbirth", "dob"),
    "gender": ("性別", "gender", "sex"),
    "email": ("メール", "メールアドレス", "eメール", "email", "mail", "emailaddress", "mailaddress"),
    "notes": ("備考", "メモ", "特記事項", "notes", "note", "memo", "remarks", "comment"),
    "rank": ("ランク", "顧客ランク", "会員ランク", "rank"),
}  # fmt: skip
_TARGET_ALIASES = {"mobile": "phone2", "kana": "name_kana", "zip": "postal_code", "memo": "notes"}

_HEADER_DROP = re.compile(r"[\s_\-・.:：()\[\]【】「」<>＜＞*※]")


class ImportSetupError(ValueError):
    """The file cannot be imported at all (unreadable, no phone column, bad --map); nothing was written."""


# --- mapping --------------------------------------------------------------------------------


def _header_key(header: str) -> str:
    return _HEADER_DROP.sub("", nfkc(header)).lower()


_ALIAS_INDEX = {_header_key(alias): target for target, aliases in _ALIASES.items() for alias in aliases}


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["電話番号=phone", "会員区分=cf.member_type", "FAX=-"]`` → {source header: target}.

    A target is a field of :data:`FIELDS`, ``cf.<key>`` (custom field) or ``-`` (ignore the column).
    """
    mapping: dict[str, str] = {}
    for item in items:
        source, sep, target = item.rpartition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source:
            raise ImportSetupError(f"--map '{item}': use SOURCE=field (e.g. 電話番号=phone)")
        target = _TARGET_ALIASES.get(target, target)
        if target in ("", "ignore"):
            target = IGNORE
        if target != IGNORE and target not in FIELDS and not target.startswith("cf."):
            raise ImportSetupError(
                f"--map '{item}': unknown field '{target}' (fields: {', '.join(FIELDS)}, cf.<key>, -)"
            )
        mapping[source] = target
    return mapping


@dataclass(frozen=True, slots=True)
class Column:
    """One source column and the field it feeds (``cf.<key>`` for a custom field)."""

    index: int
    header: str
    target: str


def resolve_columns(
    headers: Sequence[str], mapping: dict[str, str], defs: dict[str, CustomFieldDef]
) -> tuple[list[Column], list[str]]:
    """Columns to read and the headers left unused.

    Order of precedence: ``--map``, ``cf.<key>`` headers, built-in aliases, then a header equal to
    a custom field's key or label. A field fed by two columns keeps the first (phones take all).
    """
    custom_by_name: dict[str, str] = {}
    for defn in defs.values():
        if defn.active:
            custom_by_name.setdefault(_header_key(defn.key), defn.key)
            custom_by_name.setdefault(_header_key(defn.label), defn.key)
    by_key = {_header_key(source): target for source, target in mapping.items()}
    unknown_sources = [s for s in mapping if _header_key(s) not in {_header_key(h) for h in headers}]
    if unknown_sources:
        raise ImportSetupError(f"--map names column(s) not in the file: {', '.join(sorted(unknown_sources))}")
    columns: list[Column] = []
    ignored: list[str] = []
    taken: set[str] = set()
    for index, raw_header in enumerate(headers):
        header = raw_header.strip()
        key = _header_key(header)
        target: str | None
        if key in by_key:
            target = by_key[key]
        elif header[:3].lower() in ("cf.", "cf:"):
            target = "cf." + header[3:].strip()
        else:
            target = _ALIAS_INDEX.get(key) or (f"cf.{custom_by_name[key]}" if key in custom_by_name else None)
        if target is None or target == IGNORE:
            if header:
                ignored.append(header)
            continue
        if target.startswith("cf."):
            custom_def = defs.get(target[3:])
            if custom_def is None or not custom_def.active:
                raise ImportSetupError(f"column '{header}': unknown custom field '{target[3:]}'")
        if target in taken and target not in PHONE_FIELDS:
            ignored.append(header)
            continue
        taken.add(target)
        columns.append(Column(index, header, target))
    if not taken & set(PHONE_FIELDS):
        raise ImportSetupError(
            "no phone column found: customers are matched by phone number "
            f"(headers: {', '.join(h for h in headers if h)}; map one with --map COLUMN=phone)"
        )
    if not taken & {"name", "family_name", "given_name"}:
        raise ImportSetupError("no name column found (氏名 / 名前 / name, or --map COLUMN=name)")
    return columns, ignored
