"""Queries for users, tokens, sessions and the login throttle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kakehashi.auth.models import ApiToken, LoginThrottle, User, WebSession


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


def revoke_sessions(session: Session, user_id: int, now: datetime, *, keep: int | None = None) -> None:
    stmt = update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(WebSession.id != keep)
    session.execute(stmt.values(revoked_at=now))


def throttle(session: Session, username: str) -> LoginThrottle | None:
    """The throttle row, locked for this transaction on PostgreSQL so parallel guesses count one by one."""
    return session.scalars(
        select(LoginThrottle).where(LoginThrottle.username == username).with_for_update()
    ).one_or_none()


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.tenant_id, User.username)))
