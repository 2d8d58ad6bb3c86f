"""Bencode, the encoding of rtpengine's "ng" control protocol (dictionaries over UDP).

Only what ng needs: dictionaries (keys sorted, as the format requires), lists, integers and byte
strings. ``encode`` takes ``str`` (UTF-8) or ``bytes``; ``decode`` returns ``str`` for strings
(UTF-8, undecodable bytes kept as surrogate escapes) so SDP and call-ids read naturally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Value = int | str | bytes | list["Value"] | dict[str, "Value"]


class BencodeError(ValueError):
    """Malformed bencoded data."""


def encode(value: object) -> bytes:
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: object, out: list[bytes]) -> None:
    if isinstance(value, bool):  # before int: bool is an int subclass
        _encode(int(value), out)
    elif isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, str):
        _encode(value.encode("utf-8", "surrogateescape"), out)
    elif isinstance(value, bytes | bytearray):
        out.append(b"%d:" % len(value))
        out.append(bytes(value))
    elif isinstance(value, Mapping):
        out.append(b"d")
        items = []
        for key, item in value.items():
            raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
            if not isinstance(raw, bytes):
                raise TypeError(f"bencode dictionary keys must be strings, not {type(key).__name__}")
            items.append((raw, item))
        for raw, item in sorted(items, key=lambda pair: pair[0]):
            _encode(raw, out)
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def decode(data: bytes) -> Value:
    value, end = _decode(data, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


def _decode(data: bytes, pos: int) -> tuple[Value, int]:
    if pos >= len(data):
        raise BencodeError("unexpected end of data")
    lead = data[pos : pos + 1]
    if lead == b"i":
        end = data.find(b"e", pos)
        if end < 0:
            raise BencodeError("unterminated integer")
        try:
            return int(data[pos + 1 : end]), end + 1
        except ValueError as exc:
            raise BencodeError(f"bad integer at offset {pos}") from exc
    if lead == b"l":
        items: list[Value] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        mapping: dict[str, Value] = {}
        pos += 1
        while data[pos : pos + 1] != b"e":
            key, pos = _decode(data, pos)
            if not isinstance(key, str):
                raise BencodeError(f"dictionary key is not a string at offset {pos}")
            mapping[key], pos = _decode(data, pos)
        return mapping, pos + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        if colon < 0:
            raise BencodeError("unterminated string length")
        try:
            length = int(data[pos:colon])
        except ValueError as exc:
            raise BencodeError(f"bad string length at offset {pos}") from exc
        start, end = colon + 1, colon + 1 + length
        if end > len(data):
            raise BencodeError("string runs past the end of data")
        return data[start:end].decode("utf-8", "surrogateescape"), end
    raise BencodeError(f"unexpected byte {lead!r} at offset {pos}")
