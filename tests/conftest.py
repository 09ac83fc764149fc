"""Fixtures shared by every tier: short temp dirs, the AWS emulator, Salt clusters.

Every process a fixture starts is stopped by PID (and process group) at teardown, also when
the test failed; every temp dir is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoenix_lab.cluster import Cluster
from phoenix_lab.demo import Demo
from phoenix_lab.emulator import Emulator
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.processes import stop_all

from .core_shapes import checked_core

CLUSTER_NAME = "test"


@pytest.fixture(scope="session", autouse=True)
def core_results_match_the_stub() -> Iterator[None]:
    """Every result of the native core that a test meets in this process is checked against
    the shape `_core.pyi` declares for it (tests/core_shapes.py)."""
    with checked_core():
        yield


def _short_tempdir(prefix: str) -> Path:
    # Salt's IPC sockets live under root_dir and a unix socket path must fit in 107 bytes,
    # so daemons get short paths under /tmp rather than pytest's deep tmp_path.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


# Where a failed test's work dir (daemon logs, configs) is copied before it is removed, when
# set: how an intermittent failure's logs outlive the run that showed it.
KEEP_FAILED = "PHOENIX_KEEP_FAILED"


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    if outcome.get_result().failed:  # type: ignore[attr-defined]
        item.stash[FAILED] = True


def _not_files(folder: str, names: list[str]) -> set[str]:
    """Sockets and pipes (Salt's IPC), which cannot be copied."""
    return {
        name
        for name in names
        if not (os.path.isdir(p := os.path.join(folder, name)) or os.path.isfile(p))
    }


def remove_workdir(path: Path, request: pytest.FixtureRequest, failed: bool = False) -> None:
    """Removes a test's work dir; first copies it under ``$PHOENIX_KEEP_FAILED`` when the
    test failed (``failed``: it is failing now, inside its body) and that is set."""
    keep = os.environ.get(KEEP_FAILED)
    if keep and (failed or request.node.stash.get(FAILED, False)):
        target = Path(keep) / f"{request.node.name}-{path.name}"
        shutil.copytree(path, target, symlinks=True, ignore=_not_files)
        print(f"\n{request.node.nodeid} failed: its work dir is kept in {target}")
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running_demo(request: pytest.FixtureRequest, **options: Any) -> Iterator[Demo]:
    """The demo's cluster (``Demo(workdir, **options)``), whose steps the test plays;
    everything it started is stopped after, and this process's environment, which the demo
    points at its own emulator, put back."""
    saved = dict(os.environ)
    workdir = Path("/tmp") / f"phx-demo-{os.getpid()}"
    workdir.mkdir()
    demo = Demo(workdir, **options)
    # A test that uses this in its body fails before pytest records it: say so here.
    failed = False
    try:
        yield demo
    except BaseException:
        failed = True
        raise
    finally:
        demo.stop()
        os.environ.clear()
        os.environ.update(saved)
        remove_workdir(workdir, request, failed)


@pytest.fixture
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    path = _short_tempdir("phx-")
    try:
        yield path
    finally:
        remove_workdir(path, request)


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
