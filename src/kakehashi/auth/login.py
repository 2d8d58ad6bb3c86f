"""The login sequence of both doors (``POST /api/v1/auth/token`` and the ``/login`` form), ADR 0018.

1. The source address's rate limit (memory: no database, no hash) — a flood from one address is answered at once.
2. A short transaction reads the user and the lockout rows; a lock is refused there (audited). The transaction
   ends before the hash: on SQLite it holds the process's one writer lock, on PostgreSQL a pooled connection.
3. The user name's rate limit (not for addresses the user logged in from before), then the hash in one of a few
   slots (``HashGate``): when they stay taken, 503 with Retry-After instead of a queue.
4. A short transaction records the outcome; the caller goes on in it (issues the token or the session).
"""

from __future__ import annotations

import threading

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session

from kakehashi.auth import service
from kakehashi.auth.guard import client_origin, login_policy
from kakehashi.auth.limits import HashBusy, HashGate, LoginLimits, RateLimiter
from kakehashi.kit.api import end_transaction_early
from kakehashi.kit.config import Settings

_CREATE = threading.Lock()


def make_limits(settings: Settings) -> LoginLimits:
    return LoginLimits(
        per_address=RateLimiter(settings.login_attempts_per_address_minute),
        per_name=RateLimiter(settings.login_attempts_per_name_minute),
        hashing=HashGate(settings.login_hash_slots or None),
    )


def limits_of(app: FastAPI) -> LoginLimits:
    """This app's limits, made on first use from its settings."""
    limits: LoginLimits | None = getattr(app.state, "login_limits", None)
    if limits is None:
        with _CREATE:
            limits = getattr(app.state, "login_limits", None)
            if limits is None:
                limits = app.state.login_limits = make_limits(app.state.settings)
    return limits


def attempt(request: Request, session: Session, username: str, password: str) -> service.LoginOutcome:
    """Check a login; on success the session is in a fresh transaction that has recorded it."""
    limits = limits_of(request.app)
    policy = login_policy(request.app.state.settings)
    origin = client_origin(request)
    by_address = limits.per_address.take(origin)
    if not by_address.ok:
        return _rate_limited(session, username, origin, "address", by_address.retry_after, by_address.first_refusal)
    found = service.begin_login(session, username, origin=origin, policy=policy)
    if found.locked_for is not None:
        return service.refuse_locked(session, found)
    end_transaction_early(session)  # nothing held while hashing
    by_name = None if found.known_origin else limits.per_name.take(found.name)
    if by_name is not None and not by_name.ok:
        return _rate_limited(session, username, origin, "name", by_name.retry_after, by_name.first_refusal)
    try:
        verdict = limits.hashing.run(lambda: service.verify_attempt(found, password))
    except HashBusy as busy:
        if by_name is not None:
            limits.per_name.give_back(found.name)  # the name was not tried
        return service.LoginOutcome(None, retry_after=busy.retry_after, reason="busy")
    outcome = service.finish_login(session, found, verdict, policy=policy)
    if outcome.user is not None:  # only failures spend the budgets: a NAT full of agents logs in freely
        limits.per_address.give_back(origin)
        if by_name is not None:
            limits.per_name.give_back(found.name)
    return outcome


def _rate_limited(
    session: Session, username: str, origin: str, limit: str, retry_after: int, first: bool
) -> service.LoginOutcome:
    if first:  # one audit row per episode: a flood must not turn into a flood of writes
        service.record_rate_limited(session, username, origin, limit=limit, retry_after=retry_after)
    return service.LoginOutcome(None, retry_after=retry_after, reason="rate_limited")
