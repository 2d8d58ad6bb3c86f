"""Live estimates for pacing that forget the past at a set half-life (the answer rate of a morning list is not the
evening's), and the running abandon rate over fixed windows (24 hours, 30 days)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(slots=True)
class DecayingMean:
    """A mean whose samples lose half their weight every ``half_life_s``; ``prior`` counts as ``prior_weight``
    samples at the start (so the first few calls do not swing it)."""

    prior: float
    prior_weight: float
    half_life_s: float
    _sum: float = 0.0
    _weight: float = 0.0
    _at: datetime | None = None

    def add(self, value: float, at: datetime, weight: float = 1.0) -> None:
        self._decay(at)
        self._sum += value * weight
        self._weight += weight

    def _decay(self, at: datetime) -> None:
        if self._at is not None and at > self._at:
            factor = math.pow(0.5, (at - self._at).total_seconds() / self.half_life_s)
            self._sum *= factor
            self._weight *= factor
        if self._at is None or at > self._at:
            self._at = at

    @property
    def value(self) -> float:
        return (self._sum + self.prior * self.prior_weight) / (self._weight + self.prior_weight)

    @property
    def weight(self) -> float:
        """Samples behind the estimate (decayed), the prior not included."""
        return self._weight


@dataclass(slots=True)
class WindowRate:
    """Abandons among people who answered, over the last ``window``: per-minute buckets, so 30 days are 43,200
    small entries at most. Counts may be fractional: estimated people (the detector's false machines)."""

    window: timedelta
    _buckets: deque[tuple[int, float, float]] = field(default_factory=deque)  # (minute, humans, abandoned)
    humans: float = 0
    abandoned: float = 0

    def add(self, at: datetime, *, abandoned: float, human: float = 1) -> None:
        """One more person (``human`` 1; 0: a person counted already, abandoned later), or an estimate."""
        minute = int(at.timestamp() // 60)
        if self._buckets and self._buckets[-1][0] == minute:
            m, h, a = self._buckets[-1]
            self._buckets[-1] = (m, h + human, a + abandoned)
        else:
            self._buckets.append((minute, float(human), float(abandoned)))
        self.humans += human
        self.abandoned += abandoned
        self.expire(at)

    def expire(self, now: datetime) -> None:
        oldest = int((now - self.window).timestamp() // 60)
        while self._buckets and self._buckets[0][0] <= oldest:
            _, h, a = self._buckets.popleft()
            self.humans -= h
            self.abandoned -= a

    @property
    def rate(self) -> float:
        return self.abandoned / self.humans if self.humans else 0.0
