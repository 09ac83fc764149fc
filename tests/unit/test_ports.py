"""The lab's listening ports stay out of the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from phoenix_lab import ports
from phoenix_lab.ports import free_port


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_a_listening_port_is_never_one_an_outgoing_connection_could_take() -> None:
    low, high = _ephemeral_range()
    hosts = ["127.0.0.1", "127.0.0.2"]
    ports = [free_port(hosts) for _ in range(50)]
    assert len(set(ports)) == len(ports), "a port was handed out twice"
    for port in ports:
        assert not low <= port <= high, f"{port} is in the ephemeral range {low}-{high}"
        for host in hosts:
            with socket.socket() as listener:
                listener.bind((host, port))
                listener.listen()


def test_a_port_in_use_on_any_host_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    first = free_port(["127.0.0.1", "127.0.0.2"])
    # A range of three ports whose middle one a listener holds on the second host only.
    monkeypatch.setattr(ports, "_listener_range", lambda: (first, first + 2))
    monkeypatch.setattr(ports, "_GIVEN", set())
    with socket.socket() as holder:
        holder.bind(("127.0.0.2", first + 1))
        holder.listen()
        given = {free_port(["127.0.0.1", "127.0.0.2"]) for _ in range(2)}
        with pytest.raises(RuntimeError, match="no TCP port"):
            free_port(["127.0.0.1", "127.0.0.2"])
    assert given == {first, first + 2}
