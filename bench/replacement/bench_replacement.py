"""Benchmark: how long a broken master takes to be replaced by AutoScaling until the
replacement serves every minion: a hung master, which Phoenix's live masters report, against
a dead instance, which AWS's own EC2 health check finds, on one cluster, in one run.

Setup: the demo's cluster with the demo's settings (``phoenix_lab.demo``: the AWS
emulator with the data stack, the fleet simulator's groups, 3 salt-masters booted through
``phoenix master-bootstrap`` with the engine and reactor, each running its own minion, and
``--minions`` minions on every master; ``heartbeat_interval`` 2, ``master_stale_after`` 10,
``master_drain_time`` 5, ``replacement.replace_after`` 20 and ``launch_grace`` 30, the
simulator's EC2 health check after 10 s). Each repeat breaks the busiest master twice, with
the demo's own steps:

- Phoenix (hang, ``Demo.hang_master``): SIGSTOP to every process of salt-master. Its
  instance still looks healthy to EC2; once a live master's engine has watched its
  heartbeat stand still for ``replace_after``, it claims it in the registry and reports it
  with ``SetInstanceHealth(Unhealthy)``.
- Reference (kill, ``Demo.kill_master``): SIGKILL to every process of the instance (the
  master and its own minion): AWS's own path, the simulator's EC2 health check finds no
  process left and marks the instance Unhealthy after 10 s.

Both end alike: AutoScaling terminates the instance through its terminate hook (it drains
for ``master_drain_time``) and at the same moment launches a replacement (terminate and
launch), which boots through ``phoenix master-bootstrap`` and registers once salt-master
serves; the trial ends when every minion is on every live master again (the demo's own
measure: ``salt '*' test.ping`` on every live master reaches every minion and every minion's
drop-in lists every live master).

The parts of the path, each timed from the previous one's end (time zero: the signal), from
what the lab records:

1. out of the live list: the master's last ``heartbeat_ms`` plus ``master_stale_after`` (the
   live list's rule);
2. reported Unhealthy: hang, the claim's ``reported_ms`` (in the master's registry row,
   attribute ``replacement``; the claim's ``at_ms`` is shown beside it); kill, when the
   simulator's EC2 check marked it. AWS's check does not wait for the heartbeat: for the
   kill this part is what is left of the check's 10 s after part 1;
3. terminating: AutoScaling acted on the status, the terminate hook's message was sent
   (``Fleet.moments``; the simulator looks every 0.25 s);
4. replacement launched: its launch hook's message was sent;
5. booted and live: ``phoenix master-bootstrap``, salt-master, and its engine registered it
   as running: its first heartbeat as a live master (its registry row, read every 0.5 s);
6. every minion on it: as above, probed with ``test.ping``, so known to within one probe
   round (a few seconds).

The old instance's termination (its drain, then the hook let go on) runs beside the boot
and is shown apart. Before each trial, every minion is on every live master and every master
launched more than ``launch_grace`` ago (a master in its launch grace is not judged, and a
trial would measure the grace). Printed: each milestone as it passes, every trial with its
parts (seconds and share of the total), the medians per path and per part, and the ratio
hang / kill: how much longer Phoenix's judgement of a hung master takes than AWS's own check
of a dead instance. Numbers only: no timing assertion anywhere.

    .venv/bin/python bench/replacement/bench_replacement.py [--repeats 3] [--minions 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phoenix_lab.demo import Demo, Report, set_up_steps, tear_down
from phoenix_lab.processes import interrupt_on_sigterm
from phoenix_lab.stack import client

PATHS = ("hang", "kill")
LABELS = {"hang": "hang (Phoenix reports it)", "kill": "kill (EC2 health check)"}
# The milestones of one replacement, in the order of the path, with what each part is.
PARTS = (
    ("stale", "out of the live list"),
    ("reported", "reported Unhealthy"),
    ("terminating", "terminating (hook)"),
    ("launched", "replacement launched"),
    ("live", "booted and live"),
    ("served", "every minion on it"),
)
# How often the watcher reads the masters' rows: well under the heartbeat interval (2 s),
# so the first heartbeat a replacement records as a live master is the one read.
WATCH_EVERY = 0.5


def say(text: str) -> None:
    print(text, flush=True)


def number(row: dict[str, Any], name: str) -> int | None:
    """A number attribute of a DynamoDB item (the client's wire form), or None."""
    value = row.get(name, {}).get("N")
    return int(value) if value is not None else None


class Watcher:
    """Reads every master row of the registry every ``WATCH_EVERY`` seconds in a thread of
    its own: it keeps each row as last read (a replaced master's row keeps its last heartbeat
    and the claim), and each master's first heartbeat as a live master. While a trial runs it
    says each milestone of the broken master's replacement as it passes."""

    def __init__(self, demo: Demo) -> None:
        assert demo.stack is not None
        self.demo = demo
        self.table = demo.stack.outputs["MastersTable"]
        self.cluster = demo.stack.cluster
        self.stale_after_ms = int(demo.phoenix["master_stale_after"] * 1000)
        self.rows: dict[str, dict[str, Any]] = {}
        self.first_live_beat: dict[str, int] = {}
        # Every master's name, kept after the demo forgets a replaced one.
        self.names: dict[str, str] = {}
        self._dynamodb = client(demo.emulator, "dynamodb")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        # The breaks that happened before the current trial, and what was said of its own.
        self._earlier: set[str] = set()
        self._said: set[str] = set()

    def start(self) -> None:
        # One read at once: the first trial's settling reads the rows.
        self._read()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def expect_break(self) -> None:
        """The next master the demo breaks is the trial's."""
        with self._lock:
            self._earlier = set(self.demo.broken_at)
            self._said = set()

    def name(self, instance_id: str | None) -> str:
        return self.names.get(instance_id or "", "a master")

    def _run(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            try:
                self._read()
                self._progress()
            except Exception as err:  # an emulator hiccup: the next read tries again
                say(f"    (watcher: {err})")

    def _read(self) -> None:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._dynamodb.query(
                TableName=self.table,
                KeyConditionExpression="#c = :c",
                ExpressionAttributeNames={"#c": "cluster"},
                ExpressionAttributeValues={":c": {"S": self.cluster}},
                ConsistentRead=True,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        now_ms = time.time() * 1000
        for master_id, master in list(self.demo.masters.items()):
            self.names.setdefault(master_id, master.name)
        with self._lock:
            for item in items:
                instance_id = item["instance_id"]["S"]
                self.rows[instance_id] = item
                beat = number(item, "heartbeat_ms")
                expires = number(item, "expires_at")
                # The live list's rule: running, an address, a fresh heartbeat, not expired.
                live = (
                    item.get("state", {}).get("S") == "running"
                    and "address" in item
                    and beat is not None
                    and now_ms - beat <= self.stale_after_ms
                    and (expires is None or expires * 1000 > now_ms)
                )
                if live and beat is not None:
                    self.first_live_beat.setdefault(instance_id, beat)

    def _progress(self) -> None:
        with self._lock:
            # A copy: the demo adds to it in the main thread.
            fresh = [i for i in list(self.demo.broken_at) if i not in self._earlier]
            if not fresh:
                return
            old = fresh[0]
            marks, notes = milestones(self.demo, self, old)
            passed = time.monotonic() - self.demo.broken_at[old]
            for key, at in sorted(marks.items(), key=lambda kv: kv[1]):
                if key not in self._said and at <= passed:
                    self._said.add(key)
                    say(f"    {at:6.1f} s  {notes[key]}")


def milestones(demo: Demo, watcher: Watcher, old: str) -> tuple[dict[str, float], dict[str, str]]:
    """The milestones of ``old``'s replacement known so far, in seconds after the break, and
    what each one is (the served milestone is the demo's own, added by the trial)."""
    assert demo.fleet is not None
    fleet = demo.fleet
    zero = demo.broken_at[old]
    # Registry times are this host's wall clock in ms; the lab's are time.monotonic().
    wall = time.time() - time.monotonic()

    def since(ms: int) -> float:
        return ms / 1000 - wall - zero

    marks: dict[str, float] = {}
    notes: dict[str, str] = {}
    row = watcher.rows.get(old, {})
    beat = number(row, "heartbeat_ms")
    if beat is not None:
        marks["stale"] = since(beat + watcher.stale_after_ms)
        notes["stale"] = (
            f"{watcher.name(old)} out of the live list (its last heartbeat + "
            f"{watcher.stale_after_ms / 1000:g} s)"
        )
    claim = row.get("replacement", {}).get("M", {})
    by = watcher.name(claim.get("by", {}).get("S"))
    at_ms, reported_ms = number(claim, "at_ms"), number(claim, "reported_ms")
    if at_ms is not None:
        marks["claimed"] = since(at_ms)
        notes["claimed"] = f"claimed by {by}'s engine (the registry's replacement claim)"
    moments = dict(fleet.moments.get(old, {}))
    # Whichever told AutoScaling first: the EC2 check, or a live master's report.
    told = []
    if "ec2_check_failed" in moments:
        told.append((moments["ec2_check_failed"] - zero, "failed the EC2 health check"))
    if reported_ms is not None:
        told.append((since(reported_ms), f"reported Unhealthy by {by} (SetInstanceHealth)"))
    if told:
        marks["reported"], notes["reported"] = min(told)
    if "terminating" in moments:
        marks["terminating"] = moments["terminating"] - zero
        notes["terminating"] = "AutoScaling terminates it: terminate hook sent"
    if "terminated" in moments:
        marks["drained"] = moments["terminated"] - zero
        notes["drained"] = "its termination went on (drained), beside the replacement's boot"
    new = fleet.replacements.get(old)
    if new is not None:
        launched = fleet.moments.get(new, {}).get("launching")
        if launched is not None:
            marks["launched"] = launched - zero
            notes["launched"] = f"replacement {new} launched: launch hook sent"
        first = watcher.first_live_beat.get(new)
        if first is not None:
            marks["live"] = since(first)
            notes["live"] = f"{watcher.name(new)} booted and live (first heartbeat as running)"
    return marks, notes


@dataclass
class Trial:
    path: str
    master: str
    told: str  # who told AutoScaling, and how
    marks: dict[str, float]  # milestone -> seconds after the break
    total: float  # the demo's replaced: until every minion was on every live master again

    def parts(self) -> dict[str, float | None]:
        """Each part's seconds, from the previous milestone's end (a milestone passed before
        its predecessor, as the kill's EC2 check can, gives its part 0; one not seen leaves
        its time to the next part)."""
        out: dict[str, float | None] = {}
        reached = 0.0
        for key, _ in PARTS:
            at = self.marks.get(key)
            if at is None:
                out[key] = None
                continue
            at = max(at, reached)
            out[key] = at - reached
            reached = at
        return out


def settle(demo: Demo, watcher: Watcher) -> None:
    """Every master live, every minion on every one of them, and none in its launch grace."""
    assert demo.fleet is not None
    demo.wait(lambda: len(demo.live_masters()) == demo.master_count, 180, "every master to be live")
    demo.wait(demo.spread, 180, "every minion to be on every live master")
    grace = float(demo.replacement.get("launch_grace", 300))
    # The judge's launch time: the row's launching_ms (the hook's or master-bootstrap's).
    launched = [
        number(watcher.rows.get(i.instance_id, {}), "launching_ms")
        for i in demo.fleet.in_service("master")
    ]
    newest = max((ms for ms in launched if ms is not None), default=0) / 1000
    left = newest + grace - time.time()
    if left > 0:
        say(
            f"  settling: the newest master launched {grace - left:.0f} s ago; {left:.0f} s to "
            f"the end of its launch grace ({grace:.0f} s)"
        )
        time.sleep(left)


def trial(demo: Demo, watcher: Watcher, path: str) -> Trial:
    assert demo.fleet is not None
    settle(demo, watcher)
    watcher.expect_break()
    before = set(demo.broken_at)
    breaking: Callable[[], Report] = demo.hang_master if path == "hang" else demo.kill_master
    report = breaking()
    (old,) = set(demo.broken_at) - before
    assert report.replaced is not None
    # The watcher reads the rows once more, so the replacement's first beat is in.
    time.sleep(WATCH_EVERY * 2)
    marks, notes = milestones(demo, watcher, old)
    marks["served"] = report.replaced
    say(f"    {report.replaced:6.1f} s  every minion on every live master again")
    for key in ("stale", "reported", "terminating", "launched", "live"):
        if key not in marks:
            say(f"    (no {key} milestone recorded for {old})")
    told = notes.get("reported", "AutoScaling was told by nobody recorded")
    return Trial(path, f"{watcher.name(old)} ({old})", told, marks, report.replaced)


def show(trial: Trial, number_: int, repeats: int) -> None:
    say(
        f"  trial {number_}/{repeats}, {LABELS[trial.path]}: {trial.master} replaced in "
        f"{trial.total:.1f} s; {trial.told}"
    )
    say(f"    {'part':<22}  {'at s':>6}  {'part s':>6}  {'share':>5}")
    parts = trial.parts()
    for key, label in PARTS:
        at, part = trial.marks.get(key), parts[key]
        if at is None or part is None:
            say(f"    {label:<22}  {'-':>6}  {'-':>6}")
            continue
        say(f"    {label:<22}  {at:6.1f}  {part:6.1f}  {part / trial.total:5.0%}")
    if "claimed" in trial.marks:
        say(f"    (claimed at {trial.marks['claimed']:.1f} s)")
    if "drained" in trial.marks:
        say(f"    (the old instance's termination went on at {trial.marks['drained']:.1f} s)")


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def report(trials: list[Trial]) -> None:
    say("")
    say("until the replacement of a broken master serves every minion (medians):")
    totals = {p: median([t.total for t in trials if t.path == p]) for p in PATHS}
    header = "".join(f"  {LABELS[p]:>28}" for p in PATHS)
    say(f"{'part':<22}{header}  {'hang - kill':>11}")
    for key, label in PARTS:
        cells, values = [], {}
        for path in PATHS:
            value = median([t.parts()[key] for t in trials if t.path == path])
            values[path] = value
            total = totals[path]
            cells.append(
                "-" if value is None or not total else f"{value:.1f} s ({value / total:4.0%})"
            )
        hang, kill = values["hang"], values["kill"]
        diff = f"{hang - kill:+.1f} s" if hang is not None and kill is not None else "-"
        say(f"{label:<22}" + "".join(f"  {c:>28}" for c in cells) + f"  {diff:>11}")
    hang_total, kill_total = totals["hang"], totals["kill"]
    if hang_total is None or kill_total is None:
        return
    cells = [f"{totals[p]:.1f} s" for p in PATHS]
    say(
        f"{'total':<22}"
        + "".join(f"  {c:>28}" for c in cells)
        + f"  {hang_total - kill_total:+11.1f} s"
    )
    for path in PATHS:
        runs = ", ".join(f"{t.total:.1f}" for t in trials if t.path == path)
        say(f"  {LABELS[path]}: trials {runs} s")
    say(
        f"ratio hang / kill: {hang_total / kill_total:.2f}x (Phoenix's judgement of a hung "
        "master against AWS's own check of a dead instance)"
    )


def main() -> int:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="trials of each path")
    parser.add_argument("--minions", type=int, default=6, help="minions (besides the masters')")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, configs)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="phx-bench-", dir="/tmp"))
    # The demo's settings, replacement included (Demo's default REPLACEMENT).
    demo = Demo(workdir, masters=3, minions=args.minions, join=0)
    watcher: Watcher | None = None
    trials: list[Trial] = []
    try:
        started = time.monotonic()
        for name, action in set_up_steps(demo):
            say(f"setting up: {name} ...")
            action()
        say(f"set up in {time.monotonic() - started:.0f} s; replacement {demo.replacement}")
        watcher = Watcher(demo)
        watcher.start()
        for repeat in range(args.repeats):
            for path in PATHS:
                say(f"trial {repeat + 1}/{args.repeats}, {LABELS[path]}")
                done = trial(demo, watcher, path)
                trials.append(done)
                show(done, repeat + 1, args.repeats)
        report(trials)
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        if watcher is not None:
            watcher.stop()
        tear_down(demo, workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
