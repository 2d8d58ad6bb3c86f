"""Audio files for the lab's phones: tones to send (16-bit mono WAV, what baresip's aufile reads) and what they
recorded, with its level and pitch."""

from __future__ import annotations

import array
import itertools
import math
import os
import sys
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

from kakehashi.telephony.drivers.sip.lab.processes import LabError


def write_tone_wav(path: Path, hz: float, seconds: float = 120.0, amplitude: float = 0.5, rate: int = 8000) -> Path:
    """A sine tone as 16-bit mono WAV (what baresip's aufile reads: other formats fail).

    Written to a temporary name then renamed, so phones sharing a tone file never read half of it.
    """
    one_second = array.array(
        "h", (round(amplitude * 32767 * math.sin(2 * math.pi * hz * n / rate)) for n in range(rate))
    )
    if sys.byteorder == "big":
        one_second.byteswap()
    chunk = one_second.tobytes()  # whole cycles per second for an integer frequency: loops seamlessly
    whole, part = divmod(round(seconds * rate), rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(chunk * whole + chunk[: part * 2])
    partial.replace(path)
    return path


def tone_file(directory: Path, hz: float, seconds: float = 120.0) -> Path:
    """A cached tone WAV in ``directory`` (made once per frequency and length)."""
    path = directory / f"tone-{hz:g}Hz-{seconds:g}s.wav"
    return path if path.exists() else write_tone_wav(path, hz, seconds)


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit samples of a WAV file (baresip's sndfile dumps)."""

    samples: array.array[int]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def rms(self) -> float:
        """Root mean square, 0.0 (silence) to 1.0 (full scale)."""
        if not self.samples:
            return 0.0
        return math.sqrt(sum(s * s for s in self.samples) / len(self.samples)) / 32768.0

    def tone_hz(self, threshold: float = 0.02) -> float:
        """Estimated frequency of a pure tone, by zero crossings over the non-silent part."""
        limit = threshold * 32768
        loud = [s for s in self.samples if abs(s) > limit]
        if len(loud) < self.rate // 10:
            return 0.0
        # Only the stretch from first to last loud sample (calls start and end with silence).
        first = next(i for i, s in enumerate(self.samples) if abs(s) > limit)
        last = len(self.samples) - next(i for i, s in enumerate(reversed(self.samples)) if abs(s) > limit)
        span = self.samples[first:last]
        crossings = sum(1 for a, b in itertools.pairwise(span) if (a < 0) != (b < 0))
        return crossings / 2 / (len(span) / self.rate)


def read_wav(path: Path) -> Audio:
    """Read a 16-bit PCM WAV, also one still being written (its header sizes not yet final)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise LabError(f"{path}: not a WAV file")
    pos, rate, channels, width = 12, 0, 1, 2
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            width = int.from_bytes(data[body + 14 : body + 16], "little") // 8
        elif chunk_id == b"data":
            end = body + size if 0 < size <= len(data) - body else len(data)
            raw = data[body:end]
            if width != 2:
                raise LabError(f"{path}: {width * 8}-bit samples, 16-bit expected")
            raw = raw[: len(raw) - len(raw) % (2 * channels)]
            samples = array.array("h")
            samples.frombytes(raw)
            if sys.byteorder == "big":
                samples.byteswap()
            if channels > 1:
                samples = samples[::channels]
            return Audio(samples, rate)
        pos = body + size + (size & 1)
    return Audio(array.array("h"), rate)
