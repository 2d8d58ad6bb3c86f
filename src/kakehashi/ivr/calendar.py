"""Is the center open? A flow's ``hours`` node asks this with its :class:`~kakehashi.ivr.flow.Schedule`.

Everything is in Japan time (``kit.clock.BUSINESS_TZ``), whatever zone the time given is in. For one day,
in this order:

1. a date in ``closed_dates`` (年末年始, a stock-taking day) is closed all day;
2. a date in ``open_dates`` is open per its weekday's ``weekly`` hours, even on a public holiday (a holiday
   sale). It does *not* add hours: a weekday without hours in ``weekly`` stays closed (the validator refuses
   such an open date, so an admin is told);
3. a Japanese public holiday (祝日, including 振替休日 and 国民の休日, from the ``holidays`` package) is closed
   when ``closed_on_holidays``;
4. otherwise the weekday's ranges: open when ``open <= time < close`` ("24:00" as a close is midnight).

The year-end days 12/31–1/3 other than 元日 are not public holidays: list them in ``closed_dates``.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Literal

import holidays

from kakehashi.ivr.flow import Schedule
from kakehashi.kit.clock import BUSINESS_TZ

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: ``WEEKDAYS[day.weekday()]`` is the key of ``Schedule.weekly`` for a date.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=64)
def _holidays_of(year: int) -> dict[date, str]:
    """Japan's public holidays of one year, names in Japanese (cached: the package computes them)."""
    return dict(holidays.country_holidays("JP", years=year, language="ja").items())


def holiday_name(day: date) -> str | None:
    """The Japanese name of the public holiday on ``day`` (``"勤労感謝の日"``), or None."""
    return _holidays_of(day.year).get(day)


def is_holiday(day: date) -> bool:
    return holiday_name(day) is not None


def minutes(clock: str) -> int:
    """``"09:30"`` → 570; ``"24:00"`` → 1440."""
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def is_open(schedule: Schedule, at: datetime) -> bool:
    """Whether the schedule is open at ``at`` (timezone-aware; read in Japan time). Rules: module doc."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("is_open needs a timezone-aware datetime (e.g. datetime.now(UTC))")
    local = at.astimezone(BUSINESS_TZ)
    day = local.date()
    if day in schedule.closed_dates:
        return False
    if day not in schedule.open_dates and schedule.closed_on_holidays and is_holiday(day):
        return False
    now = local.hour * 60 + local.minute
    return any(
        minutes(opens) <= now < minutes(closes) for opens, closes in schedule.weekly.get(WEEKDAYS[day.weekday()], [])
    )
