"""A call's recording from rtpengine's pcap (``--recording-method=pcap``) to a two-channel WAV.

rtpengine writes every RTP packet it receives for the call (each party's packets as they arrive, not its own
prompts and music). The WAV puts what the customer said on the left channel and what the CTI side said (the
agents, one after the other) on the right, each packet at its place in time
(its RTP timestamp from the first packet of its stream, anchored at that packet's capture time), so gaps stay
gaps and the two channels stay aligned: the speech work (who said what) needs the sides apart.
G.711 μ-law and A-law are decoded; other payloads (DTMF events, comfort noise) are skipped.
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 8000
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}  # fmt: skip
_LINK_OFFSETS = {1: 14, 101: 0, 12: 0, 228: 0, 113: 16}  # Ethernet, raw IP (three codes), Linux cooked
MAX_SECONDS = 4 * 3600  # a longer span is a clock jump, not a call


def _ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


DECODERS = {0: _ulaw_table(), 8: _alaw_table()}


@dataclass(frozen=True)
class RtpPacket:
    time: float  # capture time, seconds
    source: tuple[str, int]
    destination: tuple[str, int]
    ssrc: int
    timestamp: int
    payload_type: int
    payload: bytes


def read_pcap(path: Path) -> Iterator[RtpPacket]:
    """The RTP packets of a pcap file (IPv4/UDP; anything else is skipped)."""
    data = path.read_bytes()
    if len(data) < 24 or data[:4] not in _PCAP_MAGIC:
        raise ValueError(f"{path}: not a pcap file")
    order, unit = _PCAP_MAGIC[data[:4]]
    link = struct.unpack_from(order + "I", data, 20)[0]
    offset = _LINK_OFFSETS.get(link)
    if offset is None:
        raise ValueError(f"{path}: link type {link} is not read here")
    pos = 24
    while pos + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack_from(order + "IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + captured]
        pos += 16 + captured
        packet = _rtp(frame[offset:], seconds + fraction * unit)
        if packet is not None:
            yield packet


def _rtp(ip: bytes, when: float) -> RtpPacket | None:
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    header = (ip[0] & 0x0F) * 4
    src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
    sport, dport, length = struct.unpack_from("!HHH", ip, header)
    rtp = ip[header + 8 : header + length]
    if len(rtp) < 12 or rtp[0] >> 6 != 2:
        return None
    skip = 12 + 4 * (rtp[0] & 0x0F)
    if rtp[0] & 0x10 and len(rtp) >= skip + 4:  # header extension
        skip += 4 + 4 * struct.unpack_from("!H", rtp, skip + 2)[0]
    payload = rtp[skip:]
    if rtp[0] & 0x20 and payload:  # padding
        payload = payload[: -payload[-1]]
    timestamp, ssrc = struct.unpack_from("!II", rtp, 4)
    return RtpPacket(when, (src, sport), (dst, dport), ssrc, timestamp, rtp[1] & 0x7F, payload)


@dataclass
class _Stream:
    anchor_time: float
    anchor_ts: int
    chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)


def to_wav(pcaps: list[Path], destination: Path, customer: tuple[str, int] | None) -> float:
    """Write the two-channel WAV of a call's pcap files (several when recording was paused); its length in
    seconds. ``customer`` is the customer's RTP address (from their SDP): packets from it are the left channel,
    every other audio packet the right. Without it, the first stream's source is taken for the customer."""
    packets = [p for path in pcaps for p in read_pcap(path) if p.payload_type in DECODERS]
    if not packets:
        _write(destination, np.zeros((0, 2), dtype=np.int16))
        return 0.0
    packets.sort(key=lambda p: p.time)
    start = packets[0].time
    left_source = customer or packets[0].source
    streams: dict[tuple[int, int, tuple[str, int]], _Stream] = {}
    for p in packets:
        channel = 0 if p.source == left_source else 1
        key = (channel, p.ssrc, p.source)
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = _Stream(p.time, p.timestamp)
        at = round((stream.anchor_time - start) * RATE) + ((p.timestamp - stream.anchor_ts) & 0xFFFFFFFF)
        if at < 0 or at > MAX_SECONDS * RATE:
            continue
        stream.chunks.append((at, DECODERS[p.payload_type][np.frombuffer(p.payload, dtype=np.uint8)]))
    length = max(at + len(chunk) for s in streams.values() for at, chunk in s.chunks) if streams else 0
    mix = np.zeros((length, 2), dtype=np.int32)
    for (channel, _, _), stream in streams.items():
        for at, chunk in stream.chunks:
            mix[at : at + len(chunk), channel] += chunk
    _write(destination, np.clip(mix, -32768, 32767).astype(np.int16))
    return length / RATE


def _write(destination: Path, frames: np.ndarray) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames.tobytes())
    partial.replace(destination)  # readers never see half a file
