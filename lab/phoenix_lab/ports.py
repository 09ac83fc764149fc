"""Free TCP ports on loopback addresses, for the lab's listeners.

The ports come from below the kernel's ephemeral range (``ip_local_port_range``), never
from it. A port the kernel gives a ``bind(0)`` probe is an ephemeral port, and between the
probe and the daemon's own bind (seconds: the emulator, the stack, the daemon's start)
any outgoing connection on the machine may take it as its local port: a salt-master then
fails with "Unable to bind socket 127.0.0.1:<port>, error: [Errno 98] Address already in
use" and the test waits out its timeout. Outgoing connections never get a port below the
range, so a port checked free there stays free until the daemon binds it.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterable
from pathlib import Path

from phoenix_salt.readiness import listening

# Linux's default ephemeral range starts at 32768; below 10000 live well-known services.
_LOWEST = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")

# Ports handed out in this process: a port stays free until a daemon binds it, so never
# hand the same one out twice.
_GIVEN: set[int] = set()


def free_port(hosts: Iterable[str] = ("127.0.0.1",)) -> int:
    """A port that is free on every one of ``hosts`` right now and that no outgoing
    connection will take before a listener binds it."""
    hosts = list(hosts)
    first, last = _listener_range()
    # A random start keeps two lab processes (a test and the demo it runs) apart.
    span = last - first + 1
    start = secrets.randbelow(span)
    for step in range(span):
        port = first + (start + step) % span
        if port in _GIVEN:
            continue
        if all(_bindable(host, port) for host in hosts):
            _GIVEN.add(port)
            return port
    raise RuntimeError(f"no TCP port in {first}-{last} is free on all of {hosts}")


def _listener_range() -> tuple[int, int]:
    """The ports below the ephemeral range (or, on a machine whose range starts low, the
    ports above it)."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 1 - _LOWEST >= 1000:
        return _LOWEST, low - 1
    if 65535 - high >= 1000:
        return high + 1, 65535
    raise RuntimeError(
        f"the ephemeral port range {low}-{high} leaves no room for the lab's listeners; "
        f"narrow it in {_EPHEMERAL_RANGE}"
    )


def _bindable(host: str, port: int) -> bool:
    # Without SO_REUSEADDR: a port that still has a connection in TIME_WAIT is skipped,
    # so a listener that binds without that option gets it too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    return listening(host, port, timeout)
