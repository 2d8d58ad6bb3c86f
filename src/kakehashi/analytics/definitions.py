"""The metric definitions, each written once: pure functions from counts and sums to figures.

The real-time queue statistics and the historical reports both feed these functions (the repository only
counts and sums), so a service level on the wallboard and in last month's export is the same number.
docs/metrics.md explains each definition; where it says "as Asterisk" or "as Amazon Connect", the formula is
theirs.

- A metric whose denominator is 0 is ``None`` (no calls: no service level), never 0.
- A call's **wait** is the time from entering the queue until it was answered or the caller hung up:
  ``queue_seconds + ring_seconds`` of its CDR.
- "Within T" is ``wait <= T`` (app_queue counts ``holdtime <= servicelevel``); CDR durations are stored to the
  millisecond, so the comparison allows half a millisecond for the rounding of their sum.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kakehashi.kit.clock import BUSINESS_TZ

#: CDR final states of a caller who hung up while waiting (queued, or an agent's phone ringing).
ABANDONED_STATES = frozenset({"abandoned"})
#: CDR final states of a caller who left a message or asked to be called back instead of waiting: neither
#: answered nor abandoned, and left out of the abandon-rate denominator (as Amazon Connect does with
#: contacts queued for callback).
DEFLECTED_STATES = frozenset({"voicemail", "callback"})
#: Queue calls a live caller is still waiting in (``calls.state``).
WAITING_CALL_STATES = ("queued", "ringing")

#: Agent states, in the order reports list them.
AGENT_STATES = ("available", "ringing", "on_call", "wrap_up", "break", "missed", "logged_out")
#: Time an agent is occupied by a contact: reserved for it (ringing), talking (hold included), after-call work.
BUSY_STATES = frozenset({"ringing", "on_call", "wrap_up"})
#: Time an agent waits for a contact.
IDLE_STATES = frozenset({"available"})
#: Not counted as logged-in time.
LOGGED_OUT = "logged_out"

#: The service-level threshold T of a queue without a ``queues`` row (the column's default).
DEFAULT_THRESHOLD_S = 20
#: Half a millisecond: CDR durations have three decimals.
WITHIN_TOLERANCE_S = 0.0005

#: Report intervals and their length; buckets start on the interval grid in Japan time.
INTERVALS: dict[str, timedelta] = {
    "15min": timedelta(minutes=15),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
#: The longest window a report may cover, per interval (a 15-min report of a month is 2,976 rows per queue).
MAX_WINDOW: dict[str, timedelta] = {
    "15min": timedelta(days=31),
    "hour": timedelta(days=92),
    "day": timedelta(days=366),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Intervals are aligned on Japan's clock: 00:00, 00:15 … JST. Japan has kept UTC+9 without daylight saving
#: since 1951, so the grid is a fixed offset from UTC (the database buckets with the same numbers).
GRID_OFFSET_S = int((datetime(2000, 1, 1, tzinfo=BUSINESS_TZ).utcoffset() or timedelta(0)).total_seconds())

RATIO_PLACES = 4
SECONDS_PLACES = 1


@dataclass(frozen=True, slots=True)
class CallTotals:
    """Counts and sums over a set of CDRs (one queue or one agent, one window). Categories exclude each other:
    deflected first, then answered, then abandoned; the rest of ``offered`` (transferred or failed before an
    answer) is in no category."""

    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    abandoned_within: int = 0
    deflected: int = 0
    #: Sum of the waits of the answered calls.
    answer_wait_s: float = 0.0
    #: Sums over the handled (= answered) calls.
    talk_s: float = 0.0
    hold_s: float = 0.0
    wrap_up_s: float = 0.0

    @property
    def handled(self) -> int:
        """Contacts an agent took: the answered calls."""
        return self.answered

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> CallTotals:
        """From a row of the repository's aggregate (sums may come back as Decimal or None)."""

        def count(name: str) -> int:
            return int(row[name] or 0)

        def seconds(name: str) -> float:
            return float(row[name] or 0)

        return cls(
            offered=count("offered"),
            answered=count("answered"),
            answered_within=count("answered_within"),
            abandoned=count("abandoned"),
            abandoned_within=count("abandoned_within"),
            deflected=count("deflected"),
            answer_wait_s=seconds("answer_wait_s"),
            talk_s=seconds("talk_s"),
            hold_s=seconds("hold_s"),
            wrap_up_s=seconds("wrap_up_s"),
        )


def wait_seconds(queue_seconds: float, ring_seconds: float) -> float:
    """How long a queued caller waited: queued → first ringing, plus ringing → answered or hung up."""
    return queue_seconds + ring_seconds


def within(wait_s: float, threshold_s: float) -> bool:
    """A wait counts as within the threshold T when it is at most T."""
    return wait_s <= threshold_s + WITHIN_TOLERANCE_S


def interval_seconds(interval: str) -> int:
    return int(INTERVALS[interval].total_seconds())


def bucket_index(at: datetime, interval: str) -> int:
    """The number of the interval ``at`` falls in: whole seconds since 1970 on Japan's clock // length."""
    whole = (at - _EPOCH) // timedelta(seconds=1)
    return (whole + GRID_OFFSET_S) // interval_seconds(interval)


def bucket_start(index: int, interval: str) -> datetime:
    """Where interval number ``index`` starts, in Japan time."""
    return (_EPOCH + timedelta(seconds=index * interval_seconds(interval) - GRID_OFFSET_S)).astimezone(BUSINESS_TZ)


def split_by_interval(start: datetime, end: datetime, interval: str) -> Iterator[tuple[int, float]]:
    """The seconds of [start, end) in each interval it touches: a span from 10:10 to 10:40 gives 300 s to
    10:00–10:15, 900 s to 10:15–10:30 and 600 s to 10:30–10:45."""
    cursor = start
    while cursor < end:
        index = bucket_index(cursor, interval)
        piece_end = min(end, bucket_start(index + 1, interval))
        yield index, (piece_end - cursor).total_seconds()
        cursor = piece_end


def ratio(part: float, whole: float) -> float | None:
    """``part / whole`` as a fraction (0.8 = 80 %), ``None`` when there is nothing to divide by."""
    return None if whole <= 0 else round(part / whole, RATIO_PLACES)


def mean_seconds(total_s: float, count: float) -> float | None:
    return None if count <= 0 else round(total_s / count, SECONDS_PLACES)


def service_level(t: CallTotals) -> float | None:
    """Answered within T / answered (Asterisk ``ServicelevelPerf``)."""
    return ratio(t.answered_within, t.answered)


def service_level_with_abandons(t: CallTotals) -> float | None:
    """(Answered within T + abandoned within T) / (answered + abandoned) (Asterisk ``ServicelevelPerf2``):
    callers who gave up before T are not counted against the center."""
    return ratio(t.answered_within + t.abandoned_within, t.answered + t.abandoned)


def average_speed_of_answer(t: CallTotals) -> float | None:
    """Mean wait of the answered calls, in seconds (Connect "average queue answer time")."""
    return mean_seconds(t.answer_wait_s, t.answered)


def abandon_rate(t: CallTotals) -> float | None:
    """Abandoned / (offered − deflected) (Connect: abandoned / queued, callbacks excluded)."""
    return ratio(t.abandoned, t.offered - t.deflected)


def average_handle_time(t: CallTotals) -> float | None:
    """(Talk + hold + wrap-up) / handled, in seconds (Connect "average handle time")."""
    return mean_seconds(t.talk_s + t.hold_s + t.wrap_up_s, t.handled)


def busy_seconds(times: Mapping[str, float]) -> float:
    return sum(seconds for state, seconds in times.items() if state in BUSY_STATES)


def idle_seconds(times: Mapping[str, float]) -> float:
    return sum(seconds for state, seconds in times.items() if state in IDLE_STATES)


def logged_in_seconds(times: Mapping[str, float]) -> float:
    return sum(seconds for state, seconds in times.items() if state != LOGGED_OUT)


def occupancy(times: Mapping[str, float]) -> float | None:
    """Busy / (busy + available) over seconds per agent state (Connect: contact time / (contact + idle)).
    Breaks, missed-call lockouts and logged-out time are in neither part."""
    busy = busy_seconds(times)
    return ratio(busy, busy + idle_seconds(times))


def below_target(service_level_now: float, target: float) -> bool:
    """The wallboard's service-level alert: the service level is under the queue's target (a queue without
    answered calls has no service level, and so no alert)."""
    return service_level_now < target


def wait_too_long(longest_wait_s: float, limit_s: float) -> bool:
    """The wallboard's wait alert: someone has waited longer than the limit — the queue's T, so each such caller
    is already a service-level miss when answered."""
    return longest_wait_s > limit_s


def call_metrics(t: CallTotals) -> dict[str, Any]:
    """The counts and every call metric of a queue, as the API and the exports name them."""
    return {
        "offered": t.offered,
        "answered": t.answered,
        "answered_within_threshold": t.answered_within,
        "abandoned": t.abandoned,
        "abandoned_within_threshold": t.abandoned_within,
        "deflected": t.deflected,
        "service_level": service_level(t),
        "service_level_with_abandons": service_level_with_abandons(t),
        "asa_s": average_speed_of_answer(t),
        "abandon_rate": abandon_rate(t),
        "aht_s": average_handle_time(t),
    }


def handling_metrics(t: CallTotals) -> dict[str, Any]:
    """What an agent's row says about the calls they handled."""
    return {
        "handled": t.handled,
        "talk_s": round(t.talk_s, 3),
        "hold_s": round(t.hold_s, 3),
        "wrap_up_s": round(t.wrap_up_s, 3),
        "aht_s": average_handle_time(t),
    }


def state_metrics(times: Mapping[str, float]) -> dict[str, Any]:
    """Seconds per agent state (logged out left out), logged-in time and occupancy."""
    logged_in = (state for state in AGENT_STATES if state != LOGGED_OUT)
    out: dict[str, Any] = {f"time_{state}_s": round(times.get(state, 0.0), 3) for state in logged_in}
    out["logged_in_s"] = round(logged_in_seconds(times), 3)
    out["occupancy"] = occupancy(times)
    return out
