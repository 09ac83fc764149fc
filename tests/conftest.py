"""Fixtures shared by every tier: short temp dirs, the AWS emulator, Salt clusters.

Every process a fixture starts is stopped by PID (and process group) at teardown, also when
the test failed; every temp dir is removed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoenix_salt.lab.cluster import Cluster
from phoenix_salt.lab.emulator import Emulator
from phoenix_salt.lab.lifecycle_actions import LifecycleActions
from phoenix_salt.lab.processes import stop_all

CLUSTER_NAME = "test"


def _short_tempdir(prefix: str) -> Path:
    # Salt's IPC sockets live under root_dir and a unix socket path must fit in 107 bytes,
    # so daemons get short paths under /tmp rather than pytest's deep tmp_path.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = _short_tempdir("phx-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[Emulator]:
    root = _short_tempdir("phx-aws-")
    emulator = Emulator(root)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def aws(emulator_process: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The AWS emulator, emptied for this test, and this process's environment pointed at it."""
    emulator_process.resume()
    emulator_process.reset()
    for name, value in emulator_process.env().items():
        monkeypatch.setenv(name, value)
    return emulator_process


@pytest.fixture
def phoenix_block() -> dict[str, Any]:
    """A minimal valid ``phoenix:`` block for the test cluster."""
    return {"cluster": CLUSTER_NAME, "region": "us-east-1"}


@pytest.fixture
def lifecycle_actions(emulator_process: Emulator) -> Iterator[LifecycleActions]:
    """AutoScaling's lifecycle actions (which the emulator lacks), served on loopback; other
    AutoScaling calls go on to the emulator."""
    actions = LifecycleActions(upstream=emulator_process.url)
    actions.start()
    try:
        yield actions
    finally:
        actions.stop()


@pytest.fixture
def make_cluster(
    workdir: Path, aws: Emulator, lifecycle_actions: LifecycleActions
) -> Iterator[Callable[..., Cluster]]:
    """Builds and starts clusters whose daemons reach the emulator and the lifecycle
    actions endpoint; stops every daemon at teardown."""
    clusters: list[Cluster] = []

    def make(
        phoenix: dict[str, Any],
        wait_for_minions: bool = True,
        start_minions: bool = True,
        **kwargs: Any,
    ) -> Cluster:
        kwargs.setdefault("extra_env", lifecycle_actions.env())
        cluster = Cluster(workdir / f"c{len(clusters)}", aws, phoenix, **kwargs)
        clusters.append(cluster)
        cluster.start(wait_for_minions=wait_for_minions, start_minions=start_minions)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            cluster.stop()


@pytest.fixture(scope="session", autouse=True)
def _stop_every_process() -> Iterator[None]:
    yield
    stop_all()
