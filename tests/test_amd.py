"""Answering-machine detection (issue 19): app_amd's state machine on synthetic frames, μ-law input, the settings'
checks, and ``kakehashi bench amd`` at a small size (its accuracy measured on synthetic Japanese speech)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from kakehashi.telephony.amd import (
    FRAME_SAMPLES,
    RATE,
    AmdDetector,
    AmdSettings,
    classify_pcm,
    ulaw_decode,
    ulaw_encode,
)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def word(ms: int, amplitude: float = 3000.0, freq_hz: float = 440.0) -> np.ndarray:
    """A tone standing for a word: its mean |sample| is ~0.64 × amplitude, far above the threshold of 256."""
    t = np.arange(RATE * ms // 1000) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def noise_burst(ms: int, rng: np.random.Generator, level: float = 2000.0) -> np.ndarray:
    return np.clip(rng.normal(0, level, RATE * ms // 1000), -32768, 32767).astype(np.int16)


def audio(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


def test_a_long_greeting_is_a_machine_once_its_voice_reaches_the_greeting_time() -> None:
    verdict = classify_pcm(audio(silence(500), word(3000)))
    assert (verdict.result, verdict.cause) == ("machine", "LONGGREETING")
    assert verdict.decided_ms == 500 + 1500 and verdict.detail == "LONGGREETING-1500-1500"


def test_a_short_word_then_silence_is_a_person_waiting_for_an_answer() -> None:
    rng = np.random.default_rng(1)
    verdict = classify_pcm(audio(silence(400), noise_burst(600, rng), silence(2000)))
    assert (verdict.result, verdict.cause) == ("human", "HUMAN")
    assert verdict.decided_ms == 400 + 600 + 800  # app_amd's after-greeting silence
    assert verdict.detail == "HUMAN-800-800"


def test_silence_from_the_answer_on_is_a_machine_after_the_initial_silence() -> None:
    verdict = classify_pcm(silence(4000))
    assert (verdict.result, verdict.cause, verdict.decided_ms) == ("machine", "INITIALSILENCE", 2500)


def test_a_blip_shorter_than_a_word_does_not_end_the_initial_silence() -> None:
    # 60 ms of voice (< min_word_length 100 ms) restarts the run of silence but not the greeting.
    verdict = classify_pcm(audio(silence(1000), word(60), silence(3000)))
    assert (verdict.result, verdict.cause) == ("machine", "INITIALSILENCE")
    assert verdict.decided_ms == 1000 + 60 + 2500  # the run of silence starts again after the blip


def test_more_words_than_the_maximum_is_a_machine() -> None:
    words = [part for _ in range(4) for part in (word(200), silence(150))]
    verdict = classify_pcm(audio(silence(300), *words, silence(2000)))
    assert (verdict.result, verdict.cause) == ("machine", "MAXWORDS")
    # The first word is counted when 100 ms of it were heard; the third one (more than 2) decides.
    assert verdict.decided_ms == 300 + 2 * 350 + 100 and verdict.detail == "MAXWORDS-3-2"


def test_voice_at_the_very_start_is_not_counted_as_a_word_as_in_app_amd() -> None:
    # The state starts "in a word": the first word, heard from the first frame, is not counted; three more are.
    words = [part for _ in range(3) for part in (silence(150), word(200))]
    verdict = classify_pcm(audio(word(200), *words, silence(2000)))
    assert verdict.cause == "MAXWORDS" and verdict.detail == "MAXWORDS-3-2"


def test_one_word_longer_than_the_maximum_word_length_is_a_machine() -> None:
    settings = AmdSettings(greeting_ms=4000, maximum_word_length_ms=1000)
    verdict = classify_pcm(audio(silence(200), word(3000)), settings)
    assert (verdict.result, verdict.cause, verdict.decided_ms) == ("machine", "MAXWORDLENGTH", 1200)


def test_no_decision_within_the_total_analysis_time_is_notsure() -> None:
    # Words of 80 ms (shorter than a word) with 60 ms pauses: never a greeting, never a long silence.
    chatter = [part for _ in range(60) for part in (word(80), silence(60))]
    verdict = classify_pcm(audio(silence(100), *chatter))
    assert (verdict.result, verdict.cause, verdict.decided_ms) == ("notsure", "TOOLONG", 5000)


def test_audio_that_ends_before_a_decision_is_notsure_hangup() -> None:
    detector = AmdDetector()
    assert detector.feed_pcm(silence(1000)) is None and detector.elapsed_ms == 1000
    verdict = detector.hang_up()
    assert (verdict.result, verdict.cause, verdict.decided_ms) == ("notsure", "HANGUP", 1000)


def test_comfort_noise_counts_as_silence() -> None:
    detector = AmdDetector()
    assert detector.feed_pcm(audio(silence(200), word(400))) is None
    assert detector.feed_comfort_noise(500) is None  # 500 ms of silence so far
    verdict = detector.feed_comfort_noise(300)
    assert verdict is not None and (verdict.result, verdict.cause, verdict.decided_ms) == ("human", "HUMAN", 1400)


def test_ulaw_payloads_in_any_chunking_give_the_same_verdict_as_linear_audio() -> None:
    rng = np.random.default_rng(7)
    pcm = audio(silence(300), noise_burst(500, rng), silence(1500))
    payload = ulaw_encode(pcm)
    assert len(payload) == pcm.size
    error = np.abs(ulaw_decode(payload).astype(int) - pcm.astype(int))
    assert (error <= np.abs(pcm.astype(int)) // 16 + 8).all()  # within half of μ-law's step
    expected = classify_pcm(pcm)
    detector = AmdDetector()
    chunks = [payload[i : i + 97] for i in range(0, len(payload), 97)]  # not whole 20 ms frames
    verdict = next((v for c in chunks if (v := detector.feed_ulaw(c)) is not None), None)
    assert verdict == expected and verdict.result == "human"
    assert detector.feed_ulaw(payload[:FRAME_SAMPLES]) is verdict  # later audio is ignored: the verdict stays


def test_ulaw_matches_g711_at_known_points() -> None:
    assert ulaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes([0xFF, 0x7F, 0x80, 0x00])
    assert ulaw_decode(bytes([0xFF, 0x80, 0x00])).tolist() == [0, 32124, -32124]
    codes = bytes(range(256))
    assert ulaw_encode(ulaw_decode(codes)).replace(b"\xff", b"\x7f") == codes.replace(b"\xff", b"\x7f")


def test_a_quiet_line_below_the_threshold_is_silence() -> None:
    quiet = word(4000, amplitude=300)  # mean |s| ≈ 190 < 256
    assert classify_pcm(quiet).cause == "INITIALSILENCE"
    assert classify_pcm(quiet, AmdSettings(silence_threshold=128)).cause == "LONGGREETING"


def test_the_stock_settings_are_app_amds_defaults() -> None:
    stock = AmdSettings.stock()
    assert stock == AmdSettings()
    assert stock.as_dict() == {
        "initial_silence_ms": 2500, "greeting_ms": 1500, "after_greeting_silence_ms": 800,
        "total_analysis_ms": 5000, "min_word_length_ms": 100, "between_words_silence_ms": 50,
        "maximum_number_of_words": 2, "silence_threshold": 256, "maximum_word_length_ms": 5000,
    }  # fmt: skip
    assert AmdSettings.japanese() != stock


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"initial_silence_ms": 0}, "initial_silence_ms must be 1..30000"),
        ({"greeting_ms": -5}, "greeting_ms must be"),
        ({"total_analysis_ms": 10}, "total_analysis_ms must be 20..30000"),
        ({"between_words_silence_ms": -1}, "between_words_silence_ms must be"),
        ({"maximum_number_of_words": 0}, "maximum_number_of_words must be 1..100"),
        ({"silence_threshold": 40000}, "silence_threshold must be 1..32767"),
        ({"min_word_length_ms": 300, "maximum_word_length_ms": 200}, "maximum_word_length_ms must be"),
    ],
)
def test_settings_out_of_range_are_refused(changes: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AmdSettings(**changes)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValueError, match=r"greeting_ms.*silence_threshold"):
        AmdSettings(greeting_ms=0, silence_threshold=0)


@pytest.mark.slow
def test_the_benchmark_at_a_small_size_measures_sane_accuracy_through_the_cli() -> None:
    from kakehashi.cli import app

    out = CliRunner().invoke(app, ["bench", "amd", "--samples", "40", "--seed", "7", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)  # JSON only: pyopenjtalk's import-time warning goes to stderr
    assert result["samples"] == 40 and result["classes"] == {"human": 16, "machine": 16, "silence": 4, "noise": 4}
    for name in ("stock", "japanese"):
        figures = result[name]
        assert set(figures["per_class"]) == {"human", "machine", "silence", "noise"}
        assert 0 < figures["mean_decision_ms"] <= 5000
        assert 0 <= figures["false_machine_rate"] < figures["false_machine_rate_upper95"] <= 1
    # Measured at this size and seed: stock 0.675 overall, 11 of 16 people taken for machines (MAXWORDS);
    # Japanese 0.975, none of 16, 16 of 16 machines. The bounds leave room for another pyopenjtalk's voice.
    tuned, stock = result["japanese"], result["stock"]
    assert tuned["accuracy"] >= 0.9 and tuned["false_machine_rate"] <= 1 / 16
    assert tuned["per_class"]["machine"]["accuracy"] >= 14 / 16
    assert stock["false_machine_rate"] >= 0.25  # app_amd's word count on Japanese: why the tuned set exists


def test_the_false_machine_bound_is_wilsons_upper_end() -> None:
    from kakehashi.bench.amd import wilson_upper

    assert wilson_upper(0, 160) == pytest.approx(0.0234, abs=1e-4)  # none of 160: still up to 2.3 %
    assert wilson_upper(5, 100) == pytest.approx(0.1118, abs=1e-4)
    assert wilson_upper(0, 0) == 1.0


def test_the_cli_refuses_an_unknown_background() -> None:
    from kakehashi.cli import app

    out = CliRunner().invoke(app, ["bench", "amd", "--samples", "4", "--background", "loud", "--json"])
    assert out.exit_code == 2 and "low, noisy" in out.output
