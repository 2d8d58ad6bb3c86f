"""Japanese text normalization: width, kana, search keys."""

from __future__ import annotations

import re
import unicodedata

import jaconv

_SPACES = re.compile(r"[\s\u3000]+")


def nfkc(text: str) -> str:
    """NFKC: full-width ASCII to half-width, half-width katakana to full-width."""
    return unicodedata.normalize("NFKC", text)


def clean(text: str | None) -> str | None:
    """Trim and fold runs of spaces (including the ideographic space) to one; '' becomes None."""
    if text is None:
        return None
    folded = _SPACES.sub(" ", nfkc(text)).strip()
    return folded or None


def to_katakana(reading: str) -> str:
    """A name reading as full-width katakana (hiragana and half-width kana accepted)."""
    return jaconv.hira2kata(_SPACES.sub(" ", nfkc(reading)).strip())


def is_kana_reading(reading: str) -> bool:
    """True when the text is katakana (with spaces and the long-vowel mark) only."""
    return all(ch == " " or ch == "ー" or ch == "・" or "\u30a0" <= ch <= "\u30ff" for ch in to_katakana(reading))


def search_key(text: str) -> str:
    """Key for prefix search: NFKC, no spaces, katakana folded to hiragana, lower case."""
    return jaconv.kata2hira(_SPACES.sub("", nfkc(text))).lower()
