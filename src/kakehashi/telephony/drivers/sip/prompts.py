"""IVR prompts as audio: Japanese text read by Open JTalk (pyopenjtalk-plus), kept as 8 kHz WAV files.

A prompt in a flow is text (``ご注文は1を…``) or the name of a WAV file an admin uploaded. Text is rendered
once and cached by its hash, so a prompt costs nothing after the first call that hears it.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import wave
from pathlib import Path

import numpy as np

RATE = 8000
_TAPS = 95  # low-pass before keeping one sample in six (48 kHz → 8 kHz)


def _low_pass(cutoff: float, taps: int) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    kernel: np.ndarray = np.sinc(2 * cutoff * n) * np.hamming(taps)
    normalized: np.ndarray = kernel / kernel.sum()
    return normalized


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    """16-bit mono WAV — the one format both PJSIP's player and baresip's aufile read."""
    clipped = np.clip(samples, -32768, 32767).astype("<i2")
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(clipped.tobytes())
    tmp.replace(path)  # a concurrent reader never sees half a file


def tone(path: Path, freq_hz: float, seconds: float, *, amplitude: float = 8000.0) -> Path:
    """A sine tone (tests, and the default hold music)."""
    t = np.arange(int(seconds * RATE)) / RATE
    write_wav(path, amplitude * np.sin(2 * np.pi * freq_hz * t))
    return path


def hold_music(path: Path) -> Path:
    """A quiet, slow arpeggio, so a caller on hold knows the line is alive (replace with licensed music)."""
    notes = (523.25, 659.25, 783.99, 659.25)
    t = np.arange(int(0.5 * RATE)) / RATE
    envelope = np.minimum(1.0, np.minimum(t, 0.5 - t) * 20)
    parts = [2500.0 * envelope * np.sin(2 * np.pi * f * t) for f in notes * 4]
    write_wav(path, np.concatenate(parts))
    return path


@functools.lru_cache(maxsize=4096)
def wav_seconds(path: Path) -> float:
    """How long a WAV plays (the IVR waits for a prompt to end before it times a key press)."""
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


class PromptCache:
    """Text → WAV path, rendered on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def wav_for(self, prompt: str) -> Path:
        if prompt.endswith(".wav"):
            uploaded = self.directory / Path(prompt).name  # only files in the prompt folder
            if uploaded.exists():
                return uploaded
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:24]
        path = self.directory / f"tts-{digest}.wav"
        with self._lock:
            if not path.exists():
                write_wav(path, self._speak(prompt))
        return path

    @staticmethod
    def _speak(text: str) -> np.ndarray:
        import pyopenjtalk  # type: ignore[import-not-found,import-untyped,unused-ignore]  # loads a 30 MB voice

        samples, rate = pyopenjtalk.tts(text)
        step = int(rate) // RATE
        filtered = np.convolve(samples, _low_pass(0.5 / step * 0.9, _TAPS), mode="same")
        return filtered[::step] * 0.8
