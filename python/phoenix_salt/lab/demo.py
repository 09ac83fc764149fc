"""``make demo``: a Phoenix cluster on this machine, step by step.

The AWS emulator and real Salt daemons on loopback; each step says what it does and how
long it took, and the run ends with a summary table. Ctrl-C stops everything cleanly: no
process is left behind.
"""

from __future__ import annotations

import argparse
import json
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

from phoenix_salt import _core, status
from phoenix_salt.lab import messages
from phoenix_salt.lab.cluster import Cluster, master_instance_id
from phoenix_salt.lab.emulator import Emulator
from phoenix_salt.lab.lifecycle_actions import LifecycleActions
from phoenix_salt.lab.processes import interrupt_on_sigterm, stop_all, wait_for
from phoenix_salt.lab.salt import SaltMaster, SaltMinion
from phoenix_salt.lab.stack import Stack, provision
from phoenix_salt.reactor import reactor_config

CLUSTER = "demo"
# What a minion logs (salt/crypt.py) when a master's public key differs from the cached one.
KEY_CHANGED = "The master key has changed"


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


class Demo:
    """The cluster the demo plays with, and its steps."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.emulator = Emulator(workdir)
        self.lifecycle = LifecycleActions(upstream=self.emulator.url)
        self.stack: Stack | None = None
        self.cluster: Cluster | None = None
        self.launch_token = ""
        self.hung: SaltMaster | None = None
        self.replacement: SaltMaster | None = None

    def start_emulator(self) -> str:
        self.emulator.start()
        self.lifecycle.start()
        # This process talks to the emulator too, never to real AWS.
        os.environ.update({**self.emulator.env(), **self.lifecycle.env()})
        return self.emulator.url

    def provision_stack(self) -> str:
        self.stack = provision(self.emulator, CLUSTER)
        out = self.stack.outputs
        return (
            f"stack phoenix-{CLUSTER}-data: tables {out['MastersTable']} and "
            f"{out['MinionsTable']}, queue {out['QueueName']}, topic {out['TopicName']}"
        )

    def start_cluster(self) -> str:
        assert self.stack is not None
        self.cluster = Cluster(
            self.workdir / "cluster",
            self.emulator,
            self.stack.phoenix_block(
                heartbeat_interval=2,
                master_stale_after=10,
                keys={"reconcile_interval": 5},
                beacon={"refresh_interval": 2, "restart_jitter": 1, "min_restart_interval": 10},
                # The launch goes on only once the minion's first highstate succeeded.
                highstate_gating=True,
                highstate={"check_interval": 2},
            ),
            masters=2,
            minions=1,
            # Salt accepts no key by itself: Phoenix does, for instances the registry knows.
            # Phoenix's reactor runs each new minion's first highstate.
            master_opts={
                "engines": [{"instance_manager": {}}],
                "auto_accept": False,
                **reactor_config(),
            },
            minion_opts={"beacons": {"master_list": [{"interval": 1}]}},
            extra_env=self.lifecycle.env(),
            # The minion's restarts go through the lab's stand-in for systemd.
            supervised_minions=True,
            # Every master boots through `phoenix master-bootstrap`: one key pair, stored.
            bootstrap=True,
        )
        self.cluster.start(start_minions=False)
        self._write_state_tree()
        session = self._session()
        wait_for(
            lambda: len(session.live_masters()) == 2, 60, "both masters to register and heartbeat"
        )
        return "2 masters (127.0.0.1, 127.0.0.2) registered themselves and heartbeat"

    def _write_state_tree(self) -> None:
        """The highstate every master serves: one managed file in the minion's directory."""
        assert self.cluster is not None
        motd = self.minion.root / "motd"
        for master in self.cluster.masters:
            tree = Path(master.opts["file_roots"]["base"][0])
            tree.mkdir(parents=True, exist_ok=True)
            (tree / "top.sls").write_text("base:\n  '*':\n    - demo\n")
            (tree / "demo.sls").write_text(
                f"motd:\n  file.managed:\n    - name: {motd}\n"
                "    - contents: configured by its first highstate\n"
            )

    def first_highstate(self) -> str:
        """The reactor ran the minion's first highstate once; the launch went on after it."""
        assert self.stack is not None
        minion = self.minion.minion_id
        wait_for(
            lambda: self._highstate().get("status") == "succeeded",
            120,
            "the minion's first highstate to succeed",
        )
        wait_for(
            lambda: self.lifecycle.get(self.launch_token).status == "completed",
            60,
            "the launch lifecycle action to be completed",
        )
        # CONTINUE puts the instance in service, and the group notifies its launch.
        group = f"phoenix-{CLUSTER}-minions"
        self.stack.send(
            self.emulator,
            messages.sns_envelope(
                messages.asg_notification(messages.LAUNCH, minion, group, messages.aws_time())
            ),
        )
        registry = self._session()
        wait_for(
            lambda: (registry.get_instance("minion", minion) or {}).get("state") == "running",
            60,
            "the launch notification to mark the minion running",
        )
        record = self._highstate()
        return (
            f"{minion}: attempt {record['attempt']} (job {record['jid']}) on "
            f"{record['master']}, {record['changed']} state changed; "
            f"lifecycle action {self.lifecycle.get(self.launch_token).result}; in service, "
            "registered as running"
        )

    def _highstate(self) -> dict[str, Any]:
        assert self.stack is not None
        highstates = _core.FirstHighstate(self._config())
        row = highstates.status(self.minion.minion_id) or {}
        return row.get("first_highstate") or {}

    def write_minion_config(self) -> str:
        """What user data does before salt-minion first starts."""
        result = self.minion.minion_config(wait=60)
        if result.returncode != 0:
            raise RuntimeError(f"phoenix minion-config failed: {result.stderr}")
        self.minion.start()
        wait_for(
            lambda: self.first_master.key_states(self.minion.minion_id) == ["minions_pre"],
            60,
            "the minion's key to reach its first master",
        )
        masters = ", ".join(self.drop_in_masters())
        return (
            f"drop-in lists {masters} (this minion's order); "
            f"minion {self.minion.minion_id}'s key is pending: the registry does not know it"
        )

    def drop_in_masters(self) -> list[str]:
        return self.minion.drop_in_masters() or []

    @property
    def first_master(self) -> SaltMaster:
        """The master the minion's drop-in lists first: the one it connects to."""
        assert self.cluster is not None
        first = self.drop_in_masters()[0]
        return next(m for m in self.cluster.masters if m.interface == first)

    @property
    def other_master(self) -> SaltMaster:
        assert self.cluster is not None
        return next(m for m in self.cluster.masters if m is not self.first_master)

    @property
    def minion(self) -> SaltMinion:
        assert self.cluster is not None
        return self.cluster.minions[0]

    def engine_runs(self) -> str:
        assert self.cluster is not None
        for master in self.cluster.masters:
            wait_for(
                lambda master=master: "phoenix instance_manager started" in master.log_text(),
                60,
                f"the engine of {master.name}",
            )
        return "its start line is in each master's log"

    def launch_minion(self) -> str:
        assert self.stack is not None
        instance = self.minion.minion_id
        group = f"phoenix-{CLUSTER}-minions"
        action = self.lifecycle.begin(group, "phoenix-launch", instance)
        hook = messages.lifecycle_hook(
            messages.LAUNCHING, instance, group, action.token, "phoenix-launch", messages.aws_time()
        )
        self.stack.send(self.emulator, hook)
        self.launch_token = action.token
        session = self._session()
        wait_for(
            lambda: (session.get_instance("minion", instance) or {}).get("launch_hook"),
            60,
            "the engine to record the launch",
        )
        return f"{instance} registered as launching; its launch waits for its first highstate"

    def key_accepted(self) -> str:
        minion = self.minion.minion_id
        wait_for(
            lambda: self.first_master.ping(minion, timeout=5).get(minion, False),
            90,
            "Phoenix to accept the minion's key and the minion to answer test.ping",
        )
        wait_for(
            lambda: self.other_master.key_states(minion) == ["minions"],
            60,
            "the other master to pre-seed the pinned key",
        )
        listing = self.first_master.salt_run("key_runner.list")
        return (
            f"accepted and pinned ({listing[minion]['pinned'][:11]}..); test.ping answers; "
            f"{self.other_master.name} pre-seeded the key"
        )

    def master_hangs(self) -> str:
        """The minion's master stops (SIGSTOP: sockets stay open, so Salt's own failover
        sees nothing); its heartbeat goes stale and the beacon moves the minion."""
        hung, live = self.first_master, self.other_master
        self.hung = hung
        minion = self.minion.minion_id
        jid = self._highstate()["jid"]
        hung_at = time.time()
        hung.process.signal_group(signal.SIGSTOP)
        wait_for(self.minion.restarts, 90, "the beacon to restart the minion")
        restarted = self.minion.restarts()[0] - hung_at
        wait_for(
            lambda: live.ping(minion, timeout=5).get(minion, False),
            90,
            f"the minion to answer through {live.name}",
        )
        again = "not run again" if self._highstate()["jid"] == jid else "RUN AGAIN"
        return (
            f"{hung.name} hung; the beacon restarted the minion {restarted:.0f} s later "
            f"(drop-in now {', '.join(self.drop_in_masters())}); it answers through {live.name}; "
            f"its first highstate {again}"
        )

    def replace_hung_master(self) -> str:
        """AutoScaling terminates the hung master (its notification reaches the registry) and
        launches a replacement, which boots as user data boots every master: ``phoenix
        master-bootstrap``, then salt-master."""
        assert self.cluster is not None and self.stack is not None and self.hung is not None
        self.hung.stop()
        self._notify_termination(self.hung)
        replacement, booted = self.cluster.add_master()
        self.replacement = replacement
        registry = self._session()
        wait_for(
            lambda: replacement.interface in {m["address"] for m in registry.live_masters()},
            60,
            f"{replacement.name} to register itself once salt-master serves",
        )
        live = sorted(m["address"] for m in registry.live_masters())
        registered = "registered as launching" if booted["registered"] else "not registered"
        return (
            f"{self.hung.name} terminated; {replacement.name} ({replacement.interface}) booted: "
            f"key pair {booted['key_pair']}, {len(booted['pre_seeded'])} pinned key(s) "
            f"pre-seeded, {registered} by the bootstrap, running once salt-master served; "
            f"live masters {', '.join(live)}"
        )

    def kill_serving_master(self) -> str:
        """The master that serves the minion now dies hard (SIGKILL, then its termination):
        the minion moves to the replacement, which it has never talked to, with no key
        action and no 'master key has changed'."""
        assert self.cluster is not None and self.stack is not None
        assert self.replacement is not None
        replacement, killed = self.replacement, self.other_master_of(self.replacement)
        minion = self.minion.minion_id
        restarts = len(self.minion.restarts())
        killed_at = time.time()
        killed.process.signal_group(signal.SIGKILL)
        self._notify_termination(killed)
        wait_for(
            lambda: replacement.ping(minion, timeout=5).get(minion, False),
            120,
            f"the minion to answer through {replacement.name}",
        )
        answered = time.time() - killed_at
        changed = "LOGGED" if KEY_CHANGED in self.minion.log_text() else "never logged"
        pending = replacement.keys()["minions_pre"]
        return (
            f"{killed.name} killed; the minion answers through {replacement.name} "
            f"{answered:.0f} s later ({len(self.minion.restarts()) - restarts} restart(s)); "
            f"pending keys there: {len(pending)}; 'master key has changed' {changed}"
        )

    def _notify_termination(self, master: SaltMaster) -> None:
        """AutoScaling's termination notification for ``master``, through the topic's
        envelope into the queue."""
        assert self.cluster is not None and self.stack is not None
        number = self.cluster.masters.index(master) + 1
        notification = messages.asg_notification(
            messages.TERMINATE,
            master_instance_id(number),
            f"phoenix-{CLUSTER}-masters",
            messages.aws_time(),
        )
        self.stack.send(self.emulator, messages.sns_envelope(notification))

    def other_master_of(self, master: SaltMaster) -> SaltMaster:
        """The one running master that is not ``master``."""
        assert self.cluster is not None
        return next(m for m in self.cluster.masters if m is not master and m is not self.hung)

    def _config(self) -> _core.Config:
        assert self.stack is not None
        return _core.Config.from_json(json.dumps(self.stack.phoenix_block()))

    def _session(self) -> _core.Session:
        return _core.Session(self._config())

    def versions(self) -> str:
        versions = self.first_master.salt_run("phoenix.version")
        return ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        self.emulator.stop()
        self.lifecycle.stop()
        stop_all()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, configs)"
    )
    args = parser.parse_args(argv)

    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="phx-demo-", dir="/tmp"))
    timeline = Timeline()
    demo = Demo(workdir)
    try:
        timeline.run("start the AWS emulator", demo.start_emulator)
        timeline.run(
            "deploy the data stack (cfn/phoenix-data.yaml) into the emulator",
            demo.provision_stack,
        )
        timeline.run("start 2 salt-masters with Phoenix", demo.start_cluster)
        timeline.run("the instance_manager engine runs in each salt-master", demo.engine_runs)
        timeline.run("phoenix minion-config, then start salt-minion", demo.write_minion_config)
        timeline.run("AutoScaling launches the minion (lifecycle hook -> SQS)", demo.launch_minion)
        timeline.run("Phoenix accepts its key (registry-checked)", demo.key_accepted)
        timeline.run("its first highstate runs once, then the launch goes on", demo.first_highstate)
        timeline.run("salt-run phoenix.version", demo.versions)
        timeline.run("the minion's master hangs: the minion follows", demo.master_hangs)
        timeline.run(
            "AutoScaling replaces the hung master (phoenix master-bootstrap)",
            demo.replace_hung_master,
        )
        timeline.run(
            "the serving master is killed (SIGKILL): the minion moves to the replacement",
            demo.kill_serving_master,
        )
        print()
        assert demo.replacement is not None
        print(status.render(demo.replacement.salt_run("phoenix.status")))
        print()
        print(timeline.summary())
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        demo.stop()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
