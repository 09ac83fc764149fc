"""``make demo``: a Phoenix cluster on this machine, step by step.

The AWS emulator and real Salt daemons on loopback; each step says what it does and how
long it took, and the run ends with a summary table. Ctrl-C stops everything cleanly: no
process is left behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoenix_salt.lab.cluster import Cluster
from phoenix_salt.lab.emulator import Emulator
from phoenix_salt.lab.processes import stop_all, wait_for

CLUSTER = "demo"


@dataclass
class Step:
    name: str
    seconds: float
    outcome: str


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    steps: list[Step] = field(default_factory=list)

    def run(self, name: str, action: Callable[[], str]) -> str:
        print(f"[{time.monotonic() - self.started:6.1f}s] {name} ...", flush=True)
        begun = time.monotonic()
        outcome = action()
        seconds = time.monotonic() - begun
        self.steps.append(Step(name, seconds, outcome))
        print(
            f"[{time.monotonic() - self.started:6.1f}s]   done in {seconds:.1f}s: {outcome}",
            flush=True,
        )
        return outcome

    def summary(self) -> str:
        width = max(len(step.name) for step in self.steps)
        lines = [
            f"{'step':<{width}}  {'seconds':>7}  outcome",
            f"{'-' * width}  {'-' * 7}  {'-' * 7}",
        ]
        lines += [f"{s.name:<{width}}  {s.seconds:7.1f}  {s.outcome}" for s in self.steps]
        return "\n".join(lines)


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, configs)"
    )
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="phx-demo-", dir="/tmp"))
    timeline = Timeline()
    emulator = Emulator(workdir)
    cluster: Cluster | None = None
    try:
        timeline.run("start the AWS emulator", lambda: (emulator.start(), emulator.url)[1])
        # This process talks to the emulator too (registry tables), never to real AWS.
        os.environ.update(emulator.env())
        phoenix = {"cluster": CLUSTER, "region": "us-east-1"}

        def start_cluster() -> str:
            nonlocal cluster
            cluster = Cluster(
                workdir / "cluster",
                emulator,
                phoenix,
                masters=1,
                minions=1,
                master_opts={"engines": [{"instance_manager": {}}], "auto_accept": True},
                minion_opts={"beacons": {"master_list": [{"interval": 1}]}},
            )
            cluster.start()
            return (
                f"{len(cluster.masters)} master, {len(cluster.minions)} minion answering test.ping"
            )

        timeline.run("start salt-master and salt-minion with Phoenix", start_cluster)
        assert cluster is not None
        master = cluster.masters[0]

        def create_tables() -> str:
            from phoenix_salt import _core, config

            session = _core.Session(config.load({"phoenix": phoenix}))
            created = session.create_registry_tables()
            return ", ".join(name for name, _ in created)

        timeline.run("create the registry tables in the emulator", create_tables)
        timeline.run(
            "salt-run phoenix.version",
            lambda: ", ".join(
                f"{k} {v}" for k, v in sorted(master.salt_run("phoenix.version").items())
            ),
        )
        timeline.run(
            "the instance_manager engine runs in salt-master",
            lambda: (
                wait_for(
                    lambda: "phoenix instance_manager started" in master.log_text(),
                    60,
                    "the engine",
                ),
                "its start line is in the master log",
            )[1],
        )
        print()
        print(timeline.summary())
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        if cluster is not None:
            cluster.stop()
        emulator.stop()
        stop_all()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
