"""An in-memory :class:`~kakehashi.routing.controller.Directory` for the benchmark, tests and scripted demos."""

from __future__ import annotations

from dataclasses import dataclass, field

from kakehashi.kit.phone import try_normalize_phone
from kakehashi.routing.engine import AgentState, QueueRules
from kakehashi.routing.live_types import Caller, NumberRoute, TenantSetup


@dataclass
class StaticDirectory:
    numbers: dict[str, NumberRoute] = field(default_factory=dict)  # by E.164
    queues: dict[int, list[QueueRules]] = field(default_factory=dict)
    members: dict[int, list[tuple[str, str, int]]] = field(default_factory=dict)
    callers: dict[tuple[int, str], Caller] = field(default_factory=dict)  # (tenant, E.164)
    agents: dict[int, list[tuple[str, AgentState, str | None]]] = field(default_factory=dict)
    skill_queues: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # (skill, queue)

    def add_number(self, dnis: str, route: NumberRoute) -> None:
        self.numbers[try_normalize_phone(dnis) or dnis] = route

    def number(self, dnis: str) -> NumberRoute | None:
        return self.numbers.get(try_normalize_phone(dnis) or dnis)

    def caller(self, tenant_id: int, ani: str, call: tuple[str, str] | None = None) -> Caller:
        """The caller set for (tenant, number), or an unknown caller; ``call`` is not needed here."""
        return self.callers.get((tenant_id, try_normalize_phone(ani) or ani), Caller())

    def setup(self, tenant_id: int) -> TenantSetup:
        return TenantSetup(
            tuple(self.queues.get(tenant_id, ())),
            tuple(self.members.get(tenant_id, ())),
            tuple(self.agents.get(tenant_id, ())),
            tuple(self.skill_queues.get(tenant_id, ())),
        )
