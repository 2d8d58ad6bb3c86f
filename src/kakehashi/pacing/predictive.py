"""Kakehashi's predictive pacing: each tick, the most calls whose *expected* abandons stay within the budget.

The model (ADR 0025). Of the ``M`` calls that will be ringing — those in flight plus ``n`` new ones — the number
answered by a person is ``X ~ Binomial(M, p)``. ``p``, people per dial, is a decaying mean (half-life 5 minutes)
learnt from whole cohorts of dials — a dial counts once every dial placed with it has its result (ring time-out
+ the detector's listening), since quick failures come back first and unanswered calls last — plus one standard
error of it, so that a new campaign, whose rate is a prior worth 20 dials, starts carefully. The agents there to
take the answers are the ``F`` ready now (less the people already waiting) plus ``Y`` of the busy ones, free by
the time a call is answered and has waited its 2 s (``t``: the mean time to a person's answer plus 2 s): each
talking agent with ``P(H ≤ e + t | H > e)`` for ``H`` the handle time (talk + wrap-up) given the ``e`` seconds
since their person answered, each agent in wrap-up the same for the wrap-up time; ``Y`` is their
Poisson-binomial sum. The distributions are Kaplan–Meier estimates from the last 400 durations that ended and
the ones still running (censored: at first only the short calls have ended); where they say too little (fewer
than 30 durations, or fewer than 5 as long as ``e``) a memoryless time with the censored mean stands in. A person
abandoned is one too many: ``E[max(X − F − Y, 0)]``, and the pacer places the largest ``n`` with

    E[max(X − F − Y, 0)] / E[X] ≤ α

``α = τ·s·g``: ``τ`` the campaign's target (3 %), ``s`` a safety factor (0.9), ``g`` a correction for what the
model does not foresee (answers bunch in time; an agent freed late in the window cannot take an early answer).
``g`` is an integral controller on counts, not on time: ``ln g`` moves by ``K·(τs·people − abandons)`` at each
person and each abandon, so that the abandons since the start are ``τs·people − (ln g_now − ln g_start)/K``
exactly — the rate can overshoot the aim only by what ``ln g`` has fallen, whatever the size of the floor (a small
floor's 20-minute window, with two abandons in it, swung the earlier time-stepped correction). ``K`` is 0.1 on
ten agents and ``0.1·√(10/agents)`` on more (abandons come in bursts when the model errs). After a restart the last
24 hours read back steer ``g`` down the same way: a bad day behind a campaign starts it low (a good one does not
start it high: each day is held to the target on its own). ``g`` starts at 0.5, within
0.01…2. Measured at 50 agents, the uncorrected model (``g = 1``) let 3.6–4 % of people go without an agent.

People the answering-machine detector took for machines were hung up on too (Ofcom and the FCC count them as
abandoned). With detection dropping machines, the pacer estimates them from the detector's false-machine rate
``f`` (P(machine verdict | person), measured; the campaign's ``amd.false_machine_rate``): each person let
through stands for ``f/(1 − f)`` more, counted both as a person and as an abandon, in ``g`` and in the windows.
Caps: lines per agent, calls in flight per campaign.
"""

from __future__ import annotations

import heapq
import itertools
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
    safety: float = 0.9
    half_life_s: float = 300.0
    prior_answer: float = 0.3
    prior_ring_s: float = 10.0
    prior_handle_s: float = 180.0
    prior_wrap_s: float = 30.0
    connect_within_s: float = 2.0  # a person waits this long for an agent before the call counts as abandoned
    prior_humans: int = 200
    false_machine_rate: float = 0.0  # P(machine verdict | person) when machines are dropped; 0: no detection
    #: A dial's fate is known this long after it was placed (ring time-out + the detector's listening + margin):
    #: the answer estimates learn from whole cohorts of dials, not from whichever results came back first.
    settle_s: float = 40.0
    #: Standard deviations of the answer rate's uncertainty the pacer plans for (few dials: a cautious start).
    answer_doubt: float = 1.0


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


#: The correction's step: ``ln g`` moves by this times (aim × people − abandons) at each person and abandon, on
#: a floor of ``GAIN_STEP_AGENTS``; on a larger one by ``√(GAIN_STEP_AGENTS / agents)`` of it (abandons come in
#: bursts when the model errs: at 200 agents seven in a few seconds took ``g`` from 1 to 0.2 at 0.2).
GAIN_STEP = 0.1
GAIN_STEP_AGENTS = 10
#: Where the correction starts, and its bounds.
GAIN_START, GAIN_MIN, GAIN_MAX = 0.5, 0.01, 2.0
#: The answer rate's prior counts as this many dials.
ANSWER_PRIOR_DIALS = 20.0
#: Durations kept for the empirical distributions (per kind: handle times, wrap-ups).
SAMPLES = 400
#: Below this many samples the mean's exponential stands in for the distribution.
MIN_SAMPLES = 30
#: The prior handle (wrap-up) time counts as this many durations in the censored mean.
PRIOR_DURATIONS = 5


class Remaining:
    """How long a talk (or wrap-up) still lasts, from the durations that ended (``samples``) and those still
    running (``running``: how long each has lasted so far) — Kaplan–Meier's product-limit estimate, so that the
    long calls still under way count. (From finished calls alone the first minutes of a campaign see only its
    short calls, and took every agent for nearly free: at 200 agents a tenth of the first quarter-hour's people
    were abandoned.)"""

    def __init__(self, samples: np.ndarray, running: np.ndarray, prior_mean: float) -> None:
        self.events = np.sort(samples)
        running = np.sort(running)
        # Where the samples say too little (few, or none as long): a memoryless time with the censored mean —
        # every second lived, finished or not, over the durations that finished (the finished alone are the
        # short ones at first), with the prior as a few durations more.
        exposure = float(self.events.sum() + running.sum()) + PRIOR_DURATIONS * prior_mean
        self.mean = exposure / (len(self.events) + PRIOR_DURATIONS)
        m = len(self.events)
        at_risk = (m - np.arange(m)) + (len(running) - np.searchsorted(running, self.events, side="left"))
        self._survival = np.cumprod(1.0 - 1.0 / np.maximum(at_risk, 1))

    def survival(self, t: float) -> float:
        """P(D > t)."""
        i = int(np.searchsorted(self.events, t, side="right"))
        return 1.0 if i == 0 else float(self._survival[i - 1])

    def chance(self, elapsed: float, horizon: float) -> float:
        """P(D ≤ elapsed + horizon | D > elapsed), or ``1 − exp(−horizon/mean)`` when too few samples (or too few
        as long as ``elapsed``) say."""
        if len(self.events) >= MIN_SAMPLES:
            longer = len(self.events) - int(np.searchsorted(self.events, elapsed, side="right"))
            now = self.survival(elapsed)
            if longer >= 5 and now > 0:
                return 1.0 - self.survival(elapsed + horizon) / now
        return 1.0 - math.exp(-horizon / max(self.mean, 0.5))


def free_within(samples: np.ndarray, elapsed: float, horizon: float, mean: float) -> float:
    """P(D ≤ elapsed + horizon | D > elapsed) for a duration ``D`` of the ``samples`` alone (see :class:`Remaining`)."""
    return (
        Remaining(samples, np.empty(0), mean).chance(elapsed, horizon)
        if len(samples) >= MIN_SAMPLES
        else (1.0 - math.exp(-horizon / max(mean, 0.5)))
    )


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


def unseen_per_person(false_machine_rate: float) -> float:
    """People the detector hung up on, estimated per person it let through: ``f/(1 − f)`` (``f`` within 0…0.5)."""
    f = min(max(false_machine_rate, 0.0), 0.5)
    return f / (1.0 - f)


class PredictivePacer:
    """Predictive pacing for one campaign (see the module's docstring)."""

    def __init__(self, settings: PredictiveSettings | None = None) -> None:
        self.settings = s = settings or PredictiveSettings()
        self.answer = DecayingMean(s.prior_answer, ANSWER_PRIOR_DIALS, s.half_life_s)  # people per dial
        self.ring = DecayingMean(s.prior_ring_s, 10.0, s.half_life_s)  # seconds to a person's answer
        self.handle = DecayingMean(s.prior_handle_s, 10.0, s.half_life_s)  # talk + wrap-up
        self.wrap = DecayingMean(s.prior_wrap_s, 10.0, s.half_life_s)  # wrap-up alone
        # Results by when their dial was placed: (placed, arrival, human, ring s).
        self._unsettled: list[tuple[datetime, int, bool, float | None]] = []
        self._arrivals = itertools.count()
        self._handles: deque[float] = deque(maxlen=SAMPLES)
        self._wraps: deque[float] = deque(maxlen=SAMPLES)
        self.day = WindowRate(timedelta(hours=24))
        self.month = WindowRate(timedelta(days=30))
        self._history: list[tuple[datetime, float]] = []  # read back after a restart: (when, aim × people − abandons)
        self._log_gain = math.log(GAIN_START)  # the model's correction, steered by the abandons it did not foresee
        self._level = 1.0
        self._agents = 0
        self.aim = s.abandon_target * s.safety
        self.alpha = self.aim * GAIN_START
        self._unseen = unseen_per_person(s.false_machine_rate)

    # -- what happened

    def record(self, outcome: DialOutcome) -> None:
        late_abandon = outcome.abandoned and not outcome.human  # a person counted at the answer, abandoned later
        if not outcome.history and not late_abandon:
            ring = (outcome.at - outcome.placed_at).total_seconds() if outcome.human else None
            heapq.heappush(self._unsettled, (outcome.placed_at, next(self._arrivals), outcome.human, ring))
        unseen = self._unseen if outcome.human else 0.0
        people, abandons = int(outcome.human) + unseen, int(outcome.abandoned) + unseen
        if people or abandons:
            self.day.add(outcome.at, abandoned=abandons, human=people)
            self.month.add(outcome.at, abandoned=abandons, human=people)
            if outcome.history:  # steers at the first decision, when the floor's size (and so K) is known
                self._history.append((outcome.at, self.aim * people - abandons))
            else:
                self._steer(self.step * (self.aim * people - abandons))

    def _steer_by_history(self, now: datetime) -> None:
        """After a restart: the last 24 hours read back steer ``g`` down as if they had been counted live (a bad
        day behind the campaign starts it low; a good one does not start it high). Only the day: older days were
        held to the aim when they were live, and a month of a large floor's counts would pin ``g`` to a bound on
        noise alone."""
        since = now - timedelta(hours=24)
        # Down only: a day that stayed under the aim licenses no more abandons today (measured: three days at
        # 10 agents carried the first day's margin into the second, 1.9 % on the line + 1.2 % estimated).
        self._steer(min(self.step * sum(excess for at, excess in self._history if at >= since), 0.0))
        self._history.clear()

    def _settle(self, now: datetime) -> None:
        """Teach the answer estimates the dials placed ``settle_s`` ago or earlier, whose results are all in:
        quick failures come back first, answers next, unanswered calls last — learning in that order, the
        first seconds of a campaign saw one answer in twelve dials and the next half-minute two in three."""
        settled = now - timedelta(seconds=self.settings.settle_s)
        while self._unsettled and self._unsettled[0][0] <= settled:
            _, _, human, ring = heapq.heappop(self._unsettled)
            self.answer.add(1.0 if human else 0.0, now)
            if ring is not None:
                self.ring.add(max(ring, 0.0), now)

    def _steer(self, step: float) -> None:
        self._log_gain = min(max(self._log_gain + step, math.log(GAIN_MIN)), math.log(GAIN_MAX))

    @property
    def step(self) -> float:
        """The correction's step ``K`` on this floor (the agents at the last decision)."""
        return GAIN_STEP * math.sqrt(GAIN_STEP_AGENTS / max(self._agents, GAIN_STEP_AGENTS))

    @property
    def gain(self) -> float:
        """The correction ``g`` now."""
        return math.exp(self._log_gain)

    def handled(self, seconds: float, at: datetime) -> None:
        self.handle.add(max(seconds, 1.0), at)
        self._handles.append(max(seconds, 1.0))

    def wrapped(self, seconds: float, at: datetime) -> None:
        self.wrap.add(max(seconds, 0.5), at)
        self._wraps.append(max(seconds, 0.5))

    # -- the decision

    def running_rate(self, now: datetime) -> float:
        """The larger of the 24-hour and 30-day abandon rates (estimated false machines included), each pulled
        towards the aim by ``prior_humans`` — a reading; the decision steers on the counts (``gain``)."""
        prior = self.settings.prior_humans
        rates = []
        for window in (self.day, self.month):
            window.expire(now)
            rates.append((window.abandoned + self.aim * prior) / (window.humans + prior))
        return max(rates)

    def decide(self, state: PacingState) -> int:
        s = self.settings
        self._settle(state.now)
        active = self._agents = state.agents_active
        if self._history and active > 0:
            self._steer_by_history(state.now)
        if active <= 0 or not state.leads_available:
            self._level = 0.0 if active <= 0 else (state.calls_in_flight + state.calls_waiting) / active
            return 0
        self.alpha = self.aim * self.gain
        lines = math.floor(s.max_lines_per_agent * active)
        cap = lines - state.calls_in_flight - state.calls_waiting
        if s.max_in_flight is not None:
            cap = min(cap, s.max_in_flight - state.calls_in_flight)
        cap = max(cap, 0)
        p = self.answer_rate()
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

    def answer_rate(self) -> float:
        """People per dial as the pacer plans for it: the estimate plus ``answer_doubt`` standard errors of it (the
        prior and the decayed dials behind it), so that a new campaign, whose answer rate is a guess, starts
        carefully, and a large floor, with thousands of dials behind its estimate, plans on the estimate."""
        s = self.settings
        p = self.answer.value
        return min(p + s.answer_doubt * math.sqrt(p * (1 - p) / (self.answer.weight + ANSWER_PRIOR_DIALS)), 1.0)

    def _freed(self, state: PacingState, horizon: float) -> np.ndarray:
        """P(Y = k), ``Y`` the busy agents free within ``horizon``: each timed agent from the empirical
        distribution of handle (talking) or wrap-up (wrapping) times given how long they have been at it; the
        others as memoryless with the means."""
        busy = max(state.agents_active - state.agents_ready, 0)
        talking = busy if state.agents_talking is None else min(state.agents_talking, busy)
        talking_elapsed = np.asarray(state.talking_elapsed[:talking], float)
        wrapping_elapsed = np.asarray(state.wrapping_elapsed[: busy - talking], float)
        handles = Remaining(np.fromiter(self._handles, float), talking_elapsed, self.settings.prior_handle_s)
        wraps = Remaining(np.fromiter(self._wraps, float), wrapping_elapsed, self.settings.prior_wrap_s)
        chances = [handles.chance(e, horizon) for e in talking_elapsed]
        wrapping = busy - talking
        chances += [wraps.chance(e, horizon) for e in wrapping_elapsed]
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
