"""``make demo``: a Phoenix cluster on this machine, played through a fleet's failures.

The AWS emulator (the data, network and compute stacks deployed by its own CloudFormation;
the compute stack's AutoScaling groups driven by the fleet simulator with real AutoScaling
calls) and real Salt daemons on
loopback: 3 masters, each with the engine, runners and reactor, and 6 minions, each with the
beacon, connected to every master (the default; ``--master-type failover``: each to one
master at a time). Then, step by step: 2 minions join (scale out), the busiest master's
instance dies (every process SIGKILLed: AutoScaling's EC2 health check finds it impaired),
the next master hangs (SIGSTOP: its instance looks healthy, and the live masters report it),
the next one's salt-master crashes at every start while its instance stays up (the live
masters report it too), and AutoScaling replaces each (``phoenix master-bootstrap``) with
nobody's help; a minion leaves (scale in). Each step shows its progress while it waits; the
run ends with a summary table: per step, the time until Phoenix noticed, the time until
every minion answers (``salt '*' test.ping`` on every live master reaches every minion;
failover: every minion answers through some live master), the time until a broken master's
replacement serves every minion, the slowest joining minion's time from its first boot to its
first answered ping, keys accepted and deleted, first highstates run. Ctrl-C
stops everything cleanly: no process is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoenix_lab.cluster import Cluster
from phoenix_lab.emulator import Emulator
from phoenix_lab.first_ping import FirstPings
from phoenix_lab.fleet import Fleet, Instance
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.processes import interrupt_on_sigterm, stop_all, wait_for
from phoenix_lab.reach import PROBE_TIMEOUT, Reach
from phoenix_lab.salt import SaltMaster, SaltMinion
from phoenix_lab.stack import Stack, client, provision
from phoenix_salt import _core, status
from phoenix_salt.reactor import reactor_config

CLUSTER = "demo"
# What a minion logs (salt/crypt.py) when a master's public key differs from the cached one.
KEY_CHANGED = "The master key has changed"
# How often a long wait says it is still waiting.
PROGRESS_EVERY = 10.0
# The daemons' phoenix.replacement: a master silent for 20 s (twice master_stale_after) is
# reported to AutoScaling; launches are not judged for their first 30 s.
REPLACEMENT = {"replace_after": 20, "launch_grace": 30}
# The fleet simulator's EC2 health check: an instance with no process left is impaired after
# this long (AWS's status checks take minutes; the lab's timings are compressed).
EC2_CHECK_DELAY = 10.0


@dataclass(frozen=True)
class Census:
    """What the summary counts, taken before and after each step."""

    accepted: frozenset[str] = frozenset()  # ids whose key a live master has accepted
    highstates: int = 0  # first highstates that succeeded (the registry's record)
    # Restarts the beacons asked for so far, by minion id (the masters' own minions too).
    restarts: tuple[tuple[str, int], ...] = ()


@dataclass
class Report:
    """What a step says of itself: the outcome, and its two times (seconds from its start)."""

    outcome: str
    detect: float | None = None  # until Phoenix noticed (the registry shows the change)
    answer: float | None = None  # until every minion answers (see Demo.every_minion_answers)
    # A master that broke: until AutoScaling's replacement serves every minion.
    replaced: float | None = None
    # A master that broke: the live minions whose first master it was (its own, unless it
    # died with the instance).
    first_of: int | None = None
    # Minions that joined: the slowest one's time from its first boot to its first answered
    # test.ping (lab.first_ping), and each one's, by minion id.
    first_ping: float | None = None
    first_pings: dict[str, float] = field(default_factory=dict)


@dataclass
class Step:
    name: str
    seconds: float
    report: Report
    accepted: int
    deleted: int
    highstates: int
    restarts: int


@dataclass
class Timeline:
    census: Callable[[], Census] = Census
    started: float = field(default_factory=time.monotonic)
    steps: list[Step] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def run(self, name: str, action: Callable[[], Report | str]) -> Report:
        self.say(f"{name} ...")
        before, begun = self.census(), time.monotonic()
        done = action()
        report = done if isinstance(done, Report) else Report(done)
        seconds = time.monotonic() - begun
        after = self.census()
        step = Step(
            name,
            seconds,
            report,
            len(after.accepted - before.accepted),
            len(before.accepted - after.accepted),
            after.highstates - before.highstates,
            _restarts_between(before, after),
        )
        self.steps.append(step)
        self.say(f"  done in {seconds:.1f}s: {report.outcome}")
        return report

    def summary(self) -> str:
        """The table: steps that changed the fleet, with their times and counts."""
        header = (
            "step",
            "took s",
            "detect s",
            "answer s",
            "replaced s",
            "1st ping s",
            "keys +",
            "keys -",
            "highstates",
            "restarts",
        )
        rows = [
            (
                s.name,
                f"{s.seconds:.1f}",
                _seconds(s.report.detect),
                _seconds(s.report.answer),
                _seconds(s.report.replaced),
                _seconds(s.report.first_ping),
                str(s.accepted),
                str(s.deleted),
                str(s.highstates),
                str(s.restarts),
            )
            for s in self.steps
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

        def line(row: Sequence[str]) -> str:
            first = f"{row[0]:<{widths[0]}}"
            return "  ".join(
                [first, *(f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True))]
            )

        return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _restarts_between(before: Census, after: Census) -> int:
    """Restarts of the minions that are still there, between two censuses."""
    earlier = dict(before.restarts)
    return sum(count - earlier.get(minion, 0) for minion, count in after.restarts)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


class Demo:
    """The cluster the demo plays with, and its steps."""

    def __init__(
        self,
        workdir: Path,
        masters: int = 3,
        minions: int = 6,
        join: int = 2,
        master_type: str = "str",
        replacement: dict[str, Any] | None = None,
    ) -> None:
        """``master_type``: the minions' ``phoenix.drop_in.master_type``: ``str`` (every
        minion on every master) or ``failover`` (one master at a time). ``replacement``: the
        daemons' ``phoenix.replacement`` (when the live masters report a silent one to
        AutoScaling; default ``REPLACEMENT``)."""
        self.workdir = workdir
        self.master_count, self.minion_count, self.join_count = masters, minions, join
        self.master_type = master_type
        self.replacement = REPLACEMENT if replacement is None else replacement
        self.emulator = Emulator(workdir)
        self.lifecycle = LifecycleActions(upstream=self.emulator.url)
        self.stack: Stack | None = None
        self.phoenix: dict[str, Any] = {}
        self.fleet: Fleet | None = None
        self.cluster: Cluster | None = None
        # The daemons of the instances that exist, by instance id.
        self.masters: dict[str, SaltMaster] = {}
        self.minions: dict[str, SaltMinion] = {}
        # The minion beside each master, by the master's instance id (which is its id).
        self.own_minions: dict[str, SaltMinion] = {}
        # Minions with Salt's own failover alone (bench/failover's reference), by id.
        self.natives: dict[str, SaltMinion] = {}
        # Minions on every master in a failover demo (bench/failover's third kind), by id.
        self.hot_minions: dict[str, SaltMinion] = {}
        # Masters the demo broke (killed, hung or crashing), until AutoScaling replaces them.
        self.impaired: dict[str, SaltMaster] = {}
        # When the demo broke each master (time.monotonic(), just before the signal), by
        # instance id: the zero of bench/replacement's timings.
        self.broken_at: dict[str, float] = {}
        self._last_reach: Reach | None = None  # what ``unreached`` explains
        # What `phoenix master-bootstrap` did on each replacement master, by instance id.
        self.booted: dict[str, dict[str, Any]] = {}
        # More environment for the first masters, by number (1, 2, ...), set before
        # start_masters: e.g. one master's own route to DynamoDB, which a test cuts.
        self.master_env: dict[int, dict[str, str]] = {}
        # More environment for every daemon, set before start_masters: e.g. the soak's
        # route to every AWS service through its fault injector.
        self.aws_env: dict[str, str] = {}
        self.timeline = Timeline(self.census)

    # ----- set-up ----------------------------------------------------------------------------

    def start_emulator(self) -> str:
        self.emulator.start()
        self.lifecycle.start()
        # This process talks to the emulator too, never to real AWS.
        os.environ.update({**self.emulator.env(), **self.lifecycle.env()})
        return f"{self.emulator.url}; lifecycle actions at {self.lifecycle.url}"

    def provision_stack(self) -> str:
        self.stack = provision(self.emulator, CLUSTER)
        # What every daemon, and the demo's own look at the registry, is configured with.
        self.phoenix = self.stack.phoenix_block(
            heartbeat_interval=2,
            master_stale_after=10,
            master_drain_time=5,
            keys={"reconcile_interval": 5},
            beacon={
                "refresh_interval": 2,
                "restart_jitter": 1,
                "restart_splay": 10,
                "min_restart_interval": 10,
            },
            drop_in={"master_type": self.master_type},
            replacement=self.replacement,
            # A minion's launch goes on only once its first highstate succeeded.
            highstate_gating=True,
            highstate={"check_interval": 2},
        )
        out = self.stack.outputs
        return (
            f"stack phoenix-{CLUSTER}-data: tables {out['MastersTable']} and "
            f"{out['MinionsTable']}, queue {out['QueueName']}, topic {out['TopicName']}"
        )

    def create_groups(self) -> str:
        assert self.stack is not None
        self.fleet = Fleet(
            self.emulator,
            self.stack,
            self.lifecycle,
            on_terminated=self._instance_ended,
            on_launched=self._boot_master,
            alive=self._instance_alive,
            ec2_check_delay=EC2_CHECK_DELAY,
        )
        compute = self.fleet.create_groups(self.master_count)
        self.fleet.start()
        out = compute.compute.outputs
        return (
            f"stacks {compute.network.name} and {compute.compute.name}: groups "
            f"{out['MastersGroupName']} ({self.master_count} launching, launch template "
            f"{out['MasterLaunchTemplateId']}, role {out['MasterRoleArn'].rsplit('/', 1)[1]}) "
            f"and {out['MinionsGroupName']} (empty, launch template "
            f"{out['MinionLaunchTemplateId']}, role {out['MinionRoleArn'].rsplit('/', 1)[1]}) "
            "in the network's private subnets; hooks phoenix-launch (default ABANDON) and "
            "phoenix-terminate (default CONTINUE) into the queue, notifications to the topic"
        )

    def start_masters(self) -> Report:
        """The masters' group launches its instances; each boots as user data boots a
        master (``phoenix master-bootstrap``, then salt-master)."""
        assert self.stack is not None and self.fleet is not None
        begun = time.monotonic()
        fleet = self.fleet
        launched = fleet.launching("master")
        self.cluster = Cluster(
            self.workdir / "cluster",
            self.emulator,
            self.phoenix,
            master_ids=[i.instance_id for i in launched],
            minion_ids=[],
            # Salt accepts no key by itself: Phoenix does, for instances the registry knows.
            # Phoenix's reactor runs each new minion's first highstate.
            master_opts={
                "engines": [{"instance_manager": {}}],
                "auto_accept": False,
                **reactor_config(),
            },
            minion_opts={"beacons": {"master_list": [{"interval": 1}]}},
            extra_env={**self.lifecycle.env(), **self.aws_env},
            # The lab's stand-in for systemd runs every daemon: it starts a salt-master that
            # exits again (Restart=always), and the beacon restarts minions through it.
            supervised_minions=True,
            supervised_masters=True,
            master_env=self.master_env,
            bootstrap=True,
        )
        self.cluster.start(start_minions=False)
        # The group may already have replaced one of them meanwhile (a master that did not
        # serve in time, on a loaded machine): the replacement boots by itself, appended.
        first = self.cluster.masters[: len(launched)]
        for instance, master in zip(launched, first, strict=True):
            self.masters[instance.instance_id] = master
            self._write_state_tree(master)
            self.own_minions[instance.instance_id] = self.cluster.start_own_minion(master)
        self._wait_for_live_masters("every master to register and heartbeat")
        detect = time.monotonic() - begun
        self.wait(
            lambda: len(fleet.in_service("master")) == self.master_count,
            60,
            "the masters' launches to be let go on",
        )
        answer = self.wait_every_minion_answers(begun)
        names = ", ".join(f"{m.name} {m.interface} ({i})" for i, m in list(self.masters.items()))
        return Report(
            f"{names}: one key pair (created once, stored), each registered once salt-master "
            "served, launch let go on (CONTINUE); each runs its own minion; "
            f"{self._answer_words()}",
            detect=detect,
            answer=answer,
        )

    def _write_state_tree(self, master: SaltMaster) -> None:
        """The highstate every master serves: one managed file in the minion's cache."""
        tree = Path(master.opts["file_roots"]["base"][0])
        tree.mkdir(parents=True, exist_ok=True)
        (tree / "top.sls").write_text("base:\n  '*':\n    - demo\n")
        (tree / "demo.sls").write_text(
            "motd:\n  file.managed:\n    - name: {{ opts['cachedir'] }}/motd\n"
            "    - contents: configured by its first highstate\n"
        )

    # ----- minions in and out ----------------------------------------------------------------

    def start_minions(self) -> Report:
        return self._join(self.minion_count)

    def scale_out(self) -> Report:
        return self._join(self.join_count)

    def join_natives(self, count: int, **opts: Any) -> Report:
        """``count`` minions with Salt's own failover alone (no beacon, ``opts`` for their
        settings), launched like the others: bench/failover's reference."""
        return self._join(count, follow=False, **opts)

    def join_hot(self, count: int) -> Report:
        """``count`` Phoenix minions on every master (``master_type: str``) beside a
        failover demo's: bench/failover's third kind."""
        assert self.cluster is not None
        drop_in = {**self.cluster.minion_phoenix["drop_in"], "master_type": "str"}
        phoenix = {**self.cluster.minion_phoenix, "drop_in": drop_in}
        return self._join(count, into=self.hot_minions, phoenix=phoenix)

    def _join(
        self,
        count: int,
        follow: bool = True,
        into: dict[str, SaltMinion] | None = None,
        **opts: Any,
    ) -> Report:
        """The minions' group grows by ``count``: each new instance waits in its launch
        hook while its user data runs ``phoenix minion-config`` and starts salt-minion;
        Phoenix registers it, accepts its key, runs its first highstate and lets the
        launch go on."""
        assert self.cluster is not None and self.fleet is not None
        fleet, begun = self.fleet, time.monotonic()
        size = len(self.minions) + len(self.natives) + len(self.hot_minions)
        launched = fleet.scale("minion", size + count)
        if into is None:
            into = self.minions if follow else self.natives
        booting = {
            i.instance_id: self.cluster.add_minion(i.instance_id, follow, **opts) for i in launched
        }
        with FirstPings(self.live_masters()) as first_pings:

            def boot(minion: SaltMinion) -> None:
                first_pings.booting(minion.minion_id)
                if follow:
                    minion.first_boot()
                else:
                    minion.start()

            # The instances boot at once, each running its own user data, as AutoScaling's do.
            with ThreadPoolExecutor(len(booting)) as pool:
                list(pool.map(boot, booting.values()))
            into.update(booting)
            session = self.session()
            ids = [i.instance_id for i in launched]
            self.wait(
                lambda: all(session.get_instance("minion", i) for i in ids),
                60,
                "the engine to register the launches",
            )
            detect = time.monotonic() - begun
            self.wait(
                lambda: all(fleet.instances[i].state == "in_service" for i in ids),
                240,
                "keys accepted, first highstates run and the launches let go on",
            )
            answer = self.wait_every_minion_answers(begun)
            # Every minion answered a ping by now; its answer may still be on the bus.
            first_pings.wait(30)
        if first_pings.error is not None:
            raise RuntimeError("the first-ping watcher failed") from first_pings.error
        return Report(
            f"{count} launched ({', '.join(ids)}): registered, keys accepted, first highstate "
            f"run, launch let go on, in service; {first_pings.summary()}",
            detect=detect,
            answer=answer,
            first_ping=first_pings.slowest(),
            first_pings=dict(first_pings.answered),
        )

    def scale_in(self) -> Report:
        """The minions' group shrinks by one: its terminate hook reaches the queue, Phoenix
        removes its key from every master and lets the termination go on."""
        assert self.fleet is not None
        fleet, begun = self.fleet, time.monotonic()
        gone = sorted(self.minions)[0]
        fleet.scale_in(gone)
        session = self.session()
        self.wait(
            lambda: (
                (session.get_instance("minion", gone) or {}).get("state")
                in {"terminating", "terminated"}
            ),
            60,
            "the engine to record the termination",
        )
        detect = time.monotonic() - begun
        self.wait(
            lambda: all(gone not in m.accepted_keys() for m in self.live_masters()),
            60,
            "its key to leave every master",
        )
        keys_gone = time.monotonic() - begun
        self.wait(
            lambda: fleet.instances[gone].state == "terminated",
            60,
            "the termination to be let go on",
        )
        answer = self.wait_every_minion_answers(begun)
        return Report(
            f"{gone} terminated: its key left every master {keys_gone:.0f} s after the scale-in; "
            f"termination let go on; {len(self.minions)} minions answer",
            detect=detect,
            answer=answer,
        )

    # ----- masters break and are replaced ------------------------------------------------------

    def kill_master(self) -> Report:
        """The busiest master's instance dies: every process on it (salt-master and its own
        minion) is SIGKILLed, no hook, no notification. The other masters serve every minion
        as they are (failover: its minions' beacons move them once its heartbeat is stale);
        AutoScaling's EC2 health check finds the instance impaired (or the live masters
        report it first) and replaces it."""
        return self._break_master("killed (SIGKILL, every process)", signal.SIGKILL)

    def hang_master(self) -> Report:
        """The busiest live master hangs (SIGSTOP): its sockets stay open, so Salt's own
        failover sees nothing, and its instance passes EC2's health check. The other masters
        serve every minion as they are (failover: the beacons move its minions once its
        heartbeat is stale); the live masters report it to AutoScaling, which replaces it."""
        return self._break_master("hung (SIGSTOP)", signal.SIGSTOP)

    def crash_master(self) -> Report:
        """The busiest live master's salt-master crashes (SIGKILL to it and what it forked)
        as soon as its service manager starts it, again and again; the instance, its
        service manager and its own minion stay up, so EC2's check sees nothing. The live
        masters report it to AutoScaling, which replaces it."""
        return self._break_master("crashing at every start (instance up)")

    def _break_master(self, how: str, signum: int | None = None) -> Report:
        """Breaks the busiest live master: ``signum`` to every process of its instance (and,
        for SIGKILL, of its own minion), or, without one, its salt-master killed at every
        start until AutoScaling ended the instance; then waits until it is replaced."""
        followers = self.followers()
        firsts = {i: (m.drop_in_masters() or [""])[0] for i, m in followers.items()}
        # The busiest: first in the most group minions' order (a failover minion is on it).
        load = {
            m: sum(1 for i in self.minions if firsts[i] == m.interface) for m in self.live_masters()
        }
        master = max(load, key=lambda m: load[m])
        instance_id = self._master_id(master)
        own = self.own_minions.get(instance_id)
        killed = signum == signal.SIGKILL
        # Every minion whose first master it is, with its restarts so far; a killed
        # instance's own minion dies with it.
        first_of = {
            i: len(followers[i].restarts())
            for i, first in firsts.items()
            if first == master.interface and not (killed and followers[i] is own)
        }
        own_first = len(first_of.keys() & self.own_minions.keys())
        begun = time.monotonic()
        self.broken_at[instance_id] = begun
        crashing = threading.Event()
        if signum is None:
            threading.Thread(
                target=self._crash_until_ended,
                args=(instance_id, master, crashing),
                name=f"crash-{master.name}",
                daemon=True,
            ).start()
        else:
            master.process.signal_group(signum)
        if killed and own is not None:
            own.process.signal_group(signal.SIGKILL)
        self.impaired[instance_id] = master
        try:
            return self._broken(master, instance_id, how, begun, followers, first_of, own_first)
        finally:
            crashing.set()

    def _crash_until_ended(
        self, instance_id: str, master: SaltMaster, done: threading.Event
    ) -> None:
        """Kills ``master``'s salt-master whenever it runs, until ``done`` or its instance
        ended."""
        while not done.wait(0.2) and instance_id in self.masters:
            master.crash()

    def _broken(
        self,
        master: SaltMaster,
        instance_id: str,
        how: str,
        begun: float,
        followers: dict[str, SaltMinion],
        first_of: dict[str, int],
        own_first: int,
    ) -> Report:
        """Waits until the broken ``master`` left the live list and every minion answers,
        the minions whose first master it was (``first_of``: their restarts before the
        break, among ``followers``) moved, and AutoScaling's replacement serves every
        minion."""
        session = self.session()
        seen: dict[str, float] = {}
        reach = self.reach()

        def detected_and_answered() -> bool:
            # Both clocks run at once: with minions on every master the fleet answers
            # before the registry has even noticed.
            if "detect" not in seen and instance_id not in {
                m["instance_id"] for m in session.live_masters()
            }:
                seen["detect"] = time.monotonic() - begun
            if "answer" not in seen and reach.complete():
                seen["answer"] = time.monotonic() - begun
            return len(seen) == 2

        self.wait(
            detected_and_answered,
            180,
            f"{master.name} to leave the live list and every minion to answer",
            explain=lambda: f"seen: {sorted(seen)}; the last probe: {self.unreached()}",
        )
        moved = ""
        if self.hot and first_of:
            # The others are served as they are; the minions whose first master it was
            # restart within the splay, so that their beacons (and salt-call) run through a
            # live master. The broken master's own minion may be gone with its instance
            # (AutoScaling replaced it) before it restarted: it is not waited for then.
            waiting: list[str] = []
            moved_reach = self.reach()

            def moved_and_answered() -> bool:
                waiting[:] = [
                    i
                    for i, n in first_of.items()
                    if i in self.followers() and len(followers[i].restarts()) <= n
                ]
                return not waiting and moved_reach.complete()

            self.wait(
                moved_and_answered,
                180,
                f"the {len(first_of)} minion(s) whose first master it was to restart",
                explain=lambda: (
                    f"not restarted since the break: {', '.join(waiting) or 'none'}; "
                    f"the last probe: {self.unreached()}"
                ),
            )
            still = sum(1 for i in first_of if i in self.followers())
            moved = (
                f"; those {still} still there restarted within the splay, "
                f"{time.monotonic() - begun:.0f} s after the break"
            )
        replaced, replacement = self._wait_for_replacement(instance_id, begun)
        return Report(
            f"{master.name} ({instance_id}) {how}, first master of {len(first_of)} live "
            f"minion(s) ({own_first} of them masters' own); out of the live list "
            f"{seen['detect']:.0f} s later; {self._answer_words()}{moved}; {replacement}",
            detect=seen["detect"],
            answer=seen["answer"],
            first_of=len(first_of),
            replaced=replaced,
        )

    def _wait_for_replacement(self, instance_id: str, begun: float) -> tuple[float, str]:
        """Until AutoScaling replaced the broken master ``instance_id`` by itself and the
        replacement serves every minion (its key pair the cluster's, every pinned key
        pre-seeded, the minions spread over the masters again). Returns the seconds since
        ``begun`` and what happened."""
        assert self.fleet is not None
        fleet = self.fleet
        self.wait(
            lambda: instance_id in fleet.replacements,
            300,
            f"AutoScaling to replace {instance_id} (its EC2 health check, or the live masters' "
            "report)",
        )
        new_id = fleet.replacements[instance_id]
        why = (
            "its EC2 health check failed"
            if instance_id in fleet.failed_ec2_check
            else f"{self._reported_by(instance_id)} reported it"
        )
        self.wait(
            lambda: (
                new_id in self.booted
                and new_id in {m["instance_id"] for m in self.session().live_masters()}
            ),
            180,
            f"the replacement {new_id} to boot and register once salt-master serves",
        )
        spread = self.reach()
        self.wait(
            lambda: self.spread(spread),
            180,
            "every minion to be on every live master again",
            explain=self._spread_explained,
        )
        replaced = time.monotonic() - begun
        master, result = self.masters[new_id], self.booted[new_id]
        pending = len(master.keys()["minions_pre"])
        changed = [i for i, m in self.minions.items() if KEY_CHANGED in m.log_text()]
        return replaced, (
            f"AutoScaling replaced it ({why}): {master.name} ({new_id}, {master.interface}), "
            f"key pair {result['key_pair']}, {len(result['pre_seeded'])} pinned key(s) "
            f"pre-seeded, pending keys on the replacement: {pending}, serves every minion "
            f"{replaced:.0f} s after the break; 'master key has changed' "
            f"{'LOGGED by ' + ', '.join(changed) if changed else 'never logged'}"
        )

    def _reported_by(self, instance_id: str) -> str:
        """Which master's engine reported ``instance_id`` (its claim in the registry)."""
        assert self.stack is not None
        item = (
            client(self.emulator, "dynamodb")
            .get_item(
                TableName=self.stack.outputs["MastersTable"],
                Key={"cluster": {"S": self.stack.cluster}, "instance_id": {"S": instance_id}},
            )
            .get("Item", {})
        )
        by = item.get("replacement", {}).get("M", {}).get("by", {}).get("S")
        named = {i: m.name for i, m in list(self.masters.items())}
        return f"{named.get(by, 'master')} ({by})" if by else "a live master"

    def _boot_master(self, instance: Instance) -> None:
        """A master's group launched ``instance``: it boots as user data boots a master
        (``phoenix master-bootstrap``, then salt-master, and its own minion)."""
        assert self.cluster is not None
        master, result = self.cluster.add_master(instance.instance_id)
        self._write_state_tree(master)
        self.masters[instance.instance_id] = master
        self.own_minions[instance.instance_id] = self.cluster.start_own_minion(master)
        self.booted[instance.instance_id] = result

    def _instance_alive(self, instance: Instance) -> bool:
        """Whether any process of ``instance`` runs (the simulator's EC2 health check). An
        instance the demo has not booted yet is taken for alive."""
        i = instance.instance_id
        daemons = [
            d
            for d in (
                self.masters.get(i),
                self.own_minions.get(i),
                self.minions.get(i),
                self.natives.get(i),
                self.hot_minions.get(i),
            )
            if d is not None
        ]
        return not daemons or any(d.process.running() for d in daemons)

    def _instance_ended(self, instance: Instance) -> None:
        """AutoScaling ended ``instance`` (its termination went on): its daemons stop."""
        daemon = (
            self.minions.pop(instance.instance_id, None)
            or self.natives.pop(instance.instance_id, None)
            or self.hot_minions.pop(instance.instance_id, None)
            or self.masters.pop(instance.instance_id, None)
        )
        self.impaired.pop(instance.instance_id, None)
        if daemon is not None:
            daemon.stop()
        # A master's instance takes its own minion with it.
        own = self.own_minions.pop(instance.instance_id, None)
        if own is not None:
            own.stop()

    # ----- what the steps look at --------------------------------------------------------------

    def live_masters(self) -> list[SaltMaster]:
        """Masters the registry lists as live and that the demo has not broken."""
        live = {m["instance_id"] for m in self.session().live_masters()}
        # A copy: AutoScaling's replacements boot in a thread of their own.
        return [m for i, m in list(self.masters.items()) if i in live and i not in self.impaired]

    def followers(self) -> dict[str, SaltMinion]:
        """The minions the beacon moves, by id: the group's and the masters' own."""
        return {**self.minions, **self.own_minions}

    @property
    def hot(self) -> bool:
        """The minions are connected to every master (``master_type: str``)."""
        return self.master_type == "str"

    def reached(self, timeout: int = PROBE_TIMEOUT) -> dict[SaltMaster, set[str]]:
        """The minions ``salt '*' test.ping -t timeout`` reaches on each live master (all
        asked at once)."""
        masters = self.live_masters()
        if not masters:
            return {}
        with ThreadPoolExecutor(len(masters)) as pool:
            answers = list(pool.map(lambda m: (m, m.ping(timeout=timeout)), masters))
        return {master: {i for i, ok in answered.items() if ok} for master, answered in answers}

    def answering(self) -> dict[str, SaltMaster]:
        """Which live master each minion answers ``test.ping`` through (failover minions
        answer through one)."""
        through: dict[str, SaltMaster] = {}
        for master, minions in self.reached().items():
            for minion in minions:
                through.setdefault(minion, master)
        return through

    def reach(self, timeout: int = PROBE_TIMEOUT) -> Reach:
        """A new record of which live master reached which minion, for a wait to probe
        until it is complete (see lab/phoenix_lab/reach.py); ``unreached`` explains the last
        one made. ``timeout``: the ``salt -t`` of each of its probes."""
        reach = Reach(self.live_masters, self._everyone, self._daemon, self.hot, timeout)
        self._last_reach = reach
        return reach

    def every_minion_answers(self, timeout: int = PROBE_TIMEOUT) -> bool:
        """One probe of every pair at once. Minions on every master: every live master
        reaches every minion, the masters' own minions included. Failover: every minion
        answers through some live master."""
        return self.reach(timeout).complete()

    def _everyone(self) -> set[str]:
        """Every minion that should answer: the group's, the references, and the masters'
        own minions but those that died with their instance."""
        own = {i for i, m in list(self.own_minions.items()) if m.process.running()}
        return {*self.minions, *self.natives, *self.hot_minions, *own}

    def _daemon(self, minion_id: str) -> SaltMinion | None:
        return {**self.natives, **self.hot_minions, **self.followers()}.get(minion_id)

    def unreached(self) -> str:
        """What the last probes found missing, for a failure message: by live master, the
        minions not reached, what ``salt`` printed, and what each of those minions did."""
        if self._last_reach is None:
            return "never probed"
        return self._last_reach.explain(self._minion_state)

    def _minion_state(self, minion_id: str) -> str:
        """What a minion that was not reached was doing: whether it runs, its master list,
        and its starts and restarts (seconds ago), to tell a restart from a slow answer."""
        daemon = self._daemon(minion_id)
        if daemon is None:
            return f"{minion_id}: no daemon"
        now = time.time()
        journal = ", ".join(f"{what} {now - at:.0f} s ago" for at, what in daemon.journal())
        return (
            f"{minion_id}: {'running' if daemon.process.running() else 'not running'}, "
            f"master list {daemon.drop_in_masters()}, supervisor: {journal or 'no journal'}"
        )

    def _answer_words(self) -> str:
        live = sorted(m.name for m in self.live_masters())
        names = ", ".join(live)
        if self.hot:
            where = f"each of {names}" if len(live) > 1 else names
            return f"salt '*' on {where} reaches every minion"
        return f"every minion answers through {names}"

    def wait_every_minion_answers(self, begun: float) -> float:
        reach = self.reach()
        self.wait(reach.complete, 180, "every minion to answer", explain=self.unreached)
        return time.monotonic() - begun

    def spread(self, reach: Reach | None = None) -> bool:
        """Every minion is where its drop-in puts it: connected to every live master (the
        drop-in lists them all), or (failover) answering through the master listed first.
        ``reach``: what a wait's earlier probes established (else one probe of all)."""
        if self.hot:
            live = sorted(m.interface for m in self.live_masters())
            if self._listing_others(live):
                return False
            return (reach or self.reach()).complete()
        through = self.answering()
        return all(
            minion_id in through
            and (minion.drop_in_masters() or [""])[0] == through[minion_id].interface
            for minion_id, minion in self.minions.items()
        )

    def _listing_others(self, live: list[str]) -> list[str]:
        """The group minions whose drop-in does not list exactly the ``live`` interfaces
        (sorted), each as "<id> lists <its list>"."""
        listed = {i: minion.drop_in_masters() for i, minion in self.minions.items()}
        return [
            f"{i} lists {masters}" for i, masters in listed.items() if sorted(masters or []) != live
        ]

    def _spread_explained(self) -> str:
        """Why ``spread`` is not true yet, for a timeout's message."""
        live = sorted(m.interface for m in self.live_masters())
        elsewhere = self._listing_others(live) if self.hot else []
        return (
            f"live masters {live}; drop-ins that list others: {'; '.join(elsewhere) or 'none'}; "
            f"the last probe: {self.unreached()}"
        )

    def census(self) -> Census:
        if self.cluster is None:
            return Census()
        accepted: set[str] = set()
        for master in self.live_masters():
            accepted.update(master.accepted_keys())
        minions = self.session().list_instances("minion")
        done = sum(
            1 for row in minions if (row.get("first_highstate") or {}).get("status") == "succeeded"
        )
        restarts = tuple(sorted((i, len(m.restarts())) for i, m in self.followers().items()))
        return Census(frozenset(accepted), done, restarts)

    def wait(
        self,
        condition: Callable[[], object],
        timeout: float,
        what: str,
        explain: Callable[[], str] | None = None,
    ) -> object:
        """``wait_for``, saying every ``PROGRESS_EVERY`` seconds that it still waits. On a
        timeout, ``explain`` says what the condition saw last (which minion, which master),
        so that a failure on a loaded machine can be told from a broken fleet."""
        said = [0.0]

        def progress(waited: float) -> None:
            if waited - said[0] >= PROGRESS_EVERY:
                said[0] = waited
                self.timeline.say(f"  ... waiting {waited:.0f} s for {what}")

        try:
            return wait_for(condition, timeout, what, interval=0.5, on_wait=progress)
        except TimeoutError as exc:
            if explain is None:
                raise
            raise TimeoutError(f"{exc}; {explain()}") from None

    def _wait_for_live_masters(self, what: str) -> None:
        """Until the registry lists as many live masters as the masters' group should have."""
        session = self.session()
        self.wait(lambda: len(session.live_masters()) == self.master_count, 90, what)

    def _master_id(self, master: SaltMaster) -> str:
        return next(i for i, m in list(self.masters.items()) if m is master)

    def _config(self) -> _core.Config:
        assert self.stack is not None
        return _core.Config.from_json(json.dumps(self.phoenix))

    def session(self) -> _core.Session:
        return _core.Session(self._config())

    def versions(self) -> str:
        (master, *_) = self.live_masters()
        versions = master.salt_run("phoenix.version")
        return ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))

    def status(self) -> str:
        (master, *_) = self.live_masters()
        return status.render(master.salt_run("phoenix.status"))

    def stop(self) -> None:
        """Stops what the demo started (``main`` also stops anything this process started)."""
        if self.fleet is not None:
            self.fleet.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.emulator.stop()
        self.lifecycle.stop()


def tear_down(demo: Demo, workdir: Path, keep: bool = False) -> None:
    """Stops what ``demo`` and this process started, and removes ``workdir`` unless
    ``keep`` (then says where it is)."""
    demo.stop()
    stop_all()
    if keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


Steps = list[tuple[str, Callable[[], Report | str]]]


def set_up_steps(demo: Demo) -> Steps:
    """The steps that bring the cluster up: the emulator, the data stack, the groups, the
    masters and the minions (the demo's first, and the soak's)."""
    return [
        ("start the AWS emulator", demo.start_emulator),
        ("deploy the data stack (cfn/phoenix-data.yaml) into the emulator", demo.provision_stack),
        (
            "deploy the network and compute stacks (cfn/phoenix-network.yaml, "
            "cfn/phoenix-compute.yaml)",
            demo.create_groups,
        ),
        (f"launch {demo.master_count} masters (phoenix master-bootstrap)", demo.start_masters),
        (f"launch {demo.minion_count} minions", demo.start_minions),
    ]


def play(demo: Demo, after_step: Callable[[str], None] | None = None) -> None:
    """Every step of the demo, in order; ``after_step`` (the tests' checks) runs after each."""
    steps = [
        *set_up_steps(demo),
        ("salt-run phoenix.version", demo.versions),
        (f"scale out: {demo.join_count} minions join", demo.scale_out),
        ("the busiest master's instance dies (SIGKILL)", demo.kill_master),
        ("the busiest live master hangs (SIGSTOP)", demo.hang_master),
        ("the busiest live master's salt-master crashes at every start", demo.crash_master),
        ("scale in: a minion leaves", demo.scale_in),
    ]
    for name, action in steps:
        demo.timeline.run(name, action)
        if after_step is not None:
            after_step(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, configs)"
    )
    parser.add_argument("--masters", type=int, default=3, help="masters (default 3)")
    parser.add_argument("--minions", type=int, default=6, help="minions at first (default 6)")
    parser.add_argument("--join", type=int, default=2, help="minions that join (default 2)")
    parser.add_argument(
        "--master-type",
        choices=("str", "failover"),
        default="str",
        help="the minions' phoenix.drop_in.master_type: str, every minion on every master "
        "(default), or failover, one master at a time",
    )
    args = parser.parse_args(argv)
    if args.masters < 3:
        parser.error("--masters must be at least 3: two of them are broken on purpose")

    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="phx-demo-", dir="/tmp"))
    demo = Demo(workdir, args.masters, args.minions, args.join, args.master_type)
    try:
        play(demo)
        print()
        print(demo.status())
        print()
        print(demo.timeline.summary())
        answer = (
            "salt '*' test.ping on every live master reached every minion"
            if demo.hot
            else "every minion answered test.ping through a live master"
        )
        print(
            f"\ndetect: until the registry showed the change; answer: until {answer}; "
            "replaced: until AutoScaling's replacement of a broken master served every minion "
            "(each from the step's start; the answer is probed with test.ping -t 3, so it is "
            "known to within about 7 s); 1st ping: the slowest joining minion's time from its "
            "first boot (phoenix minion-config) to its first answered test.ping, no key pending "
            "in between (to within about 2 s)"
        )
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        tear_down(demo, workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
