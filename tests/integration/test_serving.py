"""A master is heartbeated only while salt-master serves: before each heartbeat the engine
sends the request server Salt's clear ``ping`` and wants it back in time
(``phoenix_salt.readiness.answers_requests``). Here against a real salt-master whose request
workers are wedged (SIGSTOP) while its ports, and the queue in front of the workers, stay
up."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoenix_lab.ports import free_port
from phoenix_lab.salt import SaltMaster
from phoenix_salt.readiness import answers_requests, listening

pytestmark = pytest.mark.integration


@pytest.fixture
def master(workdir: Path) -> Iterator[SaltMaster]:
    interface = "127.0.0.1"
    master = SaltMaster(
        "master1",
        workdir / "master1",
        interface,
        free_port([interface]),
        free_port([interface]),
        env={},
    )
    master.start()
    yield master
    for worker in master.request_workers():
        worker.send_signal(signal.SIGCONT)
    master.stop()


def test_a_master_whose_workers_are_wedged_does_not_answer(master: SaltMaster) -> None:
    opts = dict(master.opts)
    assert answers_requests(opts, 10) is None

    workers = master.request_workers()
    assert len(workers) == master.opts["worker_threads"]
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    # What a port check sees: a master that listens.
    assert listening(master.interface, master.ret_port)
    why = answers_requests(opts, 2)
    assert why is not None and "no answer within 2 s" in why, why

    for worker in workers:
        worker.send_signal(signal.SIGCONT)
    assert answers_requests(opts, 10) is None


def test_nothing_listening_is_no_answer() -> None:
    port = free_port(["127.0.0.1"])
    why = answers_requests({"interface": "127.0.0.1", "ret_port": port}, 1)
    assert why is not None and f"127.0.0.1:{port}" in why
