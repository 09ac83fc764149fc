"""``make soak``: the demo's fleet under random change and AWS faults for a while, its
invariants watched throughout.

The demo's cluster (3 masters, 4 minions on every master, the fleet simulator's AutoScaling
groups) with every daemon's AWS calls going through the lab's fault injector
(lab/phoenix_lab/faults.py). Until the time is up, one change at a time, drawn at random (``--seed``
repeats a run's draws): a master's instance dies (SIGKILL) or hangs (SIGSTOP), each then
replaced by AutoScaling by itself; a master hangs for a few seconds and resumes; a minion
joins or leaves; or one AWS fault (DynamoDB's writes throttled, DynamoDB answering 500s,
AutoScaling refused, SQS receives answered ``KmsThrottled``) holds for 30 s while a minion
joins or leaves. After each change, every live master must reach every minion again
(``salt '*' test.ping``) within ``--bound`` seconds. Throughout, the invariant watcher
(lab/phoenix_lab/invariants.py) holds: no key accepted that the registry did not pin, no
drop-in empty or unreadable, the dead-letter queue empty. At the end, with the faults cleared, the
registry must hold what the fleet simulator knows: every instance in service recorded
running, every ended one terminated.

It prints each change as it goes, then a summary: the changes, the lifecycle events the fleet
sent (each one applied by the engines through the faults), the longest wait after a change
until every live master reached every minion, the faults injected, and every violation.
Exit status 0 when there was none; ``--json`` writes the summary as JSON too.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from phoenix_lab.demo import Demo, Report, set_up_steps, tear_down
from phoenix_lab.faults import DYNAMODB_WRITES, REFUSE, SERVER_ERROR, THROTTLING, Fault
from phoenix_lab.invariants import InvariantWatcher
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_lab.processes import interrupt_on_sigterm

# Each fault the soak injects, by what it is called in the output.
FAULTS: dict[str, list[Fault]] = {
    "DynamoDB writes throttled (30 %)": [
        Fault("dynamodb", THROTTLING["dynamodb"], rate=0.3, operations=DYNAMODB_WRITES)
    ],
    "DynamoDB answers InternalServerError (20 %)": [
        Fault("dynamodb", SERVER_ERROR["dynamodb"], rate=0.2)
    ],
    "AutoScaling refused": [Fault("autoscaling", REFUSE)],
    "SQS receives answered KmsThrottled": [
        Fault("sqs", "KmsThrottled", operations=frozenset({"ReceiveMessage"}))
    ],
}
FAULT_SECONDS = 30.0
# A hang that ends before anyone reports the master (the demo's masters are stale after 10 s).
SHORT_HANG_SECONDS = 5.0
MIN_MINIONS, MAX_MINIONS = 2, 8


@dataclass
class Change:
    name: str
    # Seconds from the change's start until every live master reached every minion again
    # (a joining minion counts from its launch; a fault's change from the fault's start).
    until_reached_s: float | None
    outcome: str


@dataclass
class Summary:
    seconds: float
    seed: int
    changes: list[Change] = field(default_factory=list)
    events_sent: int = 0
    longest_until_reached_s: float = 0.0
    faults_injected: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def render(self) -> str:
        kinds = collections.Counter(change.name.split(":")[0] for change in self.changes)
        lines = [
            f"soak: {self.seconds / 60:.1f} min, seed {self.seed}",
            f"changes: {len(self.changes)} ("
            + ", ".join(f"{n} x {kind}" for kind, n in sorted(kinds.items()))
            + ")",
            f"lifecycle events sent by the fleet (all applied through the faults): "
            f"{self.events_sent}",
            "longest wait, after a change, until every live master reached every minion: "
            f"{self.longest_until_reached_s:.0f} s",
            "AWS calls answered by a fault: "
            + (", ".join(f"{n} {call}" for call, n in sorted(self.faults_injected.items())) or "0"),
            f"violations: {len(self.violations)}",
            *(f"  - {violation}" for violation in self.violations),
        ]
        return "\n".join(lines)


class Soak:
    """The soak over ``demo``, whose daemons reach AWS through ``proxy``."""

    def __init__(
        self, demo: Demo, proxy: LatencyProxy, seconds: float, seed: int, bound: float
    ) -> None:
        self.demo = demo
        self.proxy = proxy
        self.seconds = seconds
        self.bound = bound
        self.random = random.Random(seed)  # noqa: S311 - which change comes next, not a secret
        self.summary = Summary(seconds, seed)
        self.watcher = InvariantWatcher(demo, dead_letters=True)

    # ----- the changes ------------------------------------------------------------------------

    def _choices(self) -> list[tuple[str, Callable[[], Report]]]:
        minions = len(self.demo.minions)
        choices: list[tuple[str, Callable[[], Report]]] = [
            ("a master's instance dies (SIGKILL)", self.demo.kill_master),
            ("a master hangs (SIGSTOP) until replaced", self.demo.hang_master),
            ("a master hangs for a few seconds and resumes", self._hang_and_resume),
        ]
        if minions < MAX_MINIONS:
            choices.append(("a minion joins", self.demo.scale_out))
        if minions > MIN_MINIONS:
            choices.append(("a minion leaves", self.demo.scale_in))
        for fault in FAULTS:
            choices.append((f"fault: {fault}, for {FAULT_SECONDS:.0f} s", self._fault(fault)))
        return choices

    def _hang_and_resume(self) -> Report:
        begun = time.monotonic()
        master = self.random.choice(self.demo.live_masters())
        master.process.signal_group(signal.SIGSTOP)
        try:
            time.sleep(SHORT_HANG_SECONDS)
        finally:
            master.process.signal_group(signal.SIGCONT)
        answer = self._every_minion_answers(begun)
        return Report(f"{master.name} hung {SHORT_HANG_SECONDS:.0f} s, resumed", answer=answer)

    def _fault(self, name: str) -> Callable[[], Report]:
        def inject() -> Report:
            begun = time.monotonic()
            for fault in FAULTS[name]:
                self.proxy.fault(fault)
            clear = threading.Timer(FAULT_SECONDS, self.proxy.clear)
            clear.start()
            try:
                grow = len(self.demo.minions) < MAX_MINIONS and self.random.random() < 0.5
                if grow or len(self.demo.minions) <= MIN_MINIONS:
                    report = self.demo.scale_out()
                else:
                    report = self.demo.scale_in()
            finally:
                clear.join()
                self.proxy.clear()
            answer = self._every_minion_answers(begun)
            return Report(f"{name}; meanwhile {report.outcome}", answer=answer)

        return inject

    def _every_minion_answers(self, begun: float) -> float:
        self.demo.wait(
            self.demo.reach().complete,
            self.bound,
            "every minion to answer",
            explain=self.demo.unreached,
        )
        return time.monotonic() - begun

    # ----- the run ----------------------------------------------------------------------------

    def run(self) -> Summary:
        self.watcher.start()
        deadline = time.monotonic() + self.seconds
        try:
            while time.monotonic() < deadline and not self.summary.violations:
                name, change = self.random.choice(self._choices())
                self._change(name, change)
            self.proxy.clear()
            self._check_registry()
        finally:
            self.watcher.stop()
            self._finish()
        return self.summary

    def _change(self, name: str, change: Callable[[], Report]) -> None:
        try:
            report = self.demo.timeline.run(name, change)
        except Exception as error:
            # A wait that timed out (the fleet did not get back to health within its bound),
            # or the lab itself failing: either way the run stops here and says why.
            self.summary.violations.append(f"{name}: {type(error).__name__}: {error}")
            self.summary.changes.append(Change(name, None, str(error)))
            return
        answer = report.answer
        self.summary.changes.append(Change(name, answer, report.outcome))
        if answer is not None:
            self.summary.longest_until_reached_s = max(self.summary.longest_until_reached_s, answer)
            if answer > self.bound:
                self.summary.violations.append(
                    f"{name}: every live master reached every minion only after {answer:.0f} s "
                    f"(bound {self.bound:.0f} s)"
                )

    def _check_registry(self) -> None:
        """With every fault cleared and the fleet settled, the registry holds what the fleet
        simulator knows of every instance."""
        fleet = self.demo.fleet
        assert fleet is not None
        expected = {"in_service": "running", "terminated": "terminated"}

        def differences() -> list[str]:
            session = self.demo.session()
            rows = {
                role: {row["instance_id"]: row["state"] for row in session.list_instances(role)}
                for role in ("master", "minion")
            }
            return [
                f"{instance.role} {instance.instance_id}: the fleet has it {instance.state}, "
                f"the registry {rows[instance.role].get(instance.instance_id)}"
                for instance in list(fleet.instances.values())
                if instance.state in expected
                and rows[instance.role].get(instance.instance_id) != expected[instance.state]
            ]

        try:
            self.demo.wait(lambda: not differences(), self.bound, "the registry to settle")
        except TimeoutError:
            self.summary.violations.extend(differences())

    def _finish(self) -> None:
        fleet = self.demo.fleet
        self.summary.events_sent = len(fleet.sent) if fleet is not None else 0
        injected = self.proxy.counts()["injected"]
        self.summary.faults_injected = {
            call: sum(modes.values()) for call, modes in injected.items()
        }
        self.summary.violations.extend(self.watcher.breaches)


def set_up(demo: Demo, workdir: Path) -> LatencyProxy:
    """Puts the fault injector between every daemon and AWS, and plays the demo's first
    steps (the emulator, the data stack, the groups, 3 masters, the minions)."""
    proxy = LatencyProxy([demo.emulator.port, demo.lifecycle.port], 0, workdir)
    proxy.start()
    demo.aws_env = {
        "AWS_ENDPOINT_URL": proxy.url(demo.emulator.port),
        "AWS_ENDPOINT_URL_AUTO_SCALING": proxy.url(demo.lifecycle.port),
    }
    for name, action in set_up_steps(demo):
        demo.timeline.run(name, action)
    return proxy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="the draws' seed (default: new)")
    parser.add_argument("--minions", type=int, default=4, help="minions at first (default 4)")
    parser.add_argument(
        "--bound",
        type=float,
        default=300.0,
        help="seconds within which every live master must reach every minion again after "
        "a change (default 300)",
    )
    parser.add_argument("--json", type=Path, help="also write the summary here, as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)

    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="phx-soak-", dir="/tmp"))
    demo = Demo(workdir, masters=3, minions=args.minions, join=1)
    proxy: LatencyProxy | None = None
    try:
        proxy = set_up(demo, workdir)
        summary = Soak(demo, proxy, args.minutes * 60, seed, args.bound).run()
        print()
        print(demo.timeline.summary())
        print()
        print(summary.render())
        if args.json is not None:
            args.json.write_text(json.dumps(asdict(summary), indent=2) + "\n")
        return 0 if not summary.violations else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        if proxy is not None:
            proxy.stop()
        tear_down(demo, workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
