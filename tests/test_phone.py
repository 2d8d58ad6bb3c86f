"""Phone normalization: every Japanese written form → one E.164 key."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakehashi.kit import phone as phone_module
from kakehashi.kit.phone import InvalidPhone, normalize_phone, parse_phone, try_normalize_phone

SAME_NUMBER = [
    "03-1234-5678",
    "0312345678",
    "03(1234)5678",
    "03 1234 5678",
    "０３－１２３４－５６７８",
    "０３（１２３４）５６７８",
    "０３ー１２３４ー５６７８",  # katakana long-vowel mark typed as a dash
    "03−1234−5678",  # U+2212 minus sign
    "+81 3-1234-5678",
    "+81312345678",
    "＋８１３１２３４５６７８",
    "tel:+81-3-1234-5678",
]


@pytest.mark.parametrize("raw", SAME_NUMBER)
def test_given_any_written_form_of_a_tokyo_number_then_one_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+81312345678"


@pytest.mark.parametrize(
    ("raw", "e164", "kind"),
    [
        ("090-1234-5678", "+819012345678", "mobile"),
        ("０８０１２３４５６７８", "+818012345678", "mobile"),
        ("070-1234-5678", "+817012345678", "mobile"),
        ("0120-123-456", "+81120123456", "free_dial"),
        ("0120123456", "+81120123456", "free_dial"),
        ("0800-123-4567", "+818001234567", "free_dial"),
        ("050-1234-5678", "+815012345678", "ip"),
        ("06(6123)4567", "+81661234567", "fixed"),
        ("011-222-3333", "+81112223333", "fixed"),
        ("0570-012-345", "+81570012345", "navi_dial"),
    ],
)
def test_given_japanese_number_types_then_e164_and_kind(raw: str, e164: str, kind: str) -> None:
    phone = parse_phone(raw)
    assert phone.e164 == e164
    assert phone.kind == kind


def test_national_format_is_the_japanese_display_form() -> None:
    assert parse_phone("０９０１２３４５６７８").national == "090-1234-5678"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "no digits"),
        ("12345", "not a valid"),
        ("03-1234-567", "not a valid"),
        ("0312345678901", "not a valid"),
        ("090-1234-567", "not a valid"),
    ],
)
def test_given_invalid_input_then_clear_error(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidPhone, match=fragment):
        parse_phone(raw)
    assert try_normalize_phone(raw) is None


jp_national = st.one_of(
    st.from_regex(r"0[789]0[0-9]{8}", fullmatch=True),
    st.from_regex(r"0[1-9][1-9][0-9]{7}", fullmatch=True),
    st.from_regex(r"0120[0-9]{6}", fullmatch=True),
    st.from_regex(r"050[0-9]{8}", fullmatch=True),
)
separators = st.sampled_from(["", "-", " ", "－", "ー", "−", "　"])
widths = st.sampled_from(["half", "full"])


def _dress(digits: str, sep: str, width: str) -> str:
    """Write a national number the way a person might."""
    text = sep.join([digits[:3], digits[3:6], digits[6:]]) if sep else digits
    if width == "full":
        text = text.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    return text


@given(jp_national)
def test_normalization_is_idempotent(digits: str) -> None:
    e164 = try_normalize_phone(digits)
    if e164 is not None:
        assert normalize_phone(e164) == e164
        assert normalize_phone(parse_phone(e164).national) == e164


@given(jp_national, separators, widths)
def test_written_form_never_changes_the_key(digits: str, sep: str, width: str) -> None:
    expected = try_normalize_phone(digits)
    assert try_normalize_phone(_dress(digits, sep, width)) == expected


@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text: str) -> None:
    result = try_normalize_phone(text)
    assert result is None or (result.startswith("+") and result[1:].isdigit())


@given(st.one_of(jp_national, st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True)))
def test_validity_agrees_with_phonenumbers_is_valid_number(text: str) -> None:
    """parse_phone checks validity through number_type() only (faster); it must agree with the library."""
    import phonenumbers

    try:
        expected = phonenumbers.is_valid_number(phonenumbers.parse(text, "JP"))
    except phonenumbers.NumberParseException:
        expected = False
    assert (try_normalize_phone(text) is not None) == expected


# --- the prefix memo in front of phonenumbers -----------------------------------------------------


def _reference(text: str) -> tuple[str, str, str] | None:
    """phonenumbers alone, with is_valid_number (not the memo, not number_type-only validation)."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    kind = phone_module._TYPE_NAMES.get(phonenumbers.number_type(number), "other")
    return (
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
        phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        kind,
    )


def _ours(text: str) -> tuple[str, str, str] | None:
    try:
        phone = parse_phone(text)
    except InvalidPhone:
        return None
    return (phone.e164, phone.national, phone.kind)


def test_memo_agrees_with_phonenumbers_for_every_three_digit_prefix_and_length() -> None:
    """Every 0 + 3-digit prefix, every national length from 8 to 13 digits, three numbers each:
    the first teaches the memo, the others are answered from it; all must equal phonenumbers."""
    rng = random.Random(7)
    for prefix in range(100, 1000):
        for length in range(8, 14):
            for _ in range(3):
                digits = f"0{prefix}" + "".join(rng.choice("0123456789") for _ in range(length - 4))
                assert _ours(digits) == _reference(digits), digits
    memo = phone_module._memo("JP")
    assert memo is not None and len(memo._entries) < 20_000  # classes, not numbers


def test_memo_answers_most_numbers_of_a_real_list_from_few_entries() -> None:
    memo = phone_module._PrefixMemo("JP")
    rng = random.Random(3)
    numbers = [f"0{rng.choice(['3', '6', '90', '80', '45', '52'])}{rng.randrange(10**7, 10**8)}" for _ in range(2000)]
    for n in numbers:
        memo.lookup(n)
    assert len(memo._entries) < 50


any_national = st.from_regex(r"0[0-9]{4,14}", fullmatch=True)


@given(st.one_of(jp_national, any_national), separators, widths)
def test_memo_agrees_with_phonenumbers_on_written_forms(digits: str, sep: str, width: str) -> None:
    text = _dress(digits, sep, width)
    assert _ours(text) == _reference(text)
    assert _ours(digits) == _reference(digits)


@pytest.mark.parametrize(
    ("pattern", "prefix_match", "probe", "decided"),
    [
        (r"(?:2[2-9]|[36][1-9])\d{7}", False, "31XXXXXXX", True),  # every 31… of 9 digits matches
        (r"(?:2[2-9]|[36][1-9])\d{7}", False, "4XXXXXXXX", True),  # no 4… matches
        (r"(?:2[2-9]|[36][1-9])\d{7}", False, "3XXXXXXXX", False),  # 30… does not, 31… does
        (r"3|4(?:2(?:0|9[02-69]))", True, "42XXXXXXX", False),
        (r"3|4(?:2(?:0|9[02-69]))", True, "420XXXXXX", True),
    ],
)
def test_decider(pattern: str, prefix_match: bool, probe: str, decided: bool) -> None:
    assert phone_module._Decider(pattern, prefix_match=prefix_match).decided(probe) is decided


def test_widen_refuses_what_it_cannot_reason_about() -> None:
    for pattern in (r"\w+", r"[^5]\d", r"(?=1)\d", r"1.3"):
        with pytest.raises(phone_module._Unsupported):
            phone_module.widen(pattern, everything=True)
