"""Queries for users, tokens, sessions and the login throttle."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kakehashi.auth.models import NAME_WIDE, ApiToken, LoginThrottle, User, WebSession


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username.lower())).one_or_none()


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def users_of_tenant(session: Session, tenant_id: int) -> list[User]:
    """A tenant's users, plus nothing of other tenants (center-wide admins are listed separately)."""
    return list(session.scalars(select(User).where(User.tenant_id == tenant_id).order_by(User.username)))


def center_admins(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.tenant_id.is_(None)).order_by(User.username)))


def token_by_hash(session: Session, secret_hash: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.secret_hash == secret_hash)).one_or_none()


def token_and_user(session: Session, secret_hash: str) -> tuple[ApiToken, User] | None:
    """A token with its user in one round trip (every API request asks)."""
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.secret_hash == secret_hash)
    ).one_or_none()
    return (row[0], row[1]) if row else None


def session_and_user(session: Session, secret_hash: str) -> tuple[WebSession, User] | None:
    row = session.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id).where(WebSession.secret_hash == secret_hash)
    ).one_or_none()
    return (row[0], row[1]) if row else None


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


def session_by_hash(session: Session, secret_hash: str) -> WebSession | None:
    return session.scalars(select(WebSession).where(WebSession.secret_hash == secret_hash)).one_or_none()


def revoke_sessions(session: Session, user_id: int, now: datetime, *, keep: int | None = None) -> int:
    """End a user's live web sessions (all but ``keep``); how many were ended."""
    stmt = update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(WebSession.id != keep)
    result = session.execute(stmt.values(revoked_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def throttles(session: Session, username: str, origin: str) -> tuple[LoginThrottle | None, LoginThrottle | None]:
    """The (name, address) row and the name-wide row, read without locks (the check before the hash)."""
    rows = session.scalars(
        select(LoginThrottle).where(LoginThrottle.username == username, LoginThrottle.origin.in_((origin, NAME_WIDE)))
    ).all()
    by_origin = {r.origin: r for r in rows}
    return by_origin.get(origin), by_origin.get(NAME_WIDE)


def throttle_for_update(session: Session, username: str, origin: str) -> LoginThrottle:
    """The throttle row, created if missing and locked for this transaction on PostgreSQL, so parallel guesses
    count one by one (two first failures at once insert one row, not a unique violation)."""
    table = cast(Table, LoginThrottle.__table__)
    values = {"username": username, "origin": origin, "failures": 0}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(pg_insert(table).values(values).on_conflict_do_nothing())
    else:
        session.execute(sqlite_insert(table).values(values).on_conflict_do_nothing())
    return session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.username == username, LoginThrottle.origin == origin)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def delete_throttles(session: Session, username: str) -> None:
    """Every row of a name (all addresses and the name-wide one)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.username == username))


def revoke_tokens(session: Session, user_id: int, now: datetime, *, keep: int | None = None) -> int:
    """Revoke a user's live tokens (all but ``keep``); how many were revoked."""
    stmt = update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(ApiToken.id != keep)
    result = session.execute(stmt.values(revoked_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.tenant_id, User.username)))
