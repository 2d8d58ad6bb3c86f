"""Kakehashi's predictive pacing: each tick, the most calls whose *expected* abandons stay within the budget.

The model (ADR 0025). Of the ``M`` calls that will be ringing — those in flight plus ``n`` new ones — the number
answered by a person is ``X ~ Binomial(M, p)`` (``p``: people per dial, a decaying mean). The agents there to take
them are the ``F`` ready now (less the people already waiting) plus ``Y`` of the busy ones, free by the time a
call is answered and has waited its 2 s (``t``: the mean time to a person's answer plus 2 s): each talking agent
with ``P(H ≤ e + t | H > e)`` from the last 400 handle times ``H`` (talk + wrap-up) given the ``e`` seconds
since their person answered, each agent in wrap-up the same from the wrap-up times; ``Y`` is their
Poisson-binomial sum. Before 30 samples, and for agents the dialer did not time, remaining times are taken as
exponential with the decaying means (a talking agent's ``1 − exp(−t/h)``). A person abandoned is one too many:
``E[max(X − F − Y, 0)]``, and the pacer places the largest ``n`` with

    E[max(X − F − Y, 0)] / E[X] ≤ α

``α = τ·s·g``: ``τ`` the campaign's target (3 %), ``s`` a safety factor, ``g`` a correction for what the model
does not foresee (answers bunch in time; an agent freed late in the window cannot take an early answer): every
tick, while the abandon rate of the last 20 minutes or the larger of the 24-hour and 30-day rates (each pulled
towards ``τ·s`` by a prior) is above ``τ·s``, ``g`` shrinks by 2 % (halved in ~35 s), otherwise it grows by 0.2 %
(doubled in ~6 minutes), within 0.01…2; it starts at 0.25. Measured at 50 agents, the uncorrected model
(``g = 1``) let 3.6–4 % of people go without an agent at ``α`` ≤ 1.6 %: the correction is what keeps the day under
the target, before the day's limit is reached, never after. Caps: lines per agent, calls in flight per campaign.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from kakehashi.pacing.estimates import DecayingMean, WindowRate
from kakehashi.pacing.types import DialOutcome, PacingState


@dataclass(frozen=True, slots=True)
class PredictiveSettings:
    """A campaign's predictive settings (defaults: Ofcom/FCC's 3 %, three lines per agent)."""

    abandon_target: float = 0.03
    max_lines_per_agent: float = 3.0
    max_in_flight: int | None = None
    safety: float = 0.85
    half_life_s: float = 300.0
    prior_answer: float = 0.3
    prior_ring_s: float = 10.0
    prior_handle_s: float = 180.0
    prior_wrap_s: float = 30.0
    connect_within_s: float = 2.0  # a person waits this long for an agent before the call counts as abandoned
    prior_humans: int = 200


def _binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(X = k), k = 0…n, in log space (no overflow at hundreds of calls)."""
    if n == 0:
        return np.ones(1)
    p = min(max(p, 1e-9), 1 - 1e-9)
    k = np.arange(1, n + 1)
    logs = np.concatenate(([n * math.log1p(-p)], np.log((n - k + 1) / k) + math.log(p / (1 - p))))
    pmf: np.ndarray = np.exp(np.cumsum(logs))
    pmf /= pmf.sum()
    return pmf


def freed_pmf(groups: list[tuple[int, float]]) -> np.ndarray:
    """P(Y = k) for ``Y`` the agents freed among ``groups`` of (busy agents, probability each is free in time)."""
    pmf = np.ones(1)
    for count, q in groups:
        if count > 0:
            pmf = np.convolve(pmf, _binomial_pmf(count, q))
    return pmf


#: The abandon rate the pacer corrects itself on, besides the 24-hour and 30-day ones (minutes).
RECENT_MIN = 20
#: The correction's steps per tick: down while above the aim, up otherwise.
GAIN_DOWN, GAIN_UP = 0.98, 1.002
#: Durations kept for the empirical distributions (per kind: handle times, wrap-ups).
SAMPLES = 400
#: Below this many samples the mean's exponential stands in for the distribution.
MIN_SAMPLES = 30


def free_within(samples: np.ndarray, elapsed: float, horizon: float, mean: float) -> float:
    """P(D ≤ elapsed + horizon | D > elapsed) for a duration ``D`` of the sorted ``samples`` (empirical), or
    ``1 − exp(−horizon/mean)`` when too few samples (or too few as long as ``elapsed``) say."""
    if len(samples) >= MIN_SAMPLES:
        longer = len(samples) - int(np.searchsorted(samples, elapsed, side="right"))
        if longer >= 5:
            done = int(np.searchsorted(samples, elapsed + horizon, side="right")) - (len(samples) - longer)
            return done / longer
    return 1.0 - math.exp(-horizon / max(mean, 0.5))


def expected_overflow(calls: int, p: float, ready: int, freed: np.ndarray) -> float:
    """``E[max(X − ready − Y, 0)]`` for ``X ~ B(calls, p)`` and ``Y`` of pmf ``freed`` (``ready`` may be negative:
    people already waiting for an agent)."""
    if calls <= 0:
        return 0.0
    x = _binomial_pmf(calls, p)
    diff = np.convolve(x, freed[::-1])  # P(X − Y = d), d = −(len(freed) − 1) … calls
    d = np.arange(-(len(freed) - 1), calls + 1)
    over = np.maximum(d - ready, 0)
    return float(np.dot(diff, over))


class PredictivePacer:
    """Predictive pacing for one campaign (see the module's docstring)."""

    def __init__(self, settings: PredictiveSettings | None = None) -> None:
        self.settings = s = settings or PredictiveSettings()
        self.answer = DecayingMean(s.prior_answer, 20.0, s.half_life_s)  # people per dial
        self.ring = DecayingMean(s.prior_ring_s, 10.0, s.half_life_s)  # seconds to a person's answer
        self.handle = DecayingMean(s.prior_handle_s, 10.0, s.half_life_s)  # talk + wrap-up
        self.wrap = DecayingMean(s.prior_wrap_s, 10.0, s.half_life_s)  # wrap-up alone
        self._handles: deque[float] = deque(maxlen=SAMPLES)
        self._wraps: deque[float] = deque(maxlen=SAMPLES)
        self.day = WindowRate(timedelta(hours=24))
        self.month = WindowRate(timedelta(days=30))
        self.recent = WindowRate(timedelta(minutes=RECENT_MIN))
        self._gain = 0.25  # the model's correction, steered by the abandons it did not foresee (a cautious start)
        self._level = 1.0
        self.alpha = s.abandon_target * s.safety

    # -- what happened

    def record(self, outcome: DialOutcome) -> None:
        if not outcome.history:
            self.answer.add(1.0 if outcome.human else 0.0, outcome.at)
        if outcome.human and not outcome.history:
            self.ring.add(max((outcome.at - outcome.placed_at).total_seconds(), 0.0), outcome.at)
        if outcome.human or outcome.abandoned:
            if not outcome.history:
                self.recent.add(outcome.at, abandoned=outcome.abandoned, human=outcome.human)
            self.day.add(outcome.at, abandoned=outcome.abandoned, human=outcome.human)
            self.month.add(outcome.at, abandoned=outcome.abandoned, human=outcome.human)

    def handled(self, seconds: float, at: datetime) -> None:
        self.handle.add(max(seconds, 1.0), at)
        self._handles.append(max(seconds, 1.0))

    def wrapped(self, seconds: float, at: datetime) -> None:
        self.wrap.add(max(seconds, 0.5), at)
        self._wraps.append(max(seconds, 0.5))

    # -- the decision

    def running_rate(self, now: datetime) -> float:
        """The larger of the 24-hour and 30-day abandon rates, each pulled towards the aim by the prior."""
        s = self.settings
        aim = s.abandon_target * s.safety
        rates = []
        for window in (self.day, self.month):
            window.expire(now)
            rates.append((window.abandoned + aim * s.prior_humans) / (window.humans + s.prior_humans))
        return max(rates)

    def decide(self, state: PacingState) -> int:
        s = self.settings
        active = state.agents_active
        if active <= 0 or not state.leads_available:
            self._level = 0.0 if active <= 0 else (state.calls_in_flight + state.calls_waiting) / active
            return 0
        aim = s.abandon_target * s.safety
        self.recent.expire(state.now)
        recent = (self.recent.abandoned + aim * 50) / (self.recent.humans + 50)
        # Integral correction: while the last minutes or the day run above the aim the allowance shrinks fast
        # (halved in ~35 ticks), below it grows back slowly (doubled in ~6 minutes).
        over = recent > aim or self.running_rate(state.now) > aim
        self._gain = min(max(self._gain * (GAIN_DOWN if over else GAIN_UP), 0.01), 2.0)
        self.alpha = aim * self._gain
        lines = math.floor(s.max_lines_per_agent * active)
        cap = lines - state.calls_in_flight - state.calls_waiting
        if s.max_in_flight is not None:
            cap = min(cap, s.max_in_flight - state.calls_in_flight)
        cap = max(cap, 0)
        p = self.answer.value
        horizon = self.ring.value + s.connect_within_s  # a call placed now is answered, then may wait this long
        freed = self._freed(state, horizon)
        ready = state.agents_ready - state.calls_waiting

        def fits(n: int) -> bool:
            calls = state.calls_in_flight + n
            if calls == 0:
                return True
            return expected_overflow(calls, p, ready, freed) <= self.alpha * calls * p

        low, high = 0, cap  # the largest n that fits (the overflow grows with n)
        if not fits(0):
            high = 0
        while low < high:
            mid = (low + high + 1) // 2
            if fits(mid):
                low = mid
            else:
                high = mid - 1
        self._level = (state.calls_in_flight + state.calls_waiting + low) / active
        return low

    def _freed(self, state: PacingState, horizon: float) -> np.ndarray:
        """P(Y = k), ``Y`` the busy agents free within ``horizon``: each timed agent from the empirical
        distribution of handle (talking) or wrap-up (wrapping) times given how long they have been at it; the
        others as memoryless with the means."""
        busy = max(state.agents_active - state.agents_ready, 0)
        talking = busy if state.agents_talking is None else min(state.agents_talking, busy)
        handles, wraps = np.sort(np.fromiter(self._handles, float)), np.sort(np.fromiter(self._wraps, float))
        chances = [free_within(handles, e, horizon, self.handle.value) for e in state.talking_elapsed[:talking]]
        wrapping = busy - talking
        chances += [free_within(wraps, e, horizon, self.wrap.value) for e in state.wrapping_elapsed[:wrapping]]
        untimed_talking = talking - min(len(state.talking_elapsed), talking)
        untimed_wrapping = wrapping - min(len(state.wrapping_elapsed), wrapping)
        pmf = freed_pmf([
            (untimed_talking, 1.0 - math.exp(-horizon / max(self.handle.value, 1.0))),
            (untimed_wrapping, 1.0 - math.exp(-horizon / max(self.wrap.value, 0.5))),
        ])  # fmt: skip
        for q in chances:  # Poisson-binomial: one agent at a time
            pmf = np.convolve(pmf, (1.0 - q, q))
        return pmf

    @property
    def level(self) -> float:
        return self._level
