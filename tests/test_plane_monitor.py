"""The silent monitor's mixer on rtpengine's media plane (``sip.plane_monitor``): G.711 μ-law both ways, the mix of
the two sides a supervisor hears, the RTP it reads and the SDP it answers with. No SIP, no rtpengine."""

from __future__ import annotations

import asyncio
import struct
import warnings

import numpy as np
import pytest

from kakehashi.telephony.drivers.sip.pcap_wav import DECODERS
from kakehashi.telephony.drivers.sip.plane_monitor import (
    FRAME,
    KEEP,
    MIX,
    SILENCE,
    ULAW_DECODE,
    Mixer,
    Stream,
    mix,
    mix_all,
    mixer_offer,
    rtp_payload,
    subscription_answer,
    ulaw_encode,
)

RATE = 8000
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32)


def tone(hz: float, amplitude: float, n: int = RATE) -> np.ndarray:
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * hz * np.arange(n) / RATE)).astype(np.int32)


def level(samples: np.ndarray, hz: float) -> float:
    """The amplitude (full scale 1) of ``hz`` in ``samples``."""
    n = len(samples)
    probe = np.hanning(n) * np.exp(-2j * np.pi * hz * np.arange(n) / RATE)
    return float(4 * np.abs((samples / 32768.0) @ probe) / n)


def rtp(payload: bytes, *, payload_type: int = 0, seq: int = 1, csrcs: int = 0, extension: bytes = b"",
        padding: int = 0) -> bytes:  # fmt: skip
    first = 0x80 | csrcs | (0x10 if extension else 0) | (0x20 if padding else 0)
    header = struct.pack("!BBHII", first, payload_type, seq, seq * FRAME, 0x1234) + b"\0\0\0\1" * csrcs
    if extension:
        header += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    return header + payload + (b"\0" * (padding - 1) + bytes([padding]) if padding else b"")


# -- G.711 ------------------------------------------------------------------------------------------------------
def test_every_mu_law_code_decodes_and_encodes_back_to_itself() -> None:
    codes = np.arange(256)
    back = ulaw_encode(ULAW_DECODE)
    assert back.dtype == np.uint8
    assert list(np.nonzero(back != codes)[0]) == [0x7F]  # "negative zero": encodes as 0xFF, the same silence
    assert ULAW_DECODE[0x7F] == ULAW_DECODE[0xFF] == 0


def test_the_encoder_is_g711s_every_sample_within_half_a_step() -> None:
    codes = ulaw_encode(ALL_SAMPLES)
    error = np.abs(ULAW_DECODE[codes].astype(np.int32) - ALL_SAMPLES)
    inside = np.abs(ALL_SAMPLES) <= 32124  # the loudest code; beyond it, clipped
    # μ-law's step doubles with each segment: 8 near zero, 1024 at the top; an encoder rounds to the nearest
    assert np.all(error[inside] <= np.maximum(8, np.abs(ALL_SAMPLES[inside]) // 16 + 8))
    assert ulaw_encode(np.array([0]))[0] == 0xFF and ulaw_encode(np.array([32767]))[0] == 0x80
    assert ulaw_encode(np.array([-32768]))[0] == 0x00
    # monotone: a louder sample never gets a quieter code
    assert np.all(np.diff(ULAW_DECODE[codes].astype(np.int32)) >= 0)


def test_the_encoder_matches_cpythons_audioop_where_it_still_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # gone in Python 3.13
    samples = ALL_SAMPLES.astype(np.int16)
    theirs = np.frombuffer(audioop.lin2ulaw(samples.tobytes(), 2), dtype=np.uint8)
    assert np.array_equal(ulaw_encode(samples), theirs)


# -- the mix ----------------------------------------------------------------------------------------------------
def test_the_mix_is_the_clipped_sum_of_the_two_sides() -> None:
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    total = np.clip(ULAW_DECODE[a].astype(np.int32) + ULAW_DECODE[b], -32768, 32767)
    assert np.array_equal(MIX.reshape(256, 256), ulaw_encode(total))
    loud = ulaw_encode(np.full(FRAME, 30000))
    assert mix(loud.tobytes(), loud.tobytes()) == bytes([0x80]) * FRAME  # clipped at the top, not wrapped
    quiet = ulaw_encode(tone(300, 0.2, FRAME)).tobytes()
    assert mix(quiet, SILENCE) == quiet  # silence adds nothing


def test_a_listener_hears_both_tones_of_the_mix_at_their_own_level() -> None:
    caller, agent = ulaw_encode(tone(440, 0.5)).tobytes(), ulaw_encode(tone(660, 0.5)).tobytes()
    heard = ULAW_DECODE[np.frombuffer(mix(caller, agent), dtype=np.uint8)].astype(np.int32)
    assert level(heard, 440) == pytest.approx(0.5, abs=0.03)
    assert level(heard, 660) == pytest.approx(0.5, abs=0.03)
    assert level(heard, 880) < 0.02  # nothing else (the supervisor's tone, say)


def test_a_consultation_is_heard_too_three_voices_and_more() -> None:
    caller, agent, colleague = (ulaw_encode(tone(hz, 0.3, FRAME * 10)).tobytes() for hz in (440, 660, 1000))
    heard = ULAW_DECODE[np.frombuffer(mix_all([caller, agent, colleague]), dtype=np.uint8)].astype(np.int32)
    for hz in (440, 660, 1000):
        assert level(heard, hz) == pytest.approx(0.3, abs=0.03)
    assert mix_all([caller]) == caller and mix_all([caller, agent]) == mix(caller, agent)


# -- RTP in, RTP out ------------------------------------------------------------------------------------------------
def test_rtp_payloads_skip_csrcs_extensions_and_padding() -> None:
    payload = bytes(range(FRAME))
    assert rtp_payload(rtp(payload)) == (0, payload)
    assert rtp_payload(rtp(payload, csrcs=2, extension=b"\1\2\3\4", padding=3, payload_type=8)) == (8, payload)
    assert rtp_payload(b"\x80\x00") is None  # too short
    assert rtp_payload(b"\x00" * 20) is None  # not RTP version 2


def two_sided() -> Mixer:
    mixer = Mixer("127.0.0.1")
    mixer.streams = [Stream(), Stream()]  # no sockets: what they hear is handed over
    return mixer


def test_the_mixer_sums_what_each_side_sent_and_fills_gaps_with_silence() -> None:
    mixer = two_sided()
    caller = ulaw_encode(tone(440, 0.5, 4 * FRAME)).tobytes()
    agent = ulaw_encode(tone(660, 0.5, 4 * FRAME)).tobytes()
    assert mixer.frame() == SILENCE  # nobody yet
    for n in range(2):  # 40 ms each: a side is heard once that much waits
        mixer.streams[0].heard(rtp(caller[n * FRAME : (n + 1) * FRAME], seq=n))
        mixer.streams[1].heard(rtp(agent[n * FRAME : (n + 1) * FRAME], seq=n))
    mixer.streams[1].heard(rtp(b"\x0a\x00\x03\xa0", payload_type=101))  # a key on the agent's side: not audio
    assert mixer.frame() == mix(caller[:FRAME], agent[:FRAME])
    mixer.streams[0].heard(rtp(caller[2 * FRAME : 3 * FRAME], seq=2))  # the agent's next packet is late
    assert mixer.frame() == mix(caller[FRAME : 2 * FRAME], agent[FRAME : 2 * FRAME])
    assert mixer.frame() == caller[2 * FRAME : 3 * FRAME]  # the caller alone for those 20 ms
    assert mixer.frame() == SILENCE  # both dry


def test_the_mixer_hears_a_side_on_a_law_as_mu_law() -> None:
    mixer = two_sided()
    samples = tone(500, 0.3, 2 * FRAME)
    alaw_codes = np.argmin(np.abs(DECODERS[8][None, :].astype(np.int32) - samples[:, None]), axis=1)
    mixer.streams[1].heard(rtp(alaw_codes.astype(np.uint8).tobytes(), payload_type=8))
    heard = ULAW_DECODE[np.frombuffer(mixer.frame(), dtype=np.uint8)].astype(np.int32)
    assert np.max(np.abs(heard - samples[:FRAME])) < 600  # two quantisations, no more


def test_the_mixer_keeps_at_most_sixty_milliseconds_per_side() -> None:
    mixer = two_sided()
    for n in range(10):
        mixer.streams[0].heard(rtp(bytes([n]) * FRAME, seq=n))
    assert len(mixer.streams[0].waiting) == KEEP
    assert mixer.frame() == bytes([7]) * FRAME  # the oldest were dropped: latency stays small


def test_the_mixer_sends_one_pcmu_stream_every_twenty_milliseconds() -> None:
    got = asyncio.run(_listen_to_a_mixer(10))
    headers = [struct.unpack("!BBHII", packet[:12]) for packet in got]
    assert all(len(packet) == 12 + FRAME for packet in got)
    assert headers[0][1] == 0x80 and all(h[1] == 0 for h in headers[1:])  # PCMU, the marker on the first only
    assert len({h[4] for h in headers}) == 1  # one SSRC
    assert [(h[2] - headers[0][2]) & 0xFFFF for h in headers] == list(range(10))
    assert [(h[3] - headers[0][3]) & 0xFFFFFFFF for h in headers] == [FRAME * i for i in range(10)]
    assert got[0][12:] == SILENCE


async def _listen_to_a_mixer(packets: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    done = asyncio.Event()

    class Phone(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            got.append(data)
            if len(got) >= packets:
                done.set()

    phone, _ = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
    mixer = Mixer("127.0.0.1")
    await mixer.open()
    try:
        ports = [stream.port for stream in await mixer.listen(2)]
        assert len({*ports, mixer.mouth_port}) == 3 and 0 not in ports
        mixer.start(phone.get_extra_info("sockname"))
        await asyncio.wait_for(done.wait(), 30)  # generous: the machine may be busy
    finally:
        mixer.close()
        phone.close()
    return got[:packets]


# -- SDP ----------------------------------------------------------------------------------------------------------
def test_the_subscription_is_answered_on_the_mixers_two_ports_with_every_offered_format() -> None:
    offer = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40554 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\na=sendonly\r\na=rtcp:40555\r\n"
        "m=audio 40574 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=sendonly\r\na=rtcp:40575\r\n"
    )
    answer = subscription_answer(offer, "127.0.0.1", [5000, 5002])
    sections = answer.split("m=audio ")[1:]
    assert [s.splitlines()[0] for s in sections] == ["5000 RTP/AVP 0 101", "5002 RTP/AVP 8 101"]
    assert "a=fmtp:101 0-16" in sections[0] and "a=rtpmap:8 PCMA/8000" in sections[1]
    assert all("a=recvonly" in s and "rtcp" not in s for s in sections)
    assert "c=IN IP4 127.0.0.1" in answer and answer.endswith("\r\n")


def test_the_mixer_offers_pcmu_sendrecv_a_phone_plays() -> None:
    offer = mixer_offer("127.0.0.1", 6000)
    assert "m=audio 6000 RTP/AVP 0\r\n" in offer and "a=sendrecv" in offer  # sendonly: a hold to phones
