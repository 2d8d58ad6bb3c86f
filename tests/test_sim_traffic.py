"""Simulated traffic is reproducible and has the statistics it claims (fixed seeds: no flaky tests)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.drivers.sim.traffic import (
    ArrivalProfile,
    CallerModel,
    OutboundModel,
    Spike,
    arrivals,
    plan_inbound,
    schedule_inbound,
)
from kakehashi.telephony.port import DriverEvent, Offered

TV_SLOT = ArrivalProfile(calls_per_hour=120, spikes=(Spike(start_s=3600, duration_s=1800, multiplier=20),))


def test_same_seed_same_day() -> None:
    a = plan_inbound(TV_SLOT, 3 * 3600, seed=7, known_numbers=["0312345678"])
    b = plan_inbound(TV_SLOT, 3 * 3600, seed=7, known_numbers=["0312345678"])
    assert a == b and a != plan_inbound(TV_SLOT, 3 * 3600, seed=8, known_numbers=["0312345678"])


def test_a_tv_spike_brings_twenty_times_the_calls() -> None:
    times = arrivals(TV_SLOT, 3 * 3600, random.Random(1))
    before = sum(1 for t in times if t < 1800)  # 30 min at the base rate: mean 60
    during = sum(1 for t in times if 3600 <= t < 5400)  # the 30-min slot: mean 1200
    assert abs(during - 1200) < 4 * math.sqrt(1200) and abs(before - 60) < 4 * math.sqrt(60)
    assert 12 < during / before < 30


@settings(max_examples=25, deadline=None)
@given(
    rate=st.floats(min_value=10, max_value=2000),
    multiplier=st.floats(min_value=1, max_value=30),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_counts_match_the_integral_of_the_rate(rate: float, multiplier: float, seed: int) -> None:
    profile = ArrivalProfile(rate, (Spike(600, 900, multiplier),))
    n = len(arrivals(profile, 3600, random.Random(seed)))
    mean = profile.expected(0, 3600)
    assert abs(n - mean) <= 5 * math.sqrt(mean) + 1  # Poisson: sd = sqrt(mean)


def test_callers_press_wait_and_talk_as_modelled() -> None:
    model = CallerModel(ivr_choices={"1": 0.7, "2": 0.3}, mean_patience_s=60, mean_talk_s=200, talk_sd_s=80)
    plan = plan_inbound(ArrivalProfile(3600), 4 * 3600, seed=3, known_numbers=["0312345678"], callers=model)
    n = len(plan)
    presses = Counter(c.presses for c in plan)
    assert abs(presses["1"] / n - 0.7) < 0.03
    assert abs(sum(c.patience_s for c in plan) / n - 60) < 5
    assert abs(sum(c.talk_s for c in plan) / n - 200) < 10
    assert abs(sum(c.repeat for c in plan) / n - 0.3) < 0.03
    assert all(c.ani == "0312345678" for c in plan if c.repeat)


def test_planned_callers_dial_in_at_their_times() -> None:
    driver = SimDriver()
    seen: list[DriverEvent] = []
    driver.subscribe(seen.append)
    plan = plan_inbound(ArrivalProfile(600), 600, seed=5)
    schedule_inbound(driver, plan, tenant_id=1, dnis="0120444444")
    start = driver.clock.now()
    driver.clock.advance(600)
    offers = [e for e in seen if isinstance(e, Offered)]
    assert [round((e.at - start).total_seconds(), 6) for e in offers] == [round(c.at_s, 6) for c in plan]


def test_outbound_outcomes_follow_their_probabilities() -> None:
    driver = SimDriver()
    numbers = [f"090{i:08d}" for i in range(5000)]
    decided = Counter(OutboundModel().prepare(driver, numbers, random.Random(11)).values())
    assert abs(decided["answer"] / 5000 - 0.35) < 0.03 and abs(decided["busy"] / 5000 - 0.08) < 0.02


def test_outcome_tables_must_add_up() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        OutboundModel(outcomes={"answer": 0.5, "busy": 0.2})


def test_the_simulator_forgets_the_oldest_ended_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from kakehashi.telephony.drivers.sim import driver as sim_driver

    monkeypatch.setattr(sim_driver, "KEEP_ENDED", 2)
    sim = SimDriver()
    refs = [sim.incoming(ani="03-1111-2222", dnis="0120-444-444", tenant_id=1) for _ in range(5)]
    for ref in refs:
        sim.caller_hangs_up(ref)
    assert sim.live_calls() == set()
    assert sim.prompts_played(refs[-1]) == []  # the newest ended calls are still there for the test helpers
    with pytest.raises(KeyError):
        sim.prompts_played(refs[0])  # the oldest are forgotten: a long demo does not grow
