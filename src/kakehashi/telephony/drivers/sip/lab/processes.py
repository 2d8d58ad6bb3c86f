"""The lab's child processes: each in a process group of its own with its log, stopped group and all; what still
runs at exit is stopped; readiness polled, never slept for."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

LOOPBACK = "127.0.0.1"


class LabError(RuntimeError):
    """A lab process failed to start, answer or stop."""


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A child process in a process group of its own, stdout/stderr to a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "ab") as log:
            try:
                self.popen = subprocess.Popen(  # noqa: S603 - argv built here from fixed tool names
                    argv,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise LabError(f"{name}: {argv[0]} is not installed (scripts/services installs it)") from exc
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise LabError(
                f"{self.name} exited with status {self.popen.returncode}; log {self.log_path}:\n"
                f"{log_tail(self.log_path)}"
            )

    def fail(self, what: str) -> LabError:
        return LabError(f"{self.name}: {what}; log {self.log_path}:\n{log_tail(self.log_path)}")

    def _group_members(self) -> list[int]:
        members = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == self.pid:
                members.append(int(entry.name))
        return members

    def stop(self, timeout: float = 5.0, grace: float = 1.0) -> None:
        """SIGTERM the process group; again after ``grace`` (baresip waits for open transactions
        after the first and forces its exit on the second); SIGKILL what is left after ``timeout``.
        """
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            if not self.alive():
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)
        # Children of our group (Kamailio's workers) that outlive the main process.
        deadline = time.monotonic() + timeout
        while members := self._group_members():
            sig = signal.SIGTERM if time.monotonic() < deadline - timeout / 2 else signal.SIGKILL
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)


def _poll(
    what: Callable[[], bool], timeout: float, interval: float = 0.05, check: Callable[[], None] | None = None
) -> bool:
    """Call ``what`` until it is true or ``timeout`` passes; ``check`` may raise to stop early."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        if what():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# Everything still running when the interpreter exits (a test run interrupted, a demo killed by ^C).
_live: weakref.WeakSet[_Stoppable] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for thing in list(_live):
        with contextlib.suppress(Exception):
            thing.stop()


def running_processes() -> Iterator[tuple[int, str]]:
    """(pid, command line) of kamailio, rtpengine and baresip processes on this machine (diagnostics)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline.split(" ", 1)[0].rsplit("/", 1)[-1] in {"kamailio", "rtpengine", "baresip"}:
            yield int(entry.name), cmdline
