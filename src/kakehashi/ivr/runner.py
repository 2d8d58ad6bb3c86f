"""Plays an IVR flow for one call through the telephony boundary (prompts, digits, recording) until an exit.

The runner never touches the database: what it needs to know about the caller comes in as
:class:`CallerFacts`; where the call goes is handed back as an :class:`Exit`. Digits arrive as driver events
(one key or several at a time); time-outs are the runner's own timers, so a silent caller is handled the same
on the simulator and on SIP.

A ``sensitive`` collect (a card number, a PIN) asks the driver for its keys as sensitive ones (which the calls
domain neither stores nor publishes), pauses a running recording while the caller keys them, and keeps only the
masked value (:func:`mask_digits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from kakehashi.ivr.calendar import is_open
from kakehashi.ivr.flow import (
    Branch,
    CallbackOffer,
    Collect,
    Condition,
    Flow,
    Hangup,
    Hours,
    Menu,
    Notice,
    Play,
    SetRoute,
    ToQueue,
    Transfer,
    VoicemailNode,
)
from kakehashi.telephony.port import RecordingState, TelephonyDriver

MAX_STEPS = 200  # a valid flow never runs this many steps without waiting for the caller
VISIBLE_TAIL = 4  # digits of a masked card number left readable, as on a receipt (PCI DSS allows the last 4)
TAIL_FROM_LENGTH = 12  # shorter values (PINs, security codes) are masked whole: a tail would give most away


def mask_digits(digits: str) -> str:
    """``4111111111111234`` → ``************1234``; a PIN ``1234`` → ``****``."""
    tail = VISIBLE_TAIL if len(digits) >= TAIL_FROM_LENGTH else 0
    return "*" * (len(digits) - tail) + digits[len(digits) - tail :]


@dataclass(frozen=True)
class CallerFacts:
    """What the IVR may branch on: the customer matched by the caller's number."""

    known: bool = False
    rank: str | None = None
    open_complaint: bool = False


@dataclass(frozen=True)
class Exit:
    """Where the call goes after the IVR: ``queue`` | ``transfer`` | ``voicemail`` | ``callback`` | ``hangup``.

    ``queue``, ``voicemail`` and ``callback`` name a ``queue``, or else a ``skill`` (the tenant's queue that takes
    that skill), or neither. ``variables`` are the collected values, sensitive ones masked."""

    kind: str
    queue: str | None = None
    skill: str | None = None
    priority: int | None = None
    target: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


Timer = Callable[[float, Callable[[], None]], None]


class IvrRun:
    """One caller's way through a flow. Call :meth:`start`, then feed :meth:`on_digits`; ``on_exit`` is called
    once, with where the caller goes."""

    def __init__(
        self,
        ref: str,
        flow: Flow,
        facts: CallerFacts,
        driver: TelephonyDriver,
        *,
        call_later: Timer,
        now: Callable[[], datetime],
        on_exit: Callable[[IvrRun, Exit], None],
    ) -> None:
        self.ref, self.flow, self.facts, self.driver = ref, flow, facts, driver
        self._call_later, self._now, self._on_exit = call_later, now, on_exit
        # Where a `queue` exit without its own queue goes: the last `set` naming a queue or a skill decides.
        self.queue: str | None = None
        self.skill: str | None = None
        self.priority: int | None = None
        self.variables: dict[str, str] = {}  # sensitive values masked
        self._recording = False  # started by a notice
        self._recording_paused = False  # by a sensitive collect
        self.path: list[str] = []  # node ids visited, for the call's history
        self._waiting_at: str | None = None
        self._digits = ""
        self._tries = 0
        self._generation = 0
        self.done = False

    def start(self) -> None:
        self._run(self.flow.start)

    def stop(self) -> None:
        """The caller hung up: pending timers do nothing."""
        self.done = True
        self._generation += 1

    def on_digits(self, digits: str) -> None:
        if self.done or self._waiting_at is None:
            return
        node = self.flow.nodes[self._waiting_at]
        self._digits += digits
        if isinstance(node, Menu):
            self._menu_answer(node, self._digits[:1])
        elif isinstance(node, CallbackOffer):
            self._leave_input()
            if self._digits[:1] == node.accept:
                queue, skill = self._target(node.queue)
                self._exit(Exit("callback", queue=queue, skill=skill, priority=self.priority))
            else:
                self._run(node.decline)
        elif isinstance(node, Collect):
            if "#" in self._digits or len(self._digits) >= node.max_digits:
                self._collect_done(node)
            else:
                self._arm_timer(node.timeout_s + self.driver.audio_queued_s(self.ref))  # the time-out runs between keys

    # -- internals ------------------------------------------------------------------------------------------

    def _run(self, node_id: str) -> None:
        for _ in range(MAX_STEPS):
            if self.done:
                return
            self.path.append(node_id)
            node = self.flow.nodes[node_id]
            if self._recording_paused and not _is_sensitive(node):
                self._recording_paused = False
                self.driver.record(self.ref, RecordingState.RESUMED)
            match node:
                case Play(prompt=prompt, next=nxt):
                    self.driver.play(self.ref, prompt)
                    node_id = nxt
                case Notice(prompt=prompt, record=record, next=nxt):
                    self.driver.play(self.ref, prompt)
                    if record:
                        self.driver.record(self.ref, RecordingState.STARTED)
                        self._recording = True
                    node_id = nxt
                case Hours(schedule=schedule, open=when_open, closed=when_closed):
                    node_id = when_open if is_open(schedule, self._now()) else when_closed
                case Branch(when=condition, then=then, otherwise=otherwise):
                    node_id = then if self._holds(condition) else otherwise
                case SetRoute(queue=queue, skill=skill, priority=priority, next=nxt):
                    if queue is not None:  # a queue named in the same node wins over its skill
                        self.queue, self.skill = queue, None
                    elif skill is not None:
                        self.queue, self.skill = None, skill
                    self.priority = self.priority if priority is None else priority
                    node_id = nxt
                case Menu() | Collect() | CallbackOffer():
                    self._tries = 0
                    self._ask(node_id)
                    return
                case ToQueue(queue=queue, priority=priority):
                    chosen = self.priority if priority is None else priority
                    queue, skill = self._target(queue)
                    self._exit(Exit("queue", queue=queue, skill=skill, priority=chosen))
                    return
                case Transfer(target=target):
                    self._exit(Exit("transfer", target=target))
                    return
                case VoicemailNode(prompt=prompt, queue=queue):
                    self.driver.play(self.ref, prompt)
                    queue, skill = self._target(queue)
                    self._exit(Exit("voicemail", queue=queue, skill=skill))
                    return
                case Hangup(prompt=prompt):
                    if prompt:
                        self.driver.play(self.ref, prompt)
                    self._exit(Exit("hangup"))
                    return
        raise RuntimeError(f"IVR flow loops without waiting for the caller at {node_id}")

    def _ask(self, node_id: str) -> None:
        node = self.flow.nodes[node_id]
        assert isinstance(node, Menu | Collect | CallbackOffer)
        self._waiting_at, self._digits = node_id, ""
        sensitive = _is_sensitive(node)
        if sensitive and self._recording and not self._recording_paused:
            self._recording_paused = True  # before the prompt: the caller may start keying while it plays
            self.driver.record(self.ref, RecordingState.PAUSED)
        self.driver.play(self.ref, node.prompt)
        self.driver.collect_digits(self.ref, max_digits=node.max_digits if isinstance(node, Collect) else 1,
                                   timeout_s=node.timeout_s, sensitive=sensitive)  # fmt: skip
        self._arm_timer(node.timeout_s + self.driver.audio_queued_s(self.ref))

    def _arm_timer(self, seconds: float) -> None:
        self._generation += 1
        generation = self._generation
        self._call_later(seconds, lambda: self._timed_out() if generation == self._generation else None)

    def _timed_out(self) -> None:
        if self.done or self._waiting_at is None:
            return
        node = self.flow.nodes[self._waiting_at]
        if isinstance(node, Collect):
            self._collect_done(node)
        elif isinstance(node, Menu):
            self._menu_answer(node, "")
        elif isinstance(node, CallbackOffer):
            self._leave_input()
            self._run(node.decline)

    def _menu_answer(self, node: Menu, key: str) -> None:
        at = self._leave_input()
        if key in node.options:
            self._run(node.options[key])
        elif self._tries < node.retries:
            self._tries += 1
            if node.invalid_prompt:
                self.driver.play(self.ref, node.invalid_prompt)
            self._retry(at)
        else:
            self._run(node.on_fail)

    def _collect_done(self, node: Collect) -> None:
        digits = self._digits.split("#", 1)[0][: node.max_digits]
        self._digits = ""
        at = self._leave_input()
        if len(digits) >= node.min_digits:
            self.variables[node.var] = mask_digits(digits) if node.sensitive else digits
            self._run(node.next)
        elif self._tries < node.retries:
            self._tries += 1
            self._retry(at)
        else:
            self._run(node.on_fail)

    def _retry(self, node_id: str) -> None:
        tries = self._tries
        self._ask(node_id)
        self._tries = tries

    def _leave_input(self) -> str:
        at = self._waiting_at or ""
        self._waiting_at = None
        self._generation += 1
        return at

    def _holds(self, condition: Condition) -> bool:
        if condition.known is not None:
            return self.facts.known is condition.known
        if condition.rank_in is not None:
            return self.facts.rank in condition.rank_in
        if condition.open_complaint is not None:
            return self.facts.open_complaint is condition.open_complaint
        if condition.var is not None:
            return self.variables.get(condition.var) == condition.equals
        return False

    def _target(self, own_queue: str | None) -> tuple[str | None, str | None]:
        """``(queue, skill)`` of an exit: its own queue, else what the last `set` chose."""
        return (own_queue, None) if own_queue is not None else (self.queue, self.skill)

    def _exit(self, where: Exit) -> None:
        self.done = True
        self._generation += 1
        self._on_exit(self, replace(where, variables=dict(self.variables)))


def _is_sensitive(node: object) -> bool:
    return isinstance(node, Collect) and node.sensitive
