"""VICIdial's three ADAPT pacing modes (``ADAPT_HARD_LIMIT``, ``ADAPT_AVERAGE``, ``ADAPT_TAPERED``), as its source
does them: the baseline issue 19's benchmark compares our pacer with.

Read from VICIdial 2.4's source (github.com/inktel/Vicidial, commit 1278c1c, 2013): ``bin/AST_VDadapt.pl`` sets
the campaign's ``auto_dial_level``; ``bin/AST_VDauto_dial.pl`` turns the level into calls. Both loop once a second
(``--delay`` defaults to 1: AST_VDadapt.pl:208, :562); here one ``decide`` is one turn of both loops, the adapt
step first.

**Every second, when the hopper has leads** (AST_VDadapt.pl:455; ``PacingState.leads_available``),
``count_agents_lines`` (:704-794) samples the campaign's READY/DONE agents (:730), its answered calls waiting for
an agent (``vicidial_auto_calls`` status LIVE, :735) and all its agents (:731, every status, paused ones too). The
averages are over the last 15 turns (:750-778; fewer in the first 14): the differential is the mean of ready minus
the mean of waiting (:779), ``avg_agents`` the mean of all agents. A turn without leads takes no sample, but its
slot still counts, as zeros (the Perl arrays are indexed by the loop counter, :746-771).

**Every 15 s** (``diff_ratio_updater`` ≥ 15, :472, reset only when used, :557-559: the first at the 16th turn;
after a spell without leads, at once) and only while ``avg_agents`` > 0 (:463), ``calculate_dial_level``
(:1606-1845) does, with the level as stored (the Perl string: the column is ``VARCHAR(6)``,
``extras/MySQL_AST_CREATE_tables.sql:650``: MySQL outside strict mode cuts longer values to 6 characters):

1. ``target = differential + dl_diff_target`` (:1693); ``mul = target / avg_agents`` (0 if either is 0, :1694-1703);
2. intensity (:1706-1715): a positive step ×(1 + intensity/100), a negative one ×|intensity/100 − 1|;
3. ``level × (1 + step)``, rounded to 3 decimals (:1722-1724); capped at ``max_level`` (:1754); raised to 1.0 (:1759);
4. drop rules (:1773-1802) on the counts of the last ``calculate_drops``: more than 20 calls in its last minute and
   more than 50 % of them dropped → halve; more than 50 calls today and drops / human answers today >
   ``drop_target`` → HARD_LIMIT: 1.0; AVERAGE: halve; TAPERED: × (``latest_server_time`` − HHMM now) / 1000 —
   numbers, not hours (2100 − 1659 = 441 → ×0.441), ×1 while more than 1000 are left (:1729-1733), 1.0 once past
   (:1792);
5. raised to 1.0 again (:1826). The rules act at every 15-s step while the last counts are over (halve again,
   taper again), not once a minute.

**Every 60 s** (``drop_count_updater`` ≥ 60, starting at 61 so the first turn counts, :91, :466) and while
``avg_agents`` > 0 — or, without agents or leads, while an agent saved a call's result in the last 5 min (:479,
:513; ``campaign_calldate`` is written at the disposition, ``www/agc/vdc_db_query.php:6225``: here ``handled``'s
``at``) — ``calculate_drops`` (:796-1223) counts ``vicidial_log``: calls = every dial's row; answers = statuses
with ``human_answered='Y'`` (:800-820; DROP and XDROP among them, ``extras/first_server_install.sql:323-324``);
drops = DROP, XDROP (:885, :927). "Last minute" is ``call_date`` > now − 60 s (:669); "today" is ``call_date`` >
today 00:00:01 (:635), server time — here Japanese (``kit.clock.BUSINESS_TZ``). ``call_date`` is when the result
was known (the answer, ``agi/agi-VDAD_ALL_outbound.agi:718``; the end of an unanswered dial,
``AST_VDauto_dial.pl:1469``): ``DialOutcome.at``. Today's drop share is rounded to 2 decimals, over at least one
answer (:940-942); the minute's is drops / calls (:895).

**Calls to place** (``AST_VDauto_dial.pl``): agents = READY, QUEUE, INCALL, DONE (:356, not paused: an agent is
PAUSED from the end of a call through the disposition, ``vdc_db_query.php:3901``) minus INCALL agents whose call
is gone (:634); goal = ``sprintf("%.0f", level × agents)`` (:667, :686; half to even); existing = the campaign's
outbound calls SENT, RINGING, LIVE, XFER, CLOSER (:742; XFER = connected to an agent,
``agi-VDAD_ALL_outbound.agi:1938``, ``AST_VDauto_dial.pl:671``); calls = goal − existing, none if ≤ 0 (:767,
:809). ``dl_diff_target`` is added to the agents only with ``dl_diff_target_method=CALLS_PLACED`` (:599-606, :663);
the default is ``ADAPT_CALC_ONLY`` (``MySQL_AST_CREATE_tables.sql:827``), which this follows.

Where this differs from VICIdial, and why:

- **Talking agents.** ``PacingState.agents_talking`` (on a call or ringing for one) stands for VICIdial's INCALL
  agents and XFER calls; agents in wrap-up (VICIdial: PAUSED) are in neither count. A caller that does not count
  them apart (``None``) gets ``agents_active − agents_ready``: then with ``w`` in wrap-up the goal is
  ``(level − 1) × w`` calls higher than VICIdial's.
- ``avg_agents`` counts ``agents_active`` (VICIdial also counts paused agents, which ``PacingState`` does not
  show); dead calls (the customer hung up, the agent not yet) are not seen.
- Start level 1.0: the column's default is ``'0'`` (``MySQL_AST_CREATE_tables.sql:650``), which places no calls
  until the first 15-s step raises it to 1.0 (:1759); 1.0 is what that step makes of it.
- Not modelled (options off by default, or administration): ``available_only_ratio_tally`` and its thresholds
  (:1640-1664), ``dial_level_threshold`` (:1805-1821), ``drop_rate_group`` (:1165), blended campaigns' inbound
  averages (:1667), ``campaign_stats_refresh`` and ``campaign_changedate`` refreshes (:479, :496), trunk limits,
  and the restart at ``timeclock_end_of_day`` (default ``0000``, :679-699: a Japanese calling window has closed
  long before midnight).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, get_args

from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.pacing.types import DialOutcome, PacingState

AdaptMode = Literal["adapt_average", "adapt_hard_limit", "adapt_tapered"]

#: Turns averaged for the differential and the agents (``$stat_it``, AST_VDadapt.pl:750).
SAMPLES = 15
#: Turns between level steps (``$diff_ratio_updater >= 15``, :472).
LEVEL_EVERY = 15
#: Turns between drop counts (``$drop_count_updater >= 60``, :466); the first turn counts (it starts at 61, :91).
DROPS_EVERY = 60
#: The drop rule's "last minute" (``$VDL_one``, :669).
ONE_MINUTE = timedelta(seconds=60)
#: Without agents or leads, drops are still counted while a disposition is this recent (``$five_min_ago``, :479).
RECENT_DISPOSITION = timedelta(minutes=5)
#: "Today" starts after 00:00:01 (``call_date > 'YYYY-MM-DD 00:00:01'``, :635; whole seconds).
DAY_STARTS = time(0, 0, 2)


@dataclass(frozen=True, slots=True)
class DropStats:
    """What the last ``calculate_drops`` counted (AST_VDadapt.pl:796-1223); the 15-s steps use it until the next."""

    at: datetime | None = None  # when counted (None: not yet)
    calls_one: int = 0  # dials whose result came in the minute before ``at``
    drops_one: int = 0
    calls_today: int = 0  # dials whose result came on ``at``'s Japanese day
    answers_today: int = 0  # of them answered by a person (drops included)
    drops_today: int = 0

    @property
    def drops_one_pct(self) -> float:
        """Drops per call in the last minute, %, 2 decimals (:895-896)."""
        if self.calls_one < 1 or self.drops_one < 1:
            return 0.0
        return _decimals(self.drops_one / self.calls_one * 100, 2)

    @property
    def drops_answers_today_pct(self) -> float:
        """Drops per human answer today, %, 2 decimals, over at least one answer (:940-942)."""
        if self.calls_today < 1 or self.drops_today < 1:
            return 0.0
        return _decimals(self.drops_today / max(self.answers_today, 1) * 100, 2)


class AdaptPacer:
    """VICIdial's ADAPT pacing of one campaign (see the module): ``decide`` once a second."""

    def __init__(
        self,
        mode: AdaptMode,
        *,
        dl_diff_target: float = 0.0,
        intensity: int = 0,
        max_level: float = 3.0,
        drop_target: float = 0.03,
        latest_server_time: str = "2100",
    ) -> None:
        """``mode``: which ADAPT; ``dl_diff_target``: agents the step aims to leave ready (−1: one call waiting,
        VICIdial's ``adaptive_dl_diff_target``); ``intensity``: −100…100, steps up ×(1 + i/100), down ×|i/100 − 1|;
        ``max_level``: the cap (≥ 1.0); ``drop_target``: drops per human answer today (0.03 = 3 %); and
        ``latest_server_time``: HHMM, Japanese time, TAPERED's end of day."""
        if mode not in get_args(AdaptMode):
            raise ValueError(f"unknown ADAPT mode {mode!r}")
        if not (math.isfinite(max_level) and max_level >= 1.0):
            raise ValueError("max_level must be at least 1.0")
        if not (math.isfinite(drop_target) and drop_target >= 0.0):
            raise ValueError("drop_target must not be negative")
        if not math.isfinite(dl_diff_target):
            raise ValueError("dl_diff_target must be a number")
        if len(latest_server_time) != 4 or not latest_server_time.isdigit():
            raise ValueError("latest_server_time is HHMM, four digits")
        self.mode: AdaptMode = mode
        self.dl_diff_target = dl_diff_target
        self.intensity = intensity
        self.max_level = max_level
        self.drop_target = drop_target
        self.latest_server_time = latest_server_time
        self._drop_target_pct = round(drop_target * 100, 9)  # VICIdial's adaptive_dropped_percentage is in %
        self._level = 1.0
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=SAMPLES)  # (ready, waiting, agents) per turn
        self._diff_ratio_updater = 0
        self._drop_count_updater = DROPS_EVERY + 1
        self._minute: deque[tuple[datetime, bool]] = deque()  # (result time, dropped), recent dials
        self._days: dict[date, list[int]] = {}  # Japanese day → [calls, human answers, drops]
        self._stats = DropStats()
        self._last_disposition: datetime | None = None

    @property
    def level(self) -> float:
        """The dial level: lines per agent (VICIdial's ``auto_dial_level``), 1.0 … ``max_level``."""
        return self._level

    @property
    def stats(self) -> DropStats:
        """The counts the drop rules use now."""
        return self._stats

    def decide(self, state: PacingState) -> int:
        """One turn of AST_VDadapt.pl's loop (:447-563), then AST_VDauto_dial.pl's count of calls to place."""
        now = _aware(state.now)
        self._forget_before(now - ONE_MINUTE)
        level_due = self._diff_ratio_updater >= LEVEL_EVERY
        drops_due = self._drop_count_updater >= DROPS_EVERY
        stepped = counted = False
        if state.leads_available:
            self._samples.append((state.agents_ready, state.calls_waiting, state.agents_active))
            n = len(self._samples)
            differential = (sum(s[0] for s in self._samples) - sum(s[1] for s in self._samples)) / n
            avg_agents = sum(s[2] for s in self._samples) / n
            if avg_agents > 0:
                if drops_due:
                    self._count_drops(now)
                    counted = True
                if level_due:
                    self._step(now, differential, avg_agents)
                    stepped = True
        else:
            self._samples.append((0, 0, 0))  # no sample this turn; its slot counts as zeros
        if not counted and drops_due and self._disposed_since(now - RECENT_DISPOSITION):
            self._count_drops(now)
            counted = True
        self._diff_ratio_updater = (0 if stepped else self._diff_ratio_updater) + 1
        self._drop_count_updater = (0 if counted else self._drop_count_updater) + 1
        return self._calls_to_place(state)

    def record(self, outcome: DialOutcome) -> None:
        """A dial's result: a ``vicidial_log`` row, dated when the result was known."""
        at = _aware(outcome.at)
        self._minute.append((at, outcome.abandoned))
        local = at.astimezone(BUSINESS_TZ)
        if local.time() >= DAY_STARTS:
            day = self._days.setdefault(local.date(), [0, 0, 0])
            day[0] += 1
            day[1] += outcome.human  # an abandon reported after its answer (human False) was counted then
            day[2] += outcome.abandoned

    def handled(self, seconds: float, at: datetime) -> None:
        """An agent saved a call's result: VICIdial's ``campaign_calldate`` (vdc_db_query.php:6225)."""
        at = _aware(at)
        if self._last_disposition is None or at > self._last_disposition:
            self._last_disposition = at

    def wrapped(self, seconds: float, at: datetime) -> None:
        """Not used by ADAPT (it samples the floor instead)."""

    # --- AST_VDadapt.pl ---

    def _count_drops(self, now: datetime) -> None:
        """``calculate_drops``: the last minute's and today's calls, answers and drops."""
        since = now - ONE_MINUTE
        recent = [dropped for at, dropped in self._minute if at > since]
        today = now.astimezone(BUSINESS_TZ).date()
        calls, answers, drops = self._days.get(today, (0, 0, 0))
        self._stats = DropStats(now, len(recent), sum(recent), calls, answers, drops)
        for day in [d for d in self._days if d < today - timedelta(days=1)]:
            del self._days[day]

    def _step(self, now: datetime, differential: float, avg_agents: float) -> None:
        """``calculate_dial_level`` (:1690-1837)."""
        target = differential + self.dl_diff_target
        mul = target / avg_agents if target != 0 and avg_agents != 0 else 0.0
        pct_raw = mul * 100
        intensity_mul = self.intensity / 100
        intensity_diff = pct_raw * abs(intensity_mul - 1) if pct_raw < 0 else pct_raw * (intensity_mul + 1)
        level = _decimals(self._level * (intensity_diff / 100 + 1), 3)
        if level > self.max_level:
            level = self.max_level
        if level < 1:
            level = 1.0
        stats = self._stats
        if stats.calls_one > 20 and stats.drops_one_pct > 50:
            level = level / 2
        if stats.calls_today > 50 and stats.drops_answers_today_pct > self._drop_target_pct:
            if self.mode == "adapt_hard_limit":
                level = 1.0
            elif self.mode == "adapt_average":
                level = level / 2
            else:
                level = level * self._taper(now)
        if level < 1:
            level = 1.0
        self._level = _stored(level)

    def _taper(self, now: datetime) -> float:
        """ADAPT_TAPERED's factor: HHMM left to ``latest_server_time``, as numbers, / 1000 (:1729-1733, :1792)."""
        local = now.astimezone(BUSINESS_TZ)
        left = int(self.latest_server_time) - (local.hour * 100 + local.minute)
        if left < 0:
            return 0.0  # past the latest time: the level is set to 1.0
        return 1.0 if left > 1000 else left / 1000

    def _disposed_since(self, since: datetime) -> bool:
        return self._last_disposition is not None and self._last_disposition > since

    def _forget_before(self, since: datetime) -> None:
        while self._minute and self._minute[0][0] <= since:
            self._minute.popleft()

    # --- AST_VDauto_dial.pl ---

    def _calls_to_place(self, state: PacingState) -> int:
        """goal − existing (AST_VDauto_dial.pl:663-767); nothing without leads (the hopper gives none)."""
        if not state.leads_available:
            return 0
        connected = state.agents_talking
        if connected is None:  # not counted apart: talking and wrap-up (see the module)
            connected = max(state.agents_active - state.agents_ready, 0)
        agents = state.agents_ready + connected
        goal = round(self._level * agents)  # sprintf("%.0f"): half to even, as Python's round
        existing = state.calls_in_flight + state.calls_waiting + connected
        return max(goal - existing, 0)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("pacing times must be timezone-aware")
    return at


def _decimals(value: float, places: int) -> float:
    """Perl's ``sprintf("%.Nf")``, as a number."""
    return float(f"{value:.{places}f}")


def _stored(level: float) -> float:
    """The level as ``auto_dial_level VARCHAR(6)`` keeps it: Perl's number as text (``%.15g``), 6 characters."""
    return float(f"{level:.15g}"[:6])
