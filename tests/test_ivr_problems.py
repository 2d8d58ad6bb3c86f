"""IVR flow problems as codes with parameters (``ivr.problems``), rendered in Japanese and English from the code.

Every code the checks can emit has its English (the API's message) and its Japanese (``web/strings/ivr.py``); a
flow with every kind of problem reads in Japanese on a Japanese page and, on an English page, exactly as the API
says it.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import pytest

from kakehashi.ivr import problems as catalogue
from kakehashi.ivr.templates import ORDER_DESK_EXAMPLE
from kakehashi.ivr.validate import problems
from kakehashi.web.i18n import problem_text
from kakehashi.web.strings.ivr import PROBLEMS_JA

TEN = "q00, q01, q02, q03, q04, q05, q06, q07, q08, q09"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
SOURCES = [
    Path(__file__).parent.parent / "src" / "kakehashi" / path
    for path in ("ivr/validate.py", "ivr/service.py", "web/pages/ivr.py")
]


def _codes_in_source() -> set[str]:
    """Every code literal passed to ``problem(field, "code", …)`` or mapped to in validate.py's tables."""
    found: set[str] = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "problem" and len(node.args) >= 2:
                code = node.args[1]
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    found.add(code.value)
            if isinstance(node, ast.Dict) and path.name == "validate.py":
                found |= {v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return {code for code in found if not code.startswith("^")}


def test_every_code_the_checks_can_emit_has_english_and_japanese() -> None:
    emitted = _codes_in_source()
    assert len(emitted) > 50
    assert emitted <= set(catalogue.ENGLISH), emitted - set(catalogue.ENGLISH)
    assert set(catalogue.ENGLISH) == set(PROBLEMS_JA)


@pytest.mark.parametrize("code", sorted(catalogue.ENGLISH))
def test_each_code_renders_in_both_languages_with_its_parameters(code: str) -> None:
    japanese_template = PROBLEMS_JA[code]
    both = catalogue.ENGLISH[code] + (japanese_template if isinstance(japanese_template, str) else "")
    slots = set(re.findall(r"\{(\w+)\}", both))
    params = {slot: f"<{slot}>" for slot in slots} | {"weekday": "sun", "expected": "'a' or 'b'"}
    error = catalogue.problem("nodes.x", code, **params)
    assert error["code"] == code and error["params"] == params
    assert problem_text("en", error) == error["message"]
    japanese = problem_text("ja", error)
    assert JAPANESE.search(japanese), japanese
    for slot in slots - {"detail", "weekday", "expected"}:  # each name or number the admin must find is kept
        assert f"<{slot}>" in japanese, (slot, japanese)


def _flows_with_every_problem() -> list[Any]:
    def flow(nodes: dict[str, Any], start: str = "a") -> dict[str, Any]:
        return {"start": start, "nodes": nodes}

    example = copy.deepcopy(ORDER_DESK_EXAMPLE)
    example["nodes"]["main_menu"]["options"]["3"] = "gone"
    example["nodes"]["to_orders"]["queue"] = "sales"
    return [
        example,
        flow({"a": {"type": "menuu"}, "b": {"prompt": "x"}, "c": "x", "d e": {"type": "hangup", "colour": 1}}),
        flow(
            {"a": {"type": "menu", "prompt": "", "options": {"12": "a"}, "timeout_s": 0, "retries": 9, "on_fail": "a"}}
        ),
        flow(
            {
                "a": {
                    "type": "collect",
                    "prompt": "x" * 600,
                    "var": "Bad",
                    "min_digits": "x",
                    "max_digits": 31,
                    "next": "b",
                    "on_fail": "b",
                    "sensitive": "maybe",
                },
                "b": {"type": "hangup"},
            }
        ),
        flow(
            {
                "a": {
                    "type": "collect",
                    "prompt": "p",
                    "var": "n",
                    "min_digits": 5,
                    "max_digits": 2,
                    "next": "b",
                    "on_fail": "b",
                },
                "b": {"type": "branch", "when": {"var": "m", "known": True, "equals": "x"}, "then": "c", "else": "c"},
                "c": {"type": "branch", "when": {"rank_in": [""]}, "then": "d", "else": "d"},
                "d": {"type": "branch", "when": {"rank_in": []}, "then": "e", "else": "e"},
                "e": {"type": "branch", "when": {"equals": "1"}, "then": "f", "else": "f"},
                "f": {"type": "set", "next": "g"},
                "g": {"type": "queue"},
            }
        ),
        flow(
            {
                "a": {
                    "type": "hours",
                    "schedule": {
                        "weekly": {"mon": [["18:00", "09:00"]]},
                        "closed_dates": ["2026-05-04"],
                        "open_dates": ["2026-05-04", "2026-05-05"],
                    },
                    "open": "b",
                    "closed": "b",
                },
                "b": {"type": "hangup"},
            }
        ),
        flow(
            {
                "a": {
                    "type": "hours",
                    "schedule": {"weekly": {"mon": [["9:00", "10:00"]], "xyz": []}, "closed_dates": ["2026-13-01"]},
                    "open": "b",
                    "closed": "b",
                },
                "b": {"type": "play"},
            }
        ),
        flow(
            {
                "a": {"type": "play", "prompt": "p", "next": "m"},
                "m": {"type": "menu", "prompt": "p", "options": {"1": "m"}, "on_fail": "x"},
                "x": {"type": "play", "prompt": "p", "next": "m"},
                "c": {"type": "hangup"},
            }
        ),
        flow({"a": {"type": "play", "prompt": "p", "next": "nowhere"}}, start="zz"),
        flow({"a": {"type": "play", "prompt": 5, "next": ["b"]}}),
        {"start": "a", "nodes": {}},
        flow(
            {
                "a": {"type": "set", "priority": 200, "next": "b"},
                "b": {"type": "menu", "prompt": "p", "options": {"1": "c"}, "on_fail": "c"},
                "c": {"type": "queue"},
            }
        ),
        flow(
            {
                "a": {"type": "set", "queue": "orders", "skill": "inquiry", "next": "b"},
                "b": {"type": "set", "skill": "nope", "next": "c"},
                "c": {"type": "collect", "prompt": "p", "var": "pin", "sensitive": True, "next": "d", "on_fail": "d"},
                "d": {"type": "branch", "when": {"var": "pin", "equals": "1"}, "then": "e", "else": "e"},
                "e": {"type": "queue"},
            }
        ),
        {"start": 3, "nodes": []},
        {"start": "a", "nodes": {f"n{i}": {"type": "hangup"} for i in range(501)}},
    ]


def test_every_problem_of_a_flow_has_a_code_and_reads_in_both_languages() -> None:
    known = {"orders", "support"}
    errors = [e for definition in _flows_with_every_problem() for e in problems(definition, known_queues=known)]
    assert len({e["message"] for e in errors}) > 40
    assert all(e["code"] in catalogue.ENGLISH for e in errors)
    untranslated = {e["message"] for e in errors if not JAPANESE.search(problem_text("ja", e))}
    assert untranslated == set()
    assert all(problem_text("en", e) == e["message"] for e in errors)


def _queue_error(count: int) -> dict[str, Any]:
    flow = {"start": "a", "nodes": {"a": {"type": "queue", "queue": "sales"}}}
    [error] = problems(flow, known_queues={f"q{i:02d}" for i in range(count)})
    return error


@pytest.mark.parametrize(
    ("error", "japanese"),
    [
        (catalogue.problem("x", "link_unknown", node="gone"), "「gone」というノードはありません"),
        (_queue_error(13), f"「sales」というキューはありません（キュー: {TEN} ほか 3 個）"),
        (_queue_error(0), "「sales」というキューはありません（このテナントにはまだキューがありません）"),
        (catalogue.problem("x", "open_date_no_hours", date="2026-05-03", weekday="sun"),
         "2026-05-03 は日曜で、weekly にその曜日の時間がないため休みのままです"),
        (catalogue.problem("x", "key_pattern", in_key=True), "キーが正しくありません: キーは 0〜9・*・# の1文字です"),
        (catalogue.problem("", "version_conflict", saved=3, base=2),
         "編集を始めたバージョン 2 のあとに、バージョン 3 が保存されました。まずその内容を確認してください"),
        ({"field": "", "message": "something new"}, "something new"),  # no code: shown as it is
    ],
)  # fmt: skip
def test_problems_keep_their_names_and_numbers(error: dict[str, Any], japanese: str) -> None:
    assert problem_text("ja", error) == japanese


def test_the_api_message_is_unchanged_by_the_codes() -> None:
    """The English words stay what the API and the user guide said before the codes."""
    error = _queue_error(13)
    assert error["message"] == (f"no queue named 'sales' in this tenant (queues: {TEN} and 3 more)")
    assert error["params"] == {"queue": "sales", "queues": TEN, "more": 3}
    key = catalogue.problem("nodes.m.options", "key_pattern", in_key=True)
    assert key["message"] == "not a valid key: one key: 0–9, * or #"
