"""Database plumbing: declarative base, engine factory and the unit of work.

One request or one job is one transaction. Services ``flush`` and never ``commit``;
whoever opened the unit of work commits once. Work that must only happen when the data
is really stored (events, jobs) is registered with :func:`on_commit`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: 64-bit ids on PostgreSQL; SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; SQLAlchemy emits BEGIN instead.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class _SqliteWriters:
    """SQLite has one writer. A connection that finds the database locked waits in SQLite's busy handler, which
    sleeps in steps (1, 2, 5, 10, 15, 20, 25 ms…) and so wakes well after the lock was freed: a screen pop that
    met the call pipeline's commit waited 10–40 ms. This process's transactions queue on a lock instead, handed
    to the next one as the previous one commits or rolls back. The busy handler still covers other processes,
    and a thread that would wait on itself goes on after ``timeout_s`` (SQLite then decides, as before)."""

    KEY = "kakehashi.sqlite_writer"

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.lock = threading.Lock()
        self.timeout_s = timeout_s

    def begin(self, conn: Any) -> None:
        # IMMEDIATE: take the write lock at the start. A deferred transaction that read and then writes fails
        # at once ("database is locked", SQLITE_BUSY_SNAPSHOT) when another connection committed in between —
        # the call pipeline and web requests write concurrently. Code that hands work to a component writing in
        # its own transactions ends its own first (kit.api.end_transaction_early).
        conn.info[self.KEY] = self.lock.acquire(timeout=self.timeout_s)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(conn)
            raise

    def end(self, conn: Any) -> None:
        """The transaction ends (commit or rollback): the next one may go."""
        if conn.info.pop(self.KEY, False):
            self.lock.release()

    def reset(self, dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
        """The pool rolls back a connection given back mid-transaction: the same (``info`` is shared)."""
        self.end(connection_record)


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    """Create an engine with the settings each backend needs (the pool's size: PostgreSQL only)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        writers = _SqliteWriters()
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
        event.listen(engine.pool, "reset", writers.reset)
        return engine
    # No pre-ping: it costs a round trip per request (a third of a screen pop). A connection broken by a
    # server restart fails one request and SQLAlchemy then invalidates the pool; recycle bounds idle age.
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


_AFTER_COMMIT = "kakehashi.after_commit"


def on_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` after the session's transaction commits; drop it on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    hooks = session.info.pop(_AFTER_COMMIT, [])
    for fn in hooks:
        fn()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back if it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
