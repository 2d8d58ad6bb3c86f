"""The login sequence of both doors (``POST /api/v1/auth/token`` and the ``/login`` form), ADR 0018.

1. The source address's rate limit (memory: no database, no hash) — a flood from one address is answered at once,
   after its first refusal even before routing (``LoginFloodMiddleware``).
2. A short transaction reads the user and the lockout rows; a lock is refused there (audited). The transaction
   ends before the hash: on SQLite it holds the process's one writer lock, on PostgreSQL a pooled connection.
   This and the next step run in one of a few hashing slots (``HashGate``): when they stay taken for 1 s,
   503 with Retry-After instead of a queue (and no database work).
3. The user name's rate limit (not for addresses the user logged in from before), then the hash.
4. A short transaction records the outcome; the caller goes on in it (issues the token or the session).
"""

from __future__ import annotations

import json
import threading

import anyio
from fastapi import FastAPI, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from kakehashi.auth import service
from kakehashi.auth.guard import client_origin, login_policy
from kakehashi.auth.limits import HashBusy, HashGate, LoginLimits, RateLimiter, Taken
from kakehashi.kit.api import PROBLEM_JSON, end_transaction_early
from kakehashi.kit.config import Settings
from kakehashi.kit.errors import TooManyAttempts

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


async def attempt(request: Request, session: Session, username: str, password: str) -> service.LoginOutcome:
    """Check a login (a coroutine: waiting for a hashing slot holds no worker thread; the database steps and the
    hash run in worker threads). On success the session is in a fresh transaction that has recorded it."""
    limits = limits_of(request.app)
    policy = login_policy(request.app.state.settings)
    origin = client_origin(request)
    by_address = limits.per_address.take(origin)
    if not by_address.ok:
        return await _rate_limited(session, username, origin, "address", by_address)
    by_name: Taken | None = None
    verdict: service.Verdict | None = None
    try:
        # The slot first: while every slot is taken, a login costs no database work either.
        async with limits.hashing.slot():
            found = await run_in_threadpool(_check_first, session, username, origin, policy)
            if found.locked_for is None:
                by_name = None if found.known_origin else limits.per_name.take(found.name)
                if by_name is None or by_name.ok:
                    verdict = await limits.hashing.in_thread(lambda: service.verify_attempt(found, password))
    except HashBusy as busy:
        return service.LoginOutcome(None, retry_after=busy.retry_after, reason="busy")
    if found.locked_for is not None:
        return await run_in_threadpool(service.refuse_locked, session, found)
    if by_name is not None and not by_name.ok:
        return await _rate_limited(session, username, origin, "name", by_name)
    assert verdict is not None
    outcome = await run_in_threadpool(service.finish_login, session, found, verdict, policy=policy)
    if outcome.user is not None:  # only failures spend the budgets: a NAT full of agents logs in freely
        limits.per_address.give_back(origin)
        if by_name is not None:
            limits.per_name.give_back(found.name)
    return outcome


def _check_first(session: Session, username: str, origin: str, policy: service.LoginPolicy) -> service.LoginAttempt:
    """Step 2: read, and end the transaction unless the attempt is refused as locked (then it records that)."""
    found = service.begin_login(session, username, origin=origin, policy=policy)
    if found.locked_for is None:
        end_transaction_early(session)  # nothing held while hashing
    return found


async def _rate_limited(session: Session, username: str, origin: str, limit: str, taken: Taken) -> service.LoginOutcome:
    if taken.first_refusal:  # one audit row per episode: a flood must not turn into a flood of writes
        await run_in_threadpool(
            service.record_rate_limited, session, username, origin, limit=limit, retry_after=taken.retry_after
        )
    return service.LoginOutcome(None, retry_after=taken.retry_after, reason="rate_limited")


LOGIN_DOORS = frozenset({"/api/v1/auth/token", "/login"})
TARPIT_S = 1.0


class LoginFloodMiddleware:
    """Answers a login from an address whose budget is spent, and whose first refusal the route already gave and
    recorded, with 429 before routing: no worker thread, no body parsing, and after a pause of up to
    ``TARPIT_S`` — a flood from one address costs the server almost nothing. Everything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in LOGIN_DOORS:
            limits: LoginLimits | None = getattr(scope["app"].state, "login_limits", None)
            client = scope.get("client")
            origin = (client[0] if client else "unknown")[:64]
            wait = limits.per_address.spent(origin) if limits is not None else 0
            if wait:
                # Answered after a pause (a tar pit, no thread held): a client that waits for its answers — as
                # guessing tools do — sends a second a request instead of hundreds.
                await anyio.sleep(min(wait, TARPIT_S))
                await _too_many(scope, send, wait)
                return
        await self.app(scope, receive, send)


async def _too_many(scope: Scope, send: Send, wait: int) -> None:
    if scope["path"] == "/login":  # a browser: words, not JSON
        body = f"ログインの試行が多すぎます。{wait} 秒後に再試行できます / Too many login attempts; retry in {wait} s"
        media = "text/plain; charset=utf-8"
    else:
        problem = TooManyAttempts(f"too many login attempts; try again in {wait} s", reason="rate_limited")
        body, media = json.dumps(problem.problem(scope["path"]), ensure_ascii=False), PROBLEM_JSON
    data = body.encode()
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(data)).encode()),
               (b"retry-after", str(wait).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": data})
