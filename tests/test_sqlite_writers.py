"""SQLite's one writer: this process's transactions queue on a lock that passes to the next one when the
previous commits, rolls back or is given back to the pool — instead of SQLite's stepped busy sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

from kakehashi.kit.db import make_engine


def engine_with_table(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return engine


def second_writer(engine: Engine) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    return thread, done


def check_handover(tmp_path: Path, finish: Callable[..., None]) -> None:
    engine = engine_with_table(tmp_path)
    first = engine.connect()
    first.begin()
    first.execute(text("INSERT INTO t VALUES (1)"))
    thread, done = second_writer(engine)
    assert not done.wait(0.2)  # it waits while the first transaction is open
    finish(first)
    assert done.wait(10), "the second writer did not go on after the first ended"
    thread.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t WHERE n = 2")).scalar() == 1
    engine.dispose()


def test_the_next_writer_goes_on_when_the_first_commits(tmp_path: Path) -> None:
    check_handover(tmp_path, lambda conn: (conn.commit(), conn.close()))


def test_the_next_writer_goes_on_when_the_first_rolls_back(tmp_path: Path) -> None:
    check_handover(tmp_path, lambda conn: (conn.rollback(), conn.close()))


def test_the_next_writer_goes_on_when_a_connection_is_given_back_mid_transaction(tmp_path: Path) -> None:
    check_handover(tmp_path, lambda conn: conn.close())  # the pool rolls it back
