"""A real salt-master and salt-minion with the wheel installed: the runner answers through
salt-run, the engine starts, the minion loads the beacon; also from a fresh venv that has
only Salt and the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoenix_lab.cluster import Cluster
from phoenix_lab.emulator import Emulator
from phoenix_lab.processes import wait_for
from phoenix_lab.stack import provision

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SALT_VERSION = __import__("salt.version").version.__version__
MINION_OPTS = {"beacons": {"master_list": [{"interval": 1}]}}
MASTER_OPTS = {"engines": [{"instance_manager": {}}], "auto_accept": True}


def _fresh_venv(root: Path) -> Path:
    """A new venv holding Salt and the built wheel, nothing from this repository."""
    wheels = sorted((REPO / "dist").glob("phoenix_salt-*.whl"))
    assert wheels, "no wheel in dist/: run `make wheel`"
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Salt 3006's PyPI wheels declare none of their dependencies (see the requirements file).
    salt_deps = (
        ["-r", str(REPO / "requirements" / "salt-3006.txt")]
        if SALT_VERSION.startswith("3006.")
        else []
    )
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"salt=={SALT_VERSION}",
            *salt_deps,
            str(wheels[-1]),
        ],
        check=True,
        timeout=900,
        cwd=root,
    )
    return venv / "bin"


@pytest.fixture(scope="module", params=["test-venv", "fresh-venv"])
def cluster(
    request: pytest.FixtureRequest, emulator_process: Emulator, tmp_path_factory
) -> Iterator[Cluster]:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="phx-", dir="/tmp"))
    saved = dict(os.environ)
    cluster = None
    # Everything after the temp dir is made is inside the try: a setup that fails (no wheel
    # for the fresh venv, a pip error) still removes it and puts the environment back.
    try:
        # The emulator's environment reaches this process too (provisioning the stack).
        os.environ.update(emulator_process.env())
        bin_dir = _fresh_venv(root) if request.param == "fresh-venv" else None
        emulator_process.resume()
        emulator_process.reset()
        stack = provision(emulator_process, "test")
        cluster = Cluster(
            root / "cluster",
            emulator_process,
            stack.phoenix_block(),
            masters=1,
            minions=1,
            master_opts=MASTER_OPTS,
            minion_opts=MINION_OPTS,
            bin_dir=bin_dir,
        )
        cluster.start()
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)


def test_salt_run_lists_and_runs_the_phoenix_runner(cluster: Cluster) -> None:
    master = cluster.masters[0]
    documented = master.salt_run("doc.runner")
    assert "phoenix.version" in documented
    assert "phoenix.config" in documented
    versions = master.salt_run("phoenix.version")
    assert versions["salt"] == SALT_VERSION
    assert versions["core"] == versions["phoenix_salt"].split("+")[0]


def test_salt_run_reports_the_effective_config(cluster: Cluster) -> None:
    effective = cluster.masters[0].salt_run("phoenix.config")
    assert effective["cluster"] == "test"
    assert effective["masters_table"] == "phoenix-test-masters"


def test_the_engine_starts_inside_salt_master(cluster: Cluster) -> None:
    master = cluster.masters[0]
    wait_for(
        lambda: "phoenix instance_manager started for cluster test" in master.log_text(),
        60,
        "the engine's start line in the master log",
    )


def test_the_minion_loads_the_beacon(cluster: Cluster) -> None:
    master = cluster.masters[0]
    minion = cluster.minions[0].minion_id
    available = master.run_json("salt", [minion, "beacons.list_available", "return_yaml=False"])
    assert "master_list" in available[minion]
    configured = master.run_json("salt", [minion, "beacons.list", "return_yaml=False"])
    assert "master_list" in configured[minion]


def test_a_bad_config_fails_salt_run_with_the_key(cluster: Cluster) -> None:
    master = cluster.masters[0]
    bad = dict(master.opts)
    bad["phoenix"] = {"cluster": "test", "heartbeat_interval": "often"}
    conf = master.root / "bad-conf"
    conf.mkdir(exist_ok=True)
    (conf / "master").write_text(json.dumps(bad))
    result = subprocess.run(
        [str(master.bin_dir / "salt-run"), "-c", str(conf), "phoenix.config"],
        env=master.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stdout
    assert "phoenix.heartbeat_interval" in result.stdout + result.stderr
