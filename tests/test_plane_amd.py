"""Answering-machine detection on rtpengine's media plane (``sip.plane_amd``), without SIP or rtpengine: the settings
an ``originate`` command carries, the ear that feeds the callee's RTP to the detector, the analysis's start, verdict
and guard against a stand-in for rtpengine, and the test callees' voices (``amd_voices``) classified as meant."""

from __future__ import annotations

import asyncio
import socket
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from amd_voices import machine_wav, person_samples
from kakehashi.campaigns.schemas import AmdSettings as CampaignAmd
from kakehashi.telephony.amd import (
    FRAME_SAMPLES,
    AmdDetector,
    AmdSettings,
    Verdict,
    classify_pcm,
    ulaw_decode,
    ulaw_encode,
)
from kakehashi.telephony.drivers.sip.ng import NgError
from kakehashi.telephony.drivers.sip.plane import Call
from kakehashi.telephony.drivers.sip.plane_amd import GUARD_GRACE_S, Ear, settings_of, start
from kakehashi.telephony.drivers.sip.plane_media import MediaCall

RATE = 8000


def rtp(payload: bytes, *, seq: int, payload_type: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq & 0xFFFF, seq * FRAME_SAMPLES, 0x1234) + payload


def packets(samples: np.ndarray) -> list[bytes]:
    """20 ms RTP packets of PCMU."""
    codes = ulaw_encode(samples)
    return [rtp(codes[i : i + FRAME_SAMPLES], seq=n) for n, i in enumerate(range(0, len(codes), FRAME_SAMPLES))]


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as audio:
        return np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2")


# -- settings ---------------------------------------------------------------------------------------------------
def test_the_settings_are_app_amds_defaults_or_the_campaigns_and_nothing_else() -> None:
    assert settings_of({}) == AmdSettings()
    campaign = CampaignAmd(enabled=True).detector()
    assert campaign is not None and settings_of(campaign) == AmdSettings.japanese()  # every field the schema sends
    with pytest.raises(ValueError, match="unknown AMD setting"):
        settings_of({"action": "drop"})
    with pytest.raises(ValueError, match="total_analysis_ms"):
        settings_of({"total_analysis_ms": 0})


# -- the ear ----------------------------------------------------------------------------------------------------
def test_the_ear_feeds_the_callees_pcmu_to_the_detector_and_reports_one_verdict() -> None:
    heard: list[Verdict] = []
    ear = Ear(AmdDetector(AmdSettings.japanese()), heard.append)
    t = np.arange(RATE // 2) / RATE
    said = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)  # half a second of voice, then waits
    for packet in packets(np.concatenate([said, np.zeros(3 * RATE, np.int16)])):
        ear.heard(packet)
        ear.heard(rtp(b"\x01\x00\x03\xa0", seq=0, payload_type=101))  # a key: not audio
    assert [v.result for v in heard] == ["human"]  # once, although audio kept coming
    assert heard[0].cause == "HUMAN" and ear.packets == heard[0].decided_ms // 20


def test_the_ear_hears_pcma_too() -> None:
    heard: list[Verdict] = []
    ear = Ear(AmdDetector(AmdSettings()), heard.append)
    for n in range(150):  # 3 s of A-law silence (0xD5): nobody speaks
        ear.heard(rtp(b"\xd5" * FRAME_SAMPLES, seq=n, payload_type=8))
    assert [(v.result, v.cause) for v in heard] == [("machine", "INITIALSILENCE")]


# -- the voices the real-SIP tests' phones play ----------------------------------------------------------------
@pytest.mark.parametrize("lost_s", [0.0, 0.1, 0.3])
def test_the_test_callees_voices_are_classified_as_meant_even_with_their_first_words_lost(
    tmp_path: Path, lost_s: float
) -> None:
    settings = AmdSettings.japanese()
    lost = int(lost_s * RATE)
    machine = ulaw_decode(ulaw_encode(wav_samples(machine_wav(tmp_path))[lost:]))
    person = ulaw_decode(ulaw_encode(person_samples(tmp_path)[lost:].astype(np.int16)))
    assert classify_pcm(machine, settings).result == "machine"
    verdict = classify_pcm(person, settings)
    assert verdict.result == "human"
    assert verdict.decided_ms < 3500  # before the person starts talking again (greeting + 3 s of waiting)


# -- start, verdict, guard (a stand-in for rtpengine and the plane) ---------------------------------------------
SUBSCRIPTION_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
)


class FakeNg:
    address = ("127.0.0.1", 9)

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.answer_sdp = ""

    async def request(self, command: str, **params: Any) -> dict[str, Any]:
        self.sent.append((command, params))
        if self.refuse:
            raise NgError("rtpengine subscribe request: Unknown call-ID")
        if command == "subscribe request":
            return {"result": "ok", "sdp": SUBSCRIPTION_OFFER}
        self.answer_sdp = params.get("sdp", "")
        return {"result": "ok"}

    async def send(self, command: str, **params: Any) -> dict[str, Any]:
        self.sent.append((command, params))
        return {"result": "ok"}


class FakePlane:
    media_up = True

    def __init__(self, ng: FakeNg) -> None:
        self.ng = ng
        self.answers: list[dict[str, Any]] = []
        self.reported = asyncio.Event()

    def spawn(self, coro: Any) -> None:
        asyncio.get_running_loop().create_task(coro)

    async def report_answer(self, call: Call, **verdict: Any) -> None:
        self.answers.append({"ref": call.ref, **verdict})
        self.reported.set()


def _call(ng: FakeNg) -> Call:
    return Call(ref="sipo-1", inbound=False, media=MediaCall(ng, "kk-sipo-1", customer_tag="c-1", cti_tag="t-1"))  # type: ignore[arg-type]


async def _analyse(plane: FakePlane, settings: AmdSettings, audio: np.ndarray | None) -> Call:
    call = _call(plane.ng)
    async with call.lock:
        await start(plane, call, settings)  # type: ignore[arg-type]
    if audio is not None:
        port = int(plane.ng.answer_sdp.split("m=audio ")[1].split()[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
            for packet in packets(audio):
                phone.sendto(packet, ("127.0.0.1", port))
                await asyncio.sleep(0.001)
    await asyncio.wait_for(plane.reported.wait(), 30)
    await asyncio.sleep(0.05)  # the unsubscribe after the report
    return call


def test_the_callee_is_heard_on_a_subscription_to_their_side_only_and_unsubscribed_once_decided() -> None:
    ng = FakeNg()
    plane = FakePlane(ng)
    greeting = (8000 * np.sin(2 * np.pi * 300 * np.arange(3 * RATE) / RATE)).astype(np.int16)
    call = asyncio.run(_analyse(plane, AmdSettings.japanese(), greeting))
    assert plane.answers == [{"ref": "sipo-1", "amd": "machine", "amd_cause": "LONGGREETING", "amd_ms": 1500}]
    commands = [(command, params.get("from_tags"), params.get("to_tag")) for command, params in ng.sent]
    tag = commands[0][2]
    assert commands == [("subscribe request", ["c-1"], tag), ("subscribe answer", None, tag),
                        ("unsubscribe", None, tag)]  # fmt: skip
    assert "a=recvonly" in ng.answer_sdp and call.detection is None


def test_audio_that_never_comes_is_notsure_when_the_analysis_time_is_over() -> None:
    plane = FakePlane(FakeNg())
    loop_time: list[float] = []

    async def timed() -> None:
        begun = asyncio.get_running_loop().time()
        await _analyse(plane, AmdSettings(total_analysis_ms=1000), None)
        loop_time.append(asyncio.get_running_loop().time() - begun)

    asyncio.run(timed())
    assert [(a["amd"], a["amd_cause"], a["amd_ms"]) for a in plane.answers] == [("notsure", "NOAUDIODATA", 0)]
    assert 1.0 + GUARD_GRACE_S <= loop_time[0] < 1.0 + GUARD_GRACE_S + 1.0


def test_a_subscription_rtpengine_refuses_is_notsure_at_once_and_the_answer_still_reported() -> None:
    plane = FakePlane(FakeNg(refuse=True))
    asyncio.run(_analyse(plane, AmdSettings(), None))
    assert [(a["amd"], a["amd_cause"]) for a in plane.answers] == [("notsure", "NOAUDIODATA")]


def test_a_callee_who_hangs_up_while_the_detector_listens_is_still_reported_as_answered() -> None:
    """Not a failed line: a person (or a machine) picked up; ``notsure``, cause ``HANGUP``, so the dialer counts
    them, abandoned if nobody was free in time (the plane's ``_end`` calls ``hung_up``)."""
    from kakehashi.telephony.drivers.sip.plane_amd import hung_up

    plane = FakePlane(FakeNg())

    async def answer_then_hang_up() -> Call:
        call = _call(plane.ng)
        async with call.lock:
            await start(plane, call, AmdSettings())  # type: ignore[arg-type]
        async with call.lock:
            call.done = True
            await hung_up(plane, call)  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        return call

    call = asyncio.run(answer_then_hang_up())
    assert [(a["amd"], a["amd_cause"]) for a in plane.answers] == [("notsure", "HANGUP")]
    assert call.detection is None
    assert [command for command, _ in plane.ng.sent] == ["subscribe request", "subscribe answer"]  # no unsubscribe
