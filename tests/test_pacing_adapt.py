"""VICIdial's ADAPT modes as ``pacing.adapt`` does them (AST_VDadapt.pl, AST_VDauto_dial.pl): the 15-s steps, the
drop rules of each mode, the Japanese day, the calls to place. Pure: no database, a made-up clock (one ``decide``
a second, turn 1 at the start; the level steps at turns 16, 31, 46…, the drops are counted at turns 1, 61, 121…)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.pacing.adapt import AdaptPacer
from kakehashi.pacing.types import DialOutcome, PacingState

TEN_AM = datetime(2026, 12, 7, 10, 0, tzinfo=BUSINESS_TZ)


class Floor:
    """Drives a pacer one turn a second."""

    def __init__(self, pacer: AdaptPacer, start: datetime = TEN_AM) -> None:
        self.pacer = pacer
        self.now = start - timedelta(seconds=1)
        self.turns = 0

    def run(
        self, turns: int, *, active: int = 10, ready: int = 0, waiting: int = 0, in_flight: int = 0, leads: bool = True
    ) -> int:
        """``turns`` turns of the same floor; the last ``decide``'s answer."""
        calls = 0
        for _ in range(turns):
            self.now += timedelta(seconds=1)
            self.turns += 1
            calls = self.pacer.decide(PacingState(self.now, active, ready, in_flight, waiting, leads))
        return calls

    def until(
        self, turn: int, *, active: int = 10, ready: int = 0, waiting: int = 0, in_flight: int = 0, leads: bool = True
    ) -> int:
        """Run through turn ``turn``."""
        assert turn > self.turns
        return self.run(
            turn - self.turns, active=active, ready=ready, waiting=waiting, in_flight=in_flight, leads=leads
        )

    def dials(self, n: int, *, humans: int = 0, drops: int = 0, at: datetime | None = None) -> None:
        """``n`` results at ``at`` (default: now); ``drops`` of them dropped, ``humans`` answered by people."""
        at = at or self.now
        for i in range(n):
            dropped = i < drops
            human = dropped or i < humans
            self.pacer.record(DialOutcome(at, at - timedelta(seconds=20), human=human, abandoned=dropped))


def at_max(pacer: AdaptPacer, start: datetime = TEN_AM) -> Floor:
    """Every agent ready for 31 turns: the level doubled at turn 16 and again (to the cap) at 31."""
    floor = Floor(pacer, start)
    floor.until(31, ready=10)
    assert floor.pacer.level == min(4.0, pacer.max_level)
    return floor


# --- the 15-s step ---


def test_given_agents_ready_when_15_seconds_pass_then_the_level_steps_up_by_ready_per_agent() -> None:
    floor = Floor(AdaptPacer("adapt_average"))
    floor.until(15, ready=2)
    assert floor.pacer.level == 1.0  # the first step is at the 16th turn (diff_ratio_updater reaches 15)
    floor.run(1, ready=2)
    assert floor.pacer.level == 1.2  # 1.0 × (1 + 2 / 10)
    floor.until(30, ready=2)
    assert floor.pacer.level == 1.2
    floor.run(1, ready=2)
    assert floor.pacer.level == 1.44  # and every 15 s after


def test_given_calls_waiting_when_15_seconds_pass_then_the_level_steps_down() -> None:
    floor = Floor(AdaptPacer("adapt_average"))
    floor.until(16, ready=5)
    assert floor.pacer.level == 1.5
    floor.until(31, waiting=2)  # the last 15 turns: 2 calls waiting per 10 agents
    assert floor.pacer.level == 1.2  # 1.5 × (1 − 0.2)


def test_the_step_is_the_mean_of_the_last_15_turns_plus_the_target() -> None:
    floor = Floor(AdaptPacer("adapt_average", dl_diff_target=-1))  # aim: one call waiting
    floor.until(16, ready=1)
    assert floor.pacer.level == 1.0  # (1 − 1) / 10
    floor.until(23, ready=4)
    floor.until(31, ready=1)  # turns 17-31: (7 × 4 + 8 × 1) / 15 = 2.4 ready on average
    assert floor.pacer.level == 1.14  # 1.0 × (1 + (2.4 − 1) / 10)


def test_intensity_scales_a_step_up_by_1_plus_and_a_step_down_by_1_minus_intensity() -> None:
    eager = Floor(AdaptPacer("adapt_average", intensity=40))
    eager.until(16, ready=2)
    assert eager.pacer.level == 1.28  # 1 + 0.2 × 1.4
    eager.until(31, waiting=2)
    assert eager.pacer.level == 1.126  # 1.28 × (1 − 0.2 × 0.6) = 1.1264, kept to 3 decimals

    slow = Floor(AdaptPacer("adapt_average", intensity=-50))
    slow.until(16, ready=8)
    assert slow.pacer.level == 1.4  # 1 + 0.8 × 0.5
    slow.until(31, waiting=1)
    assert slow.pacer.level == 1.19  # 1.4 × (1 − 0.1 × 1.5)


def test_the_level_stays_between_1_and_the_maximum() -> None:
    floor = at_max(AdaptPacer("adapt_average", max_level=2.5))  # 1 → 2 → 4, capped
    assert floor.pacer.level == 2.5
    floor.until(46, waiting=20)  # × (1 − 2): below zero
    assert floor.pacer.level == 1.0


def test_given_no_leads_then_the_level_holds_and_no_calls_are_placed() -> None:
    floor = Floor(AdaptPacer("adapt_average"))
    assert floor.until(16, ready=3, leads=False) == 0
    assert floor.pacer.level == 1.0
    # Leads again: the step is overdue, so it comes at once — and the turns without leads count as zeros
    # (AST_VDadapt.pl keeps its samples by turn): ready 3 / 15 = 0.2, agents 10 / 15 → × (1 + 0.3).
    assert floor.run(1, ready=3) == 6  # 1.3 × 10 agents = 13 lines, 7 of them talking
    assert floor.pacer.level == 1.3


def test_given_no_agents_then_the_level_holds() -> None:
    floor = Floor(AdaptPacer("adapt_average"))
    floor.until(40, active=0)
    assert floor.pacer.level == 1.0
    floor.run(1, ready=10)  # agents again: overdue, the step comes at once (the average: 10 / 15 of them, all ready)
    assert floor.pacer.level == 2.0


# --- the drop rules ---


@pytest.mark.parametrize(
    ("calls", "drops", "level"),
    [(21, 11, 1.5), (22, 11, 3.0), (20, 20, 3.0)],
    ids=["over-20-calls-over-half-dropped", "exactly-half", "only-20-calls"],
)
def test_given_over_20_calls_last_minute_over_half_dropped_then_the_level_halves(
    calls: int, drops: int, level: float
) -> None:
    floor = at_max(AdaptPacer("adapt_hard_limit"))
    floor.until(45)  # no one ready, no one waiting: the steps keep 3.0
    floor.dials(calls, drops=drops)
    floor.until(60)
    assert floor.pacer.level == 3.0
    floor.run(1)  # turn 61: the drops are counted, then the step
    assert floor.pacer.stats.calls_one == calls
    assert floor.pacer.level == level


def test_the_minute_rule_acts_on_the_last_count_at_every_step_until_the_next_count() -> None:
    floor = at_max(AdaptPacer("adapt_average"))
    floor.until(62)  # counted at 61: nothing yet
    floor.dials(21, drops=11)
    floor.until(120)
    assert floor.pacer.level == 3.0  # the steps at 76, 91, 106 still use turn 61's count
    floor.run(1)
    assert floor.pacer.level == 1.5
    floor.until(136)
    assert floor.pacer.level == 1.0  # halved again (0.75), raised to 1.0


def day_over_target(floor: Floor) -> None:
    """51 calls today, 30 answered by people, 2 dropped: 6.67 % of answers, over 3 % (and not half the minute's)."""
    floor.until(45)
    floor.dials(51, humans=30, drops=2)
    level = floor.pacer.level
    floor.until(60)
    assert floor.pacer.level == level  # no one ready or waiting: the step at 46 kept it


def test_hard_limit_sets_1_when_the_day_is_over_the_drop_target() -> None:
    floor = at_max(AdaptPacer("adapt_hard_limit"))
    day_over_target(floor)
    floor.run(1)
    assert floor.pacer.stats.drops_answers_today_pct == 6.67
    assert floor.pacer.level == 1.0


def test_average_halves_when_the_day_is_over_the_drop_target_and_again_15_seconds_later() -> None:
    floor = at_max(AdaptPacer("adapt_average"))
    day_over_target(floor)
    floor.run(1)
    assert floor.pacer.level == 1.5
    floor.until(76)
    assert floor.pacer.level == 1.0  # 0.75, raised to 1.0


def test_a_day_at_the_target_or_with_50_calls_is_not_over() -> None:
    at_target = at_max(AdaptPacer("adapt_hard_limit"))
    at_target.until(45)
    at_target.dials(100, humans=100, drops=3)  # 3.00 % is not over 3 %
    at_target.until(61)
    assert at_target.pacer.level == 3.0

    few = at_max(AdaptPacer("adapt_hard_limit"))
    few.until(45)
    few.dials(50, humans=10, drops=5)  # 50 % of answers, but only 50 calls
    few.until(61)
    assert few.pacer.level == 3.0


@pytest.mark.parametrize(
    ("start", "level_61", "level_76"),
    [
        ("16:59:00", 1.2, 1.0),  # turn 61 at 17:00: (2100 − 1700) / 1000 = 0.4; 15 s later 0.48 → 1.0
        ("16:58:00", 1.323, 1.0),  # at 16:59: 2100 − 1659 = 441 (HHMM as a number, not hours left) → × 0.441
        ("20:59:00", 1.0, 1.0),  # at 21:00: nothing left → 1.0
        ("21:05:00", 1.0, 1.0),  # after the latest time → 1.0
        ("09:59:00", 3.0, 3.0),  # at 10:00: 1100 left, over 1000 → × 1
    ],
)
def test_tapered_multiplies_by_the_time_left_to_the_latest_time_over_1000(
    start: str, level_61: float, level_76: float
) -> None:
    hour, minute, _ = (int(x) for x in start.split(":"))
    floor = at_max(AdaptPacer("adapt_tapered", latest_server_time="2100"), TEN_AM.replace(hour=hour, minute=minute))
    day_over_target(floor)
    floor.run(1)
    assert floor.pacer.level == level_61
    floor.until(76)
    assert floor.pacer.level == level_76


def test_the_level_is_kept_as_vicidial_stores_it_6_characters() -> None:
    floor = at_max(AdaptPacer("adapt_tapered", max_level=2.75), TEN_AM.replace(hour=16, minute=58))
    day_over_target(floor)
    floor.run(1)
    assert floor.pacer.level == 1.2127  # 2.75 × 0.441 = 1.21275 in auto_dial_level VARCHAR(6)


def test_without_agents_or_leads_drops_are_counted_while_an_agent_saved_a_result_in_the_last_5_minutes() -> None:
    pacer = AdaptPacer("adapt_average")
    floor = Floor(pacer)
    floor.run(1, active=0)
    assert pacer.stats.at is None  # no agents, no recent disposition: not counted
    floor.dials(3, humans=1)
    pacer.handled(95.0, floor.now)
    floor.run(1, active=0)
    assert pacer.stats.at == floor.now
    assert (pacer.stats.calls_today, pacer.stats.answers_today) == (3, 1)


# --- the Japanese day ---


def test_the_day_rolls_over_at_japanese_midnight() -> None:
    start = datetime(2026, 12, 7, 23, 58, tzinfo=BUSINESS_TZ)  # 14:58 UTC
    floor = Floor(AdaptPacer("adapt_hard_limit"), start)
    floor.dials(60, humans=20, drops=10, at=start - timedelta(seconds=30))  # 50 % of answers
    floor.until(120, ready=10)  # every step would double; the day holds it at 1.0
    assert floor.pacer.level == 1.0
    assert floor.pacer.stats.calls_today == 60
    floor.run(1, ready=10)  # turn 121: 00:00:00 on the 8th, counted afresh
    assert floor.now == datetime(2026, 12, 8, 0, 0, tzinfo=BUSINESS_TZ)
    assert floor.pacer.stats.calls_today == 0
    assert floor.pacer.level == 2.0

    floor.dials(1, at=floor.now + timedelta(seconds=1))  # 00:00:01: VICIdial's day starts after it
    floor.dials(1, at=floor.now + timedelta(seconds=30))
    floor.until(181, ready=10)
    assert floor.pacer.stats.calls_today == 1


def test_a_result_counts_on_its_japanese_day_not_its_utc_day() -> None:
    floor = Floor(AdaptPacer("adapt_average"), datetime(2026, 12, 8, 9, 0, tzinfo=BUSINESS_TZ))
    floor.dials(2, at=datetime(2026, 12, 7, 14, 30, tzinfo=UTC))  # 23:30 on the 7th in Japan
    floor.dials(3, at=datetime(2026, 12, 7, 15, 30, tzinfo=UTC))  # 00:30 on the 8th in Japan
    floor.run(1)
    assert floor.pacer.stats.calls_today == 3


# --- the calls to place ---


def test_calls_are_level_times_agents_less_the_calls_ringing_waiting_and_talking() -> None:
    floor = Floor(AdaptPacer("adapt_average"))
    # 10 agents, 4 ready, 6 talking: 10 lines at 1.0, less 2 ringing, 1 waiting, 6 with agents.
    assert floor.run(1, active=10, ready=4, in_flight=2, waiting=1) == 1
    assert floor.run(1, active=10, ready=0) == 0  # everyone talking: no line free
    assert floor.run(1, active=10, ready=4, in_flight=5, waiting=1) == 0  # more under way than wanted: none
    floor = Floor(AdaptPacer("adapt_average"))
    floor.until(16, ready=10)
    assert floor.pacer.level == 2.0
    assert floor.run(1, active=10, ready=4, in_flight=3) == 11  # 20 lines less 3 ringing and 6 talking
    assert floor.run(1, active=10, ready=4, in_flight=3, leads=False) == 0  # nothing to dial


def test_the_goal_is_rounded_half_to_even_as_perls_sprintf() -> None:
    floor = Floor(AdaptPacer("adapt_average"))
    floor.until(16, active=4, ready=1)
    assert floor.pacer.level == 1.25
    assert floor.run(1, active=2, ready=2) == 2  # 2.5 → 2
    assert floor.run(1, active=6, ready=6) == 8  # 7.5 → 8


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        AdaptPacer("adapt_fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_level"):
        AdaptPacer("adapt_average", max_level=0.5)
    with pytest.raises(ValueError, match="HHMM"):
        AdaptPacer("adapt_tapered", latest_server_time="21:00")
    with pytest.raises(ValueError, match="timezone"):
        AdaptPacer("adapt_average").decide(PacingState(datetime(2026, 12, 7, 10, 0), 1, 1, 0, 0))


# --- properties ---

floors = st.tuples(
    st.integers(0, 20),  # agents
    st.floats(0, 1),  # share ready
    st.integers(0, 6),  # waiting
    st.integers(0, 12),  # ringing
    st.booleans() | st.just(True),  # leads (mostly)
    st.lists(st.tuples(st.booleans(), st.booleans()), max_size=6),  # results this second: (human, dropped)
    st.booleans(),  # an agent saved a result
)


@settings(max_examples=150, deadline=None)
@given(
    mode=st.sampled_from(["adapt_average", "adapt_hard_limit", "adapt_tapered"]),
    intensity=st.integers(-100, 100),
    max_level=st.floats(1.0, 6.0),
    dl_diff_target=st.floats(-3, 3),
    drop_target=st.floats(0, 0.2),
    latest=st.integers(0, 23).map(lambda h: f"{h:02d}00"),
    start=st.datetimes(datetime(2026, 12, 7), datetime(2026, 12, 8), timezones=st.just(BUSINESS_TZ)),
    turns=st.lists(st.tuples(floors, st.integers(1, 20)), min_size=1, max_size=25),
)
def test_the_level_stays_within_1_and_the_maximum_and_calls_are_never_negative(
    mode: str,
    intensity: int,
    max_level: float,
    dl_diff_target: float,
    drop_target: float,
    latest: str,
    start: datetime,
    turns: list[tuple[tuple[int, float, int, int, bool, list[tuple[bool, bool]], bool], int]],
) -> None:
    pacer = AdaptPacer(
        mode,  # type: ignore[arg-type]
        intensity=intensity,
        max_level=max_level,
        dl_diff_target=dl_diff_target,
        drop_target=drop_target,
        latest_server_time=latest,
    )
    now = start
    for (agents, share_ready, waiting, ringing, leads, results, saved), repeat in turns:
        ready = round(agents * share_ready)
        for _ in range(repeat):
            now += timedelta(seconds=1)
            for human, dropped in results:
                pacer.record(DialOutcome(now, now - timedelta(seconds=15), human=human or dropped, abandoned=dropped))
            if saved:
                pacer.handled(60.0, now)
            calls = pacer.decide(PacingState(now, agents, ready, ringing, waiting, leads))
            assert calls >= 0
            assert 1.0 <= pacer.level <= max_level
