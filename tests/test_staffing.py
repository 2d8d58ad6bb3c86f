"""Staffing (Erlang B, C, A): textbook values, independent computations of Erlang A, properties, the API.

References used below (each value was also recomputed here in exact rational arithmetic or by a method
that shares no code with ``staffing.erlang``):

- Erlang B tables (e.g. any teletraffic handbook; ITU-T "Teletraffic Engineering Handbook", Iversen):
  B(N=5, A=2) = 0.0367, B(N=10, A=5) = 0.01838, B(N=14, A=10) = 0.0568; and the 1 %-blocking column:
  10 lines 4.461 E, 30 lines 20.337 E, 100 lines 84.064 E.
- Erlang C, pyworkforce README (``ErlangC(transactions=100, aht=3, asa=20/60, interval=30)``) and the CRAN
  package ErlangC README: 100 calls per 30 min, AHT 180 s, T = 20 s → A = 10 E, 14 agents,
  P(wait) 0.1741319, SL 0.88835, ASA 7.8359 s, occupancy 0.7142857; with 30 % shrinkage 20 positions.
- Erlang C, the classic step-by-step example (360 calls per half hour, 4-minute calls, 55 agents, T = 15 s):
  A = 48 E, occupancy 87.3 %, P(wait) 0.2387, ASA 8.18 s, SL(15 s) 84.6 %.
- Erlang C, 360 calls/h with AHT 240 s (A = 24 E), 80/20: 29 agents (SL 84.0 %; 28 give 76.1 %).
- Erlang A with θ = μ (patience = AHT): the number in system is that of M/M/∞, Poisson(A)
  (Mandelbaum & Zeltyn, "The Palm/Erlang-A queue, with applications to call centers", 2007, §3).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import random
from collections import deque
from fractions import Fraction
from heapq import heappop, heappush

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from conftest import ClientAs
from kakehashi.kit.context import Role
from kakehashi.staffing import erlang
from kakehashi.staffing.erlang import (
    agents_needed_a,
    agents_needed_c,
    erlang_a,
    erlang_b,
    erlang_c,
    erlang_c_probability,
    with_shrinkage,
)

# --- independent reference computations ------------------------------------------------------------------


def exact_b(agents: int, load: Fraction) -> Fraction:
    """Erlang B from its definition, (A^N/N!) / Σ_{k≤N} A^k/k!, in exact rational arithmetic."""
    terms = [load**k / math.factorial(k) for k in range(agents + 1)]
    return terms[-1] / sum(terms)


def exact_c(agents: int, load: Fraction) -> Fraction:
    """Erlang C from its textbook form, (A^N/N!·N/(N−A)) / (Σ_{k<N} A^k/k! + A^N/N!·N/(N−A)), exactly."""
    top = load**agents / math.factorial(agents) * Fraction(agents) / (agents - load)
    return top / (sum(load**k / math.factorial(k) for k in range(agents)) + top)


def stationary_by_elimination(lam: float, mu: float, theta: float, agents: int, states: int) -> list[float]:
    """π of the M/M/N+M chain truncated at ``states`` states, by Gaussian elimination of π·Q = 0 with one
    equation replaced by Σπ = 1 (no use of the birth–death product form)."""
    size = states
    q = [[0.0] * size for _ in range(size)]
    for n in range(size):
        if n + 1 < size:
            q[n][n + 1] = lam
        if n > 0:
            q[n][n - 1] = min(n, agents) * mu + max(n - agents, 0) * theta
        q[n][n] = -sum(q[n])
    # Solve Qᵀ·π = 0, last row replaced by the normalisation.
    a = [[q[col][row] for col in range(size)] + [0.0] for row in range(size)]
    a[-1] = [1.0] * size + [1.0]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for row in range(size):
            if row != col and a[row][col] != 0.0:
                factor = a[row][col] / a[col][col]
                a[row] = [x - factor * y for x, y in zip(a[row], a[col], strict=True)]
    return [a[i][-1] / a[i][i] for i in range(size)]


def served_within_by_uniformization(agents: int, mu: float, theta: float, t: float, positions: int) -> list[float]:
    """P(answered with a wait ≤ t) for a caller at queue position m = 1 … ``positions``, by uniformizing the
    tagged caller's absorbing chain: from position k it moves to k − 1 (k = 1: to an agent) at rate
    Nμ + (k−1)θ and hangs up at rate θ."""
    rate = agents * mu + positions * theta
    mean = rate * t
    # reach[k]: P(answered within n jumps | position k), k = 1 … positions (index 0 unused).
    reach = [0.0] * (positions + 1)
    result = [0.0] * (positions + 1)
    last = int(mean + 15 * math.sqrt(mean) + 30)
    for n in range(last + 1):
        weight = math.exp(log_poisson(n, mean)) if mean > 0 else float(n == 0)
        for k in range(1, positions + 1):
            result[k] += weight * reach[k]
        new = [0.0] * (positions + 1)
        for k in range(1, positions + 1):
            up = (agents * mu + (k - 1) * theta) / rate
            stay = 1.0 - up - theta / rate
            new[k] = up * (1.0 if k == 1 else reach[k - 1]) + stay * reach[k]
        reach = new
    return result[1:]


def simulate_mmn_m(
    lam: float, mu: float, theta: float, agents: int, t: float, calls: int, seed: int
) -> dict[str, float]:
    """A seeded discrete-event simulation of M/M/N+M (FCFS, exponential patience), warm-up discarded."""
    rng = random.Random(seed)
    warmup = calls // 20
    busy: list[float] = []  # end times of the calls in progress
    waiting: deque[tuple[int, float, float]] = deque()  # (caller, arrival, hang-up time)
    fate: dict[str, float] = {"offered": 0, "in_t": 0, "abandoned": 0, "wait": 0.0, "answered": 0, "wait_ans": 0.0}

    def record(caller: int, wait: float, answered: bool) -> None:
        if caller < warmup:
            return
        fate["offered"] += 1
        fate["wait"] += wait
        if answered:
            fate["answered"] += 1
            fate["wait_ans"] += wait
            fate["in_t"] += wait <= t
        else:
            fate["abandoned"] += 1

    def free_agent(now: float) -> None:
        while waiting:
            caller, arrived, gives_up = waiting.popleft()
            if gives_up <= now:
                record(caller, gives_up - arrived, answered=False)
                continue
            record(caller, now - arrived, answered=True)
            heappush(busy, now + rng.expovariate(mu))
            return

    now = 0.0
    next_arrival = rng.expovariate(lam)
    caller = 0
    while caller < calls or waiting:
        end = busy[0] if busy else math.inf
        if caller < calls and next_arrival < end:
            now = next_arrival
            if len(busy) < agents:
                record(caller, 0.0, answered=True)
                heappush(busy, now + rng.expovariate(mu))
            else:
                waiting.append((caller, now, now + rng.expovariate(theta)))
            caller += 1
            next_arrival = now + rng.expovariate(lam)
        else:
            now = heappop(busy)
            free_agent(now)
    offered = fate["offered"]
    return {
        "service_level": fate["in_t"] / offered,
        "abandon_rate": fate["abandoned"] / offered,
        "asa_s": fate["wait"] / offered,
        "asa_answered_s": fate["wait_ans"] / fate["answered"],
    }


def log_poisson(k: int, mean: float) -> float:
    return k * math.log(mean) - mean - math.lgamma(k + 1)


# --- Erlang B ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "load", "table"),
    [(5, 2, 0.0367), (10, 5, 0.01838), (14, 10, 0.0568), (1, 1, 0.5)],
)
def test_erlang_b_matches_the_table_and_the_exact_definition(agents: int, load: float, table: float) -> None:
    assert erlang_b(load, agents) == pytest.approx(table, abs=5e-5)
    assert erlang_b(load, agents) == pytest.approx(float(exact_b(agents, Fraction(load))), rel=1e-12)


@pytest.mark.parametrize(("agents", "load"), [(10, "4.461"), (30, "20.337"), (100, "84.064")])
def test_erlang_b_one_percent_column_of_the_table(agents: int, load: str) -> None:
    assert erlang_b(float(load), agents) == pytest.approx(0.01, abs=5e-6)
    assert erlang_b(float(load), agents) == pytest.approx(float(exact_b(agents, Fraction(load))), rel=1e-11)


def test_erlang_b_is_stable_for_thousands_of_agents() -> None:
    b = erlang_b(1500.0, 2000)
    assert 0.0 <= b < 1e-30
    # log B from the definition: log(A^N/N!) − log Σ A^k/k!, the sum in log space around its largest term.
    logs = [k * math.log(1500.0) - math.lgamma(k + 1) for k in range(2001)]
    top = max(logs)
    log_b = logs[-1] - (top + math.log(math.fsum(math.exp(x - top) for x in logs)))
    assert math.log(b) == pytest.approx(log_b, rel=1e-9)


# --- Erlang C ----------------------------------------------------------------------------------------------


def test_erlang_c_pyworkforce_example() -> None:
    """100 calls in 30 minutes, AHT 3 min, 80 % in 20 s (pyworkforce / CRAN ErlangC READMEs)."""
    f = agents_needed_c(200, 180, 0.8, 20)
    assert f.agents == 14
    assert f.load_erlangs == pytest.approx(10.0)
    assert f.p_wait == pytest.approx(0.1741319, abs=5e-8)
    assert f.service_level == pytest.approx(0.88835, abs=5e-6)
    assert f.asa_s == pytest.approx(7.835937, abs=5e-6)
    assert f.occupancy == pytest.approx(0.7142857, abs=5e-8)
    assert f.staff(0.3) == 20  # pyworkforce 'positions': 20
    assert agents_needed_c(200, 180, 0.8, 20, max_occupancy=0.85).agents == 14
    assert erlang_c(200, 180, 13, 20).service_level < 0.8
    assert f.p_wait == pytest.approx(float(exact_c(14, Fraction(10))), rel=1e-12)


def test_erlang_c_step_by_step_example() -> None:
    """360 calls per half hour, 4-minute calls, 55 agents, 15-second target."""
    f = erlang_c(720, 240, 55, 15)
    assert f.load_erlangs == pytest.approx(48.0)
    assert f.occupancy == pytest.approx(0.8727, abs=5e-5)
    assert f.p_wait == pytest.approx(0.2387, abs=5e-5)
    assert f.asa_s == pytest.approx(8.184, abs=5e-4)
    assert f.service_level == pytest.approx(0.8459, abs=5e-5)
    assert f.p_wait == pytest.approx(float(exact_c(55, Fraction(48))), rel=1e-12)
    # SL(T) = 1 − C·e^{−(N−A)T/AHT} with C exact
    assert f.service_level == pytest.approx(1 - float(exact_c(55, Fraction(48))) * math.exp(-7 * 15 / 240), rel=1e-12)


def test_erlang_c_24_erlangs_needs_29_agents_for_80_20() -> None:
    """λ = 360 calls/h, AHT 240 s: A = 24 E."""
    f = agents_needed_c(360, 240, 0.8, 20)
    assert f.agents == 29
    assert f.service_level == pytest.approx(0.8403, abs=5e-5)
    assert f.asa_s == pytest.approx(11.63, abs=5e-3)
    assert erlang_c(360, 240, 28, 20).service_level == pytest.approx(0.7613, abs=5e-5)
    for agents in (25, 29, 40):
        assert erlang_c_probability(24.0, agents) == pytest.approx(float(exact_c(agents, Fraction(24))), rel=1e-12)


def test_erlang_c_with_no_more_agents_than_the_load_is_unstable() -> None:
    f = erlang_c(360, 240, 24, 20)
    assert (f.stable, f.service_level, f.p_wait, f.occupancy) == (False, 0.0, 1.0, 1.0)
    assert math.isinf(f.asa_s) and math.isinf(f.mean_queue)
    assert erlang_c(360, 240, 0, 20).stable is False
    # a load of exactly 24 E: the search starts at 25, never at 24
    assert agents_needed_c(360, 240, 0.01, 20).agents == 25


def test_zero_calls_need_no_agents() -> None:
    for f in (agents_needed_c(0, 300, 0.8, 20), agents_needed_a(0, 300, 0.8, 20, 60)):
        assert (f.agents, f.service_level, f.asa_s, f.abandon_rate, f.p_wait) == (0, 1.0, 0.0, 0.0, 0.0)
    assert erlang_c(0, 300, 5, 20).occupancy == 0.0


def test_max_occupancy_raises_the_agents() -> None:
    assert agents_needed_c(200, 180, 0.8, 20, max_occupancy=0.7).agents == 15  # ⌈10 / 0.7⌉
    assert agents_needed_c(200, 180, 0.8, 20, max_occupancy=0.7).occupancy <= 0.7


@pytest.mark.parametrize(("agents", "shrinkage", "staff"), [(14, 0.3, 20), (10, 0.5, 20), (10, 0.35, 16), (0, 0.3, 0)])
def test_shrinkage(agents: int, shrinkage: float, staff: int) -> None:
    assert with_shrinkage(agents, shrinkage) == staff


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        erlang_c(-1, 180, 10, 20)
    with pytest.raises(ValueError):
        erlang_c(100, 0, 10, 20)
    with pytest.raises(ValueError):
        erlang_a(100, 180, 10, 20, 0)
    with pytest.raises(ValueError):
        agents_needed_c(100, 180, 1.0, 20)
    with pytest.raises(ValueError):
        agents_needed_a(100, 180, 0.8, 20, 60, max_abandon=0)
    with pytest.raises(ValueError):
        with_shrinkage(10, 1.0)


# --- Erlang A ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls_per_hour", "aht_s", "agents", "target_t", "patience_s"),
    [
        (100, 180, 5, 20, 60),  # A = 5, N = A
        (150, 240, 8, 30, 120),  # A = 10 > N: overloaded, still stable
        (60, 300, 8, 10, 30),  # light load, impatient callers
        (200, 120, 3, 60, 240),  # heavy overload, patient callers
    ],
)
def test_erlang_a_against_a_linear_solve_and_uniformization(
    calls_per_hour: float, aht_s: float, agents: int, target_t: float, patience_s: float
) -> None:
    lam, mu, theta = calls_per_hour / 3600, 1 / aht_s, 1 / patience_s
    states = 90
    pi = stationary_by_elimination(lam, mu, theta, agents, states)
    assert pi[-1] < 1e-15  # the truncation loses nothing visible
    queue = sum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    within = served_within_by_uniformization(agents, mu, theta, target_t, states - agents)
    sl = sum(pi[:agents]) + sum(pi[agents + j] * within[j] for j in range(states - agents))
    f = erlang_a(calls_per_hour, aht_s, agents, target_t, patience_s)
    assert f.p_wait == pytest.approx(sum(pi[agents:]), rel=1e-9)
    assert f.mean_queue == pytest.approx(queue, rel=1e-9)
    assert f.abandon_rate == pytest.approx(theta * queue / lam, rel=1e-9)
    assert f.asa_s == pytest.approx(queue / lam, rel=1e-9)
    assert f.service_level == pytest.approx(sl, rel=1e-9, abs=1e-12)
    # per arrival: P(abandon) = Σ π_{N+j} · (1 − P(answered | position j+1)); the latter from the jump chain
    answered = [
        math.prod((agents * mu + (k - 1) * theta) / (agents * mu + k * theta) for k in range(1, m + 1))
        for m in range(1, states - agents + 1)
    ]
    assert f.abandon_rate == pytest.approx(
        sum(pi[agents + j] * (1 - answered[j]) for j in range(states - agents)), rel=1e-9
    )
    assert f.service_level_answered == pytest.approx(f.service_level / (1 - f.abandon_rate))
    assert f.occupancy == pytest.approx(sum(min(n, agents) * p for n, p in enumerate(pi)) / agents, rel=1e-9)


def test_erlang_a_far_above_capacity_where_the_queue_window_starts_above_zero() -> None:
    """λ/θ = 150 with Nμ/θ = 5: the queue sits around 145 callers, the law is summed on a window around its
    mode. Compared with the plain product form over every state and with uniformization of the tagged caller."""
    agents, aht_s, patience_s, target_t = 50, 100.0, 10.0, 30.0
    lam, mu, theta = 15.0, 1 / aht_s, 1 / patience_s
    states = 400
    j_lo, _, _ = erlang._queue_window(agents * patience_s / aht_s, lam * patience_s)
    assert j_lo > 20
    logs = [0.0]
    for n in range(1, states):
        logs.append(logs[-1] + math.log(lam / (min(n, agents) * mu + max(n - agents, 0) * theta)))
    top = max(logs)
    weights = [math.exp(x - top) for x in logs]
    total = math.fsum(weights)
    pi = [w / total for w in weights]
    assert pi[-1] < 1e-30 and pi[agents] < 1e-30
    within = served_within_by_uniformization(agents, mu, theta, target_t, states - agents)
    sl = math.fsum(pi[agents + j] * within[j] for j in range(states - agents)) + math.fsum(pi[:agents])
    queue = math.fsum((n - agents) * p for n, p in enumerate(pi) if n > agents)
    f = erlang_a(lam * 3600, aht_s, agents, target_t, patience_s)
    assert f.p_wait == pytest.approx(1.0, abs=1e-12)
    assert f.mean_queue == pytest.approx(queue, rel=1e-9)
    assert f.service_level == pytest.approx(sl, rel=1e-7)
    assert 0.001 < f.service_level < 0.05


def test_erlang_a_when_patience_equals_the_handling_time_is_poisson() -> None:
    """θ = μ: the death rate is n·μ in every state, so the number in system is Poisson(A) (M/M/∞)."""
    for calls_per_hour, aht_s, agents in ((200, 180, 12), (30000, 180, 1600), (30000, 180, 1450)):
        load = calls_per_hour * aht_s / 3600
        f = erlang_a(calls_per_hour, aht_s, agents, 20, aht_s)
        ks = range(0, int(load + 60 * math.sqrt(load) + 50))
        probs = [math.exp(log_poisson(k, load)) for k in ks]
        p_wait = math.fsum(p for k, p in zip(ks, probs, strict=True) if k >= agents)
        queue = math.fsum((k - agents) * p for k, p in zip(ks, probs, strict=True) if k > agents)
        assert f.p_wait == pytest.approx(p_wait, rel=1e-9, abs=1e-300)
        assert f.abandon_rate == pytest.approx(queue / load, rel=1e-9, abs=1e-300)  # θ·E[Lq]/λ with θ = μ


def test_erlang_a_agrees_with_a_simulation() -> None:
    """200 calls/h, AHT 180 s (A = 10), 11 agents, mean patience 90 s, T = 20 s; 150 000 simulated callers."""
    f = erlang_a(200, 180, 11, 20, 90)
    sim = simulate_mmn_m(200 / 3600, 1 / 180, 1 / 90, 11, 20, calls=150_000, seed=20261123)
    assert sim["service_level"] == pytest.approx(f.service_level, abs=0.012)
    assert sim["abandon_rate"] == pytest.approx(f.abandon_rate, abs=0.006)
    assert sim["asa_s"] == pytest.approx(f.asa_s, rel=0.06)
    assert sim["asa_answered_s"] == pytest.approx(f.asa_answered_s, rel=0.06)


def test_erlang_a_tends_to_erlang_c_as_patience_grows() -> None:
    c = erlang_c(200, 180, 14, 20)
    a = erlang_a(200, 180, 14, 20, 1e7)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-4)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-4)
    assert a.asa_s == pytest.approx(c.asa_s, rel=1e-4)
    assert a.asa_answered_s == pytest.approx(c.asa_s, rel=1e-4)
    assert a.abandon_rate < 1e-6


def test_more_patience_means_fewer_abandons() -> None:
    rates = [erlang_a(600, 240, 40, 20, patience).abandon_rate for patience in (10, 30, 60, 120, 300, 600, 1800)]
    assert all(a > b for a, b in itertools.pairwise(rates))


def test_erlang_a_edge_cases() -> None:
    none = erlang_a(200, 180, 0, 20, 90)  # nobody answers: everybody hangs up, after 90 s on average
    assert (none.service_level, none.abandon_rate, none.p_wait) == (0.0, 1.0, 1.0)
    assert none.asa_s == pytest.approx(90)
    zero_t = erlang_a(200, 180, 11, 0, 90)
    assert zero_t.service_level == pytest.approx(1 - zero_t.p_wait, abs=1e-15)
    many = erlang_a(200, 180, 2000, 20, 90)  # π_N underflows
    assert (many.service_level, many.abandon_rate) == (1.0, 0.0)
    slot = erlang_a(200, 180, 11, 20, 90)
    assert slot.service_level <= 1 - slot.abandon_rate


@pytest.mark.parametrize(
    ("calls_per_hour", "aht_s", "agents", "patience_s"),
    [(30000, 180, 1500, 120), (30000, 180, 2000, 600), (30000, 180, 1300, 3600), (240000, 30, 1990, 3600)],
)
def test_erlang_a_is_stable_and_quick_at_two_thousand_agents(
    calls_per_hour: float, aht_s: float, agents: int, patience_s: float
) -> None:
    f = erlang_a(calls_per_hour, aht_s, agents, 20, patience_s)
    values = (f.p_wait, f.service_level, f.service_level_answered, f.abandon_rate, f.occupancy)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert math.isfinite(f.asa_s) and math.isfinite(f.mean_queue)
    # Little's law and the balance of the carried load hold whatever the regime
    assert f.occupancy * agents == pytest.approx(f.load_erlangs * (1 - f.abandon_rate), rel=1e-9)


def test_negative_binomial_tail_from_either_side() -> None:
    """I_x(m, b) = Σ_{k≥m} Γ(b+k)/(Γ(b)k!)·x^k(1−x)^b, against a plain sum of every term."""
    for m0, b, theta_t in ((1, 3.5, 0.2), (40, 3.5, 0.2), (3, 200.0, 0.1), (200, 200.0, 0.1), (15, 200.0, 0.1)):
        tail = erlang._NegBinTail(m0, b, theta_t)
        x = -math.expm1(-theta_t)
        logs = [
            math.lgamma(b + k) - math.lgamma(b) - math.lgamma(k + 1) + k * math.log(x) - b * theta_t
            for k in range(5000)
        ]
        assert math.fsum(math.exp(v) for v in logs) == pytest.approx(1.0, abs=1e-12)
        assert tail.value == pytest.approx(math.fsum(math.exp(v) for v in logs[m0:]), rel=1e-9, abs=1e-15)


def test_digamma_differences_are_harmonic_sums() -> None:
    for c, m in ((0.37, 300), (12.5, 5000), (1e5, 2000)):
        direct = math.fsum(1.0 / (c + i) for i in range(1, m + 1))
        assert erlang._digamma(c + m + 1) - erlang._digamma(c + 1) == pytest.approx(direct, rel=1e-11)


# --- the searches ------------------------------------------------------------------------------------------


def test_agents_needed_a_for_the_24_erlang_example() -> None:
    f = agents_needed_a(360, 240, 0.8, 20, 120)
    assert f.service_level >= 0.8 > erlang_a(360, 240, f.agents - 1, 20, 120).service_level
    capped = agents_needed_a(360, 240, 0.8, 20, 120, max_abandon=0.02)
    assert capped.abandon_rate <= 0.02 < erlang_a(360, 240, capped.agents - 1, 20, 120).abandon_rate
    assert capped.agents > f.agents


volumes = st.floats(min_value=1, max_value=4000)
handling = st.floats(min_value=20, max_value=900)
targets = st.floats(min_value=0.3, max_value=0.97)
times = st.floats(min_value=0, max_value=120)
patiences = st.floats(min_value=5, max_value=900)


@settings(max_examples=60, deadline=None)
@given(calls_per_hour=volumes, aht_s=handling, target_sl=targets, target_t=times, patience_s=patiences)
def test_service_level_grows_with_agents_and_the_search_finds_the_smallest_number(
    calls_per_hour: float, aht_s: float, target_sl: float, target_t: float, patience_s: float
) -> None:
    by_c = agents_needed_c(calls_per_hour, aht_s, target_sl, target_t)
    assert by_c.stable and by_c.service_level >= target_sl
    below = erlang_c(calls_per_hour, aht_s, by_c.agents - 1, target_t)
    assert not below.stable or below.service_level < target_sl

    by_a = agents_needed_a(calls_per_hour, aht_s, target_sl, target_t, patience_s)
    assert by_a.service_level >= target_sl
    assert erlang_a(calls_per_hour, aht_s, by_a.agents - 1, target_t, patience_s).service_level < target_sl

    low, high = max(0, min(by_c.agents, by_a.agents) - 6), max(by_c.agents, by_a.agents) + 6
    sl_c = [erlang_c(calls_per_hour, aht_s, n, target_t).service_level for n in range(low, high)]
    sl_a = [erlang_a(calls_per_hour, aht_s, n, target_t, patience_s) for n in range(low, high)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(sl_c))
    assert all(a.service_level <= b.service_level + 1e-12 for a, b in itertools.pairwise(sl_a))
    assert all(a.abandon_rate >= b.abandon_rate - 1e-12 for a, b in itertools.pairwise(sl_a))


# --- the API -----------------------------------------------------------------------------------------------

QUERY = "/api/v1/staffing?calls_per_hour=360&aht_s=240&target_sl=0.8&target_t=20&patience_s=120"


def test_a_supervisor_gets_both_models(client_as: ClientAs) -> None:
    sv = client_as(Role.SUPERVISOR)
    r = sv.get(QUERY + "&shrinkage=0.3&agents=25")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["load_erlangs"] == pytest.approx(24.0)
    assert body["erlang_c"]["agents"] == 29 and body["erlang_c"]["staff"] == 42
    assert body["erlang_c"]["service_level"] == pytest.approx(0.8403, abs=5e-5)
    expected = agents_needed_a(360, 240, 0.8, 20, 120)
    assert body["erlang_a"]["agents"] == expected.agents
    assert body["erlang_a"]["abandon_rate"] == pytest.approx(expected.abandon_rate)
    assert [f["model"] for f in body["at_agents"]] == ["erlang_c", "erlang_a"]
    assert all(f["agents"] == 25 for f in body["at_agents"])


def test_without_patience_there_is_no_erlang_a_and_unstable_waits_are_null(client: TestClient) -> None:
    body = client.get("/api/v1/staffing?calls_per_hour=360&aht_s=240&agents=24").json()
    assert body["erlang_a"] is None and body["erlang_c"]["agents"] == 29
    (at,) = body["at_agents"]
    assert at["stable"] is False and at["asa_s"] is None and at["service_level"] == 0.0


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (
            "calls_per_hour=-1&aht_s=0&target_sl=1.5&patience_s=0",
            {"calls_per_hour", "aht_s", "target_sl", "patience_s"},
        ),
        ("calls_per_hour=nan&aht_s=240&target_t=-1&shrinkage=1", {"calls_per_hour", "target_t", "shrinkage"}),
        ("calls_per_hour=100000&aht_s=3600", {"calls_per_hour"}),  # 100 000 Erlangs
        ("calls_per_hour=100&aht_s=240&agents=-1&max_abandon=0", {"agents", "max_abandon"}),
        ("calls_per_hour=many&aht_s=240", {"calls_per_hour"}),
        ("aht_s=240", {"calls_per_hour"}),
    ],
)
def test_bad_input_is_a_problem_naming_each_field(client: TestClient, query: str, fields: set[str]) -> None:
    r = client.get(f"/api/v1/staffing?{query}")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in r.json()["errors"]} == fields


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.CLIENT_VIEWER])
def test_operators_and_client_viewers_may_not_plan(client_as: ClientAs, role: Role) -> None:
    c = client_as(role)
    assert c.get(QUERY).status_code == 403
    assert c.post("/api/v1/staffing/plan", json={"aht_s": 240, "calls_per_hour": [100]}).status_code == 403


def test_a_plan_from_calls_per_hour(client: TestClient) -> None:
    body = {
        "aht_s": 240,
        "patience_s": 120,
        "shrinkage": 0.3,
        "start": "2026-12-01T09:00:00",
        "calls_per_hour": [360, 0, 720],
    }
    r = client.post("/api/v1/staffing/plan", json=body)
    assert r.status_code == 200, r.text
    plan = r.json()
    rows = plan["rows"]
    assert [row["start"] for row in rows] == [
        "2026-12-01T09:00:00+09:00",
        "2026-12-01T09:15:00+09:00",
        "2026-12-01T09:30:00+09:00",
    ]
    assert rows[0]["end"] == "2026-12-01T09:15:00+09:00"
    assert [row["agents_c"] for row in rows] == [29, 0, agents_needed_c(720, 240, 0.8, 20).agents]
    assert rows[0]["calls"] == pytest.approx(90) and rows[0]["staff_c"] == 42
    assert rows[1]["service_level_a"] == 1.0 and rows[1]["abandoned_calls_a"] == 0.0
    totals = plan["totals"]
    assert totals["calls"] == pytest.approx(270)
    assert totals["agent_hours_c"] == pytest.approx(sum(row["agents_c"] for row in rows) / 4)
    assert totals["peak_agents_c"] == rows[2]["agents_c"]
    assert totals["abandoned_calls_a"] == pytest.approx(sum(row["abandoned_calls_a"] for row in rows))
    weighted = (90 * rows[0]["service_level_c"] + 180 * rows[2]["service_level_c"]) / 270
    assert totals["service_level_c"] == pytest.approx(weighted)


def test_a_plan_from_intervals_with_a_minimum_staff(client: TestClient) -> None:
    body = {
        "aht_s": 300,
        "interval_minutes": 30,
        "min_agents": 3,
        "intervals": [
            {"start": "2026-12-01T08:00:00+09:00", "calls": 0},
            {"start": "2026-12-01T00:00:00Z", "calls": 100},  # 09:00 in Japan
        ],
    }
    plan = client.post("/api/v1/staffing/plan", json=body).json()
    first, second = plan["rows"]
    assert first["agents_c"] == 3 and first["agents_a"] is None
    assert second["start"] == "2026-12-01T09:00:00+09:00" and second["calls_per_hour"] == pytest.approx(200)
    assert plan["totals"]["service_level_a"] is None


def test_a_tv_slot_plan_keeps_every_call(client: TestClient) -> None:
    """200 calls/h, ×20 from 20:05 for 30 min, back down over 30 min: intervals partly covered get the mean."""
    query = (
        "base_calls_per_hour=200&spike_start=20:05&spike_multiplier=20&spike_minutes=30&decay_minutes=30"
        "&aht_s=300&patience_s=120&day=2026-12-24"
    )
    r = client.get(f"/api/v1/staffing/tv-slot?{query}")
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert len(rows) == 12 and rows[0]["start"] == "2026-12-24T19:00:00+09:00"
    calls = {row["start"][11:16]: row["calls"] for row in rows}
    assert calls["19:45"] == pytest.approx(50)
    assert calls["20:00"] == pytest.approx(50 * (5 + 10 * 20) / 15)
    assert calls["20:15"] == pytest.approx(1000)
    assert calls["21:15"] == pytest.approx(50)
    # base over 3 h + the spike's extra (19 × 30 min) + the decay triangle (19 × 30 min / 2), at 200/h
    expected = 200 * (3 + 19 * 0.5 + 19 * 0.25)
    assert r.json()["totals"]["calls"] == pytest.approx(expected)
    peak = max(rows, key=lambda row: row["calls"])
    assert peak["agents_c"] == r.json()["totals"]["peak_agents_c"]


def test_a_tv_slot_after_midnight(client: TestClient) -> None:
    body = {
        "aht_s": 300,
        "interval_minutes": 60,
        "tv_slot": {
            "base_calls_per_hour": 100,
            "spike_start": "00:30",
            "window_start": "23:00",
            "window_minutes": 180,
            "day": "2026-12-31",
        },
    }
    rows = client.post("/api/v1/staffing/plan", json=body).json()["rows"]
    assert [row["start"] for row in rows] == [
        "2026-12-31T23:00:00+09:00",
        "2027-01-01T00:00:00+09:00",
        "2027-01-01T01:00:00+09:00",
    ]
    assert [row["calls_per_hour"] for row in rows] == pytest.approx([100, 100 * (1 + 19 * 0.5), 100])


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"aht_s": 300}, {"intervals"}),
        (
            {"aht_s": 300, "calls_per_hour": [1], "tv_slot": {"base_calls_per_hour": 1, "spike_start": "20:00"}},
            {"intervals"},
        ),
        ({"aht_s": 300, "calls_per_hour": []}, {"calls_per_hour"}),
        ({"aht_s": 300, "calls_per_hour": [10, -1, 1e9]}, {"calls_per_hour.1", "calls_per_hour.2"}),
        ({"aht_s": 300, "calls_per_hour": [10], "interval_minutes": 20}, {"interval_minutes"}),
        ({"aht_s": 300, "calls_per_hour": [10], "start": "9999-12-31T23:50:00"}, {"start"}),
        (
            {
                "aht_s": 300,
                "intervals": [{"start": "2026-12-01T09:00", "calls": 1}, {"start": "2026-12-01T09:10", "calls": 1}],
            },
            {"intervals.1.start"},
        ),
        (
            {
                "aht_s": 300,
                "tv_slot": {
                    "base_calls_per_hour": 500,
                    "spike_start": "20:00",
                    "spike_multiplier": 1000,
                    "window_minutes": 50,
                },
            },
            {"tv_slot.spike_multiplier", "tv_slot.window_minutes"},
        ),
        ({"aht_s": 300, "target_sl": 0, "min_agents": -1, "calls_per_hour": [1]}, {"target_sl", "min_agents"}),
    ],
)
def test_bad_plans_are_problems_naming_each_field(
    client: TestClient, body: dict[str, object], fields: set[str]
) -> None:
    r = client.post("/api/v1/staffing/plan", json=body)
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == fields


def test_the_plan_as_csv_and_xlsx(client: TestClient) -> None:
    body = {"aht_s": 240, "patience_s": 120, "start": "2026-12-01T09:00:00+09:00", "calls_per_hour": [360, 720]}
    plan = client.post("/api/v1/staffing/plan", json=body).json()

    r = client.post("/api/v1/staffing/plan.csv", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="staffing-plan.csv"' in r.headers["content-disposition"]
    assert r.content.startswith("\ufeff".encode())
    lines = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [line["start"] for line in lines] == ["2026-12-01T09:00:00+09:00", "2026-12-01T09:15:00+09:00"]
    assert [int(line["agents_c"]) for line in lines] == [row["agents_c"] for row in plan["rows"]]
    assert float(lines[0]["service_level_a"]) == pytest.approx(plan["rows"][0]["service_level_a"], abs=5e-5)

    r = client.post("/api/v1/staffing/plan.xlsx", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["plan", "totals"]
    sheet_rows = list(book["plan"].iter_rows(values_only=True))
    assert sheet_rows[0][:3] == ("start (JST)", "end (JST)", "calls")
    assert len(sheet_rows) == 3 and sheet_rows[1][0].hour == 9 and sheet_rows[2][5] == plan["rows"][1]["agents_c"]
    totals = {row[0]: row[1] for row in book["totals"].iter_rows(values_only=True) if row[0]}
    assert totals["peak_agents_c"] == plan["totals"]["peak_agents_c"]

    bad = client.post("/api/v1/staffing/plan.csv", json={"aht_s": 0, "calls_per_hour": [1]})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
