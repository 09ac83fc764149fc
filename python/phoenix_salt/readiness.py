"""Whether this salt-master serves minions.

The engine registers its master as ``running`` (and so into the live list that minions
follow) only once the master's request server and publisher accept connections: a minion
sent to a master that is still starting would fail its authentication and wait out Salt's
retry delays. Salt starts engines beside those processes, not after them, so the engine
checks the two ports itself (:func:`wait_until_serving`).

A listening port says nothing about the workers behind it: ZeroMQ accepts and queues
requests while every MWorker is wedged (hung, deadlocked, stuck on a full disk), and the
engine, a process of its own, goes on beating. So before each heartbeat the engine sends the
request server a real request and wants the answer in time (:func:`answers_requests`):
Salt's clear ``ping`` command, which a worker answers by sending the load back (ClearFuncs
``ping``, in every Salt since 2016). It needs no credentials, writes nothing and fires no
event. A master that does not answer is not heartbeated, goes stale, leaves the live list and
is reported to AutoScaling by its peers (docs/masters.md).
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


def answers_requests(opts: Mapping[str, Any], timeout: float) -> str | None:
    """Sends salt-master's request server (``interface``, ``ret_port``) Salt's clear ``ping``
    and waits up to ``timeout`` seconds for a worker to send it back. None when it did,
    else why not."""
    import salt.channel.client

    host, port = master_endpoints(opts)[0]
    uri = f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
    # A token of this request: the answer must be this load, not any reply.
    load = {"cmd": "ping", "phoenix": f"liveness {time.monotonic_ns()}"}
    try:
        with salt.channel.client.ReqChannel.factory(
            dict(opts), crypt="clear", master_uri=uri
        ) as channel:
            answer = channel.send(load, tries=1, timeout=timeout)
    # A timeout, or a transport that failed: either way, no answer.
    except Exception as exc:
        return f"no answer within {timeout:g} s from {uri} ({type(exc).__name__}: {exc})"
    if not isinstance(answer, dict) or answer.get("phoenix") != load["phoenix"]:
        return f"{uri} answered {answer!r} instead of sending the ping back"
    return None


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
