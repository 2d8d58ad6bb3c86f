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
from dataclasses import dataclass
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


def _open(path: Path) -> tuple[bytes, str, float, int]:
    """A pcap file's bytes, byte order, time unit and the offset of the IP header in its frames."""
    data = path.read_bytes()
    if len(data) < 24 or data[:4] not in _PCAP_MAGIC:
        raise ValueError(f"{path}: not a pcap file")
    order, unit = _PCAP_MAGIC[data[:4]]
    link = struct.unpack_from(order + "I", data, 20)[0]
    offset = _LINK_OFFSETS.get(link)
    if offset is None:
        raise ValueError(f"{path}: link type {link} is not read here")
    return data, order, unit, offset


def read_pcap(path: Path) -> Iterator[RtpPacket]:
    """The RTP packets of a pcap file (IPv4/UDP; anything else is skipped)."""
    data, order, unit, offset = _open(path)
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
class _Columns:
    """A pcap's RTP packets as columns (one entry per packet), read without a Python turn per field."""

    time: np.ndarray  # float64, seconds
    source: np.ndarray  # int64: IPv4 address << 16 | port
    ssrc: np.ndarray  # int64
    timestamp: np.ndarray  # int64
    payload_type: np.ndarray  # int64
    start: np.ndarray  # int64: the payload's offset in ``data``
    length: np.ndarray  # int64: the payload's length
    data: np.ndarray  # the file's bytes (uint8)


def _columns(path: Path) -> _Columns:
    data, order, unit, link_offset = _open(path)
    heads, pos, captured_at = [], 24, struct.Struct(order + "I").unpack_from
    while pos + 16 <= len(data):  # only where each record starts: every field is read below, for all at once
        heads.append(pos)
        pos += 16 + captured_at(data, pos + 8)[0]
    buf = np.frombuffer(data, dtype=np.uint8)
    head = np.array(heads, dtype=np.int64)
    little = order == "<"

    def header(at: np.ndarray) -> np.ndarray:  # a 32-bit field of the record header, in the file's order
        value = np.zeros(len(at), dtype=np.int64)
        for k in range(4):
            value |= buf[at + k].astype(np.int64) << (8 * k if little else 8 * (3 - k))
        return value

    ip = head + 16 + link_offset
    end = np.minimum(head + 16 + header(head + 8), len(data))
    times = header(head) + header(head + 4) * unit
    ok = ip + 40 <= end  # room for IPv4, UDP and RTP headers

    def byte(at: np.ndarray) -> np.ndarray:
        return buf[np.where(ok, at, 0)].astype(np.int64)

    def word(at: np.ndarray, size: int) -> np.ndarray:
        value = np.zeros(len(at), dtype=np.int64)
        for k in range(size):
            value = value << 8 | byte(at + k)
        return value

    ok &= (byte(ip) >> 4 == 4) & (byte(ip + 9) == 17)
    udp = ip + (byte(ip) & 0x0F) * 4
    rtp = udp + 8
    ok &= (rtp + 12 <= end) & (byte(rtp) >> 6 == 2)
    first = byte(rtp)
    payload = rtp + 12 + 4 * (first & 0x0F)
    extended = ok & (first & 0x10 != 0) & (payload + 4 <= end)
    payload = np.where(extended, payload + 4 + 4 * word(payload + 2, 2), payload)
    stop = np.minimum(udp + word(udp + 4, 2), end)
    stop = np.where(ok & (first & 0x20 != 0) & (stop > payload), stop - byte(stop - 1), stop)
    ok &= stop > payload
    return _Columns(
        time=times[ok], source=(word(ip + 12, 4) << 16 | word(udp, 2))[ok], ssrc=word(rtp + 8, 4)[ok],
        timestamp=word(rtp + 4, 4)[ok], payload_type=(byte(rtp + 1) & 0x7F)[ok], start=payload[ok],
        length=(stop - payload)[ok], data=buf,
    )  # fmt: skip


def _address(host_port: tuple[str, int]) -> int:
    a, b, c, d = (int(part) for part in host_port[0].split("."))
    return (a << 24 | b << 16 | c << 8 | d) << 16 | host_port[1]


def to_wav(pcaps: list[Path], destination: Path, customer: tuple[str, int] | None) -> float:
    """Write the two-channel WAV of a call's pcap files (several when recording was paused); its length in
    seconds. ``customer`` is the customer's RTP address (from their SDP): packets from it are the left channel,
    every other audio packet the right. Without it, the first stream's source is taken for the customer.
    Vectorised (numpy): a 10-minute call's pcap is a few milliseconds of work, not a Python turn per packet."""
    audio = [c for c in (_columns(path) for path in pcaps) if len(c.time)]
    if not audio:
        _write(destination, np.zeros((0, 2), dtype=np.int16))
        return 0.0
    total = 0
    columns: dict[str, list[np.ndarray]] = {
        name: [] for name in ("time", "source", "ssrc", "timestamp", "payload_type", "start", "length")
    }
    datas = []
    for c in audio:  # one buffer for all files: payload offsets shifted by the files before
        for name in columns:
            value = getattr(c, name)
            columns[name].append(value + total if name == "start" else value)
        datas.append(c.data)
        total += len(c.data)
    col = {name: np.concatenate(values) for name, values in columns.items()}
    data = np.concatenate(datas)
    keep = (col["payload_type"] == 0) | (col["payload_type"] == 8)  # the decoders' payload types
    col = {name: value[keep] for name, value in col.items()}
    if len(audio) > 1 or np.any(np.diff(col["time"]) < 0):  # one file is in capture order already
        order = np.argsort(col["time"], kind="stable")
        col = {name: value[order] for name, value in col.items()}
    if not len(col["time"]):
        _write(destination, np.zeros((0, 2), dtype=np.int16))
        return 0.0
    left = _address(customer) if customer is not None else col["source"][0]
    channel = (col["source"] != left).astype(np.int64)
    # A stream is an SSRC from a source port (48 bits; two sources with the same SSRC and port do not happen).
    _, first, stream = np.unique(col["ssrc"] << 16 | (col["source"] & 0xFFFF), return_index=True, return_inverse=True)
    anchor_time, anchor_ts = col["time"][first][stream], col["timestamp"][first][stream]
    at = np.round((anchor_time - col["time"][0]) * RATE).astype(np.int64) + (
        (col["timestamp"] - anchor_ts) & 0xFFFFFFFF
    )
    placed = (at >= 0) & (at <= MAX_SECONDS * RATE)
    length = int((at + col["length"])[placed].max()) if placed.any() else 0
    # Each packet's samples land at their place; where two streams of a side overlap (a ring-all's early media,
    # a transfer's first packets) the later packet's samples win: a side has one speaker at a time.
    frames = np.zeros((length, 2), dtype=np.int16)
    for size in np.unique(col["length"][placed]):
        for pt, table in DECODERS.items():
            rows = placed & (col["length"] == size) & (col["payload_type"] == pt)
            if rows.any():
                span = np.arange(size)
                frames[at[rows][:, None] + span, channel[rows][:, None]] = table[
                    data[col["start"][rows][:, None] + span]
                ]
    _write(destination, frames)
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
