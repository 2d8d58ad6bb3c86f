"""Answering-machine detection (AMD) for outbound calls (issue 19): a person or a 留守番電話 on the line?

When a dialled number answers, the dialer must tell within a few seconds whether a person or an answering machine
(留守番電話, a carrier's voicemail greeting) picked up: a person gets an agent, a machine is hung up on (or left a
message). A person the detector takes for a machine is hung up on too — under Ofcom's rules such a call counts as
an **abandoned call**, so a dialer must know how often that happens (``kakehashi bench amd`` measures it).

This module is a pure classifier — 8 kHz audio in, a :class:`Verdict` out, no I/O, no clock — that follows the
state machine of Asterisk's ``app_amd`` (``apps/app_amd.c``, ``isAnsweringMachine()``, Asterisk master of
2026-08, commit f0c1c1a7; its energy test is ``__ast_dsp_silence_noise()`` in ``main/dsp.c``):

* Each 20 ms frame is *silence* when the mean of its samples' absolute values (16-bit linear) is below
  ``silence_threshold``, else *voice*. Consecutive silent frames add up to the current silence.
* **Initial silence.** Silence of ``initial_silence_ms`` before the first word → ``machine``, cause
  ``INITIALSILENCE`` (a machine that waits, or a line nobody speaks on).
* A word is ``min_word_length_ms`` of consecutive voice after at least ``between_words_silence_ms`` of silence
  (the state starts *in a word*, as app_amd's does: voice at the very start is not counted as a word). The first
  ``min_word_length_ms`` of voice starts the *greeting*.
* **Long greeting.** ``greeting_ms`` of voice in all (pauses not counted) once the greeting started →
  ``machine``, ``LONGGREETING``.
* **Too many words.** More than ``maximum_number_of_words`` words → ``machine``, ``MAXWORDS``.
* **Too long a word.** ``maximum_word_length_ms`` of voice without a pause → ``machine``, ``MAXWORDLENGTH``.
* **Human.** ``after_greeting_silence_ms`` of silence after the greeting started → ``human``, ``HUMAN``: a
  person says 「はい、もしもし」 and waits for an answer.
* **Too long.** ``total_analysis_ms`` of audio without a decision → ``notsure``, ``TOOLONG``.

The defaults are app_amd's (``amd.conf.sample``). ``maximum_number_of_words`` is 2 with app_amd's meaning since
Asterisk 14 ("more than 2 words → machine"): the same rule as the ``3`` (reached, not exceeded) of Asterisk 13 and
older (ASTERISK-25639, commit ca394161). :meth:`AmdSettings.japanese` is a set tuned on Japanese speech (the
figures of both sets: ``docs/benchmarks.md``, "Answering-machine detection").

Not taken from app_amd: its wall-clock guard (frames that stop coming: ``NOAUDIODATA``) — a driver that gets no
audio calls :meth:`AmdDetector.hang_up` or stops waiting itself; and ``HANGUP`` is reported as ``notsure`` with
cause ``HANGUP`` (:meth:`AmdDetector.hang_up`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 160 samples: one RTP packet of G.711 at 20 ms

Result = Literal["human", "machine", "notsure"]


def _ulaw_decode_table() -> np.ndarray:
    """G.711 μ-law code → 16-bit linear sample (ITU-T G.711; the table Asterisk's ``AST_MULAW`` reads)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


ULAW_DECODE = _ulaw_decode_table()
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def ulaw_decode(payload: bytes) -> np.ndarray:
    """μ-law bytes (an RTP payload of type 0) → int16 samples."""
    decoded: np.ndarray = ULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]
    return decoded


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples → μ-law bytes (G.711: bias 0x84, clipped at 32635)."""
    x = np.asarray(samples).astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7  # magnitude ≥ 0x84: exponent 0..7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes: np.ndarray = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return codes.tobytes()


@dataclass(frozen=True)
class AmdSettings:
    """app_amd's parameters (``amd.conf``), times in ms; ``silence_threshold`` on 16-bit samples (0–32767)."""

    initial_silence_ms: int = 2500
    greeting_ms: int = 1500
    after_greeting_silence_ms: int = 800
    total_analysis_ms: int = 5000
    min_word_length_ms: int = 100
    between_words_silence_ms: int = 50
    maximum_number_of_words: int = 2
    silence_threshold: int = 256
    maximum_word_length_ms: int = 5000

    def __post_init__(self) -> None:
        problems = []
        for name in ("initial_silence_ms", "greeting_ms", "after_greeting_silence_ms", "min_word_length_ms"):
            value = getattr(self, name)
            if not 1 <= value <= 30_000:
                problems.append(f"{name} must be 1..30000 ms, not {value}")
        if not 0 <= self.between_words_silence_ms <= 30_000:
            problems.append(f"between_words_silence_ms must be 0..30000 ms, not {self.between_words_silence_ms}")
        if not FRAME_MS <= self.total_analysis_ms <= 30_000:
            problems.append(f"total_analysis_ms must be {FRAME_MS}..30000 ms, not {self.total_analysis_ms}")
        if not 1 <= self.maximum_number_of_words <= 100:
            problems.append(f"maximum_number_of_words must be 1..100, not {self.maximum_number_of_words}")
        if not 1 <= self.silence_threshold <= 32767:
            problems.append(f"silence_threshold must be 1..32767, not {self.silence_threshold}")
        if not self.min_word_length_ms <= self.maximum_word_length_ms <= 30_000:
            problems.append(
                f"maximum_word_length_ms must be min_word_length_ms..30000 ms, not {self.maximum_word_length_ms}"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def stock(cls) -> AmdSettings:
        """Asterisk app_amd's defaults."""
        return cls()

    @classmethod
    def japanese(cls) -> AmdSettings:
        """app_amd's defaults with two changes, tuned for Japanese answers (``kakehashi bench amd``; chosen on
        the samples of seed 101, measured on other seeds — docs/benchmarks.md):

        * ``between_words_silence_ms`` 50 → 150: the short gaps inside Japanese words (a geminate, an unvoiced
          し, the pause of 「、」) split 「はい、もしもし」 into three or four energy "words", more than the two
          app_amd allows, so about half the people were taken for machines (``MAXWORDS``);
        * ``after_greeting_silence_ms`` 800 → 1000: a machine's greeting pauses between its sentences and
          before the beep for longer than 800 ms at times (taken for a person who stopped speaking); a person
          waits 200 ms longer for the agent.
        """
        return cls(between_words_silence_ms=150, after_greeting_silence_ms=1000)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """What the detector decided: ``result``, app_amd's ``cause`` (``AMDCAUSE`` without its figures; those are
    in ``detail``, as app_amd writes it: ``LONGGREETING-1500-1500``) and the audio it had heard (``decided_ms``)."""

    result: Result
    cause: str
    decided_ms: int
    detail: str = ""


class AmdDetector:
    """app_amd's state machine over 20 ms frames of 8 kHz audio (see the module's docstring).

    Feed the far end's audio from the moment the call was answered, in RTP payloads or any other chunks
    (:meth:`feed_ulaw`, :meth:`feed_pcm`; a partial frame is kept for the next call), until a feed returns a
    :class:`Verdict`; later audio is ignored and :attr:`verdict` keeps the decision.
    """

    _IN_WORD = 1
    _IN_SILENCE = 2

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        self.verdict: Verdict | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._in_initial_silence = True
        self._in_greeting = False
        self._voice_ms = 0
        self._silence_ms = 0
        self._total_ms = 0
        self._words = 0
        self._state = self._IN_WORD
        self._consecutive_voice_ms = 0
        self._dsp_silence_ms = 0  # the silence detector's run of silent frames (ast_dsp's totalsilence)
        self._dspsilence_ms = 0  # app_amd's dspsilence: the detector's run, or grown by comfort-noise frames

    @property
    def elapsed_ms(self) -> int:
        """Audio analysed so far."""
        return self._total_ms

    def feed_ulaw(self, payload: bytes) -> Verdict | None:
        """G.711 μ-law audio (RTP payload type 0)."""
        return self.feed_pcm(ulaw_decode(payload))

    def feed_pcm(self, samples: np.ndarray) -> Verdict | None:
        """16-bit linear samples at 8 kHz; analysed in whole 20 ms frames."""
        if self.verdict is not None:
            return self.verdict
        pcm = np.asarray(samples, dtype=np.int16).ravel()
        if self._pending.size:
            pcm = np.concatenate((self._pending, pcm))
        whole = pcm.size // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = pcm[whole:].copy()
        if not whole:
            return None
        frames = np.abs(pcm[:whole].astype(np.int32)).reshape(-1, FRAME_SAMPLES)
        energies = frames.sum(axis=1) // FRAME_SAMPLES  # __ast_dsp_silence_noise: the mean of |s|, an integer
        for energy in energies.tolist():
            verdict = self._frame(silent=energy < self.settings.silence_threshold)
            if verdict is not None:
                self.verdict = verdict
                self._pending = np.zeros(0, dtype=np.int16)
                return verdict
        return None

    def feed_comfort_noise(self, ms: int) -> Verdict | None:
        """A comfort-noise frame (RFC 3389) standing for ``ms`` of silence, as app_amd counts ``AST_FRAME_CNG``."""
        if self.verdict is not None:
            return self.verdict
        self.verdict = self._step(ms, cng=True)
        return self.verdict

    def hang_up(self) -> Verdict:
        """The far end hung up (or the audio stopped) before a decision: ``notsure``, cause ``HANGUP``."""
        if self.verdict is None:
            self.verdict = Verdict("notsure", "HANGUP", self._total_ms, "HANGUP")
        return self.verdict

    def _frame(self, *, silent: bool) -> Verdict | None:
        # ast_dsp_silence(): the run of consecutive silent frames, 0 after a voiced one.
        self._dsp_silence_ms = self._dsp_silence_ms + FRAME_MS if silent else 0
        return self._step(FRAME_MS, cng=False)

    def _step(self, frame_ms: int, *, cng: bool) -> Verdict | None:
        s = self.settings
        self._total_ms += frame_ms
        if self._total_ms >= s.total_analysis_ms:
            return Verdict("notsure", "TOOLONG", self._total_ms, f"TOOLONG-{self._total_ms}")
        if cng:
            self._dspsilence_ms += frame_ms
            silence = self._dspsilence_ms
        else:
            silence = self._dspsilence_ms = self._dsp_silence_ms
        if silence > 0:
            self._silence_ms = silence
            if self._silence_ms >= s.between_words_silence_ms:
                self._state = self._IN_SILENCE
                self._consecutive_voice_ms = 0
            if self._in_initial_silence and self._silence_ms >= s.initial_silence_ms:
                detail = f"INITIALSILENCE-{self._silence_ms}-{s.initial_silence_ms}"
                return Verdict("machine", "INITIALSILENCE", self._total_ms, detail)
            if self._in_greeting and self._silence_ms >= s.after_greeting_silence_ms:
                detail = f"HUMAN-{self._silence_ms}-{s.after_greeting_silence_ms}"
                return Verdict("human", "HUMAN", self._total_ms, detail)
            return None
        self._consecutive_voice_ms += frame_ms
        self._voice_ms += frame_ms
        if self._consecutive_voice_ms >= s.min_word_length_ms and self._state == self._IN_SILENCE:
            self._words += 1
            self._state = self._IN_WORD
        if self._consecutive_voice_ms >= s.maximum_word_length_ms:
            detail = f"MAXWORDLENGTH-{self._consecutive_voice_ms}"
            return Verdict("machine", "MAXWORDLENGTH", self._total_ms, detail)
        if self._words > s.maximum_number_of_words:
            detail = f"MAXWORDS-{self._words}-{s.maximum_number_of_words}"
            return Verdict("machine", "MAXWORDS", self._total_ms, detail)
        if self._in_greeting and self._voice_ms >= s.greeting_ms:
            detail = f"LONGGREETING-{self._voice_ms}-{s.greeting_ms}"
            return Verdict("machine", "LONGGREETING", self._total_ms, detail)
        if self._voice_ms >= s.min_word_length_ms:
            self._silence_ms = 0
        if self._consecutive_voice_ms >= s.min_word_length_ms and not self._in_greeting:
            self._in_initial_silence = False
            self._in_greeting = True
        return None


def classify_pcm(samples: np.ndarray, settings: AmdSettings | None = None) -> Verdict:
    """The verdict on a whole recording (from the answer on); ``notsure``/``HANGUP`` if it ends undecided."""
    detector = AmdDetector(settings)
    return detector.feed_pcm(samples) or detector.hang_up()
