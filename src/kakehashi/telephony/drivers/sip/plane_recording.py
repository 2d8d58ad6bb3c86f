"""Recordings on rtpengine's media plane: when a call ends, its pcap files become the WAV the CTI asked for.

rtpengine (``--recording-method=pcap --recording-dir=D``) writes ``D/pcaps/<call-id>-<hex>.pcap`` while a call
is recorded (a new file each time recording starts again after a pause) and closes them when the call is
deleted. The conversion (``pcap_wav.to_wav``) runs in a thread beside the signalling loop; the pcaps are removed
once the WAV is written, or kept beside it as ``<name>.pcap-failed`` if the conversion fails, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from kakehashi.telephony.drivers.sip.pcap_wav import to_wav

log = logging.getLogger("kakehashi.plane")
#: rtpengine closes a deleted call's pcap before it answers the delete; should one not be there yet, look again.
SETTLE_S = 0.2
FIND_TRIES = 25


class RecordingJobs:
    def __init__(self, recording_dir: Path, *, threads: int = 1) -> None:
        self.pcaps = recording_dir / "pcaps"
        self.metadata = recording_dir / "metadata"
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recording")
        self.pending: set[Future[None]] = set()

    def convert(self, media_id: str, destination: str, customer: tuple[str, int] | None) -> None:
        """Queue the WAV of ``media_id``'s pcaps at ``destination``."""
        future = self.pool.submit(self._convert, media_id, Path(destination), customer)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)

    def _convert(self, media_id: str, destination: Path, customer: tuple[str, int] | None) -> None:
        pcaps: list[Path] = []
        for attempt in range(FIND_TRIES):
            if attempt:
                time.sleep(SETTLE_S)
            pcaps = sorted(self.pcaps.glob(f"{media_id}-*.pcap"), key=lambda p: p.stat().st_mtime)
            if pcaps:
                break
        if not pcaps:
            log.error("recording of %s: no pcap in %s", media_id, self.pcaps)
            return
        try:
            to_wav(pcaps, destination, customer)
        except Exception:
            log.exception("recording of %s: the WAV could not be made; pcaps kept", media_id)
            for i, pcap in enumerate(pcaps):
                with contextlib.suppress(OSError):
                    shutil.move(pcap, destination.with_name(f"{destination.name}.{i}.pcap-failed"))
            return
        for done in [*pcaps, *self.metadata.glob(f"rtpengine-meta-{media_id}-*")]:
            done.unlink(missing_ok=True)

    async def drain(self) -> None:
        """Wait for every queued conversion (the worker is stopping)."""
        pending = list(self.pending)
        if pending:
            await asyncio.get_running_loop().run_in_executor(None, lambda: [f.result() for f in pending])
        self.pool.shutdown(wait=True)
