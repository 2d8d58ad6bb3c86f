"""The outside world of the call-flow contract suite, played by the simulator.

A thin adapter over :class:`SimDriver`'s test helpers (``incoming``, ``set_agent``, ``set_number``…) and its
virtual clock: nothing here adds behaviour, so the simulator variants of the suite run exactly as they did
when the tests called the driver's helpers directly. ``tests/sip_world.py`` is the same world with real
phones and real time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kakehashi.kit.config import Settings
from kakehashi.telephony.drivers.sim.driver import NO_ANSWER_TIMEOUT_S, SimDriver
from kakehashi.telephony.port import TelephonyDriver


class SimWorld:
    name = "sim"
    tolerance = 0.0  # the virtual clock is exact: durations are asserted to the millisecond
    key_s = 1.0  # a simulated caller keys one digit a second
    no_answer_s = NO_ANSWER_TIMEOUT_S

    def __init__(self, sim: SimDriver) -> None:
        self.sim = sim

    # -- callers, agents, numbers ------------------------------------------------------------------------

    def incoming(
        self,
        *,
        ani: str,
        dnis: str,
        tenant_id: int,
        presses: str = "",
        patience: float | None = None,
        talk_s: float | None = None,
    ) -> str:
        return self.sim.incoming(ani=ani, dnis=dnis, tenant_id=tenant_id, presses=presses, patience=patience,
                                 talk_s=talk_s)  # fmt: skip

    def set_agent(self, name: str, *, answer_after: float = 2.0, answers: bool = True) -> None:
        self.sim.set_agent(name, answer_after=answer_after, answers=answers)

    def set_number(self, number: str, outcome: str, *, ring_seconds: float = 8.0, talk_s: float | None = None) -> None:
        self.sim.set_number(number, outcome, ring_seconds=ring_seconds, talk_s=talk_s)

    def caller_hangs_up(self, call_ref: str) -> None:
        self.sim.caller_hangs_up(call_ref)

    def consulted_agent_hangs_up(self, call_ref: str) -> None:
        self.sim.consulted_agent_hangs_up(call_ref)

    # -- what the callers heard and keyed ------------------------------------------------------------------

    def prompts_played(self, call_ref: str) -> list[str]:
        return self.sim.prompts_played(call_ref)

    def keys_on_recording(self, call_ref: str) -> str:
        return self.sim.keys_on_recording(call_ref)

    # -- time ------------------------------------------------------------------------------------------------

    def wait(self, seconds: float) -> None:
        self.sim.clock.advance(seconds)

    def until(self, check: Callable[[], bool], timeout: float) -> bool:
        """The simulator's events are synchronous: what a command causes has happened when it returns."""
        return check()

    # -- a restart -----------------------------------------------------------------------------------------

    def restarted_driver(self) -> TelephonyDriver:
        """A new driver of the same kind that knows no calls (the process restarted)."""
        return SimDriver(prefix="after-restart")

    def app_settings(self, data_dir: Path) -> Settings:
        """Settings of an app that starts this kind of driver."""
        return Settings(database_url="sqlite://", default_tenant="center")

    def close(self) -> None:
        pass
