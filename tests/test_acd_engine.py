"""The ACD's decisions, one rule at a time (pure: no database, no driver)."""

from __future__ import annotations

import random

import pytest

from kakehashi.routing.engine import AgentState, AgentStateError, Assignment, Engine, QueueRules

A, AV, BR = AgentState, AgentState.AVAILABLE, AgentState.BREAK


def engine(*queues: QueueRules, agents: dict[str, dict[str, int]] | None = None) -> Engine:
    eng = Engine(queues)
    for name, memberships in (agents or {}).items():
        for queue, level in memberships.items():
            eng.set_member(name, queue, level)
    return eng


def only(found: Assignment | list[Assignment] | None) -> tuple[str, tuple[str, ...]]:
    if isinstance(found, list):
        assert len(found) == 1, found
        found = found[0]
    assert found is not None
    return found.waiting.ref, found.agents


def serve(eng: Engine, ref: str, agent: str, now: float, talk: float = 60) -> list[Assignment]:
    """The agent answers, talks, wraps up: returns what they get next."""
    eng.answered(ref, agent, now)
    wrap = eng.call_finished(agent, now + talk)
    return eng.wrap_up_done(agent, now + talk + wrap)


def test_longest_idle_gives_the_call_to_who_waited_longest() -> None:
    eng = engine(QueueRules("orders"), agents={"a": {"orders": 1}, "b": {"orders": 1}, "c": {"orders": 1}})
    eng.choose_state("b", AV, now=0)
    eng.choose_state("a", AV, now=5)
    eng.choose_state("c", AV, now=9)
    assert only(eng.offer("call1", "orders", now=10)) == ("call1", ("b",))
    assert only(eng.offer("call2", "orders", now=11)) == ("call2", ("a",))
    serve(eng, "call1", "b", now=12)
    # b is free again (idle since 12 + 60 + 30), c has been idle since 9: c is next
    assert only(eng.offer("call3", "orders", now=200)) == ("call3", ("c",))


def test_fewest_calls_prefers_the_agent_with_fewer_answered_calls() -> None:
    eng = engine(QueueRules("q", strategy="fewest_calls", wrap_up_s=0), agents={"a": {"q": 1}, "b": {"q": 1}})
    eng.choose_state("a", AV, now=0)
    eng.choose_state("b", AV, now=1)
    assert only(eng.offer("c1", "q", now=2)) == ("c1", ("a",))
    serve(eng, "c1", "a", now=3, talk=1)  # a is free again at 4 with 1 call; b has 0
    assert only(eng.offer("c2", "q", now=10)) == ("c2", ("b",))
    serve(eng, "c2", "b", now=11, talk=1)
    assert only(eng.offer("c3", "q", now=20)) == ("c3", ("a",))  # a tie on calls: longest idle breaks it


def test_round_robin_remembers_where_it_stopped() -> None:
    eng = engine(
        QueueRules("q", strategy="round_robin", wrap_up_s=0),
        agents={"a": {"q": 1}, "b": {"q": 1}, "c": {"q": 1}},
    )
    for i, name in enumerate("cba"):  # idle order must not matter for round robin
        eng.choose_state(name, AV, now=i)
    got = []
    for i in range(6):
        ref, (agent,) = only(eng.offer(f"c{i}", "q", now=10 + i))
        got.append(agent)
        serve(eng, ref, agent, now=10 + i, talk=0)
    assert got == ["a", "b", "c", "a", "b", "c"]


def test_ring_all_rings_every_free_member_and_frees_the_others_on_answer() -> None:
    eng = engine(QueueRules("q", strategy="ring_all"), agents={"a": {"q": 1}, "b": {"q": 1}, "c": {"q": 2}})
    for name in "abc":
        eng.choose_state(name, AV, now=0)
    _, agents = only(eng.offer("c1", "q", now=1))
    assert sorted(agents) == ["a", "b"]  # the best level only
    assert eng.agent("c").state is AV
    eng.answered("c1", "b", now=3)
    assert eng.agent("a").state is AV and eng.agent("b").state is A.ON_CALL


def test_priority_callers_are_served_first_then_by_place() -> None:
    eng = engine(QueueRules("q"), agents={"a": {"q": 1}})
    eng.offer("normal1", "q", now=0)
    eng.offer("normal2", "q", now=1)
    eng.offer("vip", "q", now=2, priority=10)
    found = eng.choose_state("a", AV, now=3)
    assert only(found) == ("vip", ("a",))
    assert [w.ref for w in eng.waiting_in("q")] == ["vip", "normal1", "normal2"]  # vip: ringing a


def test_skill_escalation_widens_levels_after_the_wait_and_keeps_the_place() -> None:
    rules = QueueRules("tech", escalation=((30, 2),))
    eng = engine(rules, agents={"expert": {"tech": 1}, "junior": {"tech": 2}})
    eng.choose_state("junior", AV, now=0)
    assert eng.offer("first", "tech", now=0) is None  # only level 1 may take it now
    assert eng.offer("second", "tech", now=10) is None
    assert eng.escalate("second", now=25) is None  # not yet 30 s for anyone
    found = eng.escalate("first", now=30)
    assert only(found) == ("first", ("junior",))
    # the expert frees up: "second" is still ahead of anyone who came later
    eng.offer("third", "tech", now=31)
    assert only(eng.choose_state("expert", AV, now=32)) == ("second", ("expert",))


def test_an_agent_in_several_queues_serves_the_heaviest_queue_first() -> None:
    eng = engine(QueueRules("light", weight=0), QueueRules("heavy", weight=5), agents={"a": {"light": 1, "heavy": 1}})
    eng.offer("old-light", "light", now=0)
    eng.offer("new-heavy", "heavy", now=50)
    assert only(eng.choose_state("a", AV, now=60)) == ("new-heavy", ("a",))


def test_equal_weight_queues_serve_the_oldest_caller_across_queues() -> None:
    eng = engine(QueueRules("x"), QueueRules("y"), agents={"a": {"x": 1, "y": 1}})
    eng.offer("y-old", "y", now=0)
    eng.offer("x-new", "x", now=5)
    assert only(eng.choose_state("a", AV, now=6)) == ("y-old", ("a",))


def test_missed_ring_sends_the_caller_to_the_next_agent_in_the_same_place() -> None:
    eng = engine(QueueRules("q"), agents={"slow": {"q": 1}, "next": {"q": 1}})
    eng.choose_state("slow", AV, now=0)
    assert only(eng.offer("c1", "q", now=1)) == ("c1", ("slow",))
    eng.offer("c2", "q", now=2)
    assert only(eng.choose_state("next", AV, now=3)) == ("c2", ("next",))  # c1 is ringing slow
    agents, follow = eng.ring_ended("c1", now=16, missed=True)
    assert agents == ["slow"] and eng.agent("slow").state is A.MISSED
    assert follow == []  # next is busy with c2; c1 waits at the head of the line
    assert [w.ref for w in eng.waiting_in("q")] == ["c1", "c2"]  # c2 is ringing next


def test_missed_ring_goes_straight_to_a_free_agent() -> None:
    eng = engine(QueueRules("q"), agents={"slow": {"q": 1}, "free": {"q": 1}})
    eng.choose_state("slow", AV, now=0)
    eng.choose_state("free", AV, now=1)
    assert only(eng.offer("c1", "q", now=2)) == ("c1", ("slow",))
    _, follow = eng.ring_ended("c1", now=17, missed=True)
    assert only(follow) == ("c1", ("free",))


def test_caller_hanging_up_while_ringing_frees_the_agent() -> None:
    eng = engine(QueueRules("q"), agents={"a": {"q": 1}})
    eng.choose_state("a", AV, now=0)
    eng.offer("c1", "q", now=1)
    eng.offer("c2", "q", now=2)
    eng.remove("c1")
    _, follow = eng.ring_ended("c1", now=3, missed=False)
    assert only(follow) == ("c2", ("a",))


def test_same_agent_as_last_time_when_free() -> None:
    eng = engine(QueueRules("q"), agents={"a": {"q": 1}, "b": {"q": 1}})
    eng.choose_state("a", AV, now=0)
    eng.choose_state("b", AV, now=1)
    assert only(eng.offer("c1", "q", now=2, preferred="b")) == ("c1", ("b",))


def test_break_chosen_during_a_call_starts_after_wrap_up() -> None:
    eng = engine(QueueRules("q", wrap_up_s=45), agents={"a": {"q": 1}})
    eng.choose_state("a", AV, now=0)
    eng.offer("c1", "q", now=1)
    eng.answered("c1", "a", now=2)
    assert eng.choose_state("a", BR, now=3, reason="lunch") == []
    assert eng.agent("a").state is A.ON_CALL
    assert eng.call_finished("a", now=60) == 45  # the wrap-up of the call's queue
    eng.offer("c2", "q", now=61)
    assert eng.wrap_up_done("a", now=105) == []
    assert (eng.agent("a").state, eng.agent("a").reason) == (BR, "lunch")
    with pytest.raises(AgentStateError):
        eng.choose_state("a", BR, now=106)  # a break needs a reason
    with pytest.raises(AgentStateError):
        eng.choose_state("a", A.ON_CALL, now=106)


def test_queue_length_and_longest_waiting_order() -> None:
    eng = engine(QueueRules("q"))
    for i in range(5):
        eng.offer(f"c{i}", "q", now=i, priority=i % 2)
    assert eng.waiting_count("q") == 5
    assert [w.ref for w in eng.waiting_in("q")] == ["c1", "c3", "c0", "c2", "c4"]
    eng.remove("c3")
    assert eng.waiting_count("q") == 4


def test_the_ringing_index_and_member_counts_match_a_scan_of_the_floor() -> None:
    """Who rings for whom and each queue's members per state are kept as things happen (a call's work must
    not scan the floor); after a random day of calls, ring-all, misses, hang-ups, breaks, transfers' reserves
    and membership changes they equal what a scan of every agent says."""
    rng = random.Random(7)
    queues = [QueueRules("q0"), QueueRules("q1", strategy="ring_all"), QueueRules("q2", strategy="fewest_calls")]
    eng = engine(*queues, agents={f"a{i}": {f"q{k}": 1 for k in range(3) if (i + k) % 2} for i in range(12)})
    names = [f"a{i}" for i in range(12)]
    ringing: dict[str, str] = {}  # ref → queue, for callers being offered now
    now = 0.0

    def check() -> None:
        for q in ("q0", "q1", "q2"):
            members = [rec for rec in eng.agents() if q in rec.queues]
            scanned: dict[str, int] = {}
            for rec in members:
                scanned[rec.state.value] = scanned.get(rec.state.value, 0) + 1
            assert eng.member_states(q) == scanned
        for ref in {rec.ringing_for for rec in eng.agents() if rec.ringing_for}:
            assert set(eng.ringing(ref)) == {rec.name for rec in eng.agents() if rec.ringing_for == ref}

    for step in range(3000):
        now += 1
        roll = rng.random()
        name = rng.choice(names)
        rec = eng.agent(name)
        try:
            if roll < 0.25:
                eng.choose_state(name, rng.choice([AV, AV, BR, A.LOGGED_OUT]), now, "lunch")
            elif roll < 0.5:
                ref = f"c{step}"
                found = eng.offer(ref, rng.choice(["q0", "q1", "q2"]), now)
                ringing[ref] = found.waiting.queue if found else ""
            elif roll < 0.6 and rec.ringing_for:
                eng.answered(rec.ringing_for, name, now)
            elif roll < 0.7 and rec.ringing_for:
                eng.ring_ended(rec.ringing_for, now, missed=rng.random() < 0.5)
            elif roll < 0.75 and rec.ringing_for:
                eng.remove(rec.ringing_for)
                eng.ring_ended(rec.ringing_for, now, missed=False)
            elif roll < 0.85 and rec.state is A.ON_CALL:
                eng.call_finished(name, now)
            elif roll < 0.92 and rec.state is A.WRAP_UP:
                eng.wrap_up_done(name, now)
            elif roll < 0.95 and rec.state is AV:
                eng.reserve(name, f"t{step}", "q0", now)
            elif roll < 0.98:
                queue = rng.choice(["q0", "q1", "q2"])
                if queue in rec.queues:
                    eng.remove_member(name, queue)
                else:
                    eng.set_member(name, queue, 1)
        except AgentStateError:
            pass
        if step % 50 == 0:
            check()
    check()
