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
from kakehashi.auth.models import ApiToken, LoginThrottle, User, WebSession
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
    max_failures: int = 5
    lockout_seconds: int = 30
    lockout_max_seconds: int = 900
    session_idle: timedelta = timedelta(minutes=60)
    session_max_age: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """``user`` on success; otherwise ``retry_after`` (seconds) when the name is locked."""

    user: User | None
    retry_after: int | None = None


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
    """Admin changes to a user; disabling or a new password ends the user's sessions and unlocks the name."""
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
    if active is False or new_password is not None or role is not None:
        repo.revoke_sessions(session, user.id, now)
    session.flush()
    audit.record(
        session,
        actor,
        "user.update",
        resource="user",
        resource_id=user.id,
        detail={"role": role.value if role else None, "active": active, "password_reset": new_password is not None},
    )
    return user


def reset_password(session: Session, user: User, password: str) -> None:
    """Set a password from the shell (no current password): unlocks the name, ends the user's sessions."""
    now = utcnow()
    _set_password(user, password, now)
    _clear_throttle(session, user.username)
    repo.revoke_sessions(session, user.id, now)
    session.flush()


def _set_password(user: User, password: str, now: datetime) -> None:
    problems = passwords.password_problems(password, user.username)
    if problems:
        raise ValidationFailed("the password is too weak", errors=[field_error("new_password", p) for p in problems])
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = now


def change_password(
    session: Session, user: User, current: str, new: str, *, keep_session_id: int | None = None
) -> None:
    """The user's own change: needs the current password; ends every other session of the user."""
    if not passwords.verify_password(user.password_hash, current):
        raise ValidationFailed(
            "the current password is wrong", errors=[field_error("current_password", "wrong password")]
        )
    if current == new:
        raise ValidationFailed("choose a new password", errors=[field_error("new_password", "same as the current one")])
    now = utcnow()
    _set_password(user, new, now)
    repo.revoke_sessions(session, user.id, now, keep=keep_session_id)
    session.flush()


# -- login -------------------------------------------------------------------------------------------


def check_login(
    session: Session,
    username: str,
    password: str,
    *,
    origin: str,
    policy: LoginPolicy,
    now: datetime | None = None,
) -> LoginOutcome:
    """Verify a password with a per-username lockout that doubles with each further failure.

    Unknown names are throttled and timed like real ones, so neither the answer nor the lockout nor the
    time taken tells an attacker which names exist. While locked, even the right password is refused.
    """
    now = now or utcnow()
    name = username.strip().lower()[:60]
    throttle = repo.throttle(session, name)
    if throttle and throttle.locked_until and throttle.locked_until > now:
        retry = max(1, int((throttle.locked_until - now).total_seconds() + 0.999))
        audit.record_login(session, username=name, origin=origin, outcome="locked")
        return LoginOutcome(None, retry_after=retry)
    user = repo.user_by_username(session, name)
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if ok and user is not None and user.active:
        if throttle is not None:
            session.delete(throttle)
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
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
    throttle = _count_failure(session, throttle, name, now, policy)
    audit.record_login(
        session,
        username=name,
        origin=origin,
        outcome="failed",
        user_id=user.id if user else None,
        tenant_id=user.tenant_id if user else None,
        detail={"failures": throttle.failures, "inactive": bool(user and ok and not user.active)},
    )
    return LoginOutcome(None)  # the lock, if this failure set one, applies from the next attempt


def _count_failure(
    session: Session, throttle: LoginThrottle | None, name: str, now: datetime, policy: LoginPolicy
) -> LoginThrottle:
    if throttle is None:
        throttle = LoginThrottle(username=name, failures=0)
        session.add(throttle)
    throttle.failures += 1
    throttle.last_failure_at = now
    over = throttle.failures - policy.max_failures
    if over >= 0:
        seconds = min(policy.lockout_seconds * 2 ** min(over, 20), policy.lockout_max_seconds)
        throttle.locked_until = now + timedelta(seconds=seconds)
    session.flush()
    return throttle


def _clear_throttle(session: Session, name: str) -> None:
    throttle = repo.throttle(session, name)
    if throttle is not None:
        session.delete(throttle)


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
