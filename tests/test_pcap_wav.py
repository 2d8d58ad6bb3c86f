"""rtpengine's pcap recordings to two-channel WAVs (``sip.pcap_wav``), on pcaps written here packet by packet in
rtpengine's raw format: what the customer said on the left, the CTI side on the right, each at its time."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from kakehashi.telephony.drivers.sip.pcap_wav import DECODERS, RATE, read_pcap, to_wav

CUSTOMER = ("127.0.0.1", 40000)
AGENT = ("127.0.0.1", 41000)
RELAY_C, RELAY_A = ("127.0.0.1", 30010), ("127.0.0.1", 30000)


def _ulaw_of(level: int) -> int:
    """The μ-law code whose decoded value is nearest ``level``."""
    return int(np.argmin(np.abs(DECODERS[0].astype(np.int32) - level)))


def _ip_udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    addr = b"".join(bytes(map(int, host.split("."))) for host in (src[0], dst[0]))
    return struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0) + addr + udp


def _rtp(seq: int, timestamp: int, ssrc: int, payload: bytes, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload


def _pcap(path: Path, packets: list[tuple[float, bytes]], link: int = 101) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link)]
    for when, frame in packets:
        out.append(struct.pack("<IIII", int(when), round((when % 1) * 1e6), len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def _stream(src: tuple[str, int], dst: tuple[str, int], *, start: float, frames: int, level: int, ssrc: int,
            ts0: int = 1000) -> list[tuple[float, bytes]]:  # fmt: skip
    code = bytes([_ulaw_of(level)]) * 160
    return [(start + i * 0.02, _ip_udp(src, dst, _rtp(i, ts0 + i * 160, ssrc, code))) for i in range(frames)]


def _channels(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)


def test_each_side_on_its_channel_at_its_time(tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    customer = _stream(CUSTOMER, RELAY_C, start=t0, frames=100, level=8000, ssrc=1)  # 0-2 s
    agent = _stream(AGENT, RELAY_A, start=t0 + 1.0, frames=50, level=-4000, ssrc=2)  # 1-2 s
    dtmf = [(t0 + 0.5, _ip_udp(CUSTOMER, RELAY_C, _rtp(500, 5000, 1, b"\x05\x80\x00\xa0", pt=101)))]
    pcap = _pcap(tmp_path / "call.pcap", sorted(customer + agent + dtmf))
    seconds = to_wav([pcap], tmp_path / "call.wav", CUSTOMER)
    assert seconds == pytest.approx(2.0, abs=0.03)
    frames = _channels(tmp_path / "call.wav")
    left, right = frames[:, 0], frames[:, 1]
    assert abs(int(np.median(left[: RATE * 2 - 200])) - 8000) < 300  # the customer all along
    assert not right[: RATE - 200].any()  # nobody on the CTI side for the first second …
    assert abs(int(np.median(right[RATE + 200 : 2 * RATE - 200])) + 4000) < 200  # … then the agent


def test_a_paused_recording_keeps_the_gap_and_a_second_file_continues_it(tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    first = _pcap(tmp_path / "a.pcap", _stream(CUSTOMER, RELAY_C, start=t0, frames=50, level=6000, ssrc=7))
    later = _stream(CUSTOMER, RELAY_C, start=t0 + 3.0, frames=50, level=6000, ssrc=7, ts0=1000 + 150 * 160)
    second = _pcap(tmp_path / "b.pcap", later)
    seconds = to_wav([first, second], tmp_path / "call.wav", CUSTOMER)
    assert seconds == pytest.approx(4.0, abs=0.03)
    left = _channels(tmp_path / "call.wav")[:, 0]
    assert left[: RATE - 100].all() and not left[RATE + 100 : 3 * RATE - 100].any() and left[3 * RATE + 100 :].all()


def test_without_the_customer_address_the_first_speaker_is_the_left_and_ethernet_frames_are_read(
    tmp_path: Path,
) -> None:
    t0 = 1_800_000_000.0
    ether = b"\x00" * 12 + b"\x08\x00"
    packets = [
        (when, ether + frame) for when, frame in _stream(AGENT, RELAY_A, start=t0, frames=10, level=3000, ssrc=3)
    ]
    packets += [(when, ether + frame) for when, frame in _stream(CUSTOMER, RELAY_C, start=t0 + 0.1, frames=10,
                                                                   level=-3000, ssrc=4)]  # fmt: skip
    pcap = _pcap(tmp_path / "eth.pcap", sorted(packets), link=1)
    assert len(list(read_pcap(pcap))) == 20
    to_wav([pcap], tmp_path / "eth.wav", None)
    frames = _channels(tmp_path / "eth.wav")
    assert frames[:100, 0].mean() > 2000 and frames[-100:, 1].mean() < -2000


def test_not_a_pcap_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"RIFF0000WAVEfmt ")
    with pytest.raises(ValueError, match="not a pcap"):
        list(read_pcap(bad))
