"""Benchmark: the cost of one master_list beacon check and of one registry refresh.

Setup: the AWS emulator with a Phoenix stack and 20 masters registered and heartbeating
(each by a real `_core.Engine`), reached through a TCP proxy on loopback that models the
round trip of an AWS call in the region (``--rtt-ms``, default 5) and counts requests and
response bytes (phoenix_lab.latency_proxy).

- Phoenix: the beacon's own path, ``phoenix_salt.follow.check(opts, salt)`` as
  ``_beacons/master_list.beacon`` calls it, with a minion's options. The core's background
  refresher reads the registry every second here; each check only compares cached snapshots
  (and the drop-in, which stays right).
- Reference, in the same run: the 2015 design, in which each check scans the masters table
  (boto3 Scan, every attribute), keeps the live masters, orders them (the same rendezvous
  order) and compares them with the drop-in.

Prints each check's wall time (median and 99th percentile), AWS requests and response bytes
per check and per refresh, the ratios, and a cost model of the registry reads for 1k, 10k
and 100k minions. Numbers only: no timing assertion.

    .venv/bin/python bench/beacon/bench_beacon.py [--rtt-ms 5] [--checks 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from phoenix_lab.cluster import master_instance_id, minion_instance_id
from phoenix_lab.emulator import REGION, Emulator
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_lab.processes import interrupt_on_sigterm
from phoenix_lab.stack import provision
from phoenix_salt import _core, follow

MASTERS = 20
QUERY = "dynamodb Query"
SCAN = "dynamodb Scan"
# On-demand read request units, us-east-1 (per million); an eventually consistent read of up
# to 4 KB is half a unit.
DOLLARS_PER_MILLION_READ_UNITS = 0.125
SECONDS_PER_MONTH = 30 * 24 * 3600
# Every master row shares the cluster's partition key, so every minion's read lands on one
# partition, which serves at most 3,000 read units a second.
PARTITION_READ_UNITS_PER_SECOND = 3000


def master_addresses() -> dict[str, str]:
    return {master_instance_id(n): f"10.0.{n}.10" for n in range(1, MASTERS + 1)}


def register_masters(block: dict[str, Any]) -> None:
    """Twenty masters, registered and heartbeating once, as their engines would."""
    for master_id, address in master_addresses().items():
        config = {**block, "master_id": master_id, "master_address": address}
        engine = _core.Engine(_core.Config.from_json(json.dumps(config)))
        engine.register_master()
        engine.heartbeat()


def minion_opts(workdir: Path, block: dict[str, Any]) -> dict[str, Any]:
    """A minion's options as the beacon sees them, already running the list the beacon
    wants: every check finds nothing to do, the common case.

    The default kind, a minion connected to every master (``master_type: str``): Salt shows
    its beacon the options of the connection to its first master, and the list it loaded
    is read from the drop-in, which ``phoenix minion-config`` wrote before salt-minion
    started. Here it is written now and dated to this process's start, which is what the
    beacon compares it with (``follow.loaded_masters``)."""
    (workdir / "minion.d").mkdir(parents=True, exist_ok=True)
    minion_id = minion_instance_id(1)
    opts = {"id": minion_id, "conf_file": str(workdir / "minion"), "phoenix": block}
    drop_in = follow.default_drop_in_path(opts)
    written = _core.write_minion_config(
        _core.Config.from_json(json.dumps(block)), minion_id, drop_in
    )
    started = follow._process_started()
    os.utime(drop_in, (started, started))
    return {**opts, "master": written["masters"][0]}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def time_checks(check: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        check()
        samples.append(time.perf_counter() - started)
    return samples


def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: attribute names plus values (strings in UTF-8, numbers
    about one byte per two digits plus one)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        (kind, raw), *_ = value.items()
        if kind == "S":
            size += len(raw.encode())
        elif kind == "N":
            size += math.ceil(len(raw.lstrip("-").replace(".", "")) / 2) + 1
        elif kind in {"BOOL", "NULL"}:
            size += 1
        else:
            size += len(json.dumps(raw))
    return size


def run_phoenix(opts: dict[str, Any], proxy: LatencyProxy, checks: int) -> dict[str, float]:
    follower, _ = follow.follower_for(opts)
    # Until the first read, then settle: the first snapshot writes the drop-in.
    deadline = time.monotonic() + 30
    while follower.health()["snapshot"] is None and time.monotonic() < deadline:
        follow.check(opts, None)
        time.sleep(0.01)
    if follower.health()["snapshot"] is None:
        raise SystemExit(f"the refresher never read the registry: {follower.health()}")
    assert len(follower.health()["snapshot"]["masters"]) == MASTERS
    # The running minion already uses the list the registry gives: nothing to do.
    for _ in range(3):
        assert follow.check(opts, None) == []
        time.sleep(0.05)

    proxy.reset()
    reads_before = follower.health()["refresh"]["reads"]
    started = time.monotonic()
    samples = time_checks(lambda: follow.check(opts, None), checks)
    # Let the refresher read a few times more, so requests per refresh are well measured.
    while time.monotonic() - started < 10:
        follow.check(opts, None)
        time.sleep(0.01)
    counts = proxy.counts()
    reads = follower.health()["refresh"]["reads"] - reads_before
    requests = sum(counts["calls"].values())
    return {
        "median_s": statistics.median(samples),
        "p99_s": percentile(samples, 0.99),
        "requests_per_refresh": requests / reads,
        "bytes_per_refresh": counts["response_bytes"].get(QUERY, 0) / reads,
        "refreshes": reads,
        "other_calls": {k: v for k, v in counts["calls"].items() if k != QUERY},
    }


def run_reference(
    opts: dict[str, Any], dynamodb: Any, table: str, proxy: LatencyProxy, checks: int
) -> dict[str, Any]:
    stale_after_ms = 30_000
    drop_in = Path(follow.default_drop_in_path(opts))

    def check() -> bool:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = dynamodb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        now_ms = time.time() * 1000
        live = {
            item["instance_id"]["S"]: item["address"]["S"]
            for item in items
            if item.get("cluster", {}).get("S") == opts["phoenix"]["cluster"]
            and item.get("state", {}).get("S") == "running"
            and "address" in item
            and now_ms - int(item.get("heartbeat_ms", {}).get("N", "0")) <= stale_after_ms
        }
        order = [live[i] for i in _core.order_masters(opts["id"], list(live))]
        header = next(
            line
            for line in drop_in.read_text().splitlines()
            if line.startswith("# phoenix-masters: ")
        )
        return order != json.loads(header.partition(": ")[2])

    assert check() is False, "the reference disagrees with the drop-in"
    proxy.reset()
    samples = time_checks(check, checks)
    counts = proxy.counts()
    item_bytes = sum(dynamodb_item_bytes(item) for item in dynamodb.scan(TableName=table)["Items"])
    return {
        "median_s": statistics.median(samples),
        "p99_s": percentile(samples, 0.99),
        "requests_per_check": counts["calls"].get(SCAN, 0) / checks,
        "bytes_per_check": counts["response_bytes"].get(SCAN, 0) / checks,
        "item_bytes": item_bytes,
    }


def print_cost_model(item_bytes: int, refresh_seconds: float) -> None:
    units = max(1, math.ceil(item_bytes / 4096)) * 0.5
    print()
    print(
        f"Cost model: one refresh = one Query reading {MASTERS} master rows "
        f"({item_bytes:,} bytes of items, so {units:g} read unit eventually consistent)."
    )
    print(
        f"On demand at ${DOLLARS_PER_MILLION_READ_UNITS}/million read units; every read hits "
        f"one partition ({PARTITION_READ_UNITS_PER_SECOND:,} read units/s at most)."
    )
    print(f"{'minions':>9}{'interval':>10}{'reads/s':>10}{'units/s':>10}{'$/month':>11}")
    for minions in (1_000, 10_000, 100_000):
        for interval in (refresh_seconds, 30, 60, 300):
            per_second = minions / interval
            dollars = per_second * units * SECONDS_PER_MONTH / 1e6 * DOLLARS_PER_MILLION_READ_UNITS
            flag = "" if per_second * units <= PARTITION_READ_UNITS_PER_SECOND / 2 else "  (hot)"
            print(
                f"{minions:>9,}{interval:>9g}s{per_second:>10,.0f}{per_second * units:>10,.0f}"
                f"{dollars:>11,.2f}{flag}"
            )
    print("(hot): over half of one partition's read capacity; choose a longer interval.")


def main() -> None:
    interrupt_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=5.0, help="modelled AWS round trip")
    parser.add_argument("--checks", type=int, default=20_000, help="Phoenix checks timed")
    parser.add_argument("--reference-checks", type=int, default=300, help="reference checks")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="phx-bench-", dir="/tmp"))
    emulator = Emulator(workdir / "aws")
    proxy = LatencyProxy([emulator.port], args.rtt_ms, workdir)
    try:
        emulator.start()
        proxy.start()
        os.environ.update(emulator.env())
        stack = provision(emulator, "bench")
        # The masters heartbeat once and must stay live for the whole run; no engine runs to
        # report them, and replace_after may not be below master_stale_after.
        block = stack.phoenix_block(
            master_stale_after=3600,
            replacement={"enabled": False, "replace_after": 3600},
            beacon={"refresh_interval": 1},
        )
        register_masters(block)
        # From here on, every AWS call goes through the proxy.
        os.environ["AWS_ENDPOINT_URL"] = proxy.url(emulator.port)
        opts = minion_opts(workdir / "minion", block)
        dynamodb = boto3.client(
            "dynamodb", endpoint_url=proxy.url(emulator.port), region_name=REGION
        )
        print(
            f"{MASTERS} masters; modelled round trip {args.rtt_ms:g} ms; "
            f"refresh every {block['beacon']['refresh_interval']} s",
            flush=True,
        )
        phoenix = run_phoenix(opts, proxy, args.checks)
        reference = run_reference(
            opts, dynamodb, f"phoenix-{stack.cluster}-masters", proxy, args.reference_checks
        )
        # One refresh serves every check until the next one: at one check a second and
        # the default 10 s refresh, ten checks.
        checks_per_refresh = 10
        print()
        print(f"{'':26}{'median':>12}{'p99':>12}{'requests':>12}{'bytes':>12}   per check")
        print(
            f"{'phoenix beacon':26}{phoenix['median_s'] * 1e6:>10.1f}us"
            f"{phoenix['p99_s'] * 1e6:>10.1f}us"
            f"{phoenix['requests_per_refresh'] / checks_per_refresh:>12.3f}"
            f"{phoenix['bytes_per_refresh'] / checks_per_refresh:>12,.0f}"
        )
        print(
            f"{'reference: scan per check':26}{reference['median_s'] * 1e3:>10.2f}ms"
            f"{reference['p99_s'] * 1e3:>10.2f}ms{reference['requests_per_check']:>12.3f}"
            f"{reference['bytes_per_check']:>12,.0f}"
        )
        print(
            f"ratio reference / phoenix: {reference['median_s'] / phoenix['median_s']:,.0f}x "
            f"wall time per check (median)"
        )
        print(
            f"per refresh: {phoenix['requests_per_refresh']:.2f} requests, "
            f"{phoenix['bytes_per_refresh']:,.0f} response bytes for {MASTERS} masters "
            f"({phoenix['refreshes']} refreshes measured; other calls: {phoenix['other_calls']})"
        )
        print(
            f"(requests and bytes per check for phoenix: one refresh per {checks_per_refresh} "
            f"checks, the default 10 s refresh with a 1 s beacon)"
        )
        print_cost_model(reference["item_bytes"], 10)
    finally:
        proxy.stop()
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
