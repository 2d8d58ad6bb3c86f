"""Erlang B, C and A: how many agents a stream of calls needs (pure math, no I/O, standard library only).

Notation: λ calls per second (``calls_per_hour / 3600``), AHT the mean handling time in seconds (μ = 1/AHT),
A = λ·AHT the offered load in Erlangs, N agents, T the service-level target time in seconds.

**Erlang B** (blocked calls lost), by the recursion B₀ = 1, Bₙ = A·Bₙ₋₁ / (n + A·Bₙ₋₁): every step is a
ratio of numbers ≤ n + A, so it neither overflows nor loses precision for thousands of agents, unlike
``A^N / N!``.

**Erlang C** (M/M/N, everybody waits as long as it takes), defined for N > A only:

- P(wait) C = N·B / (N − A·(1 − B))
- service level SL(T) = P(wait ≤ T) = 1 − C·e^{−(N−A)·T/AHT}
- ASA (mean wait of all callers) = C·AHT / (N − A); occupancy A / N.

With N ≤ A the queue grows without bound: SL 0, ASA ∞, P(wait) 1, occupancy 1 (``stable`` False).

**Erlang A** (M/M/N+M, Palm's model: waiting callers hang up after an exponential patience of mean
``patience_s``, θ = 1/patience). The number in the system is a birth–death chain with birth rate λ and
death rate min(n, N)·μ + max(n − N, 0)·θ. It is stable for every N (impatience empties any queue).

- Stationary law: states n ≤ N are Poisson-shaped, so their mass relative to π_N is 1/B(N, A); above N,
  π_{N+j} = π_N·t_j with t_j = Π_{k=1..j} λ / (Nμ + kθ) = r^j·Γ(c+1)/Γ(c+j+1), where c = Nμ/θ and r = λ/θ.
  t_j is unimodal: it is summed outward from its mode until the terms fall below 1e-17 of the sum
  (exact up to rounding; the cost grows with √r, not with the queue length), in a scaled frame whose
  scale is kept as a logarithm, so overloaded cases (N far below A) neither overflow nor underflow.
- P(wait) = P(n ≥ N); E[Lq] = Σ j·π_{N+j}; P(abandon) = θ·E[Lq] / λ; ASA = E[Lq] / λ = the mean wait of
  *all* callers, those who hang up counted until they hang up (Little's law). ``asa_answered_s`` is the
  mean wait of the callers who are answered.
- Service level, exactly: a caller who arrives finding j callers waiting (n = N + j, PASTA) is at queue
  position m = j + 1. While at position k it moves up at rate Nμ + (k − 1)θ (an agent frees up, or
  someone ahead hangs up; FCFS, those behind do not matter) and hangs up itself at rate θ. Its time to
  reach an agent if it never hung up is V = Σ_{k=1..m} Exp(θ(c + k − 1)), and 1 − e^{−θV} ~ Beta(m, c)
  (the Laplace transforms agree: Π (c+k−1)/(c+k−1+s/θ) = B(m, c+s/θ)/B(m, c)). It is answered iff V is
  below its own patience τ ~ Exp(θ), independent of V, so
  P(answered, wait ≤ T | m) = E[e^{−θV}; V ≤ T] = c/(c+m) · I_x(m, c+1), x = 1 − e^{−θT},
  with I the regularized incomplete beta function, here a negative-binomial tail (m is an integer):
  I_x(m, b) = Σ_{k≥m} Γ(b+k)/(Γ(b)·k!)·x^k·(1−x)^b. No approximation is involved beyond rounding.
  Likewise E[wait; answered | m] = c/(c+m) · Σ_{i=1..m} 1/(Nμ + iθ).

Two service levels are reported (for Erlang C they are equal, nobody hangs up):

- ``service_level`` = answered within T / **offered** calls: a caller who hangs up counts as a miss,
  however early. The staffing searches use this one (the stricter).
- ``service_level_answered`` = answered within T / **answered** calls (what many ACD reports show).

Zero calls: nobody is needed, so the searches answer 0 agents (with SL 1, ASA 0). A minimum presence on
the floor is a planning rule (``min_agents`` in the plan), not queueing math.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

SECONDS_PER_HOUR = 3600.0
#: Terms of the queue-length law below this share of the running sum are dropped (double precision is ~1e-16).
_NEGLIGIBLE = 1e-17
#: More agents than this in a search means the inputs are not a call center (or a bug): stop, loudly.
_MAX_AGENTS = 1_000_000
#: Below this many positions the harmonic sums are added up directly, above it through the digamma function.
_DIRECT_SUM_LIMIT = 256
#: e^x overflows a double above ~709.
_MAX_EXP = 700.0
_RESCALE = 1e200


@dataclass(frozen=True, slots=True)
class StaffingFigures:
    """What N agents give for a stream of calls, by one model (``erlang_c`` or ``erlang_a``).

    Rates are fractions of the offered calls (0.8 = 80 %); times are seconds.
    """

    model: str
    agents: int
    calls_per_hour: float
    aht_s: float
    target_t: float
    #: Offered load A = λ·AHT in Erlangs (agents that would be busy all the time).
    load_erlangs: float
    #: Share of callers who wait at all (find every agent busy).
    p_wait: float
    #: Answered within ``target_t`` / offered calls (a hang-up is a miss).
    service_level: float
    #: Answered within ``target_t`` / answered calls.
    service_level_answered: float
    #: Mean wait of all callers (the abandoning ones until they hang up); ``inf`` when unstable.
    asa_s: float
    #: Mean wait of the callers who get an agent; ``inf`` when unstable.
    asa_answered_s: float
    #: Share of offered callers who hang up before an agent answers (0 for Erlang C).
    abandon_rate: float
    #: Share of the agents' time on calls: carried load / N (A/N for Erlang C).
    occupancy: float
    #: Mean number of callers waiting, E[Lq]; ``inf`` when unstable.
    mean_queue: float
    #: Mean patience in seconds (Erlang A), None for Erlang C.
    patience_s: float | None = None
    #: False: Erlang C with N ≤ A, the queue grows without bound.
    stable: bool = True

    def staff(self, shrinkage: float) -> int:
        """Agents to schedule so that ``agents`` are on the phones after ``shrinkage`` (breaks, training …)."""
        return with_shrinkage(self.agents, shrinkage)


# --- small helpers ---------------------------------------------------------------------------------------


def offered_load(calls_per_hour: float, aht_s: float) -> float:
    """A = λ·AHT in Erlangs."""
    return calls_per_hour * aht_s / SECONDS_PER_HOUR


def with_shrinkage(agents: int, shrinkage: float) -> int:
    """⌈N / (1 − s)⌉: staff to schedule so that N are available. 14 agents at 30 % → 20 (not 21: 14/0.7
    is 20.000000000000004 in binary floating point, so a hair is taken off before rounding up)."""
    if not 0 <= shrinkage < 1:
        raise ValueError("shrinkage must be in [0, 1)")
    if agents <= 0:
        return 0
    return math.ceil(agents / (1.0 - shrinkage) - 1e-9)


def erlang_b(load: float, agents: int) -> float:
    """Erlang B blocking probability B(N, A) by the stable recursion."""
    if load < 0 or agents < 0:
        raise ValueError("load and agents must not be negative")
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c_probability(load: float, agents: int) -> float:
    """Erlang C probability of waiting; 1 when N ≤ A (unstable: everybody waits)."""
    if load <= 0:
        return 0.0
    if agents <= load:
        return 1.0
    b = erlang_b(load, agents)
    return _c_from_b(load, agents, b)


def _c_from_b(load: float, agents: int, b: float) -> float:
    return agents * b / (agents - load * (1.0 - b))


def _check(calls_per_hour: float, aht_s: float, agents: int, target_t: float) -> None:
    for name, value in (("calls_per_hour", calls_per_hour), ("aht_s", aht_s), ("target_t", target_t)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number")
    if calls_per_hour < 0:
        raise ValueError("calls_per_hour must not be negative")
    if aht_s <= 0:
        raise ValueError("aht_s must be positive")
    if target_t < 0:
        raise ValueError("target_t must not be negative")
    if agents < 0:
        raise ValueError("agents must not be negative")


def _clamp01(value: float) -> float:
    return min(1.0, max(0.0, value))


# --- Erlang C ---------------------------------------------------------------------------------------------


def erlang_c(calls_per_hour: float, aht_s: float, agents: int, target_t: float) -> StaffingFigures:
    """Erlang C figures for ``agents`` agents (see the module doc for the formulas)."""
    _check(calls_per_hour, aht_s, agents, target_t)
    load = offered_load(calls_per_hour, aht_s)
    return _erlang_c(calls_per_hour, aht_s, agents, target_t, load, erlang_b(load, agents))


def _erlang_c(
    calls_per_hour: float, aht_s: float, agents: int, target_t: float, load: float, b: float
) -> StaffingFigures:
    def figures(p_wait: float, sl: float, asa: float, occupancy: float, queue: float) -> StaffingFigures:
        return StaffingFigures(
            model="erlang_c",
            agents=agents,
            calls_per_hour=calls_per_hour,
            aht_s=aht_s,
            target_t=target_t,
            load_erlangs=load,
            p_wait=p_wait,
            service_level=sl,
            service_level_answered=sl,
            asa_s=asa,
            asa_answered_s=asa,
            abandon_rate=0.0,
            occupancy=occupancy,
            mean_queue=queue,
            stable=math.isfinite(asa),
        )

    if load == 0:
        return figures(p_wait=0.0, sl=1.0, asa=0.0, occupancy=0.0, queue=0.0)
    if agents <= load:
        return figures(p_wait=1.0, sl=0.0, asa=math.inf, occupancy=1.0, queue=math.inf)
    c = _c_from_b(load, agents, b)
    spare = agents - load
    sl = _clamp01(1.0 - c * math.exp(-spare * target_t / aht_s))
    return figures(p_wait=c, sl=sl, asa=c * aht_s / spare, occupancy=load / agents, queue=c * load / spare)


def agents_needed_c(
    calls_per_hour: float,
    aht_s: float,
    target_sl: float,
    target_t: float,
    max_occupancy: float | None = None,
) -> StaffingFigures:
    """The fewest agents whose Erlang C service level is at least ``target_sl`` within ``target_t``
    (and whose occupancy is at most ``max_occupancy``, when given). Unstable N (≤ A) are never answers.
    Zero calls: 0 agents."""
    _check(calls_per_hour, aht_s, 0, target_t)
    if not 0 < target_sl < 1:
        raise ValueError("target_sl must be between 0 and 1 (exclusive)")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError("max_occupancy must be in (0, 1]")
    load = offered_load(calls_per_hour, aht_s)
    if load == 0:
        return erlang_c(calls_per_hour, aht_s, 0, target_t)
    start = math.floor(load) + 1  # the smallest stable N
    if max_occupancy is not None:
        start = max(start, math.ceil(load / max_occupancy - 1e-12))
    b = erlang_b(load, start)
    agents = start
    while agents <= _MAX_AGENTS:
        figures = _erlang_c(calls_per_hour, aht_s, agents, target_t, load, b)
        occupancy_ok = max_occupancy is None or figures.occupancy <= max_occupancy
        if figures.stable and figures.service_level >= target_sl and occupancy_ok:
            return figures
        agents += 1
        b = load * b / (agents + load * b)  # the same recursion step as erlang_b: identical floats
    raise ValueError("no number of agents up to a million meets the target")  # pragma: no cover


# --- Erlang A ---------------------------------------------------------------------------------------------


def erlang_a(calls_per_hour: float, aht_s: float, agents: int, target_t: float, patience_s: float) -> StaffingFigures:
    """Erlang A (M/M/N+M) figures for ``agents`` agents and callers of mean patience ``patience_s``."""
    _check(calls_per_hour, aht_s, agents, target_t)
    if not (math.isfinite(patience_s) and patience_s > 0):
        raise ValueError("patience_s must be a positive finite number (use Erlang C for callers who never hang up)")
    load = offered_load(calls_per_hour, aht_s)
    lam = calls_per_hour / SECONDS_PER_HOUR

    def figures(
        p_wait: float, sl: float, abandon: float, asa: float, asa_answered: float, queue: float
    ) -> StaffingFigures:
        answered = 1.0 - abandon
        return StaffingFigures(
            model="erlang_a",
            agents=agents,
            calls_per_hour=calls_per_hour,
            aht_s=aht_s,
            target_t=target_t,
            load_erlangs=load,
            p_wait=p_wait,
            service_level=sl,
            service_level_answered=_clamp01(sl / answered) if answered > 0 else 0.0,
            asa_s=asa,
            asa_answered_s=asa_answered,
            abandon_rate=abandon,
            occupancy=_clamp01(load * answered / agents) if agents > 0 else 0.0,
            mean_queue=queue,
            patience_s=patience_s,
        )

    if lam == 0:
        return figures(p_wait=0.0, sl=1.0, abandon=0.0, asa=0.0, asa_answered=0.0, queue=0.0)
    if agents == 0:  # everybody waits until they hang up: the queue is M/M/∞ with rate θ
        return figures(p_wait=1.0, sl=0.0, abandon=1.0, asa=patience_s, asa_answered=0.0, queue=lam * patience_s)
    b_n = erlang_b(load, agents)
    if b_n == 0.0:  # π_N underflows: N ≫ A, nobody waits (to double precision)
        return figures(p_wait=0.0, sl=1.0, abandon=0.0, asa=0.0, asa_answered=0.0, queue=0.0)
    p_wait, sl, queue, answered_wait = _erlang_a_queue(lam, aht_s, agents, target_t, patience_s, b_n)
    abandon = _clamp01(queue / (lam * patience_s))  # θ·E[Lq]/λ
    answered = 1.0 - abandon
    return figures(
        p_wait=p_wait,
        sl=sl,
        abandon=abandon,
        asa=queue / lam,
        asa_answered=answered_wait / answered if answered > 0 else 0.0,
        queue=queue,
    )


def _erlang_a_queue(
    lam: float, aht_s: float, n: int, target_t: float, patience_s: float, b_n: float
) -> tuple[float, float, float, float]:
    """(P(wait), SL answered within T / offered, E[Lq], E[wait; answered]) of the M/M/N+M chain, N ≥ 1."""
    theta = 1.0 / patience_s
    c = n * patience_s / aht_s  # Nμ/θ
    r = lam * patience_s  # λ/θ
    # Mass of the states n < N relative to π_N is 1/B − 1 (Σ_{n≤N} π_n = π_N / B(N, A)).
    log_lower = math.log1p(-b_n) - math.log(b_n) if b_n < 1.0 else -math.inf
    j_lo, weights, log_top = _queue_window(c, r)
    total = math.fsum(weights)
    log_z = _logaddexp(log_lower, log_top + math.log(total))
    scale = math.exp(log_top - log_z)  # weight → probability π_{N+j}
    p_lower = math.exp(log_lower - log_z) if log_lower != -math.inf else 0.0

    queue = 0.0
    answered_in_t = 0.0
    answered_wait = 0.0
    tail = _NegBinTail(j_lo + 1, c + 1.0, theta * target_t)
    within = tail.value  # I_x(m, c+1), then I(m+1) = I(m) − P(m)
    b, x = c + 1.0, math.exp(tail.log_x)
    # P(m) = q·e^{log_q}: q is multiplied along and folded into log_q before it could overflow, so a P(m)
    # below the smallest double (far from the middle of the negative binomial) still grows back correctly.
    q, log_q = 1.0, tail.log_q
    factor = math.exp(log_q) if log_q > -_MAX_EXP else 0.0
    harmonic = _harmonic(c, j_lo + 1) * patience_s  # Σ_{i=1..m} 1/(Nμ + iθ)
    for offset, weight in enumerate(weights):
        j = j_lo + offset
        m = j + 1  # the arriving caller's position in the queue
        p = weight * scale
        served = p * c / (c + m)
        queue += j * p
        answered_in_t += served * within
        answered_wait += served * harmonic
        harmonic += patience_s / (c + m + 1)
        if within > 0.0:
            within -= q * factor
            if within < 0.0:
                within = 0.0
            q *= (b + m) / (m + 1) * x
            if q > _RESCALE:
                log_q += math.log(q)
                q = 1.0
                factor = math.exp(log_q) if log_q > -_MAX_EXP else 0.0
    return _clamp01(total * scale), _clamp01(p_lower + answered_in_t), queue, answered_wait


def _queue_window(c: float, r: float) -> tuple[int, list[float], float]:
    """The queue part of the chain, t_j = r^j·Γ(c+1)/Γ(c+j+1) for j ≥ 0, as (first j, weights relative to
    the largest term, log of the largest term): every j whose term is not negligible, and no other."""
    mode = max(0, math.ceil(r - c) - 1)  # t_{j+1}/t_j = r/(c+j+1) ≤ 1 from here on
    log_top = 0.0 if mode == 0 else mode * math.log(r) - (math.lgamma(c + mode + 1) - math.lgamma(c + 1))
    right = [1.0]
    total = 1.0
    w = 1.0
    j = mode
    while True:
        j += 1
        w *= r / (c + j)
        if w < _NEGLIGIBLE * total:
            break
        right.append(w)
        total += w
    left: list[float] = []
    w = 1.0
    j = mode
    while j > 0:
        w *= (c + j) / r
        if w < _NEGLIGIBLE * total:
            break
        left.append(w)
        total += w
        j -= 1
    left.reverse()
    return mode - len(left), left + right, log_top


class _NegBinTail:
    """``value`` = I_x(m0, b) = P(NB ≥ m0) and ``log_q`` = log P(m0), x = 1 − e^{−θT}, where NB has
    P(k) = Γ(b+k)/(Γ(b)·k!)·x^k·(1−x)^b. The value is summed from the side where the terms fall."""

    def __init__(self, m0: int, b: float, theta_t: float) -> None:
        self.b = b
        if theta_t <= 0:  # T = 0: nobody who waits is answered within T
            self.value = 0.0
            self.log_q = -math.inf
            self.log_x = -math.inf
            return
        self.log_x = math.log(-math.expm1(-theta_t))
        self.log_1mx = -theta_t
        # The mode of P(k) is ⌊(b−1)·x/(1−x)⌋ = ⌊(b−1)·(e^{θT} − 1)⌋ (huge when θT is: x is 1 to double precision).
        mode = (b - 1.0) * math.expm1(theta_t) if theta_t < _MAX_EXP else math.inf
        self.log_q = self._log_pmf(m0)
        if m0 > mode:  # the tail k ≥ m0 falls from its first term on
            self.value = min(1.0, math.exp(self.log_q + math.log(self._sum_up(m0))))
        else:  # the head k < m0 falls going down from k = m0 − 1
            head = math.exp(self._log_pmf(m0 - 1) + math.log(self._sum_down(m0 - 1)))
            self.value = _clamp01(1.0 - head)

    def _log_pmf(self, k: int) -> float:
        b = self.b
        return math.lgamma(b + k) - math.lgamma(b) - math.lgamma(k + 1) + k * self.log_x + b * self.log_1mx

    def _sum_up(self, k: int) -> float:
        """Σ_{i≥k} P(i)/P(k)."""
        x = math.exp(self.log_x)
        total = w = 1.0
        while True:
            w *= (self.b + k) / (k + 1) * x
            k += 1
            if w < _NEGLIGIBLE * total:
                return total
            total += w

    def _sum_down(self, k: int) -> float:
        """Σ_{i≤k} P(i)/P(k)."""
        x = math.exp(self.log_x)
        total = w = 1.0
        while k > 0:
            w *= k / ((self.b + k - 1) * x)
            k -= 1
            if w < _NEGLIGIBLE * total:
                break
            total += w
        return total


def _harmonic(c: float, m: int) -> float:
    """Σ_{i=1..m} 1/(c + i) (times 1/θ this is the mean virtual wait at position m)."""
    if m <= _DIRECT_SUM_LIMIT:
        return math.fsum(1.0 / (c + i) for i in range(1, m + 1))
    return _digamma(c + m + 1) - _digamma(c + 1)


def _digamma(x: float) -> float:
    """ψ(x) for x > 0: the recurrence up to x ≥ 10, then the asymptotic series (error < 1e-14)."""
    shift = 0.0
    while x < 10:
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return shift + math.log(x) - 0.5 / x - series


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    if a == math.inf or b == math.inf:
        return math.inf
    top = max(a, b)
    return top + math.log1p(math.exp(-abs(a - b)))


def agents_needed_a(
    calls_per_hour: float,
    aht_s: float,
    target_sl: float,
    target_t: float,
    patience_s: float,
    max_abandon: float | None = None,
) -> StaffingFigures:
    """The fewest agents whose Erlang A service level (answered within ``target_t`` / offered) is at least
    ``target_sl`` and, when given, whose abandon rate is at most ``max_abandon``. Zero calls: 0 agents.

    Both figures improve with every added agent, so the answer is bracketed by doubling steps from the
    Erlang C answer and then bisected; N below ``target_sl``·A is never tried (answering that share of the
    calls keeps more than that many agents busy)."""
    _check(calls_per_hour, aht_s, 0, target_t)
    if not 0 < target_sl < 1:
        raise ValueError("target_sl must be between 0 and 1 (exclusive)")
    if max_abandon is not None and not 0 < max_abandon < 1:
        raise ValueError("max_abandon must be between 0 and 1 (exclusive)")
    load = offered_load(calls_per_hour, aht_s)
    if load == 0:
        return erlang_a(calls_per_hour, aht_s, 0, target_t, patience_s)
    seen: dict[int, StaffingFigures] = {}

    def ok(agents: int) -> bool:
        if agents not in seen:
            seen[agents] = erlang_a(calls_per_hour, aht_s, agents, target_t, patience_s)
        f = seen[agents]
        return f.service_level >= target_sl and (max_abandon is None or f.abandon_rate <= max_abandon)

    floor_fail = max(0, math.ceil(target_sl * load) - 1)  # every N ≤ this misses the target
    guess = max(floor_fail + 1, agents_needed_c(calls_per_hour, aht_s, target_sl, target_t).agents)
    fail, good = _bracket(ok, guess, floor_fail)
    while good - fail > 1:
        mid = (fail + good) // 2
        if ok(mid):
            good = mid
        else:
            fail = mid
    return seen[good] if good in seen else erlang_a(calls_per_hour, aht_s, good, target_t, patience_s)


def _bracket(ok: Callable[[int], bool], guess: int, floor_fail: int) -> tuple[int, int]:
    """(a failing N, a passing N) around ``guess`` by doubling steps; ``floor_fail`` is known to fail."""
    step = 1
    if ok(guess):
        good = guess
        while True:
            low = max(floor_fail, good - step)
            if low == floor_fail or not ok(low):
                return low, good
            good = low
            step *= 2
    fail = guess
    while True:
        high = fail + step
        if high > _MAX_AGENTS:
            raise ValueError("no number of agents up to a million meets the target")  # pragma: no cover
        if ok(high):
            return fail, high
        fail = high
        step *= 2
