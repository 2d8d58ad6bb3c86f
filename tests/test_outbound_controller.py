"""Dialing for an agent (``routing.outbound``) on the simulator, virtual time, no database: the agent is held,
the number dialled; a person answering rings the agent; every other line result frees the agent and is reported
with the requester's tag."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from kakehashi.kit.timers import VirtualClock
from kakehashi.routing.controller import CallControlError, CallController, RoutingListener
from kakehashi.routing.directory import StaticDirectory
from kakehashi.routing.engine import AgentState, QueueRules
from kakehashi.telephony.drivers.sim.driver import NO_ANSWER_TIMEOUT_S, SimDriver

TENANT = 1
CUSTOMER = "03-5555-0001"


@dataclass
class Outcomes(RoutingListener):
    dialed: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    results: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)

    def outbound_dialed(self, tenant_id: int, ref: str, agent: str, tag: dict[str, Any], at: datetime) -> None:
        self.dialed.append((ref, agent, tag))

    def outbound_result(
        self, tenant_id: int, ref: str, agent: str, tag: dict[str, Any], result: str, at: datetime
    ) -> None:
        self.results.append((ref, agent, tag, result))


def rig() -> tuple[SimDriver, CallController, Outcomes]:
    sim = SimDriver(VirtualClock())
    directory = StaticDirectory()
    directory.queues[TENANT] = [QueueRules("sales", wrap_up_s=20)]
    directory.members[TENANT] = [("sato", "sales", 1)]
    sim.set_agent("sato", answer_after=1)
    log = Outcomes()
    controller = CallController(sim, sim.clock, directory, log).attach()
    controller.choose_state(TENANT, "sato", AgentState.AVAILABLE)
    return sim, controller, log


def dial(controller: CallController, *, ring_timeout_s: float = 25.0, wrap_up_s: float = 60.0) -> str:
    return controller.dial_for_agent(
        TENANT, "sato", CUSTOMER, caller_id="0312345678", ring_timeout_s=ring_timeout_s, wrap_up_s=wrap_up_s,
        tag={"lead": 7},
    )  # fmt: skip


def state(controller: CallController) -> AgentState:
    return controller.engine(TENANT).agent("sato").state


def test_a_person_answers_the_agent_talks_then_wraps_up_for_the_callers_time() -> None:
    sim, controller, log = rig()
    sim.set_number(CUSTOMER, "answer", ring_seconds=5, talk_s=30)
    ref = dial(controller)
    assert log.dialed == [(ref, "sato", {"lead": 7})]
    assert state(controller) is AgentState.RINGING  # held for the call while it rings out
    sim.clock.advance(5)
    assert log.results == [(ref, "sato", {"lead": 7}, "answered")]
    sim.clock.advance(1)
    assert state(controller) is AgentState.ON_CALL
    sim.clock.advance(30)
    assert state(controller) is AgentState.WRAP_UP  # the requester's wrap-up (60 s), not the queue's (20 s)
    sim.clock.advance(40)
    assert state(controller) is AgentState.WRAP_UP
    sim.clock.advance(21)
    assert state(controller) is AgentState.AVAILABLE


@pytest.mark.parametrize(
    ("outcome", "result", "after"),
    [("busy", "busy", 2), ("invalid", "invalid", 1), ("answering_machine", "machine", 12)],
)
def test_a_line_that_reaches_nobody_frees_the_agent_with_its_result(outcome: str, result: str, after: float) -> None:
    sim, controller, log = rig()
    sim.set_number(CUSTOMER, outcome, ring_seconds=8)
    ref = dial(controller)
    sim.clock.advance(after)
    assert log.results == [(ref, "sato", {"lead": 7}, result)]
    assert state(controller) is AgentState.AVAILABLE


def test_the_calls_own_ring_time_out_counts_as_no_answer() -> None:
    sim, controller, log = rig()
    sim.set_number(CUSTOMER, "no_answer")
    ref = dial(controller, ring_timeout_s=12)
    sim.clock.advance(12)
    assert log.results == [(ref, "sato", {"lead": 7}, "no_answer")]
    assert state(controller) is AgentState.AVAILABLE
    sim.clock.advance(NO_ANSWER_TIMEOUT_S)
    assert len(log.results) == 1  # the driver's own time-out, later, reports nothing more


def test_the_person_hangs_up_before_the_agent_picks_up_is_an_abandon() -> None:
    sim, controller, log = rig()
    sim.set_agent("sato", answers=False)
    sim.set_number(CUSTOMER, "answer", ring_seconds=3)
    ref = dial(controller)
    sim.clock.advance(3)
    sim.caller_hangs_up(ref)
    assert [r[3] for r in log.results] == ["answered", "abandoned"]
    assert state(controller) is AgentState.AVAILABLE


def test_only_an_available_agent_is_dialled_for() -> None:
    sim, controller, log = rig()
    sim.set_number(CUSTOMER, "answer", ring_seconds=60)
    dial(controller)
    with pytest.raises(CallControlError, match="not available"):
        dial(controller)
    controller.choose_state(TENANT, "sato", AgentState.BREAK, "lunch")
    assert len(log.dialed) == 1
