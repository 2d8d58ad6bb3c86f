"""The problems an IVR flow can have, as codes with parameters.

Every problem the flow checks (``ivr.validate``), the flow service and the /ivr page report is
``{"field": …, "message": …, "code": …, "params": {…}}``: ``message`` is the English text (the API's and the
user guide's words), ``code`` and ``params`` are what a page renders in its own language
(``web/strings/ivr.py`` holds the Japanese). Because the text is made from the code here, a new wording
cannot silently lose its translation: a code without a Japanese string fails ``tests/test_ivr_problems.py``.

Problems pydantic finds in a value (a wrong type, a number out of range) are ``value.<kind>`` codes whose
English is pydantic's own message (``params["detail"]``); their parameters are pydantic's context (``ge``,
``max_length``…).
"""

from __future__ import annotations

from typing import Any

from kakehashi.kit.errors import field_error

#: Code → the English text, a ``str.format`` template over the problem's parameters.
ENGLISH: dict[str, str] = {
    # 1. shape
    "required": "required",
    "unknown_field": "unknown field '{name}'",
    "unknown_field_here": "unknown field",
    "unknown_node_type": "unknown node type '{type}' (one of: {types})",
    "node_type_missing": 'every node needs a "type" (one of: {types})',
    "node_id_pattern": "node ids are 1–40 letters, digits, _ or -",
    "key_pattern": "one key: 0–9, * or #",
    "time_pattern": "a time HH:MM from 00:00 to 24:00",
    "var_pattern": "lower-case letters, digits and _, starting with a letter (at most 30)",
    "object": "must be a JSON object {{…}}",
    "too_many_nodes": "at most {max} nodes (this flow has {count})",
    # pydantic's findings in a value: its own English
    "value.string": "{detail}",
    "value.integer": "{detail}",
    "value.number": "{detail}",
    "value.boolean": "{detail}",
    "value.list": "{detail}",
    "value.date": "{detail}",
    "value.ge": "{detail}",
    "value.gt": "{detail}",
    "value.le": "{detail}",
    "value.lt": "{detail}",
    "value.choice": "{detail}",
    "value.too_short": "{detail}",
    "value.too_long": "{detail}",
    "value.too_few": "{detail}",
    "value.too_many": "{detail}",
    "value.invalid": "{detail}",
    # 2. each node
    "queue_unknown": "no queue named '{queue}' in this tenant (queues: {queues})",
    "queue_unknown_more": "no queue named '{queue}' in this tenant (queues: {queues} and {more} more)",
    "queue_unknown_none": "no queue named '{queue}' in this tenant (it has no queues yet)",
    "digits_min_over_max": "min_digits ({min}) is more than max_digits ({max})",
    "set_nothing": "a set node must set a queue, a priority or a skill",
    "set_queue_and_skill": "set a queue or a skill, not both: a skill chooses its queue",
    "skill_unknown": "no queue takes the skill '{skill}' (skills of queues: {skills})",
    "skill_unknown_none": "no queue takes the skill '{skill}' (no queue of this tenant takes its members by skill)",
    "hours_close_before_open": "opens at {opens} but closes at {closes}: the close must be later (24:00 for midnight)",
    "open_date_closed": "{date} is in closed_dates too",
    "open_date_no_hours": "{date} is a {weekday}, which has no hours in weekly: the center would stay closed",
    "branch_one_test": "give exactly one test: known, rank_in, open_complaint or var + equals",
    "branch_one_test_found": "give exactly one test: known, rank_in, open_complaint or var + equals (found: {found})",
    "rank_list_empty": "list at least one rank",
    "rank_length": "a rank is 1–20 characters",
    "var_equals_pair": "var and equals go together: the collected variable and its value",
    "var_not_collected": "no collect node stores '{var}' (collected: {collected})",
    "var_not_collected_none": "no collect node stores '{var}' (no collect node in this flow)",
    "var_sensitive": "'{var}' is collected as sensitive: kept masked, it cannot be tested",
    "equals_not_digits": "'{value}' can never match: collected values are digits",
    # 3. links
    "start_unknown": "no node '{node}' (start must name one of the nodes)",
    "link_unknown": "no node '{node}'",
    # 4. the graph
    "unreachable": "not reachable from start",
    "loop": (
        "loops without waiting for a key press: {cycle} (a caller who presses nothing would never leave; "
        "send a failure or decline path to an exit)"
    ),
    "no_exit": "no way from here to an exit (queue, transfer, voicemail, hangup or a callback offer)",
    "queue_not_chosen": (
        "no queue chosen before node {node} (e.g. {path}): name a queue here, or a queue or a skill in a set node "
        "on the way"
    ),
    # the flow service and the /ivr page
    "flow_name": "1–60 letters, digits, _ or -, starting with a letter or digit",
    "name_taken": "already taken",
    "version_conflict": (
        "version {saved} was saved after version {base}, which this edit started from: look at it first"
    ),
    "json_invalid": "not valid JSON: {reason} (line {line}, column {column})",
    "json_too_deep": "nested too deep",
    "flow_not_object": 'the flow must be a JSON object: {{"start": …, "nodes": {{…}}}}',
}

#: Prefix of a problem in a mapping's key rather than its value (``params["in_key"]``).
KEY_PREFIX = "not a valid key: "


def english(code: str, params: dict[str, Any]) -> str:
    """The English text of a problem (what the API's ``message`` says)."""
    text = ENGLISH[code].format(**params)
    return KEY_PREFIX + text if params.get("in_key") else text


def problem(field: str, code: str, **params: Any) -> dict[str, Any]:
    """One problem at ``field`` (a path into the flow's JSON): the English message with its code and parameters.
    An unknown code is a programming error (``KeyError``), caught by the tests, never shown to a user."""
    return field_error(field, english(code, params), code=code, params=params)
