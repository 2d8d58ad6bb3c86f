"""What a login may cost the server: rate limits per source address and per user name, and a bounded number of
password hashes at once (ADR 0018).

Both live in this process's memory: with several app processes each counts its own (the database lockout in
``service`` is shared). A shared store (Redis) is the step for several nodes.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TypeVar

import anyio

T = TypeVar("T")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    refused: bool = False  # refused since the last token was taken (one audit row per episode)


@dataclass(frozen=True, slots=True)
class Taken:
    """``ok``: a token was taken. Otherwise ``retry_after`` seconds until one is back, and whether this is the
    first refusal of an episode (worth an audit row; the rest of the flood is not)."""

    ok: bool
    retry_after: int = 0
    first_refusal: bool = False


class RateLimiter:
    """Token buckets per key: ``capacity`` attempts at once, refilled at ``per_minute`` a minute. A success gives
    its token back (``give_back``), so only failures and refusals use the budget — people behind one NAT address
    (a whole call center) log in as often as they need."""

    def __init__(
        self,
        per_minute: float,
        *,
        capacity: float | None = None,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(capacity if capacity is not None else per_minute)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.capacity >= 1

    def take(self, key: str) -> Taken:
        if not self.enabled:
            return Taken(True)
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            else:
                bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
                bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                bucket.refused = False
                return Taken(True)
            first = not bucket.refused
            bucket.refused = True
            return Taken(False, max(1, math.ceil((1 - bucket.tokens) / self.rate)), first)

    def spent(self, key: str) -> int:
        """Seconds until ``key`` has a token again, if its bucket is empty *and* a refusal was already given (so
        recorded) in this episode; else 0. Does not take: the cheap check in front of the login routes."""
        if not self.enabled:
            return 0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or not bucket.refused:
                return 0
            tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
            return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def give_back(self, key: str) -> None:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(self.capacity, bucket.tokens + 1)

    def _prune(self, now: float) -> None:
        """Forget buckets that are full again (they behave as new ones); if none, the oldest half."""
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].at)[: len(self._buckets) // 2]
            for key in oldest:
                del self._buckets[key]


class HashBusy(Exception):
    """Every hashing slot stayed taken for the whole wait: answer 503 with ``retry_after``."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("the server is busy checking other logins")
        self.retry_after = retry_after


#: The hashing threads' nice value (Linux: per thread): they run when the other threads leave a core free.
HASH_NICE = 10


def _nice() -> None:
    with suppress(AttributeError, OSError):  # not Linux, or not allowed: the hash runs at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


#: The hashing threads, shared by every gate of the process (each gate bounds its own hashes with its slots) and
#: made only as needed; at a lower CPU priority: a hash takes what the calls and the screens leave.
_HASH_THREADS = ThreadPoolExecutor(64, thread_name_prefix="kakehashi-hash", initializer=_nice)


def default_hash_slots() -> int:
    """Half the cores (at least one): logins may never take the CPU the calls and the agents' screens need."""
    return max(1, (os.cpu_count() or 2) // 2)


class HashGate:
    """At most ``slots`` password hashes at once (argon2id: ~64 MiB and tens to hundreds of ms of CPU each). A
    login waits at most ``max_wait_s`` for a slot and is then refused (:class:`HashBusy`) instead of queueing.
    ``slot`` waits on the event loop (polling from every ``poll_s``, doubling up to 0.2 s): a waiting login holds
    none of the server's worker threads, which the other requests need — and a client flooding the login waits
    a second for each refusal instead of sending another request at once."""

    def __init__(self, slots: int | None = None, *, max_wait_s: float = 1.0, poll_s: float = 0.01) -> None:
        self.slots = slots or default_hash_slots()
        self.max_wait_s = max_wait_s
        self.poll_s = poll_s
        self._sem = threading.BoundedSemaphore(self.slots)

    def run(self, fn: Callable[[], T]) -> T:
        """In the calling thread (blocking wait)."""
        if not self._sem.acquire(timeout=self.max_wait_s):
            raise HashBusy()
        try:
            return fn()
        finally:
            self._sem.release()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block; waiting for it happens on the event loop."""
        deadline = time.monotonic() + self.max_wait_s
        pause = self.poll_s
        while not self._sem.acquire(blocking=False):
            left = deadline - time.monotonic()
            if left <= 0:
                raise HashBusy()
            await anyio.sleep(min(pause, left))
            pause = min(pause * 2, 0.2)  # a few wake-ups per waiting login, not one every few ms
        try:
            yield
        finally:
            self._sem.release()

    async def in_thread(self, fn: Callable[[], T]) -> T:
        """Run the hash in a hashing thread (inside :meth:`slot`); a client gone away does not cut it short, so
        the slot is given back only when the hash is over."""
        with anyio.CancelScope(shield=True):
            result = await asyncio.wrap_future(_HASH_THREADS.submit(fn))
        return result


@dataclass
class LoginLimits:
    """The limits of one app process (``app.state.login_limits``)."""

    per_address: RateLimiter
    per_name: RateLimiter
    hashing: HashGate
