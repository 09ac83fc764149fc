"""The engine registers its master only once salt-master listens."""

from __future__ import annotations

import socket
import threading
import time

from phoenix_lab.ports import free_port
from phoenix_salt.readiness import master_endpoints, wait_until_serving


def test_a_wildcard_interface_is_checked_on_loopback() -> None:
    opts = {"interface": "0.0.0.0", "ret_port": 4506, "publish_port": 4505}
    assert master_endpoints(opts) == [("127.0.0.1", 4506), ("127.0.0.1", 4505)]
    assert master_endpoints({"interface": "10.0.0.5"}) == [("10.0.0.5", 4506), ("10.0.0.5", 4505)]


def test_it_waits_until_both_ports_listen() -> None:
    ret_port, publish_port = free_port(["127.0.0.1"]), free_port(["127.0.0.1"])
    opts = {"interface": "127.0.0.1", "ret_port": ret_port, "publish_port": publish_port}
    listeners: list[socket.socket] = []

    def start_master() -> None:
        for port in (ret_port, publish_port):
            time.sleep(0.7)
            server = socket.socket()
            # Counted before it listens: once both listen, both are counted.
            listeners.append(server)
            server.bind(("127.0.0.1", port))
            server.listen()

    starting = threading.Thread(target=start_master)
    starting.start()
    try:
        assert wait_until_serving(opts, threading.Event()) is True
        # It returned only once the second port listened too.
        assert len(listeners) == 2
    finally:
        starting.join()
        for server in listeners:
            server.close()


def test_it_gives_up_when_the_engine_stops() -> None:
    opts = {"interface": "127.0.0.1", "ret_port": free_port(["127.0.0.1"]), "publish_port": 9}
    stopping = threading.Event()
    threading.Timer(0.5, stopping.set).start()
    assert wait_until_serving(opts, stopping) is False
