"""Ports for the lab on 127.0.0.1: blocks reserved free for TCP and UDP, spread at random so concurrent runs rarely
try the same block."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

from kakehashi.telephony.drivers.sip.lab.processes import LOOPBACK, LabError

#: so an outgoing connection elsewhere on the machine does not take a port between check and use.
CONTROL_PORTS = range(20000, 32000)
#: rtpengine's media port ranges (one block per stack).
MEDIA_PORTS = range(10000, 20000)


_port_lock = threading.Lock()
_reserved: set[int] = set()


def _ports_in_use() -> set[int]:
    """Local ports bound on this machine (this network namespace), TCP and UDP, v4 and v6."""
    used: set[int] = set()
    for name in ("udp", "udp6", "tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 1 and ":" in parts[1]:
                used.add(int(parts[1].rsplit(":", 1)[1], 16))
    return used


def _can_bind(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def reserve_ports(count: int, *, span: range = CONTROL_PORTS, align: int = 2, attempts: int = 200) -> int:
    """Reserve ``count`` consecutive ports free for TCP and UDP on 127.0.0.1; return the first.

    Reserved ports are not handed out again by this process until ``release_ports``. The base is
    random (aligned), so concurrent test runs on one machine rarely even try the same block.
    """
    bases = range(span.start - span.start % align + align, span.stop - count, align)
    if not bases:
        raise LabError(f"no room for {count} ports in {span}")
    with _port_lock:
        for _ in range(attempts):
            base = random.choice(bases)  # noqa: S311 - port spreading, not a secret
            block = range(base, base + count)
            if _reserved.intersection(block) or _ports_in_use().intersection(block):
                continue
            if count <= 32 and not all(_can_bind(port) for port in block):
                continue
            _reserved.update(block)
            return base
    raise LabError(f"found no {count} free consecutive ports in {span.start}-{span.stop - 1}")


def release_ports(base: int, count: int) -> None:
    with _port_lock:
        _reserved.difference_update(range(base, base + count))
