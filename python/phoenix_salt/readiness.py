"""Whether this salt-master can serve minions yet.

The engine registers its master as ``running`` (and so into the live list that minions
follow) only once the master's request server and publisher accept connections: a minion
sent to a master that is still starting would fail its authentication and wait out Salt's
retry delays. Salt starts engines beside those processes, not after them, so the engine
checks the two ports itself. A listening port is what can be checked without credentials;
ZeroMQ queues a request that arrives before a worker is ready, so it is enough.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 1.0
POLL_SECONDS = 0.5
# Say it again this often while a master does not listen.
REPEAT_SECONDS = 60.0


def master_endpoints(opts: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The (address, port) pairs minions connect to: ``interface`` (loopback when it is a
    wildcard) with ``ret_port`` and ``publish_port``."""
    interface = str(opts.get("interface") or "0.0.0.0")  # noqa: S104 - Salt's default
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(interface, interface)  # noqa: S104
    return [(host, int(opts.get("ret_port", 4506))), (host, int(opts.get("publish_port", 4505)))]


def listening(address: str, port: int, timeout: float = CONNECT_TIMEOUT_SECONDS) -> bool:
    """Whether something accepts TCP connections on ``address:port``."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_serving(opts: Mapping[str, Any], stopping: threading.Event) -> bool:
    """Waits until every endpoint of :func:`master_endpoints` accepts connections; False
    when ``stopping`` was set first."""
    endpoints = master_endpoints(opts)
    said = 0.0
    while not stopping.is_set():
        closed = [f"{a}:{p}" for a, p in endpoints if not listening(a, p)]
        if not closed:
            return True
        if time.monotonic() - said >= REPEAT_SECONDS:
            log.info(
                "phoenix: waiting for salt-master to listen on %s before registering this "
                "master as running",
                ", ".join(closed),
            )
            said = time.monotonic()
        stopping.wait(POLL_SECONDS)
    return False
