"""Benchmark: how long until every minion of a broken master answers through a live master,
with Phoenix (failover minions moved by the beacon, and minions on every master) against
Salt's own failover alone, on one cluster, in one run.

Setup: the demo's cluster (``phoenix_lab.demo``: the AWS emulator with the data stack,
the fleet simulator's groups, 3 salt-masters booted through ``phoenix master-bootstrap``
with the engine and reactor) with two kinds of minions side by side, launched alike:

- Phoenix: ``--minions`` minions with the ``master_list`` beacon, their master list written
  by Phoenix (heartbeats stale after 10 s, registry read every 2 s, restart jitter 1 s).
- Phoenix on every master: ``--hot`` minions with the beacon and ``master_type: str``
  (Phoenix's default): connected to every master, so every one of them was on the broken
  master.
- Reference: ``--natives`` minions with Salt's own failover alone: a static list of the
  three masters and exactly the failover settings of Phoenix's drop-in (the same
  ``master_alive_interval``, keepalives, ``master_tries``), taken from a Phoenix minion's
  drop-in; no beacon.

Each trial breaks the master that serves the most Phoenix minions, after the reference
minions were restarted with that master first in their list (so it serves both kinds):

- (a) SIGKILL: the process dies; the kernel closes its sockets.
- (b) SIGSTOP: the process hangs; its sockets stay open, as on a hung or partitioned host.

From that moment, the minions that were on it are asked ``test.ping`` through every live
master at once (``salt -L <the ones not answered yet> -t 1``, the lab masters'
``gather_job_timeout`` 2 s), round after round (about 5 s each), until each
has answered or ``--cap`` seconds (120) passed. A kind's time is the moment its last
minion answered; a minion that did not answer by the cap counts as "not within the cap".
The master then comes back (the hung one is killed first) and the next trial waits until
every minion answers again. Printed: every trial, the medians, and the ratio reference /
Phoenix. Each time is known to within one probe round. Numbers only: no timing assertion anywhere.

    .venv/bin/python bench/failover/bench_failover.py [--repeats 3] [--minions 6] [--hot 3]
        [--natives 3]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from phoenix_lab.demo import Demo, tear_down
from phoenix_lab.processes import interrupt_on_sigterm
from phoenix_lab.salt import SaltMaster, SaltMinion

KINDS = ("phoenix", "hot", "reference")
LABELS = {"phoenix": "Phoenix failover", "hot": "Phoenix every master", "reference": "reference"}
BREAKS = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP}


def say(text: str) -> None:
    print(text, flush=True)


def failover_settings(minion: SaltMinion) -> dict[str, object]:
    """Every setting of a Phoenix minion's drop-in except its master list."""
    drop_in = yaml.safe_load(minion.drop_in_path.read_text())
    return {key: value for key, value in drop_in.items() if key != "master"}


def point_natives_at(demo: Demo, first: SaltMaster, masters: list[SaltMaster]) -> None:
    """Restarts every reference minion with ``first`` at the head of its static list."""
    order = [first.interface, *(m.interface for m in masters if m is not first)]
    natives = list(demo.natives.values())
    for minion in natives:
        minion.opts["master"] = order
    # At once: a salt-minion sometimes sits out the whole SIGTERM grace period.
    with ThreadPoolExecutor(len(natives)) as pool:
        list(pool.map(lambda minion: minion.stop(), natives))
    for minion in natives:
        minion.start()
    demo.wait(
        lambda: (
            set(demo.natives) <= {i for i, ok in first.ping(list(demo.natives), 5).items() if ok}
        ),
        120,
        f"the reference minions to answer through {first.name}",
    )


def settle(demo: Demo) -> None:
    """Every minion answers, and every Phoenix minion is on the master its order puts first
    (the beacon moves them back once a master is live again)."""
    demo.wait(demo.every_minion_answers, 180, "every minion to answer")
    demo.wait(demo.spread, 180, "the Phoenix minions to be on their first masters")


def trial(demo: Demo, how: str, cap: float) -> dict[str, float | None]:
    """Breaks the busiest master ``how``; returns, per kind, the seconds until the last of
    its minions that were on it answered through a live master (None: not within cap)."""
    settle(demo)
    live = demo.live_masters()
    through = demo.answering()
    load = {m: sum(1 for i in demo.minions if through.get(i) is m) for m in live}
    target = max(load, key=lambda m: load[m])
    point_natives_at(demo, target, live)
    through = demo.answering()
    affected = {
        "phoenix": {i for i in demo.minions if through.get(i) is target},
        "hot": set(demo.hot_minions),
        "reference": set(demo.natives),
    }
    others = [m for m in live if m is not target]
    say(
        f"  {how} {target.name}: "
        + ", ".join(f"{len(affected[kind])} {LABELS[kind]}" for kind in KINDS)
        + " minion(s) on it"
    )
    answered: dict[str, float] = {}
    broken_at = time.monotonic()
    target.process.signal_group(BREAKS[how])
    pending = set().union(*affected.values())
    while pending and time.monotonic() - broken_at < cap:
        with ThreadPoolExecutor(len(others)) as pool:
            rounds = list(pool.map(lambda m: m.ping(sorted(pending), timeout=1), others))
        now = time.monotonic() - broken_at
        for answers in rounds:
            for minion, ok in answers.items():
                if ok and minion in pending:
                    answered[minion] = now
                    pending.discard(minion)
    result: dict[str, float | None] = {}
    for kind in KINDS:
        if not affected[kind]:
            raise RuntimeError(f"no {kind} minion was on {target.name}: nothing to measure")
        times = [answered.get(i) for i in affected[kind]]
        result[kind] = max(t for t in times if t is not None) if None not in times else None
    # The master comes back (a hung one is killed first, as its instance would be).
    target.process.signal_group(signal.SIGKILL)
    target.stop()
    target.start()
    return result


def describe(seconds: float | None, cap: float) -> str:
    return f"not within {cap:.0f} s" if seconds is None else f"{seconds:.1f} s"


def main() -> int:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="trials of each break")
    parser.add_argument("--minions", type=int, default=6, help="Phoenix minions")
    parser.add_argument("--hot", type=int, default=3, help="Phoenix minions on every master")
    parser.add_argument("--natives", type=int, default=3, help="reference minions")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds a trial waits")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="phx-bench-", dir="/tmp"))
    # Failover minions: this benchmark measures how fast they move off a broken master.
    # The trials bring a broken master back themselves: nobody reports it to AutoScaling.
    demo = Demo(
        workdir,
        masters=3,
        minions=args.minions,
        join=0,
        master_type="failover",
        replacement={"enabled": False},
    )
    results: dict[str, dict[str, list[float | None]]] = {
        how: {kind: [] for kind in KINDS} for how in BREAKS
    }
    try:
        say("setting up: emulator, data stack, groups, 3 masters, minions ...")
        demo.start_emulator()
        demo.provision_stack()
        demo.create_groups()
        demo.start_masters()
        demo.start_minions()
        settings = failover_settings(next(iter(demo.minions.values())))
        demo.join_natives(args.natives, **settings)
        demo.join_hot(args.hot)
        say(f"reference minions' failover settings (Phoenix's drop-in): {settings}")
        for repeat in range(args.repeats):
            for how in BREAKS:
                say(f"trial {repeat + 1}/{args.repeats}, {how}")
                outcome = trial(demo, how, args.cap)
                for kind in KINDS:
                    results[how][kind].append(outcome[kind])
                say(
                    "    "
                    + ", ".join(f"{LABELS[k]} {describe(outcome[k], args.cap)}" for k in KINDS)
                )
        report(results, args.cap)
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        tear_down(demo, workdir)


def median(values: list[float | None], cap: float) -> tuple[float, bool]:
    """The median with a trial that did not answer counted as the cap; and whether the
    median itself is censored (at least half the trials did not answer)."""
    filled = [cap if v is None else v for v in values]
    middle = statistics.median(filled)
    return middle, sum(v is None for v in values) * 2 >= len(values) and middle >= cap


def report(results: dict[str, dict[str, list[float | None]]], cap: float) -> None:
    say("")
    say("until every minion of the broken master answers through a live master (medians):")
    say(f"{'break':<8}  {'kind':<21}  {'median':>8}  ratio reference / kind")
    for how, kinds in results.items():
        native, native_censored = median(kinds["reference"], cap)
        for kind in KINDS:
            value, censored = median(kinds[kind], cap)
            if kind == "reference":
                ratio = "-"
            elif censored:
                ratio = f"- ({LABELS[kind]} did not answer within the cap)"
            elif native_censored:
                ratio = (
                    f">= {native / value:.1f}x (the reference did not fail over within {cap:.0f} s)"
                )
            else:
                ratio = f"{native / value:.2f}x"
            shown = f"> {value:.0f} s" if censored else f"{value:.1f} s"
            trials = [describe(v, cap) for v in kinds[kind]]
            say(f"{how:<8}  {LABELS[kind]:<21}  {shown:>8}  {ratio}   trials {trials}")


if __name__ == "__main__":
    sys.exit(main())
