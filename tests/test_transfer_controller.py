"""Call control from the agent desktop on the simulator (virtual time, no database): answer, hold, hang-up,
blind transfers to an agent, a queue or an outside number, and the attended transfer's consultation."""

from __future__ import annotations

import pytest

from kakehashi.routing.controller import TRANSFER_PRIORITY, CallControlError
from kakehashi.routing.engine import AgentState, QueueRules
from kakehashi.telephony.port import Consult, ConsultState, EndCause, HoldChanged, Transferred
from test_routing_controller import TENANT, Rig, call, rig


def talking(wrap_up_s: float = 30, ring_timeout_s: float = 15) -> tuple[Rig, str]:
    """sato talks to a caller from the orders queue; suzuki and tanaka are available (support, orders)."""
    r = rig(
        QueueRules("orders", wrap_up_s=wrap_up_s, ring_timeout_s=ring_timeout_s),
        QueueRules("support", wrap_up_s=wrap_up_s),
        members={"sato": {"orders": 1}, "suzuki": {"support": 1}, "tanaka": {"orders": 1}},
    )
    r.login("sato")
    ref = call(r, "0312345678")
    r.wait(2)
    assert r.bridged(ref) == "sato"
    r.login("suzuki", "tanaka")
    return r, ref


def consults(r: Rig, ref: str) -> list[tuple[str, ConsultState]]:
    return [(e.target, e.state) for e in r.events if isinstance(e, Consult) and e.call_ref == ref]


def holds(r: Rig, ref: str) -> list[bool]:
    return [e.on_hold for e in r.events if isinstance(e, HoldChanged) and e.call_ref == ref]


def test_blind_transfer_to_an_agent_rings_them_and_the_first_agent_wraps_up() -> None:
    r, ref = talking(wrap_up_s=30)
    r.controller.transfer(TENANT, ref, "sato", "agent", "suzuki")
    assert (r.state("sato"), r.state("suzuki")) == (AgentState.WRAP_UP, AgentState.RINGING)
    assert [e.target for e in r.events if isinstance(e, Transferred)] == ["suzuki"]
    r.wait(2)
    assert r.controller.live(ref).agent == "suzuki"  # type: ignore[union-attr]
    assert r.state("suzuki") is AgentState.ON_CALL
    r.wait(28)  # the first agent's wrap-up is over; the call goes on with suzuki
    assert r.state("sato") is AgentState.AVAILABLE
    r.sim.caller_hangs_up(ref)
    assert r.state("suzuki") is AgentState.WRAP_UP


def test_a_transfer_nobody_answers_puts_the_caller_ahead_in_the_calls_queue() -> None:
    r, ref = talking(ring_timeout_s=15)
    r.sim.set_agent("suzuki", answers=False)
    r.controller.transfer(TENANT, ref, "sato", "agent", "suzuki")
    r.wait(15)
    assert r.state("suzuki") is AgentState.MISSED
    waiting = r.controller.engine(TENANT).waiting(ref)
    assert waiting is not None
    assert (waiting.queue, waiting.priority, waiting.ringing) == ("orders", TRANSFER_PRIORITY, True)
    r.wait(2)
    assert r.controller.live(ref).agent == "tanaka"  # type: ignore[union-attr]


def test_a_transfer_to_a_busy_agent_is_refused_and_changes_nothing() -> None:
    r, ref = talking()
    r.controller.choose_state(TENANT, "suzuki", AgentState.BREAK, "lunch")
    with pytest.raises(CallControlError, match="not available"):
        r.controller.transfer(TENANT, ref, "sato", "agent", "suzuki")
    assert r.state("sato") is AgentState.ON_CALL
    assert r.controller.live(ref).agent == "sato"  # type: ignore[union-attr]


def test_blind_transfer_into_a_queue_goes_ahead_of_waiting_callers() -> None:
    r, ref = talking()
    r.controller.choose_state(TENANT, "suzuki", AgentState.BREAK, "lunch")
    first = call(r, "0311112222")  # waits in support? no: the number's queue is orders → tanaka takes it
    r.wait(2)
    assert r.bridged(first) == "tanaka"
    r.controller.transfer(TENANT, ref, "sato", "queue", "support")
    waiting = r.controller.engine(TENANT).waiting(ref)
    assert waiting is not None and (waiting.queue, waiting.priority) == ("support", TRANSFER_PRIORITY)
    r.controller.choose_state(TENANT, "suzuki", AgentState.AVAILABLE)
    r.wait(2)
    assert r.controller.live(ref).agent == "suzuki"  # type: ignore[union-attr]
    assert r.state("sato") is AgentState.WRAP_UP


def test_blind_transfer_to_an_outside_number_ends_the_call_as_transferred() -> None:
    r, ref = talking()
    r.controller.transfer(TENANT, ref, "sato", "number", "0312345679")
    ended = r.ended(ref)
    assert ended is not None and ended.cause is EndCause.TRANSFERRED
    assert r.state("sato") is AgentState.WRAP_UP


def test_attended_transfer_consults_then_hands_the_caller_to_the_colleague() -> None:
    r, ref = talking(wrap_up_s=30)
    r.controller.consult(TENANT, ref, "sato", "suzuki")
    assert holds(r, ref) == [True] and r.state("suzuki") is AgentState.RINGING
    with pytest.raises(CallControlError, match="no colleague"):
        r.controller.complete_transfer(TENANT, ref, "sato")  # suzuki has not answered yet
    r.wait(2)
    assert consults(r, ref) == [("suzuki", ConsultState.RINGING), ("suzuki", ConsultState.CONNECTED)]
    assert (r.state("sato"), r.state("suzuki")) == (AgentState.ON_CALL, AgentState.ON_CALL)
    r.controller.complete_transfer(TENANT, ref, "sato")
    assert holds(r, ref) == [True, False]
    assert r.controller.live(ref).agent == "suzuki"  # type: ignore[union-attr]
    assert (r.state("sato"), r.state("suzuki")) == (AgentState.WRAP_UP, AgentState.ON_CALL)
    r.controller.finish_handoff(TENANT, "sato")  # sato closed their notes early
    assert r.state("sato") is AgentState.AVAILABLE
    with pytest.raises(CallControlError):
        r.controller.finish_handoff(TENANT, "sato")
    r.sim.caller_hangs_up(ref)
    assert r.state("suzuki") is AgentState.WRAP_UP


def test_a_cancelled_consultation_gives_the_caller_back_and_frees_the_colleague() -> None:
    r, ref = talking()
    r.controller.consult(TENANT, ref, "sato", "suzuki")
    r.wait(2)
    with pytest.raises(CallControlError, match="complete or cancel"):
        r.controller.hold(TENANT, ref, "sato", on=False)
    r.controller.cancel_transfer(TENANT, ref, "sato")
    assert consults(r, ref)[-1] == ("suzuki", ConsultState.ENDED)
    assert holds(r, ref) == [True, False]
    assert (r.state("sato"), r.state("suzuki")) == (AgentState.ON_CALL, AgentState.AVAILABLE)
    r.controller.hold(TENANT, ref, "sato", on=True)  # the call is sato's again
    assert holds(r, ref)[-1] is True


def test_a_consultation_nobody_answers_times_out_and_the_colleague_is_missed() -> None:
    r, ref = talking(ring_timeout_s=15)
    r.sim.set_agent("suzuki", answers=False)
    r.controller.consult(TENANT, ref, "sato", "suzuki")
    r.wait(15)
    assert r.state("suzuki") is AgentState.MISSED
    assert consults(r, ref)[-1] == ("suzuki", ConsultState.ENDED) and holds(r, ref) == [True, False]
    assert r.state("sato") is AgentState.ON_CALL


def test_the_colleague_hanging_up_ends_the_consultation() -> None:
    r, ref = talking()
    r.controller.consult(TENANT, ref, "sato", "suzuki")
    r.wait(2)
    r.sim.consulted_agent_hangs_up(ref)
    assert (r.state("sato"), r.state("suzuki")) == (AgentState.ON_CALL, AgentState.AVAILABLE)
    assert holds(r, ref) == [True, False]


def test_the_caller_hanging_up_during_a_consultation_ends_both_parts() -> None:
    r, ref = talking()
    r.controller.consult(TENANT, ref, "sato", "suzuki")
    r.wait(2)
    r.sim.caller_hangs_up(ref)
    assert (r.state("sato"), r.state("suzuki")) == (AgentState.WRAP_UP, AgentState.AVAILABLE)


def test_only_the_agent_on_the_call_controls_it_and_hangup_starts_wrap_up() -> None:
    r, ref = talking()
    for command in (
        lambda: r.controller.hold(TENANT, ref, "suzuki", on=True),
        lambda: r.controller.hangup(TENANT, ref, "suzuki"),
        lambda: r.controller.transfer(TENANT, ref, "suzuki", "queue", "support"),
        lambda: r.controller.consult(TENANT, ref, "suzuki", "tanaka"),
        lambda: r.controller.hold(TENANT + 1, ref, None, on=True),  # another tenant's supervisor
    ):
        with pytest.raises(CallControlError):
            command()
    with pytest.raises(CallControlError, match="no queue"):
        r.controller.transfer(TENANT, ref, "sato", "queue", "nowhere")
    r.controller.hold(TENANT, ref, None, on=True)  # a supervisor may
    r.controller.hangup(TENANT, ref, "sato")
    assert r.ended(ref) is not None and r.state("sato") is AgentState.WRAP_UP
    with pytest.raises(CallControlError, match="not in progress"):
        r.controller.hangup(TENANT, ref, "sato")


def test_a_ringing_call_is_answered_from_the_desktop() -> None:
    r = rig(QueueRules("orders"), members={"sato": {"orders": 1}, "suzuki": {"orders": 2}})
    r.sim.set_agent("sato", answers=False)
    r.login("sato")
    ref = call(r, "0312345678")
    with pytest.raises(CallControlError, match="not ringing at suzuki"):
        r.controller.answer(TENANT, ref, "suzuki")
    with pytest.raises(CallControlError, match="unknown agent"):
        r.controller.answer(TENANT, ref, "nobody")
    r.controller.answer(TENANT, ref, "sato")
    assert r.bridged(ref) == "sato" and r.state("sato") is AgentState.ON_CALL
