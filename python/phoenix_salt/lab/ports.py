"""Free TCP ports on loopback addresses."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from phoenix_salt.readiness import listening

# Ports handed out in this process: a port the kernel just gave us stays free until a
# daemon binds it, so never hand the same one out twice.
_GIVEN: set[int] = set()


def free_port(hosts: Iterable[str] = ("127.0.0.1",)) -> int:
    """A port that is free on every one of ``hosts`` right now."""
    hosts = list(hosts)
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        if port in _GIVEN:
            continue
        if all(_bindable(host, port) for host in hosts[1:]):
            _GIVEN.add(port)
            return port
    raise RuntimeError(f"no TCP port is free on all of {hosts}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    return listening(host, port, timeout)
