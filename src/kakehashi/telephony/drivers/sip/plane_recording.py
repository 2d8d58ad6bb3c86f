"""Recordings on rtpengine's media plane: when a call ends, its pcap files become the WAV the CTI asked for.

rtpengine (``--recording-method=pcap --recording-dir=D``) writes ``D/pcaps/<call-id>-<hex>.pcap`` while a call
is recorded (a new file each time recording starts again after a pause) and closes them when the call is
deleted. The conversion (``pcap_wav.to_wav``) runs in a process beside the signalling loop, at nice 19; the pcaps
are removed once the WAV is written, or kept beside it as ``<name>.pcap-failed`` if the conversion fails, so
nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path

from kakehashi.telephony.drivers.sip.pcap_wav import to_wav

log = logging.getLogger("kakehashi.plane")
#: rtpengine closes a deleted call's pcap before it answers the delete; should one not be there yet, look again.
SETTLE_S = 0.2
FIND_TRIES = 25


class RecordingJobs:
    """Conversions in a process of their own at the lowest priority (nice 19): they take the CPU the calls
    leave, never the signalling loop's, and a burst of call ends only delays the WAVs."""

    def __init__(self, recording_dir: Path, *, processes: int = 1) -> None:
        self.recording_dir = recording_dir
        self.pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_lowest_priority)  # fmt: skip
        self.pending: set[Future[None]] = set()
        self.pool.submit(_lowest_priority)  # start the process now (spawn + numpy: ~1 s), not at the first call's end

    def convert(self, media_id: str, destination: str, customer: tuple[str, int] | None) -> None:
        """Queue the WAV of ``media_id``'s pcaps at ``destination``."""
        future = self.pool.submit(convert, self.recording_dir, media_id, Path(destination), customer)
        self.pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self.pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("recording: %s", future.exception())

    async def drain(self) -> None:
        """Wait for every queued conversion (the worker is stopping)."""
        pending = list(self.pending)
        if pending:
            await asyncio.get_running_loop().run_in_executor(None, wait, pending)
        self.pool.shutdown(wait=True)


def _lowest_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(19)


def convert(recording_dir: Path, media_id: str, destination: Path, customer: tuple[str, int] | None) -> None:
    """The WAV of ``media_id``'s pcaps (in the conversion process); the pcaps and rtpengine's metadata go once it
    is written, or are kept beside it if it cannot be made."""
    pcaps: list[Path] = []
    for attempt in range(FIND_TRIES):
        if attempt:
            time.sleep(SETTLE_S)
        pcaps = sorted((recording_dir / "pcaps").glob(f"{media_id}-*.pcap"), key=lambda p: p.stat().st_mtime)
        if pcaps:
            break
    if not pcaps:
        log.error("recording of %s: no pcap in %s", media_id, recording_dir / "pcaps")
        return
    try:
        to_wav(pcaps, destination, customer)
    except Exception:
        log.exception("recording of %s: the WAV could not be made; pcaps kept", media_id)
        for i, pcap in enumerate(pcaps):
            with contextlib.suppress(OSError):
                shutil.move(pcap, destination.with_name(f"{destination.name}.{i}.pcap-failed"))
        return
    for done in [*pcaps, *(recording_dir / "metadata").glob(f"rtpengine-meta-{media_id}-*")]:
        done.unlink(missing_ok=True)
