"""Checking an IVR flow before it is saved: every problem at once, each at the place it is.

``validate_flow`` answers a :class:`~kakehashi.ivr.flow.Flow` or raises ``ValidationFailed`` whose
``errors`` are ``{"field": "nodes.menu1.options.3", "message": "...", "code": "link_unknown", "params": {…}}`` —
the field is the path into the flow's JSON (node ids and keys as the admin wrote them, ``else`` for a branch's
other way); the code and its parameters are listed in :mod:`kakehashi.ivr.problems`, which makes the English
message (pages render their own language from the code).

The rules, in the order they are checked:

1. **Shape** (pydantic): node types, fields, patterns, limits — at most :data:`MAX_NODES` nodes.
2. **Per node**: queues exist in the tenant; a ``set`` names a queue or a skill (not both), and a skill is the
   skill of one of the tenant's queues;
   ``collect`` ``min_digits`` ≤ ``max_digits``; opening ranges ``open < close``; ``open_dates`` neither closed
   nor on a day without hours; a ``branch`` tests exactly one thing, and a variable it tests is collected by
   some ``collect`` that is not ``sensitive`` (those values are kept masked); a ``set`` sets something.
3. **Links**: ``start`` and every ``next``/``options``/``on_fail``/… name an existing node.
4. **Graph** (only when every link is good, else the findings would be noise):

   - every node is reachable from ``start``;
   - no loop that never waits for the caller. A loop is fine when it goes through an edge that needs a key
     press — a ``menu`` option or a ``collect``'s ``next``. Failure and timeout edges (``on_fail``, a callback
     ``decline``) do *not* count: a silent caller would go round such a loop for ever, retry limits or not
     (they start again each time the node is entered);
   - from every node some exit can be reached (``queue``, ``transfer``, ``voicemail``, ``hangup`` or a
     ``callback_offer``, whose accept key ends the IVR part). Every node but an exit has a way out that needs
     no key press, so a node without a way to an exit always leads into a loop of the kind above: the loop
     is reported once, the nodes leading into it each;
   - a ``queue`` or ``callback_offer`` without a queue of its own is reached only on paths where a ``set``
     node chose a queue or a skill.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Set
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from kakehashi.ivr.calendar import WEEKDAYS, minutes
from kakehashi.ivr.flow import (
    EXITS,
    Branch,
    CallbackOffer,
    Collect,
    Flow,
    Hours,
    Menu,
    Node,
    Notice,
    Play,
    SetRoute,
    ToQueue,
    successors,
)
from kakehashi.ivr.problems import problem
from kakehashi.kit.errors import ValidationFailed

MAX_NODES = 500
#: Node types that end the IVR part of a call (a callback offer does when the caller accepts).
EXIT_TYPES = frozenset({*EXITS, "callback_offer"})
NODE_TYPES = (
    "play",
    "notice",
    "menu",
    "collect",
    "hours",
    "branch",
    "set",
    "queue",
    "transfer",
    "voicemail",
    "callback_offer",
    "hangup",
)
_DIGITS = re.compile(r"^[0-9*#]+$")

Errors = list[dict[str, Any]]


def validate_flow(definition: Any, *, known_queues: set[str], known_skills: Set[str] = frozenset()) -> Flow:
    """The parsed flow, or ``ValidationFailed`` listing every problem (see the module doc). ``known_skills``:
    the skills of the tenant's skill queues."""
    errors = _size_errors(definition)
    if errors:
        raise _failed(errors)
    try:
        flow = Flow.model_validate(definition)
    except ValidationError as exc:
        raise _failed([_shape_error(e) for e in exc.errors()]) from None
    errors = list(_node_errors(flow, known_queues, known_skills))
    link_errors = list(_link_errors(flow))
    errors += link_errors
    if not link_errors:
        errors += _graph_errors(flow)
    if errors:
        raise _failed(errors)
    return flow


def problems(definition: Any, *, known_queues: set[str], known_skills: Set[str] = frozenset()) -> Errors:
    """Every problem of a flow (empty when it is valid): :func:`validate_flow` without the exception."""
    try:
        validate_flow(definition, known_queues=known_queues, known_skills=known_skills)
    except ValidationFailed as exc:
        return exc.errors
    return []


def _failed(errors: Errors) -> ValidationFailed:
    return ValidationFailed(f"the flow has {len(errors)} problem(s)", errors=errors)


def _size_errors(definition: Any) -> Errors:
    nodes = definition.get("nodes") if isinstance(definition, Mapping) else None
    if isinstance(nodes, Mapping) and len(nodes) > MAX_NODES:
        return [problem("nodes", "too_many_nodes", max=MAX_NODES, count=len(nodes))]
    return []


# --- 1. shape ---------------------------------------------------------------------------------------------

_PATTERNS = {
    r"^[A-Za-z0-9_\-]+$": "node_id_pattern",
    r"^[0-9*#]$": "key_pattern",
    r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$": "time_pattern",
    r"^[a-z][a-z0-9_]{0,29}$": "var_pattern",
}
#: pydantic's error types → our codes for a wrong value (its English message is kept as ``detail``).
_VALUE_CODES = {
    "string_type": "value.string",
    "int_type": "value.integer",
    "int_parsing": "value.integer",
    "int_from_float": "value.integer",
    "float_type": "value.number",
    "float_parsing": "value.number",
    "finite_number": "value.number",
    "bool_type": "value.boolean",
    "bool_parsing": "value.boolean",
    "list_type": "value.list",
    "date_type": "value.date",
    "date_parsing": "value.date",
    "date_from_datetime_parsing": "value.date",
    "date_from_datetime_inexact": "value.date",
    "greater_than_equal": "value.ge",
    "greater_than": "value.gt",
    "less_than_equal": "value.le",
    "less_than": "value.lt",
    "literal_error": "value.choice",
    "enum": "value.choice",
    "string_too_short": "value.too_short",
    "string_too_long": "value.too_long",
    "too_short": "value.too_few",
    "too_long": "value.too_many",
}


def _shape_error(err: ErrorDetails) -> dict[str, Any]:
    """A pydantic error at the path the admin knows: the node's type tag pydantic adds is left out."""
    loc = list(err["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc.pop()
    if len(loc) >= 3 and loc[0] == "nodes":
        del loc[2]  # ('nodes', id, <type tag>, field…)
    field = ".".join(str(part) for part in loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    code: str
    params: dict[str, Any] = {}
    if kind == "missing":
        code = "required"
    elif kind == "extra_forbidden":
        code, params = ("unknown_field", {"name": str(loc[-1])}) if loc else ("unknown_field_here", {})
    elif kind == "union_tag_invalid":
        code, params = "unknown_node_type", {"type": str(ctx.get("tag", "")), "types": ", ".join(NODE_TYPES)}
    elif kind == "union_tag_not_found":
        code, params = "node_type_missing", {"types": ", ".join(NODE_TYPES)}
    elif kind == "string_pattern_mismatch" and str(ctx.get("pattern")) in _PATTERNS:
        code = _PATTERNS[str(ctx["pattern"])]
    elif kind in {"model_type", "model_attributes_type", "dict_type"}:
        code = "object"
    else:
        # JSON-safe context only (pydantic may put an exception or a pattern object there).
        safe = {k: v if isinstance(v, int | float | str) else str(v) for k, v in ctx.items()}
        code, params = _VALUE_CODES.get(kind, "value.invalid"), {**safe, "detail": err["msg"]}
    if is_key:
        params["in_key"] = True
    return problem(field, code, **params)


# --- 2. each node on its own ------------------------------------------------------------------------------


def _node_errors(flow: Flow, known_queues: set[str], known_skills: Set[str]) -> Iterator[dict[str, Any]]:
    collected = {node.var for node in flow.nodes.values() if isinstance(node, Collect)}
    masked = {node.var for node in flow.nodes.values() if isinstance(node, Collect) and node.sensitive}
    for node_id, node in flow.nodes.items():
        at = f"nodes.{node_id}"
        queue = getattr(node, "queue", None)
        if queue is not None and queue not in known_queues:
            yield _unknown_queue(f"{at}.queue", queue, known_queues)
        match node:
            case Collect() if node.min_digits > node.max_digits:
                yield problem(f"{at}.min_digits", "digits_min_over_max", min=node.min_digits, max=node.max_digits)
            case Hours():
                yield from _schedule_errors(f"{at}.schedule", node)
            case Branch():
                yield from _condition_errors(f"{at}.when", node, collected, masked)
            case SetRoute() if node.queue is None and node.priority is None and node.skill is None:
                yield problem(at, "set_nothing")
            case SetRoute() if node.skill is not None:
                if node.queue is not None:
                    yield problem(f"{at}.skill", "set_queue_and_skill")
                elif node.skill not in known_skills:
                    yield _unknown_skill(f"{at}.skill", node.skill, known_skills)
            case _:
                pass


def _unknown_queue(at: str, queue: str, queues: set[str]) -> dict[str, Any]:
    """A queue the tenant does not have, with the ones it has (the first ten)."""
    if not queues:
        return problem(at, "queue_unknown_none", queue=queue)
    names = sorted(queues)
    if len(names) > 10:
        return problem(at, "queue_unknown_more", queue=queue, queues=", ".join(names[:10]), more=len(names) - 10)
    return problem(at, "queue_unknown", queue=queue, queues=", ".join(names))


def _unknown_skill(at: str, skill: str, skills: Set[str]) -> dict[str, Any]:
    if not skills:
        return problem(at, "skill_unknown_none", skill=skill)
    return problem(at, "skill_unknown", skill=skill, skills=", ".join(sorted(skills)))


def _schedule_errors(at: str, node: Hours) -> Iterator[dict[str, Any]]:
    schedule = node.schedule
    for day, ranges in schedule.weekly.items():
        for index, (opens, closes) in enumerate(ranges):
            if minutes(opens) >= minutes(closes):
                yield problem(f"{at}.weekly.{day}.{index}", "hours_close_before_open", opens=opens, closes=closes)
    closed = set(schedule.closed_dates)
    for index, extra in enumerate(schedule.open_dates):
        weekday = WEEKDAYS[extra.weekday()]
        if extra in closed:
            yield problem(f"{at}.open_dates.{index}", "open_date_closed", date=str(extra))
        elif not schedule.weekly.get(weekday):
            yield problem(f"{at}.open_dates.{index}", "open_date_no_hours", date=str(extra), weekday=weekday)


def _condition_errors(at: str, node: Branch, collected: set[str], masked: set[str]) -> Iterator[dict[str, Any]]:
    when = node.when
    tests = [
        name
        for name, present in (
            ("known", when.known is not None),
            ("rank_in", when.rank_in is not None),
            ("open_complaint", when.open_complaint is not None),
            ("var", when.var is not None or when.equals is not None),
        )
        if present
    ]
    if len(tests) != 1:
        yield problem(at, "branch_one_test_found", found=", ".join(tests)) if tests else problem(at, "branch_one_test")
    if when.rank_in is not None:
        if not when.rank_in:
            yield problem(f"{at}.rank_in", "rank_list_empty")
        for index, rank in enumerate(when.rank_in):
            if not rank.strip() or len(rank) > 20:
                yield problem(f"{at}.rank_in.{index}", "rank_length")
    if (when.var is None) != (when.equals is None):
        missing = "equals" if when.equals is None else "var"
        yield problem(f"{at}.{missing}", "var_equals_pair")
    if when.var is not None and when.var not in collected:
        if collected:
            yield problem(f"{at}.var", "var_not_collected", var=when.var, collected=", ".join(sorted(collected)))
        else:
            yield problem(f"{at}.var", "var_not_collected_none", var=when.var)
    elif when.var in masked:
        yield problem(f"{at}.var", "var_sensitive", var=when.var)
    if when.equals is not None and not _DIGITS.match(when.equals):
        yield problem(f"{at}.equals", "equals_not_digits", value=when.equals)


# --- 3. links ---------------------------------------------------------------------------------------------


def links(node: Node) -> list[tuple[str, str, bool]]:
    """``(field, target, waits)`` per way out of a node, in the order of :func:`successors`; ``waits``: taken
    only after the caller pressed keys (a menu option, a collect's ``next``)."""
    match node:
        case Play() | Notice() | SetRoute():
            return [("next", node.next, False)]
        case Menu():
            return [
                *((f"options.{key}", target, True) for key, target in node.options.items()),
                ("on_fail", node.on_fail, False),
            ]
        case Collect():
            return [("next", node.next, True), ("on_fail", node.on_fail, False)]
        case Hours():
            return [("open", node.open, False), ("closed", node.closed, False)]
        case Branch():
            return [("then", node.then, False), ("else", node.otherwise, False)]
        case CallbackOffer():
            return [("decline", node.decline, False)]
        case _:
            return []


def _link_errors(flow: Flow) -> Iterator[dict[str, Any]]:
    if flow.start not in flow.nodes:
        yield problem("start", "start_unknown", node=flow.start)
    for node_id, node in flow.nodes.items():
        for field, target, _waits in links(node):
            if target not in flow.nodes:
                yield problem(f"nodes.{node_id}.{field}", "link_unknown", node=target)


# --- 4. the graph -----------------------------------------------------------------------------------------


def _graph_errors(flow: Flow) -> Errors:
    nodes = flow.nodes
    reachable = _reach(flow.start, lambda n: successors(nodes[n]))
    errors = [problem(f"nodes.{n}", "unreachable") for n in nodes if n not in reachable]
    live = [n for n in nodes if n in reachable]  # definition order
    loops = _loop_errors(flow, live)
    errors += [error for error, _members in loops]
    looping = {n for _error, members in loops for n in members}
    exits = [n for n in live if nodes[n].type in EXIT_TYPES]
    preds: dict[str, list[str]] = {n: [] for n in live}
    for n in live:
        for target in successors(nodes[n]):
            preds[target].append(n)
    can_exit = _reach_all(exits, lambda n: preds[n])
    errors += [
        problem(f"nodes.{n}", "no_exit")
        for n in live
        if n not in can_exit and n not in looping  # a loop's own nodes: its error says it all
    ]
    errors += _queue_choice_errors(flow, live, preds)
    return errors


def _reach(start: str, step: Any) -> set[str]:
    return _reach_all([start], step)


def _reach_all(starts: Iterable[str], step: Any) -> set[str]:
    seen = set(starts)
    todo = deque(seen)
    while todo:
        for nxt in step(todo.popleft()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _loop_errors(flow: Flow, live: list[str]) -> list[tuple[dict[str, Any], set[str]]]:
    """One error per loop made only of edges that do not wait for a key press (module doc), with the nodes
    of the loop."""
    quick = {n: [t for _f, t, waits in links(flow.nodes[n]) if not waits] for n in live}
    errors: list[tuple[int, dict[str, Any], set[str]]] = []
    for component in _strongly_connected(live, quick):
        members = set(component)
        first = min(component, key=live.index)
        if len(component) == 1 and first not in quick[first]:
            continue
        cycle = _cycle_through(first, quick, members)
        error = problem(f"nodes.{first}", "loop", cycle=" → ".join(cycle))
        errors.append((live.index(first), error, members))
    return [(error, members) for _at, error, members in sorted(errors, key=lambda found: found[0])]


def _strongly_connected(order: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a 500-node chain would overflow Python's recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in order:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found


def _cycle_through(first: str, edges: dict[str, list[str]], members: set[str]) -> list[str]:
    """The shortest loop from ``first`` back to itself inside its component, as node ids."""
    came_from: dict[str, str] = {}
    todo = deque([first])
    while todo:
        node = todo.popleft()
        for nxt in edges[node]:
            if nxt not in members:
                continue
            if nxt == first:
                path = [node]
                while path[-1] != first:
                    path.append(came_from[path[-1]])
                return [*reversed(path), first]
            if nxt not in came_from:
                came_from[nxt] = node
                todo.append(nxt)
    return [first, first]  # not reached: a component of one with a loop is found on the first step


def _sets_queue(node: Node) -> bool:
    return isinstance(node, SetRoute) and (node.queue is not None or node.skill is not None)


def _needs_chosen_queue(node: Node) -> bool:
    return isinstance(node, ToQueue | CallbackOffer) and node.queue is None


def _queue_choice_errors(flow: Flow, live: list[str], preds: dict[str, list[str]]) -> Errors:
    """A queue exit (or callback offer) without its own queue needs a ``set`` with a queue or a skill on every
    path to it.

    "Chosen on every path" is a must-analysis: start unchosen, everything else optimistically chosen, then
    lower to a fixpoint (a node is chosen on entry when every predecessor is chosen on exit).
    """
    nodes = flow.nodes
    needs = [n for n in live if _needs_chosen_queue(nodes[n])]
    if not needs:
        return []
    chosen_in = {n: n != flow.start for n in live}

    def chosen_out(n: str) -> bool:
        return chosen_in[n] or _sets_queue(nodes[n])

    changed = True
    while changed:
        changed = False
        for n in live:
            if n == flow.start or not chosen_in[n]:
                continue
            if not all(chosen_out(p) for p in preds[n]):
                chosen_in[n] = False
                changed = True
    errors = []
    for n in needs:
        if chosen_in[n]:
            continue
        path = _unchosen_path(flow, n)
        errors.append(problem(f"nodes.{n}.queue", "queue_not_chosen", node=n, path=" → ".join(path)))
    return errors


def _unchosen_path(flow: Flow, target: str) -> list[str]:
    """A path from start to ``target`` that passes no ``set`` node choosing a queue."""
    came_from: dict[str, str | None] = {flow.start: None}
    todo = deque([flow.start])
    while todo:
        node = todo.popleft()
        if node == target:
            break
        if _sets_queue(flow.nodes[node]):
            continue
        for nxt in successors(flow.nodes[node]):
            if nxt not in came_from:
                came_from[nxt] = node
                todo.append(nxt)
    path: list[str] = []
    step: str | None = target if target in came_from else None
    while step is not None:
        path.append(step)
        step = came_from[step]
    return list(reversed(path)) or [target]
