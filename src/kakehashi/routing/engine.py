"""The ACD: which agent gets which caller, decided in memory in O(log n).

One :class:`Engine` per tenant holds its queues, their members and the callers waiting. It does no I/O and
knows no clock: callers pass ``now`` (seconds). The call controller turns its decisions into driver commands
and persists them.

How it decides (docs/routing.md has the long version):

* Waiting callers are ordered by **priority** (higher first), then by **place** (who came first). A caller's
  place is a sequence number taken when they first queued; it survives skill escalation, a missed agent and
  an overflow to another queue, so nobody loses their turn.
* Members have a **level** (1 is tried first, like a penalty in Asterisk; a skill level for skill queues).
  A new caller may be given members up to the queue's start level; **escalation** rules widen that after a
  wait (``after 30 s → level 2``).
* Free members of a queue sit in one ordered set per level, sorted by the queue's **strategy**:
  longest idle (着信均等分配), fewest calls, round robin with memory, or ring-all (every free member of the
  best level rings at once). Taking the first of an ordered set is O(log n): no scan over agents.
* An agent in several queues who becomes free takes the best caller of the queue with the highest
  **weight**, then the highest priority, then the oldest place.
* Wrap-up time belongs to the agent, not to a queue membership (an agent in three queues is not freed three
  times); it comes from the queue of the call they just finished.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sortedcontainers import SortedList

MAX_LEVEL = 9


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # 後処理
    BREAK = "break"  # 離席 (with an aux code)
    MISSED = "missed"  # did not answer a call offered to them; back to work when they say so


#: States an agent may choose (the others follow from calls).
CHOOSABLE = frozenset({AgentState.LOGGED_OUT, AgentState.AVAILABLE, AgentState.BREAK})
#: While busy with a call, a chosen state waits until the call and its wrap-up are over.
BUSY = frozenset({AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP})

STRATEGIES = ("longest_idle", "fewest_calls", "round_robin", "ring_all")


class AgentStateError(ValueError):
    pass


@dataclass(frozen=True)
class QueueRules:
    name: str
    strategy: str = "longest_idle"
    weight: int = 0
    wrap_up_s: float = 30.0
    ring_timeout_s: float = 15.0
    max_wait_s: float | None = None
    max_length: int | None = None
    overflow_action: str = "none"  # none | queue | voicemail | callback
    overflow_queue: str | None = None
    escalation: tuple[tuple[float, int], ...] = ()  # (after seconds of waiting, highest member level allowed)
    start_level: int = 1
    sl_threshold_s: float = 20.0
    sticky_agent_s: float | None = None  # same agent as last time, if they are free and the call was recent
    rank_priority: tuple[tuple[str, int], ...] = ()  # customer rank → caller priority (VIP → 10)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")

    def level_after(self, waited_s: float) -> int:
        """The highest member level a caller who has waited ``waited_s`` may be given."""
        level = self.start_level
        for after_s, max_level in self.escalation:
            if waited_s >= after_s:
                level = max(level, max_level)
        return min(level, MAX_LEVEL)


@dataclass(eq=False)
class Waiting:
    """A caller (or a callback request) waiting for an agent."""

    ref: str
    queue: str
    priority: int
    place: int  # global order of arrival; kept for life
    since: float  # when the place was taken
    level: int  # members up to this level may take it
    preferred: str | None = None
    kind: str = "call"  # "call" | "callback"
    token: int = 0  # heap entries with an older token are stale (lazy deletion)
    ringing: bool = False  # offered to agents right now
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """Ring these agents for this caller (one agent, or several for ring-all)."""

    waiting: Waiting
    agents: tuple[str, ...]


@dataclass(eq=False)
class AgentRec:
    name: str
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None
    since: float = 0.0
    idle_since: float = 0.0
    calls_taken: int = 0
    queues: dict[str, int] = field(default_factory=dict)  # queue → level
    free_keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # queue → key in its free set
    pending: tuple[AgentState, str | None] | None = None  # chosen while busy
    ringing_for: str | None = None
    call_queue: str | None = None  # the queue of the call they are on (for wrap-up time)


@dataclass(eq=False)
class _Queue:
    rules: QueueRules
    members: dict[str, int] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)  # round-robin position of each member
    free: dict[int, SortedList] = field(default_factory=dict)  # level → free members, best first
    waiting: dict[int, list[tuple[int, int, int, Waiting]]] = field(default_factory=dict)  # level → heap
    last_rr: int = -1
    count: int = 0
    states: dict[AgentState, int] = field(default_factory=lambda: dict.fromkeys(AgentState, 0))  # members per state


class Engine:
    """The ACD of one tenant."""

    def __init__(self, queues: Iterable[QueueRules] = ()) -> None:
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, AgentRec] = {}
        self._waiting: dict[str, Waiting] = {}
        # Who rings for which caller: answering and giving up look here instead of scanning every agent, so a
        # call's work does not grow with the floor (2,000 agents route as fast as 500).
        self._ringing: dict[str, set[str]] = {}
        self._seq: dict[str, int] = {}  # agent → order added: ring-all partners are reported in that order
        self._places = itertools.count()
        self._tokens = itertools.count(1)
        self._rr = itertools.count()
        for rules in queues:
            self.set_queue(rules)

    # -- configuration --------------------------------------------------------------------------------

    def set_queue(self, rules: QueueRules) -> None:
        """Add a queue or change its rules (members and waiting callers stay)."""
        existing = self._queues.get(rules.name)
        if existing is None:
            self._queues[rules.name] = _Queue(rules)
            return
        strategy_changed = existing.rules.strategy != rules.strategy
        members = {a: lvl for a, lvl in existing.members.items() if self._agents[a].free_keys.get(rules.name)}
        for agent in members:
            self._unfree_in(self._agents[agent], existing)
        existing.rules = rules
        if strategy_changed:
            existing.free.clear()
        for agent in members:
            self._free_in(self._agents[agent], existing)

    def rules(self, queue: str) -> QueueRules:
        return self._queues[queue].rules

    def has_queue(self, queue: str) -> bool:
        return queue in self._queues

    def queue_names(self) -> list[str]:
        return list(self._queues)

    def add_agent(self, name: str) -> AgentRec:
        rec = self._agents.get(name)
        if rec is None:
            rec = self._agents[name] = AgentRec(name)
            self._seq[name] = len(self._seq)
        return rec

    def agent(self, name: str) -> AgentRec:
        try:
            return self._agents[name]
        except KeyError:
            raise AgentStateError(f"unknown agent {name}") from None

    def agents(self) -> Iterable[AgentRec]:
        return self._agents.values()

    def has_agent(self, name: str) -> bool:
        """Whether the engine knows the agent (a member of a queue, or restored from their stored state)."""
        return name in self._agents

    def ringing(self, ref: str) -> tuple[str, ...]:
        """The agents whose phones ring for ``ref`` now (several under ring-all), in the order they were added."""
        return tuple(self._in_order(self._ringing.get(ref, ())))

    def member_states(self, queue: str) -> dict[str, int]:
        """How many of the queue's members are in each state (for live views). Counted as states change (a
        few queues per agent), so asking costs nothing per call however many members the queue has."""
        return {state.value: n for state, n in self._queues[queue].states.items() if n}

    def set_member(self, agent: str, queue: str, level: int = 1) -> None:
        rec, q = self.add_agent(agent), self._queues[queue]
        if not 1 <= level <= MAX_LEVEL:
            raise ValueError(f"level must be 1..{MAX_LEVEL}")
        self._unfree_in(rec, q)
        if agent not in q.members:
            q.states[rec.state] += 1
        q.members[agent] = level
        q.order.setdefault(agent, next(self._rr))
        rec.queues[queue] = level
        if rec.state is AgentState.AVAILABLE:
            self._free_in(rec, q)

    def remove_member(self, agent: str, queue: str) -> None:
        rec, q = self._agents[agent], self._queues[queue]
        self._unfree_in(rec, q)
        if q.members.pop(agent, None) is not None:
            q.states[rec.state] -= 1
        rec.queues.pop(queue, None)

    # -- callers ----------------------------------------------------------------------------------------

    def offer(
        self,
        ref: str,
        queue: str,
        now: float,
        *,
        priority: int = 0,
        preferred: str | None = None,
        kind: str = "call",
        place: int | None = None,
        since: float | None = None,
        info: dict[str, Any] | None = None,
    ) -> Assignment | None:
        """A caller enters ``queue``: an agent for them now, or ``None`` (they wait). ``place``/``since`` keep
        the turn of a caller who was already waiting (overflow from another queue, a reloaded callback)."""
        q = self._queues[queue]
        since = now if since is None else since
        waiting = Waiting(
            ref=ref,
            queue=queue,
            priority=priority,
            place=next(self._places) if place is None else place,
            since=since,
            level=q.rules.level_after(now - since),
            preferred=preferred,
            kind=kind,
            info=info or {},
        )
        self._waiting[ref] = waiting
        q.count += 1
        return self._place(waiting, now)

    def remove(self, ref: str) -> Waiting | None:
        """The caller left the queue (hung up, overflowed, was sent elsewhere)."""
        waiting = self._waiting.pop(ref, None)
        if waiting is not None:
            waiting.token = 0
            self._queues[waiting.queue].count -= 1
        return waiting

    def escalate(self, ref: str, now: float) -> Assignment | None:
        """Widen the levels a waiting caller may be given, by the time they have waited; their place stays."""
        waiting = self._waiting.get(ref)
        if waiting is None:
            return None
        q = self._queues[waiting.queue]
        level = q.rules.level_after(now - waiting.since)
        if level <= waiting.level:
            return None
        waiting.level = level
        return None if waiting.ringing else self._place(waiting, now)

    def waiting(self, ref: str) -> Waiting | None:
        return self._waiting.get(ref)

    def waiting_count(self, queue: str) -> int:
        return self._queues[queue].count

    def waiting_in(self, queue: str) -> list[Waiting]:
        """Callers waiting in ``queue``, in the order they will be served (for display; O(n log n))."""
        found = [w for w in self._waiting.values() if w.queue == queue]
        return sorted(found, key=lambda w: (-w.priority, w.place))

    # -- agents -----------------------------------------------------------------------------------------

    def choose_state(self, name: str, state: AgentState, now: float, reason: str | None = None) -> list[Assignment]:
        """The agent picks a state. While busy with a call it is kept for when the call (and wrap-up) ends;
        a caller may be given to them at once when they become available."""
        rec = self.agent(name)
        if state not in CHOOSABLE:
            raise AgentStateError(f"an agent cannot choose {state.value}")
        if state is AgentState.BREAK and not reason:
            raise AgentStateError("a break needs a reason (aux code)")
        if rec.state in BUSY:
            rec.pending = (state, reason)
            return []
        return self._enter(rec, state, now, reason)

    def answered(self, ref: str, agent: str, now: float) -> list[Assignment]:
        """``agent`` picked up ``ref``: they are on the call; ring-all partners are free again."""
        rec = self.agent(agent)
        others = [self._agents[name] for name in self._in_order(self._ringing.pop(ref, ())) if name != agent]
        waiting = self._waiting.pop(ref, None)
        if waiting is not None:
            waiting.token, waiting.ringing = 0, False
            self._queues[waiting.queue].count -= 1
            rec.call_queue = waiting.queue
        self._unring(rec)
        rec.calls_taken += 1
        self._set(rec, AgentState.ON_CALL, now)
        out: list[Assignment] = []
        for other in others:
            other.ringing_for = None
            out += self._enter(other, AgentState.AVAILABLE, now, keep_idle=True)
        return out

    def ring_ended(self, ref: str, now: float, *, missed: bool) -> tuple[list[str], list[Assignment]]:
        """Ringing for ``ref`` stopped without an answer. ``missed``: the agents did not pick up in time — they
        go to MISSED and the caller, still waiting, goes to the next agent in their old place. Otherwise the
        caller hung up (call :meth:`remove` first): the agents are free again and may take other callers.
        Returns the agents who were ringing and the new assignments."""
        ringing = [self._agents[name] for name in self._in_order(self._ringing.pop(ref, ()))]
        out: list[Assignment] = []
        for rec in ringing:
            rec.ringing_for = None
            if missed:
                self._set(rec, AgentState.MISSED, now)
            else:
                out += self._enter(rec, AgentState.AVAILABLE, now, keep_idle=True)
        waiting = self._waiting.get(ref)
        if waiting is not None:
            waiting.ringing = False
            if (found := self._place(waiting, now)) is not None:
                out.append(found)
        return [a.name for a in ringing], out

    def reserve(self, agent: str, ref: str, queue: str | None, now: float) -> None:
        """A transfer rings ``agent`` directly for ``ref`` (not through a queue): they must be available.
        :meth:`answered` or :meth:`ring_ended` follow as for a queued caller."""
        rec = self.agent(agent)
        if rec.state is not AgentState.AVAILABLE:
            raise AgentStateError(f"{agent} is {rec.state.value}, not available")
        self._ring(rec, ref)
        rec.call_queue = queue
        self._set(rec, AgentState.RINGING, now)

    def wrap_up_s(self, queue: str | None) -> float:
        """The wrap-up time after a call of ``queue`` (none for a queue this engine does not have)."""
        return self._queues[queue].rules.wrap_up_s if queue in self._queues else 0.0

    def call_finished(self, agent: str, now: float) -> float:
        """The agent's call ended: wrap-up starts; returns its length (from the call's queue)."""
        rec = self.agent(agent)
        self._set(rec, AgentState.WRAP_UP, now)
        return self.wrap_up_s(rec.call_queue)

    def resume_wrap_up(self, agent: str, queue: str | None, now: float) -> float:
        """After a restart: the agent is back in the wrap-up of a call of ``queue`` (their state before, when
        not available, follows it, as a choice made during a call does); returns the queue's wrap-up time."""
        rec = self.agent(agent)
        if rec.state is not AgentState.AVAILABLE:
            rec.pending = (rec.state, rec.reason)
        self._unring(rec)
        rec.call_queue = queue
        self._set(rec, AgentState.WRAP_UP, now)
        return self.wrap_up_s(queue)

    def wrap_up_done(self, agent: str, now: float) -> list[Assignment]:
        """Wrap-up is over: the agent's chosen state (or available) follows."""
        rec = self.agent(agent)
        if rec.state is not AgentState.WRAP_UP:
            return []
        rec.call_queue = None
        state, reason = rec.pending or (AgentState.AVAILABLE, None)
        rec.pending = None
        return self._enter(rec, state, now, reason)

    # -- internals ----------------------------------------------------------------------------------------

    def _enter(
        self, rec: AgentRec, state: AgentState, now: float, reason: str | None = None, *, keep_idle: bool = False
    ) -> list[Assignment]:
        self._set(rec, state, now, reason)
        if state is not AgentState.AVAILABLE:
            self._unfree(rec)
            return []
        if not keep_idle:
            rec.idle_since = now
        found = self._match_agent(rec, now)
        if found is not None:
            return [found]
        for queue in rec.queues:
            self._free_in(rec, self._queues[queue])
        return []

    def _set(self, rec: AgentRec, state: AgentState, now: float, reason: str | None = None) -> None:
        if state is not AgentState.AVAILABLE:
            self._unfree(rec)
        if state is not rec.state:
            before = rec.state
            for queue in rec.queues:
                counts = self._queues[queue].states
                counts[before] -= 1
                counts[state] += 1
        rec.state, rec.reason, rec.since = state, reason if state is AgentState.BREAK else None, now

    def _key(self, rec: AgentRec, q: _Queue) -> tuple[Any, ...]:
        match q.rules.strategy:
            case "fewest_calls":
                return (rec.calls_taken, rec.idle_since, rec.name)
            case "round_robin":
                return (q.order[rec.name], rec.name)
            case _:
                return (rec.idle_since, rec.name)

    def _free_in(self, rec: AgentRec, q: _Queue) -> None:
        if q.rules.name in rec.free_keys or rec.name not in q.members:
            return
        key = self._key(rec, q)
        q.free.setdefault(q.members[rec.name], SortedList()).add(key)
        rec.free_keys[q.rules.name] = key

    def _unfree_in(self, rec: AgentRec, q: _Queue) -> None:
        key = rec.free_keys.pop(q.rules.name, None)
        if key is not None:
            q.free[q.members[rec.name]].remove(key)

    def _unfree(self, rec: AgentRec) -> None:
        for queue in list(rec.free_keys):
            self._unfree_in(rec, self._queues[queue])

    def _place(self, waiting: Waiting, now: float) -> Assignment | None:
        """Give a caller free agents now, or put them in line by priority and place."""
        found = self._match_call(waiting, now)
        if found is None:
            waiting.token = next(self._tokens)
            entry = (-waiting.priority, waiting.place, waiting.token, waiting)
            heapq.heappush(self._queues[waiting.queue].waiting.setdefault(waiting.level, []), entry)
        return found

    def _head(self, heap: list[tuple[int, int, int, Waiting]]) -> Waiting | None:
        while heap:
            _, _, token, waiting = heap[0]
            if token == waiting.token and waiting.ref in self._waiting:
                return waiting
            heapq.heappop(heap)  # stale: escalated, answered or gone
        return None

    def _match_call(self, waiting: Waiting, now: float) -> Assignment | None:
        """Free agents for a caller, best level first, by the queue's strategy."""
        q = self._queues[waiting.queue]
        if waiting.preferred:
            rec = self._agents.get(waiting.preferred)
            level = q.members.get(waiting.preferred)
            if rec and level is not None and level <= waiting.level and q.rules.name in rec.free_keys:
                return self._assign(waiting, [rec], now)
        for level in range(1, waiting.level + 1):
            free = q.free.get(level)
            if not free:
                continue
            if q.rules.strategy == "ring_all":
                chosen = [self._agents[key[-1]] for key in free]
            else:
                chosen = [self._pick(q, free)]
            return self._assign(waiting, chosen, now)
        return None

    def _pick(self, q: _Queue, free: SortedList) -> AgentRec:
        """The first free member by the strategy's order; round robin starts after the last one given a call."""
        if q.rules.strategy != "round_robin":
            return self._agents[free[0][-1]]
        i = free.bisect_left((q.last_rr + 1,))
        key = free[i if i < len(free) else 0]
        q.last_rr = key[0]
        return self._agents[key[-1]]

    def _match_agent(self, rec: AgentRec, now: float) -> Assignment | None:
        """The best waiting caller for an agent who just became free, across their queues."""
        best: tuple[tuple[int, int, int], Waiting] | None = None
        for queue, level in rec.queues.items():
            q = self._queues[queue]
            if not q.count:
                continue
            for allowed, heap in q.waiting.items():
                if allowed < level:
                    continue
                head = self._head(heap)
                if head is None:
                    continue
                rank = (-q.rules.weight, -head.priority, head.place)
                if best is None or rank < best[0]:
                    best = (rank, head)
        if best is None:
            return None
        return self._assign(best[1], [rec], now)

    def _assign(self, waiting: Waiting, agents: list[AgentRec], now: float) -> Assignment:
        waiting.token, waiting.ringing = 0, True  # out of the heaps until answered or back in line
        for rec in agents:
            self._ring(rec, waiting.ref)
            self._set(rec, AgentState.RINGING, now)
        return Assignment(waiting, tuple(a.name for a in agents))

    def _ring(self, rec: AgentRec, ref: str) -> None:
        self._unring(rec)
        rec.ringing_for = ref
        self._ringing.setdefault(ref, set()).add(rec.name)

    def _unring(self, rec: AgentRec) -> None:
        ref, rec.ringing_for = rec.ringing_for, None
        if ref is None:
            return
        names = self._ringing.get(ref)
        if names is not None:
            names.discard(rec.name)
            if not names:
                del self._ringing[ref]

    def _in_order(self, names: Iterable[str]) -> list[str]:
        return sorted(names, key=self._seq.__getitem__)
