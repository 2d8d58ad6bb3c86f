"""``kakehashi bench acd``: the routing layer (call controller + ACD engine + simulator) in virtual time.

Two scenarios, one JSON:

* ``steady``: ``agents`` agents in ``queues`` queues (each agent in three), longest-idle, calls spread evenly
  over the queues at about 90 % occupancy. Reports each routing decision's time (p50/p99), calls routed per
  wall-clock second, and the Gini coefficient of calls per agent (0 = perfectly even).
* ``tv_spike``: ``spike_calls`` calls in 30 minutes on one queue with ``spike_agents`` agents, exponential
  talk and patience (Erlang A's assumptions), so the simulated service level and abandon rate can be put next
  to Erlang A's prediction for the same load, computed in the same run. Every call must end answered,
  abandoned by the caller, in voicemail or as a callback.

No database: this measures routing. ``kakehashi bench calls`` measures the pipeline that persists events.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from typing import Any

from kakehashi.kit.timers import VirtualClock
from kakehashi.routing.controller import CallController, NumberRoute, RoutingListener
from kakehashi.routing.directory import StaticDirectory
from kakehashi.routing.engine import AgentState, QueueRules
from kakehashi.staffing.erlang import erlang_a
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.drivers.sim.traffic import CallerModel
from kakehashi.telephony.port import Bridged, DriverEvent, Ended, Offered

TENANT = 1


class _Tally(RoutingListener):
    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}

    def deflected(self, tenant_id: int, ref: str, kind: str, *args: object) -> None:
        self.kinds[ref] = kind


class _Outcomes:
    """Follows the driver's events: when each call was offered, answered, ended."""

    def __init__(self) -> None:
        self.offered: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.agent: dict[str, str] = {}
        self.ended: dict[str, str] = {}
        self.ended_at: dict[str, float] = {}

    def __call__(self, event: DriverEvent) -> None:
        t = event.at.timestamp()
        if isinstance(event, Offered):
            self.offered[event.call_ref] = t
        elif isinstance(event, Bridged):
            self.answered[event.call_ref] = t
            self.agent[event.call_ref] = event.agent
        elif isinstance(event, Ended):
            self.ended[event.call_ref] = event.cause.value
            self.ended_at[event.call_ref] = t


def gini(values: list[int]) -> float:
    """Gini coefficient: 0 when everyone has the same, towards 1 when one has everything."""
    xs = sorted(values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return (2 * weighted) / (n * total) - (n + 1) / n


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6 if ordered else 0.0


def _rig(queues: list[QueueRules], members: list[tuple[str, str, int]], dnis: dict[str, str]) -> Any:
    sim = SimDriver(VirtualClock())
    directory = StaticDirectory()
    for queue, number in dnis.items():
        directory.add_number(number, NumberRoute(TENANT, queue=queue))
    directory.queues[TENANT] = queues
    directory.members[TENANT] = members
    outcomes = _Outcomes()
    sim.subscribe(outcomes)
    tally = _Tally()
    controller = CallController(sim, sim.clock, directory, tally, measure=True).attach()
    for agent in {m[0] for m in members}:
        sim.set_agent(agent, answer_after=0.0)
        controller.choose_state(TENANT, agent, AgentState.AVAILABLE)
    return sim, controller, outcomes, tally


def steady(*, agents: int, queues: int, calls: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    names = [f"q{i:02d}" for i in range(queues)]
    rules = [QueueRules(name, wrap_up_s=10) for name in names]
    members = [(f"a{i:04d}", names[(i * k + k) % queues], 1) for i in range(agents) for k in (1, 7, 13)]
    members = list(dict.fromkeys(members))
    numbers = {name: f"0120-{100000 + i:06d}" for i, name in enumerate(names)}
    sim, controller, outcomes, _ = _rig(rules, members, numbers)
    mean_talk, wrap = 180.0, 10.0
    talk = CallerModel(mean_talk_s=mean_talk, talk_sd_s=mean_talk / 2)  # lognormal, like real handle times
    rate = 0.9 * agents / (mean_talk + wrap)  # calls per second for ~90 % occupancy
    at = 0.0
    for i in range(calls):
        at += rng.expovariate(rate)
        queue = names[rng.randrange(queues)]

        def dial(queue: str = queue, i: int = i) -> None:
            sim.incoming(ani=f"03-{5000 + i // 10000:04d}-{i % 10000:04d}", dnis=numbers[queue], tenant_id=TENANT,
                         patience=rng.expovariate(1 / 600), talk_s=talk.talk(rng))  # fmt: skip

        sim.clock.call_later(at, dial)
    started = time.perf_counter()
    sim.clock.advance(at + 4 * 3600)
    wall = time.perf_counter() - started
    per_agent = Counter(outcomes.agent.values())
    taken = [per_agent.get(f"a{i:04d}", 0) for i in range(agents)]
    busy: Counter[str] = Counter()
    for ref, agent in outcomes.agent.items():
        busy[agent] += int(outcomes.ended_at.get(ref, outcomes.answered[ref]) - outcomes.answered[ref])
    decisions = controller.decision_ns
    return {
        "agents": agents,
        "queues": queues,
        "calls": calls,
        "simulated_hours": round(at / 3600, 2),
        "wall_s": round(wall, 3),
        "calls_per_s": round(calls / wall, 1),
        "decisions": len(decisions),
        "decision_p50_ms": round(_percentile(decisions, 0.50), 4),
        "decision_p99_ms": round(_percentile(decisions, 0.99), 4),
        "decision_max_ms": round(max(decisions) / 1e6, 4) if decisions else 0.0,
        "answered": len(outcomes.answered),
        "abandoned": len(outcomes.offered) - len(outcomes.answered),
        "gini": round(gini(taken), 4),
        "gini_talk_time": round(gini([busy.get(f"a{i:04d}", 0) for i in range(agents)]), 4),
        "calls_per_agent_mean": round(statistics.fmean(taken), 1),
        "calls_per_agent_min_max": [min(taken), max(taken)],
    }


def tv_spike(
    *, calls: int, agents: int, minutes: float, aht_s: float, patience_s: float, t_s: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    rules = [QueueRules("tv", wrap_up_s=0, ring_timeout_s=30, sl_threshold_s=t_s)]
    members = [(f"tv{i:04d}", "tv", 1) for i in range(agents)]
    sim, _, outcomes, tally = _rig(rules, members, {"tv": "0120-777-777"})
    horizon = minutes * 60
    rate = calls / horizon
    at, planned = 0.0, 0
    while planned < calls:
        at += rng.expovariate(rate)
        if at > horizon:
            break
        planned += 1

        def dial(i: int = planned) -> None:
            sim.incoming(ani=f"090-{i // 10000:04d}-{i % 10000:04d}", dnis="0120-777-777", tenant_id=TENANT,
                         patience=rng.expovariate(1 / patience_s), talk_s=rng.expovariate(1 / aht_s))  # fmt: skip

        sim.clock.call_later(at, dial)
    started = time.perf_counter()
    sim.clock.advance(horizon + 6 * 3600)
    wall = time.perf_counter() - started
    offered = outcomes.offered
    answered = outcomes.answered
    waits = [answered[ref] - offered[ref] for ref in answered]
    within = sum(1 for w in waits if w <= t_s)
    ended_by: Counter[str] = Counter()
    for ref in offered:
        if ref in answered:
            ended_by["answered"] += 1
        elif ref in tally.kinds:
            ended_by[tally.kinds[ref]] += 1
        elif outcomes.ended.get(ref) == "normal":
            ended_by["abandoned"] += 1
        else:
            ended_by[f"other:{outcomes.ended.get(ref, 'never ended')}"] += 1
    predicted = erlang_a(rate * 3600, aht_s, agents, t_s, patience_s)
    n = len(offered)
    return {
        "calls": n,
        "agents": agents,
        "minutes": minutes,
        "calls_per_hour": round(rate * 3600),
        "aht_s": aht_s,
        "patience_s": patience_s,
        "threshold_s": t_s,
        "wall_s": round(wall, 3),
        "calls_per_s": round(n / wall, 1),
        "service_level": round(within / n, 4) if n else None,
        "service_level_answered": round(within / len(answered), 4) if answered else None,
        "abandon_rate": round(ended_by["abandoned"] / n, 4) if n else None,
        "outcomes": dict(ended_by),
        "every_call_ended_allowed": set(ended_by) <= {"answered", "abandoned", "voicemail", "callback"},
        "erlang_a": {
            "service_level": round(predicted.service_level, 4),
            "service_level_answered": round(predicted.service_level_answered, 4),
            "abandon_rate": round(predicted.abandon_rate, 4),
            "asa_s": round(predicted.asa_s, 2),
        },
    }


def run(
    *, agents: int = 500, queues: int = 50, calls: int = 20_000, spike_calls: int = 10_000, spike_agents: int = 300,
    seed: int = 1,
) -> dict[str, Any]:  # fmt: skip
    return {
        "steady": steady(agents=agents, queues=queues, calls=calls, seed=seed),
        "tv_spike": tv_spike(
            calls=spike_calls, agents=spike_agents, minutes=30, aht_s=60.0, patience_s=60.0, t_s=20.0, seed=seed
        ),
    }
