"""Users, login with lockout, web sessions and API tokens. No HTTP here; services never commit."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.auth import passwords
from kakehashi.auth import repository as repo
from kakehashi.auth.models import NAME_WIDE, ApiToken, LoginThrottle, User, WebSession
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error, unavailable

TOKEN_PREFIX = "kkh_"  # noqa: S105 - a public marker that makes leaked tokens findable, not a secret
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,59}$")


def digest(secret: str) -> str:
    """What we store instead of a session or token secret (they are random, so SHA-256 is enough)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int = 5  # in a row from one address, per name: locks that (name, address)
    lockout_seconds: int = 30
    lockout_max_seconds: int = 900
    name_max_failures: int = 20  # from every address, per name: locks the name except at its known addresses
    known_origin_days: int = 90
    session_idle: timedelta = timedelta(minutes=60)
    session_max_age: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """``user`` on success; otherwise ``retry_after`` (seconds) when the attempt must wait, and why: ``locked``
    (failures), ``rate_limited`` (too many attempts from the address or for the name) or ``busy`` (every
    hashing slot taken: a 503)."""

    user: User | None
    retry_after: int | None = None
    reason: str | None = None


# -- users -------------------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    tenant_id: int | None,
    display_name: str | None = None,
) -> User:
    """A new user. Only admins may be center-wide (no tenant)."""
    name = username.strip().lower()
    errors = []
    if not _USERNAME.match(name):
        errors.append(
            field_error("username", "3–60 characters: a–z, 0–9, '.', '_' or '-', starting with a letter/digit")
        )
    if tenant_id is None and role is not Role.ADMIN:
        errors.append(field_error("tenant", "only admins can be center-wide; give the user a tenant"))
    errors += [field_error("password", p) for p in passwords.password_problems(password, name)]
    if errors:
        raise ValidationFailed("the user cannot be created", errors=errors)
    existing = repo.user_by_username(session, name)
    if existing is not None:
        if existing.tenant_id != tenant_id:  # user names are unique across the center: confirm nothing
            raise unavailable("username", "user name")
        raise Conflict(f"user '{name}' already exists", errors=[field_error("username", "already taken")])
    user = User(
        username=name,
        display_name=(display_name or name).strip()[:100],
        role=role.value,
        tenant_id=tenant_id,
        password_hash=passwords.hash_password(password),
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def user_named(session: Session, username: str) -> User | None:
    """The user with this login name, for the system (set-up jobs, the demo, benchmarks), not an actor."""
    return repo.user_by_username(session, username)


def users_visible_to(session: Session, actor: Actor) -> list[User]:
    return repo.users_of_tenant(session, actor.tenant_id)


def user_in_tenant(session: Session, actor: Actor, user_id: int) -> User:
    """A user of the actor's tenant, or 404 (another tenant's users do not exist for this actor)."""
    user = repo.user_by_id(session, user_id)
    if user is None or user.tenant_id != actor.tenant_id:
        raise NotFound(f"user {user_id} not found")
    return user


def update_user(
    session: Session,
    actor: Actor,
    user_id: int,
    *,
    role: Role | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    new_password: str | None = None,
) -> User:
    """Admin changes to a user. A new password or disabling ends the user's sessions and revokes their tokens
    (enabling them again brings none back); a new password also unlocks the name; a role change ends sessions."""
    user = user_in_tenant(session, actor, user_id)
    now = utcnow()
    if user.id == actor.user_id and (active is False or (role is not None and role is not Role.ADMIN)):
        raise Forbidden("you cannot disable or demote yourself")
    if role is not None:
        user.role = role.value
    if display_name is not None:
        user.display_name = display_name.strip()[:100] or user.username
    if new_password is not None:
        _set_password(user, new_password, now)
        _clear_throttle(session, user.username)
    if active is not None:
        user.active = active
    sessions_ended = tokens_revoked = 0
    if active is False or new_password is not None or role is not None:
        sessions_ended = repo.revoke_sessions(session, user.id, now)
    if active is False or new_password is not None:
        tokens_revoked = repo.revoke_tokens(session, user.id, now)
    session.flush()
    audit.record(
        session,
        actor,
        "user.update",
        resource="user",
        resource_id=user.id,
        detail={
            "role": role.value if role else None,
            "active": active,
            "password_reset": new_password is not None,
            "sessions_ended": sessions_ended,
            "tokens_revoked": tokens_revoked,
        },
    )
    return user


def reset_password(session: Session, user: User, password: str) -> dict[str, int]:
    """Set a password from the shell (no current password): unlocks the name, ends the user's sessions and
    revokes their tokens. Returns what was ended (for the caller's audit row)."""
    now = utcnow()
    _set_password(user, password, now)
    _clear_throttle(session, user.username)
    ended = {
        "sessions_ended": repo.revoke_sessions(session, user.id, now),
        "tokens_revoked": repo.revoke_tokens(session, user.id, now),
    }
    session.flush()
    return ended


def _set_password(user: User, password: str, now: datetime) -> None:
    problems = passwords.password_problems(password, user.username)
    if problems:
        raise ValidationFailed("the password is too weak", errors=[field_error("new_password", p) for p in problems])
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = now


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    *,
    actor: Actor | None = None,
    keep_session_id: int | None = None,
    keep_token_id: int | None = None,
) -> None:
    """The user's own change: needs the current password; ends every other session of the user and revokes
    every other token (the session or token making the change stays). Audited."""
    if not passwords.verify_password(user.password_hash, current):
        raise ValidationFailed(
            "the current password is wrong", errors=[field_error("current_password", "wrong password")]
        )
    if current == new:
        raise ValidationFailed("choose a new password", errors=[field_error("new_password", "same as the current one")])
    now = utcnow()
    _set_password(user, new, now)
    sessions_ended = repo.revoke_sessions(session, user.id, now, keep=keep_session_id)
    tokens_revoked = repo.revoke_tokens(session, user.id, now, keep=keep_token_id)
    session.flush()
    audit.record(
        session,
        actor or _self_actor(user),
        "user.password_change",
        resource="user",
        resource_id=user.id,
        detail={"sessions_ended": sessions_ended, "tokens_revoked": tokens_revoked},
    )


def _self_actor(user: User) -> Actor:
    """The user acting on their own account outside a request (their home tenant; none if center-wide)."""
    return Actor(tenant_id=user.tenant_id, username=user.username, user_id=user.id, role=Role(user.role))  # type: ignore[arg-type]


# -- login -------------------------------------------------------------------------------------------
#
# In three steps, so that no transaction is open while the password is hashed (argon2id: ~64 MiB and tens of ms
# of CPU; on SQLite a transaction holds the process's one writer lock): ``begin_login`` reads (short
# transaction, ended by the caller), ``verify_attempt`` hashes (no database), ``finish_login`` writes (short
# transaction). ``auth.login`` runs them for the two doors, with the rate limits; ``check_login`` runs them in
# one transaction for the shell and the tests. ADR 0018.


def login_name(username: str) -> str:
    return username.strip().lower()[:60]


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What the check before the hash found. ``locked_for``: seconds the attempt must wait (not hashed)."""

    name: str
    origin: str
    user_id: int | None
    password_hash: str | None
    known_origin: bool
    locked_for: int | None


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    new_hash: str | None = None  # the password hashed with today's parameters, when the stored hash is older


def begin_login(
    session: Session, username: str, *, origin: str, policy: LoginPolicy, now: datetime | None = None
) -> LoginAttempt:
    """Read the user and the throttle rows. A (name, address) lock always applies; the name-wide lock spares
    addresses the user logged in from successfully in the last ``known_origin_days`` (so an attacker elsewhere
    cannot keep them out). Unknown names are read the same way and hashed against a dummy hash later."""
    now = now or utcnow()
    name = login_name(username)
    origin = origin[:64]
    here, wide = repo.throttles(session, name, origin)
    user = repo.user_by_username(session, name)
    known = bool(
        here is not None
        and here.last_success_at is not None
        and now - here.last_success_at <= timedelta(days=policy.known_origin_days)
    )
    locked = _locked_for(here, now) or (None if known else _locked_for(wide, now))
    return LoginAttempt(
        name=name,
        origin=origin,
        user_id=user.id if user else None,
        password_hash=user.password_hash if user else None,
        known_origin=known,
        locked_for=locked,
    )


def _locked_for(row: LoginThrottle | None, now: datetime) -> int | None:
    if row is None or row.locked_until is None or row.locked_until <= now:
        return None
    return max(1, int((row.locked_until - now).total_seconds() + 0.999))


def verify_attempt(attempt: LoginAttempt, password: str) -> Verdict:
    """The password check — CPU only, no database. An unknown name costs the same (a dummy hash)."""
    ok = passwords.verify_password(attempt.password_hash, password)
    if ok and attempt.password_hash is not None and passwords.needs_rehash(attempt.password_hash):
        return Verdict(True, passwords.hash_password(password))
    return Verdict(ok)


def refuse_locked(session: Session, attempt: LoginAttempt) -> LoginOutcome:
    """A locked (name, address) or name: audited, refused without hashing, even with the right password."""
    audit.record_login(session, username=attempt.name, origin=attempt.origin, outcome="locked")
    return LoginOutcome(None, retry_after=attempt.locked_for, reason="locked")


def record_rate_limited(session: Session, username: str, origin: str, *, limit: str, retry_after: int) -> None:
    """The first refusal of a rate-limit episode (the rest of a flood is not written, see ``auth.login``)."""
    audit.record_login(
        session,
        username=login_name(username),
        origin=origin[:64],
        outcome="limited",  # audit outcomes are at most 10 characters
        detail={"limit": limit, "retry_after": retry_after},
    )


def finish_login(
    session: Session, attempt: LoginAttempt, verdict: Verdict, *, policy: LoginPolicy, now: datetime | None = None
) -> LoginOutcome:
    """Record the outcome: on success the (name, address) row is reset and remembers the success; on failure
    both rows count it and lock from the next attempt when over their limit."""
    now = now or utcnow()
    name, origin = attempt.name, attempt.origin
    user = repo.user_by_id(session, attempt.user_id) if attempt.user_id is not None else None
    # A password changed between the check and now was verified against the old hash: not a success.
    current = user is not None and user.password_hash == attempt.password_hash
    if verdict.ok and user is not None and user.active and current:
        here = repo.throttle_for_update(session, name, origin)
        here.failures, here.locked_until, here.last_success_at = 0, None, now
        wide = repo.throttle_for_update(session, name, NAME_WIDE)
        if wide.locked_until is None or wide.locked_until <= now:  # an attack under way keeps its lock
            wide.failures, wide.locked_until = 0, None
        if verdict.new_hash is not None:
            user.password_hash = verdict.new_hash
        user.last_login_at = now
        session.flush()
        audit.record_login(
            session,
            username=name,
            origin=origin,
            outcome="ok",
            user_id=user.id,
            tenant_id=user.tenant_id,
            role=user.role,
        )
        return LoginOutcome(user)
    here = _count_failure(repo.throttle_for_update(session, name, origin), now, policy.max_failures, policy)
    wide = _count_failure(repo.throttle_for_update(session, name, NAME_WIDE), now, policy.name_max_failures, policy)
    session.flush()
    audit.record_login(
        session,
        username=name,
        origin=origin,
        outcome="failed",
        user_id=user.id if user else None,
        tenant_id=user.tenant_id if user else None,
        detail={
            "failures": here.failures,
            "name_failures": wide.failures,
            "inactive": bool(user and verdict.ok and not user.active),
        },
    )
    return LoginOutcome(None)  # the lock, if this failure set one, applies from the next attempt


def check_login(
    session: Session,
    username: str,
    password: str,
    *,
    origin: str,
    policy: LoginPolicy,
    now: datetime | None = None,
) -> LoginOutcome:
    """The three steps in the caller's one transaction, without the rate limits (the shell, tests). HTTP logins
    go through ``auth.login.attempt``, which hashes outside any transaction."""
    attempt = begin_login(session, username, origin=origin, policy=policy, now=now)
    if attempt.locked_for is not None:
        return refuse_locked(session, attempt)
    return finish_login(session, attempt, verify_attempt(attempt, password), policy=policy, now=now)


def _count_failure(throttle: LoginThrottle, now: datetime, limit: int, policy: LoginPolicy) -> LoginThrottle:
    throttle.failures += 1
    throttle.last_failure_at = now
    over = throttle.failures - limit
    if over >= 0:
        seconds = min(policy.lockout_seconds * 2 ** min(over, 20), policy.lockout_max_seconds)
        throttle.locked_until = now + timedelta(seconds=seconds)
    return throttle


def _clear_throttle(session: Session, name: str) -> None:
    repo.delete_throttles(session, name)


# -- web sessions ------------------------------------------------------------------------------------


def start_session(
    session: Session, user: User, *, origin: str, user_agent: str | None, policy: LoginPolicy
) -> tuple[str, WebSession]:
    """A fresh session with a new random id, whatever cookie the browser had before (no fixation)."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    web = WebSession(
        user_id=user.id,
        secret_hash=digest(secret),
        csrf_token=secrets.token_urlsafe(32),
        origin=origin[:64],
        user_agent=(user_agent or "")[:200] or None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.session_max_age,
    )
    session.add(web)
    session.flush()
    return secret, web


def resolve_session(
    session: Session, secret: str, *, policy: LoginPolicy, now: datetime | None = None
) -> tuple[User, WebSession] | None:
    """The live session for a cookie value, or None (unknown, revoked, expired or idle too long)."""
    now = now or utcnow()
    found = repo.session_and_user(session, digest(secret))
    if found is None:
        return None
    web, user = found
    if web.revoked_at is not None or web.expires_at <= now:
        return None
    if now - web.last_seen_at > policy.session_idle:
        web.revoked_at = now
        return None
    if not user.active:
        return None
    if now - web.last_seen_at > timedelta(seconds=60):  # one write a minute is enough for the idle timer
        web.last_seen_at = now
    return user, web


def end_session(web: WebSession) -> None:
    web.revoked_at = utcnow()


# -- API tokens --------------------------------------------------------------------------------------


def issue_token(session: Session, user: User, name: str, *, ttl: timedelta | None = None) -> tuple[str, ApiToken]:
    """A new bearer token; the secret is shown once and only its hash is kept."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(
        user_id=user.id,
        name=name.strip()[:100] or "token",
        secret_hash=digest(secret),
        prefix=secret[:12],
        created_at=now,
        expires_at=now + ttl if ttl else None,
    )
    session.add(token)
    session.flush()
    return secret, token


def resolve_token(session: Session, secret: str, *, now: datetime | None = None) -> tuple[User, ApiToken] | None:
    now = now or utcnow()
    if not secret.startswith(TOKEN_PREFIX):
        return None
    found = repo.token_and_user(session, digest(secret))
    if found is None:
        return None
    token, user = found
    if token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if not user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(seconds=60):
        token.last_used_at = now
    return user, token


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    return repo.tokens_of(session, user.id)


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens (another user's token id is simply not found)."""
    token = next((t for t in repo.tokens_of(session, user.id) if t.id == token_id), None)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    token.revoked_at = token.revoked_at or utcnow()
    session.flush()
    return token


def tokens_of_user(session: Session, actor: Actor, user_id: int) -> list[ApiToken]:
    """An admin's view of a user's tokens (of the admin's tenant; another tenant's user is a 404). Audited."""
    user = user_in_tenant(session, actor, user_id)
    audit.record(session, actor, "token.list", resource="user", resource_id=user.id)
    return repo.tokens_of(session, user.id)


def revoke_user_token(session: Session, actor: Actor, user_id: int, token_id: int) -> ApiToken:
    """An admin revokes one of a user's tokens (of the admin's tenant). Audited."""
    user = user_in_tenant(session, actor, user_id)
    token = revoke_token(session, user, token_id)
    audit.record(
        session,
        actor,
        "token.revoke",
        resource="api_token",
        resource_id=token.id,
        detail={"user_id": user.id, "username": user.username, "name": token.name},
    )
    return token
