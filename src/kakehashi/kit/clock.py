"""Business dates are Japanese dates: a call at 08:30 JST on the 1st is on the 1st, not the 31st (UTC)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Tokyo")


def business_today() -> date:
    """Today's date in the center's time zone (Asia/Tokyo)."""
    return datetime.now(BUSINESS_TZ).date()
