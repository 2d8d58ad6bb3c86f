"""Kakehashi's predictive pacer as a pure function: the abandon model, the empirical remaining times, the caps,
and the steering by the running abandon rate (no database, no telephony)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakehashi.pacing.predictive import (
    PredictivePacer,
    PredictiveSettings,
    expected_overflow,
    free_within,
    freed_pmf,
)
from kakehashi.pacing.types import DialOutcome, PacingState

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def state(**kw: object) -> PacingState:
    fields: dict[str, object] = {"now": NOW, "agents_active": 10, "agents_ready": 10, "calls_in_flight": 0,
                                 "calls_waiting": 0}  # fmt: skip
    return PacingState(**(fields | kw))  # type: ignore[arg-type]


def test_no_overflow_when_every_answer_has_an_agent() -> None:
    assert expected_overflow(5, 1.0, 5, freed_pmf([])) == pytest.approx(0.0)
    assert expected_overflow(6, 1.0, 5, freed_pmf([])) == pytest.approx(1.0)
    # Two calls that each answer half the time, one agent: one person too many a quarter of the time.
    assert expected_overflow(2, 0.5, 1, freed_pmf([])) == pytest.approx(0.25)
    # A busy agent free in time half the time takes the second person half the time.
    assert expected_overflow(2, 1.0, 1, freed_pmf([(1, 0.5)])) == pytest.approx(0.5)


def test_remaining_time_from_the_samples_given_the_time_spent() -> None:
    samples = np.sort(np.linspace(100, 200, 101))
    assert free_within(samples, 150, 10, mean=150) == pytest.approx(10 / 50, abs=0.02)
    assert free_within(samples, 0, 10, mean=150) == 0.0  # nobody is done in 10 s
    few = samples[:10]
    assert free_within(few, 150, 10, mean=150) == pytest.approx(1 - np.exp(-10 / 150))  # too few: the mean


def test_more_lines_than_agents_within_the_caps() -> None:
    pacer = PredictivePacer()
    n = pacer.decide(state())
    assert 10 < n <= 30 and pacer.level == pytest.approx(n / 10)
    assert PredictivePacer(PredictiveSettings(max_lines_per_agent=1.0)).decide(state()) == 10
    assert PredictivePacer(PredictiveSettings(max_in_flight=12)).decide(state(calls_in_flight=5)) <= 7
    assert pacer.decide(state(leads_available=False)) == 0
    assert pacer.decide(state(agents_active=0, agents_ready=0)) == 0


def test_a_rate_above_the_target_stops_the_over_dialing() -> None:
    pacer = PredictivePacer()
    before = pacer.decide(state())
    for i in range(400):  # a day that left one person in ten without an agent
        pacer.record(DialOutcome(at=NOW - timedelta(seconds=400 - i), placed_at=NOW - timedelta(seconds=420 - i),
                                 human=True, abandoned=i % 10 == 0))  # fmt: skip
    after = pacer.decide(state())
    assert pacer.running_rate(NOW) > 0.05 and after < before


def test_agents_about_to_finish_their_wrap_up_allow_more_calls() -> None:
    pacer = PredictivePacer()
    for _ in range(100):
        pacer.wrapped(20.0, NOW)
        pacer.handled(180.0, NOW)
    busy = {"agents_ready": 2, "agents_talking": 0}
    fresh = pacer.decide(state(**busy, wrapping_elapsed=(1.0,) * 8))  # wrap-ups just begun: 19 s left each
    nearly = pacer.decide(state(**busy, wrapping_elapsed=(18.0,) * 8))  # 2 s left each: free by the answers
    assert nearly > fresh


@given(ready=st.integers(0, 50), busy=st.integers(0, 50), ringing=st.integers(0, 100), waiting=st.integers(0, 10))
def test_never_negative_never_past_the_lines(ready: int, busy: int, ringing: int, waiting: int) -> None:
    pacer = PredictivePacer()
    active = ready + busy
    n = pacer.decide(state(agents_active=active, agents_ready=ready, calls_in_flight=ringing, calls_waiting=waiting))
    assert n >= 0 and ringing + waiting + n <= max(3 * active, ringing + waiting)


def _person(pacer: PredictivePacer, i: int, *, abandoned: bool = False) -> None:
    at = NOW + timedelta(seconds=i)
    pacer.record(DialOutcome(at=at, placed_at=at - timedelta(seconds=10), human=True, abandoned=abandoned))


def test_the_correction_counts_abandons_against_the_aim_whatever_the_floor_size() -> None:
    """``ln g`` moves by K·(aim × people − abandons): the abandons since the start are the aim's share of the
    people, give or take what ``ln g`` moved — so a run that ends with ``g`` above its start has abandoned at most
    the aim, on a small floor as on a large one."""
    import math

    from kakehashi.pacing.predictive import GAIN_START

    pacer = PredictivePacer()
    people, abandons = 0, 0
    for i in range(300):
        dropped = i % 50 == 7  # 2 % abandoned: under the aim (2.7 %)
        _person(pacer, i, abandoned=dropped)
        people, abandons = people + 1, abandons + dropped
    moved = math.log(pacer.gain / GAIN_START) / pacer.step
    assert moved == pytest.approx(pacer.aim * people - abandons)
    assert pacer.gain > GAIN_START  # under the aim: the allowance grew
    high = PredictivePacer()
    for i in range(300):
        _person(high, i, abandoned=i % 10 == 0)  # 10 %: it shrinks
    assert high.gain < GAIN_START


def test_people_the_detector_hangs_up_on_are_counted_as_an_estimate() -> None:
    """With a false-machine rate f, each person let through stands for f/(1 − f) more, abandoned: in the 24-hour
    rate and in the correction."""
    plain, detecting = PredictivePacer(), PredictivePacer(PredictiveSettings(false_machine_rate=0.02))
    for i in range(200):
        _person(plain, i)
        _person(detecting, i)
    assert plain.day.abandoned == 0 and plain.day.humans == 200
    assert detecting.day.abandoned == pytest.approx(200 * 0.02 / 0.98)
    assert detecting.day.humans == pytest.approx(200 / 0.98)
    assert detecting.day.rate == pytest.approx(0.02)
    assert detecting.gain < plain.gain


def _dial(pacer: PredictivePacer, placed: datetime, after_s: float, *, human: bool) -> None:
    pacer.record(DialOutcome(at=placed + timedelta(seconds=after_s), placed_at=placed, human=human))


def test_the_answer_rate_is_learnt_from_whole_cohorts_not_from_the_first_results_back() -> None:
    """Failures come back in a second, answers in ten, unanswered calls at the ring time-out: the estimate waits
    until a cohort's results are all in (``settle_s``), so a campaign's first seconds do not read one answer in
    twelve dials."""
    pacer = PredictivePacer(PredictiveSettings(settle_s=40))
    for i in range(100):  # 100 dials at NOW: 30 people, 40 quick failures, 30 nobody answers
        after, human = (10.0, True) if i < 30 else (1.0, False) if i < 70 else (31.0, False)
        if after <= 5:
            _dial(pacer, NOW, after, human=human)
    prior = pacer.answer.value
    pacer.decide(state(now=NOW + timedelta(seconds=5)))
    assert pacer.answer.value == prior  # the failures alone say nothing yet
    for i in range(100):
        after, human = (10.0, True) if i < 30 else (1.0, False) if i < 70 else (31.0, False)
        if after > 5:
            _dial(pacer, NOW, after, human=human)
    pacer.decide(state(now=NOW + timedelta(seconds=41)))
    assert pacer.answer.value == pytest.approx((0.3 * 20 + 30) / 120)  # the whole cohort, with the prior


def test_the_answer_rate_follows_a_list_that_answers_more_within_minutes() -> None:
    pacer = PredictivePacer(PredictiveSettings(settle_s=40))
    at = NOW
    for _ in range(60):  # an hour of a morning list: one person in five
        for i in range(20):
            _dial(pacer, at, 5.0, human=i % 5 == 0)
        at += timedelta(minutes=1)
        pacer.decide(state(now=at))
    assert pacer.answer.value == pytest.approx(0.2, abs=0.02)
    for _ in range(10):  # the evening list: one in two
        for i in range(20):
            _dial(pacer, at, 5.0, human=i % 2 == 0)
        at += timedelta(minutes=1)
        pacer.decide(state(now=at))
    assert pacer.answer.value > 0.4


def test_the_calls_still_running_count_so_the_first_short_calls_do_not_make_agents_look_nearly_free() -> None:
    """Kaplan–Meier with the running calls censored: 40 calls of 20 s have ended, 160 agents are 60 s into
    theirs — they are not 20-s calls about to end."""
    from kakehashi.pacing.predictive import Remaining

    ended, running = np.full(40, 20.0), np.full(160, 60.0)
    censored = Remaining(ended, running, prior_mean=180.0)
    assert censored.chance(60.0, 12.0) < 0.1
    assert free_within(ended, 60.0, 12.0, mean=20.0) > 0.4  # the ended ones alone: nearly half free in 12 s
    # With long calls ended too the product-limit estimate answers from the samples.
    longer = np.linspace(61.0, 300.0, 40)
    mixed = Remaining(np.concatenate([ended, longer]), running, prior_mean=180.0)
    assert mixed.survival(30.0) == pytest.approx(1 - 40 / 240)  # 40 events among 240 at risk
    assert mixed.chance(60.0, 12.0) == pytest.approx(2 / 40, abs=0.002)  # two of the 40 longer end by 72 s


def test_after_a_restart_the_last_day_read_back_steers_the_correction_the_older_days_do_not() -> None:
    from kakehashi.pacing.predictive import GAIN_START

    def restarted(days_ago: float) -> PredictivePacer:
        pacer = PredictivePacer()
        for i in range(400):  # a day that left one person in ten without an agent
            at = NOW - timedelta(days=days_ago, seconds=400 - i)
            pacer.record(DialOutcome(at=at, placed_at=at, human=True, abandoned=i % 10 == 0, history=True))
        pacer.decide(state())
        return pacer

    assert restarted(0).gain < GAIN_START / 2  # yesterday's bad day: a careful start
    good = PredictivePacer()
    for i in range(400):  # a day without an abandon: no licence for more today
        at = NOW - timedelta(seconds=400 - i)
        good.record(DialOutcome(at=at, placed_at=at, human=True, history=True))
    good.decide(state())
    assert good.gain == pytest.approx(GAIN_START)
    assert restarted(3).gain == pytest.approx(GAIN_START)  # days ago: held to the aim then, not steered again
    assert restarted(3).running_rate(NOW) > 0.05  # still in the 30-day window the wallboard shows
