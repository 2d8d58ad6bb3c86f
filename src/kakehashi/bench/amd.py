"""``kakehashi bench amd``: answering-machine detection on synthetic Japanese answers (issue 19).

How often does :mod:`kakehashi.telephony.amd` take a person for a machine — a call the dialer hangs up on, which
Ofcom counts as **abandoned** — and how often does it let a 留守番電話 through to an agent? Samples are made offline
and reproducibly (a seeded generator; Open JTalk, ``pyopenjtalk-plus``, as the IVR's prompts are):

* **machine** — greetings of different lengths, from a short 「田中です。メッセージをどうぞ。」 to a carrier's
  「おかけになった電話をお呼びしましたが、お出になりません。…」, after 0.2–1.5 s of silence, then the beep
  (発信音: 1 kHz, 0.4–1 s, 0.2–0.6 s after the greeting; heard only when the greeting is shorter than the sample);
* **human** — 「はい、もしもし」「はい」「もしもし」「はい、田中です」… after 0.15–1.5 s, then silence (the person
  waits for an answer), 40 % of them saying 「もしもし？」 again 1.2–1.8 s later;
* **silence** — nobody speaks (the line's background noise only);
* **noise** — line noise without speech: hiss, mains hum (50/60 Hz), crackle.

Each text is read at a random speed (0.85–1.2) and pitch (−3…+4 half tones), resampled to 8 kHz, band-limited to
the telephone band (300–3400 Hz), set to an active speech level of −32…−18 dBFS, given background noise at
−70…−50 dBFS (``background="noisy"``: −50…−36 dBFS, around app_amd's silence threshold), passed through G.711
μ-law and back, and fed to the detector in 20 ms RTP payloads (:meth:`AmdDetector.feed_ulaw`). Every sample lasts
6 s, longer than the detector's analysis.

Per settings (app_amd's stock set, and :meth:`AmdSettings.japanese`): accuracy per class — a person must be
``human``, a machine ``machine``; silence and noise are right when not ``human`` (no agent is given an empty
line) —, the **false-machine rate** (people classified as machines: abandoned calls), the share of people left
``notsure``, the mean decision time, and the verdicts' causes. ``false_machine_rate_upper95`` is the upper end
of its 95 % Wilson interval: the rate a dialer can assume for its abandoned-call estimate from this many people.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from kakehashi.telephony.amd import FRAME_SAMPLES, RATE, AmdDetector, AmdSettings, Verdict, ulaw_encode

CLASSES = ("human", "machine", "silence", "noise")
MIX = {"human": 0.4, "machine": 0.4, "silence": 0.1, "noise": 0.1}
SAMPLE_S = 6.0
#: Background noise on the line, RMS in dBFS: ``low`` (a quiet room, the brief's figures), ``noisy`` (a TV or a
#: street behind the person, a noisy line: around app_amd's silence threshold).
BACKGROUNDS = {"low": (-70.0, -50.0), "noisy": (-50.0, -36.0)}
HUMAN_TEXTS = ("はい、もしもし", "はい", "もしもし", "はい、田中です", "はい、佐藤です", "もしもし、鈴木です")
SECOND_HELLO = "もしもし？"
MACHINE_TEXTS = (
    "田中です。メッセージをどうぞ。",
    "はい、佐藤です。ただいま留守にしております。発信音のあとにメッセージをどうぞ。",
    "ただいま電話に出ることができません。ピーという発信音のあとに、お名前とご用件をお話しください。",
    "おかけになった電話をお呼びしましたが、お出になりません。発信音のあとにお名前とご用件をお話しください。",
    "お電話ありがとうございます。ただいま留守にしております。",
    "こちらは留守番電話サービスです。発信音のあとにメッセージを録音してください。",
)
_SOURCE_RATE = 48000  # pyopenjtalk's output
_STEP = _SOURCE_RATE // RATE


def _low_pass(cutoff: float, taps: int) -> np.ndarray:
    """Windowed-sinc low-pass; ``cutoff`` as a fraction of the sampling rate."""
    n = np.arange(taps) - (taps - 1) / 2
    kernel: np.ndarray = np.sinc(2 * cutoff * n) * np.hamming(taps)
    normalized: np.ndarray = kernel / kernel.sum()
    return normalized


_DECIMATE = _low_pass(3600 / _SOURCE_RATE, 191)  # 48 kHz → 8 kHz: nothing above 4 kHz folds back
_TELEPHONE_BAND = _low_pass(3400 / RATE, 101) - _low_pass(300 / RATE, 101)  # 300–3400 Hz


@functools.lru_cache(maxsize=512)
def _speak(text: str, speed: float, half_tone: float) -> np.ndarray:
    """``text`` read by Open JTalk, at 8 kHz, its leading and trailing silence cut (float samples)."""
    with contextlib.redirect_stdout(sys.stderr):  # its import prints a warning, and --json prints only JSON
        import pyopenjtalk  # type: ignore[import-not-found,import-untyped,unused-ignore]  # loads a 30 MB voice

    samples, rate = pyopenjtalk.tts(text, speed=speed, half_tone=half_tone)
    if int(rate) != _SOURCE_RATE:
        raise RuntimeError(f"pyopenjtalk spoke at {rate} Hz, not {_SOURCE_RATE}")
    audio: np.ndarray = np.convolve(samples, _DECIMATE, mode="same")[::_STEP]
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    trimmed: np.ndarray = audio[loud[0] : loud[-1] + 1] if loud.size else audio
    return trimmed


def _speak_until(text: str, speed: float, half_tone: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """The greeting's sentences one after another (a pause between them) until ``seconds`` of audio: a long
    carrier greeting costs only what the detector can hear of it."""
    parts: list[np.ndarray] = []
    length = 0
    for sentence in (s + "。" for s in text.split("。") if s):
        if length >= seconds * RATE:
            break
        if parts:
            pause = np.zeros(int(rng.uniform(0.35, 0.7) * RATE))
            parts.append(pause)
            length += pause.size
        parts.append(_speak(sentence, speed, half_tone))
        length += parts[-1].size
    return np.concatenate(parts)


def _voice(rng: np.random.Generator) -> tuple[float, float]:
    """A speed and a pitch (rounded, so that a large run reuses some readings)."""
    return round(float(rng.uniform(0.85, 1.2)), 2), round(float(rng.uniform(-3.0, 4.0)) * 2) / 2


def _at_level(speech: np.ndarray, dbfs: float) -> np.ndarray:
    """Band-limit to the telephone band and scale so that the active speech (20 ms frames within 30 dB of the
    loudest) has an RMS of ``dbfs`` relative to 16-bit full scale."""
    band = np.convolve(speech, _TELEPHONE_BAND, mode="same")
    usable = band[: band.size // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    rms = np.sqrt((usable**2).mean(axis=1))
    active = rms[rms > rms.max() * 10 ** (-30 / 20)]
    target = 32768 * 10 ** (dbfs / 20)
    scaled: np.ndarray = band * (target / np.sqrt((active**2).mean()))
    return scaled


def _place(track: np.ndarray, at_s: float, sound: np.ndarray) -> None:
    start = int(at_s * RATE)
    end = min(track.size, start + sound.size)
    if start < end:
        track[start:end] += sound[: end - start]


def _line_noise(rng: np.random.Generator, n: int) -> tuple[np.ndarray, str]:
    kind = str(rng.choice(["hiss", "hum", "crackle"]))
    level = 32768 * 10 ** (rng.uniform(-45, -30) / 20)
    if kind == "hiss":
        return rng.normal(0, level, n), kind
    if kind == "hum":
        mains = float(rng.choice([50.0, 60.0]))  # East and West Japan
        t = np.arange(n) / RATE
        hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3, 5, 7))
        return level * np.asarray(hum) / 1.2, f"hum{int(mains)}"
    crackle = np.zeros(n)
    for _ in range(int(rng.integers(5, 40))):
        start, length = int(rng.integers(0, n)), int(rng.integers(8, 1600))
        burst = rng.normal(0, level * rng.uniform(1, 6), min(length, n - start)) * (rng.random() < 0.7)
        crackle[start : start + burst.size] += burst
    return crackle, kind


@dataclass(frozen=True)
class Sample:
    """One answered call's first seconds: ``kind`` (the truth), what was said, and the μ-law payloads the
    detector hears (20 ms each, as RTP carries them)."""

    kind: str
    description: str
    payloads: tuple[bytes, ...]


def _make(kind: str, rng: np.random.Generator, background: str) -> Sample:
    n = int(SAMPLE_S * RATE)
    track = np.zeros(n)
    if kind == "human":
        text = str(rng.choice(HUMAN_TEXTS))
        speed, pitch = _voice(rng)
        level = float(rng.uniform(-32, -18))
        at = float(rng.uniform(0.15, 1.5))
        first = _at_level(_speak(text, speed, pitch), level)
        _place(track, at, first)
        description = f"{text} after {at:.2f} s"
        if rng.random() < 0.4:
            again = float(at + first.size / RATE + rng.uniform(1.2, 1.8))
            _place(track, again, _at_level(_speak(SECOND_HELLO, speed, pitch), level))
            description += f", {SECOND_HELLO} at {again:.2f} s"
    elif kind == "machine":
        text = str(rng.choice(MACHINE_TEXTS))
        speed, pitch = _voice(rng)
        at = float(rng.uniform(0.2, 1.5))
        greeting = _at_level(_speak_until(text, speed, pitch, SAMPLE_S - at, rng), float(rng.uniform(-32, -18)))
        _place(track, at, greeting)
        beep_at = at + greeting.size / RATE + float(rng.uniform(0.2, 0.6))
        beep_s = float(rng.uniform(0.4, 1.0))
        t = np.arange(int(beep_s * RATE)) / RATE
        _place(track, beep_at, 32768 * 10 ** (rng.uniform(-24, -14) / 20) * np.sqrt(2) * np.sin(2 * np.pi * 1000 * t))
        description = f"{text[:20]}… after {at:.2f} s, a beep at {beep_at:.2f} s"
    elif kind == "noise":
        noise, description = _line_noise(rng, n)
        track += noise
    else:
        description = "silence"
    low, high = BACKGROUNDS[background]
    track += rng.normal(0, 32768 * 10 ** (rng.uniform(low, high) / 20), n)
    ulaw = ulaw_encode(np.clip(np.round(track), -32768, 32767).astype(np.int16))
    payloads = tuple(ulaw[i : i + FRAME_SAMPLES] for i in range(0, len(ulaw), FRAME_SAMPLES))
    return Sample(kind, description, payloads)


def generate(
    samples: int, seed: int, progress: Callable[[], None] | None = None, *, background: str = "low"
) -> list[Sample]:
    """``samples`` calls in the proportions of :data:`MIX` (at least one of each kind), shuffled by ``seed``,
    with the background noise of :data:`BACKGROUNDS`."""
    rng = np.random.default_rng(seed)
    counts = {kind: max(1, round(samples * share)) for kind, share in MIX.items()}
    counts["human"] += samples - sum(counts.values())  # rounding: people absorb the difference
    kinds = [kind for kind in CLASSES for _ in range(max(0, counts[kind]))]
    rng.shuffle(kinds)
    made = []
    for kind in kinds:
        made.append(_make(kind, rng, background))
        if progress is not None:
            progress()
    return made


def classify(sample: Sample, settings: AmdSettings) -> Verdict:
    """Feed the sample's payloads one by one, as a driver would, until a verdict."""
    detector = AmdDetector(settings)
    for payload in sample.payloads:
        verdict = detector.feed_ulaw(payload)
        if verdict is not None:
            return verdict
    return detector.hang_up()


def _correct(kind: str, verdict: Verdict) -> bool:
    if kind in ("human", "machine"):
        return verdict.result == kind
    return verdict.result != "human"  # silence and line noise: no agent for an empty line


def wilson_upper(hits: int, n: int, z: float = 1.96) -> float:
    """Upper end of the Wilson score interval (95 % by default) for a rate of ``hits`` in ``n``: what a
    dialer can assume at most when, say, 0 of 160 people were taken for machines."""
    if n == 0:
        return 1.0
    p = hits / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + margin) / (1 + z * z / n))


def measure(samples: list[Sample], settings: AmdSettings) -> dict[str, Any]:
    """Accuracy per class and overall, the false-machine rate, mean decision time, causes."""
    verdicts = [(s.kind, classify(s, settings)) for s in samples]
    per_class: dict[str, Any] = {}
    for kind in CLASSES:
        mine = [v for k, v in verdicts if k == kind]
        if not mine:
            continue
        per_class[kind] = {
            "n": len(mine),
            "accuracy": round(sum(_correct(kind, v) for v in mine) / len(mine), 4),
            "verdicts": dict(Counter(v.result for v in mine)),
            "causes": dict(Counter(v.cause for v in mine)),
            "mean_decision_ms": round(sum(v.decided_ms for v in mine) / len(mine)),
        }
    people = [v for k, v in verdicts if k == "human"]
    false_machines = sum(v.result == "machine" for v in people)
    return {
        "settings": settings.as_dict(),
        "accuracy": round(sum(_correct(k, v) for k, v in verdicts) / len(verdicts), 4),
        "false_machine_rate": round(false_machines / max(1, len(people)), 4),
        "false_machine_rate_upper95": round(wilson_upper(false_machines, len(people)), 4),
        "human_notsure_rate": round(sum(v.result == "notsure" for v in people) / max(1, len(people)), 4),
        "mean_decision_ms": round(sum(v.decided_ms for _, v in verdicts) / len(verdicts)),
        "per_class": per_class,
    }


def run(samples: int = 400, seed: int = 1, console: Console | None = None, background: str = "low") -> dict[str, Any]:
    """Generate ``samples`` calls with ``seed`` and measure app_amd's stock settings and the Japanese set."""
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    started = time.perf_counter()
    if console is None:
        made = generate(samples, seed, background=background)
    else:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("synthesizing answers and greetings…", total=samples)
            made = generate(samples, seed, progress=lambda: bar.advance(task), background=background)
    generated = time.perf_counter()
    results = {name: measure(made, settings) for name, settings in
               (("stock", AmdSettings.stock()), ("japanese", AmdSettings.japanese()))}  # fmt: skip
    return {
        "samples": len(made),
        "seed": seed,
        "background": background,
        "classes": dict(Counter(s.kind for s in made)),
        "generate_s": round(generated - started, 2),
        "classify_s": round(time.perf_counter() - generated, 2),
        **results,
    }
