"""Benchmark: 2,000 mixed AutoScaling messages through a shallow queue, over a modelled network.

Phoenix's engine (``Engine.poll``: a long poll of 10, the batch's registry writes and
lifecycle completions run concurrently, one checked ``DeleteMessageBatch``) against a
reference loop in the same run that does the same work one message at a time: it receives
one message, applies it with ``engine.apply_body`` (Phoenix's own apply path, so the registry
writes and the lifecycle completions are identical) and deletes it. The two differ only in
batching and concurrency. ``--plain-reference`` adds the loop of earlier versions of this
benchmark (receive one, one unconditional PutItem, delete one), which does less work.
Prints msg/s for each, the ratio, and the AWS calls each made per message, counted.

How it measures:

- Queue depth. The AWS emulator (moto) scans the whole queue several times for each message
  a receive hands out, so a receive costs more the deeper the queue (about 130 ms a message
  at 1,000 deep): a full queue measures the emulator, not the consumer. A producer process
  keeps the queue topped up to ``--depth`` messages (visible or in flight) from before the
  clock starts until the last message is sent, so the loop always finds a full batch while
  the emulator's per-message cost stays small. The producer talks to the emulator directly:
  its calls are neither delayed nor counted.
- Network. ``--rtt-ms`` (default 10) models the round trip of an AWS call in the same
  region: a TCP proxy on 127.0.0.1 (phoenix_lab.latency_proxy, in its own process) in
  front of the emulator and of the lab's lifecycle-actions endpoint holds every chunk for half
  of it in each direction, for both loops alike. No TLS and no connection set-up cost are modelled.
  ``--rtt-ms 0`` forwards at once; the loops then share two things with the emulator, its
  one Python process and the machine's cores, and mostly measure those.
- Calls. The proxy counts every call of the measured loop, by service and operation, and
  the failed ones (a conditional write whose condition did not hold): "SQS calls / msg" and
  "AWS calls / msg" are these counts divided by the messages.
- Messages. Launch hooks, launch notifications, terminate hooks via SNS, terminate
  notifications; fresh instance ids for every loop in every round (EC2 never reuses one);
  an instance's four events are about 200 messages apart in the stream (a rolling fleet),
  so never in one batch. The loops take turns going first from round to round (two rounds
  by default: each goes first once).
- Services. DynamoDB is served by a second emulator process, apart from SQS, as AWS serves
  them; ``--no-separate-services`` has one emulator process serve both, one request at a
  time, which holds back the concurrent loop and not the reference.

    .venv/bin/python bench/engine/bench_engine.py [--messages 2000] [--rounds 2] \\
        [--depth 50] [--rtt-ms 10] [--pollers 2] [--no-separate-services] [--plain-reference]
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from phoenix_lab import messages
from phoenix_lab.cluster import minion_instance_id
from phoenix_lab.emulator import REGION, Emulator
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.processes import interrupt_on_sigterm
from phoenix_lab.stack import provision
from phoenix_salt import _core

GROUP = "phoenix-bench-minions"
TABLE = "phoenix-bench-minions"
# Instances between two events of one instance in the stream (four messages each).
SPREAD = 50
# A loop that deletes nothing for this long is stuck (a message waits out its visibility).
STALL_SECONDS = 120.0

PHOENIX = "phoenix engine"
REFERENCE = "reference, same work"
PLAIN = "reference, plain write"


def mixed_bodies(count: int, actions: LifecycleActions, first: int) -> tuple[list[str], list[str]]:
    """``count`` messages about instances ``first``, ``first + 1``...: per instance a launch
    hook, a launch notification, a terminate hook via SNS and a terminate notification, in
    that order but ``SPREAD`` instances apart. Returns the bodies and the lifecycle tokens."""
    keyed, tokens = [], []
    for n in range(count):
        index, kind = divmod(n, 4)
        instance = minion_instance_id(first + index)
        when = messages.aws_time()
        if kind == 0:
            action = actions.begin(GROUP, "phoenix-launch", instance)
            tokens.append(action.token)
            body = messages.lifecycle_hook(
                messages.LAUNCHING, instance, GROUP, action.token, "phoenix-launch", when
            )
        elif kind == 1:
            body = messages.sns_envelope(
                messages.asg_notification(messages.LAUNCH, instance, GROUP, when)
            )
        elif kind == 2:
            action = actions.begin(GROUP, "phoenix-terminate", instance)
            tokens.append(action.token)
            body = messages.sns_envelope(
                messages.lifecycle_hook(
                    messages.TERMINATING, instance, GROUP, action.token, "phoenix-terminate", when
                )
            )
        else:
            body = messages.sns_envelope(
                messages.asg_notification(messages.TERMINATE, instance, GROUP, when)
            )
        keyed.append(((index + kind * SPREAD, kind), json.dumps(body)))
    return [body for _, body in sorted(keyed)], tokens


def produce(
    url: str, queue_url: str, bodies: list[str], depth: int, consumed: Any, primed: Any
) -> None:
    """The producer (its own process): sends ``bodies`` in batches of up to ten, never more
    than ``depth`` ahead of what the loop has deleted (``consumed``); sets ``primed`` once
    the queue first holds ``depth`` messages."""
    sqs = boto3.client("sqs", endpoint_url=url, region_name=REGION)
    sent = 0
    while sent < len(bodies):
        wanted = min(10, len(bodies) - sent)
        if depth - (sent - consumed.value) < wanted:
            primed.set()
            time.sleep(0.002)
            continue
        entries = [
            {"Id": str(i), "MessageBody": body}
            for i, body in enumerate(bodies[sent : sent + wanted])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent += wanted
    primed.set()


def run_phoenix(
    engine: _core.Engine, total: int, consumed: Any, pollers: int = 1
) -> collections.Counter[str]:
    """``pollers`` threads call ``Engine.poll`` in a loop, as the engine's own pollers do
    (``phoenix.pollers``); each call releases the GIL while it waits on AWS."""
    notes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    state = {"done": 0, "progress": time.monotonic()}

    def poll_until_done() -> None:
        while True:
            with lock:
                if state["done"] >= total:
                    return
            report = engine.poll(wait_seconds=1)
            with lock:
                state["done"] += report["deleted"]
                consumed.value = state["done"]
                notes["engine-reported SQS calls"] += report["sqs_calls"]
                for key in ("retry", "rejected", "delete_failed"):
                    notes[key] += report[key]
                notes["empty receives"] += report["received"] == 0
                state["progress"] = stall_check(
                    report["deleted"], state["progress"], state["done"], total
                )

    failures: list[BaseException] = []

    def poller() -> None:
        try:
            poll_until_done()
        except BaseException as exc:  # re-raised below, in the measuring thread
            failures.append(exc)
            with lock:
                state["done"] = total  # stops the other pollers

    threads = [threading.Thread(target=poller) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return notes


def one_at_a_time(
    apply: Callable[[str], str], sqs: Any, queue_url: str, total: int, consumed: Any
) -> collections.Counter[str]:
    """The reference loops: one message per receive, ``apply(body)`` for it, and one delete
    when it returns "done" (any other outcome leaves the message for redelivery, as the
    engine would)."""
    notes: collections.Counter[str] = collections.Counter()
    done, progress = 0, time.monotonic()
    while done < total:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        batch = received.get("Messages", [])
        notes["empty receives"] += not batch
        for message in batch:
            outcome = apply(message["Body"])
            if outcome != "done":
                notes[outcome] += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            done += 1
            consumed.value = done
        progress = stall_check(len(batch), progress, done, total)
    return notes


def run_reference(
    engine: _core.Engine, sqs: Any, queue_url: str, total: int, consumed: Any
) -> collections.Counter[str]:
    """One message per receive, Phoenix's own apply path for it, one delete."""

    def apply(body: str) -> str:
        return str(engine.apply_body(body)["outcome"])

    return one_at_a_time(apply, sqs, queue_url, total, consumed)


def run_plain(
    sqs: Any, dynamodb: Any, queue_url: str, total: int, consumed: Any
) -> collections.Counter[str]:
    """One message per receive, one unconditional write, one delete (no lifecycle work)."""

    def apply(text: str) -> str:
        body = json.loads(text)
        payload = json.loads(body["Message"]) if "Message" in body else body
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                "cluster": {"S": "reference"},
                "instance_id": {"S": payload["EC2InstanceId"]},
                "event": {"S": payload.get("Event") or payload.get("LifecycleTransition")},
            },
        )
        return "done"

    return one_at_a_time(apply, sqs, queue_url, total, consumed)


def stall_check(moved: int, progress: float, done: int, total: int) -> float:
    now = time.monotonic()
    if moved:
        return now
    if now - progress > STALL_SECONDS:
        raise RuntimeError(f"no message deleted for {STALL_SECONDS:.0f} s ({done} of {total})")
    return progress


@dataclass
class Run:
    messages: int
    seconds: float
    calls: dict[str, int]
    errors: dict[str, dict[str, int]]
    notes: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def per_message(self, service: str | None = None) -> float:
        counted = sum(n for op, n in self.calls.items() if service in {None, op.split()[0]})
        return counted / self.messages


def measure(
    loop: Callable[[Any], collections.Counter[str]],
    bodies: list[str],
    depth: int,
    emulator: Emulator,
    queue_url: str,
    proxy: LatencyProxy,
) -> Run:
    """Times ``loop`` over ``bodies`` while a producer keeps the queue ``depth`` deep."""
    context = multiprocessing.get_context("spawn")
    consumed = context.RawValue("q", 0)
    primed = context.Event()
    producer = context.Process(
        target=produce,
        args=(emulator.url, queue_url, bodies, depth, consumed, primed),
        name="bench-producer",
    )
    producer.start()
    try:
        if not primed.wait(120):
            raise RuntimeError("the producer did not fill the queue within 120 s")
        proxy.reset()
        started = time.perf_counter()
        notes = loop(consumed)
        seconds = time.perf_counter() - started
        counts = proxy.counts()
    finally:
        producer.join(30)
        if producer.is_alive():
            producer.terminate()
            producer.join()
    return Run(len(bodies), seconds, counts["calls"], counts["errors"], notes)


def describe(run: Run) -> str:
    text = (
        f"{run.rate:7.1f} msg/s  {run.seconds:6.1f} s  "
        f"{run.per_message('sqs'):.3f} SQS calls/msg  {run.per_message():.3f} AWS calls/msg"
    )
    unusual = {k: v for k, v in run.notes.items() if v and k != "engine-reported SQS calls"}
    reported = run.notes.get("engine-reported SQS calls")
    counted = sum(n for op, n in run.calls.items() if op.startswith("sqs "))
    if reported is not None and reported != counted:
        unusual["engine reported SQS calls"] = reported
    return text + (f"  ({', '.join(f'{k} {v}' for k, v in unusual.items())})" if unusual else "")


def print_table(runs: dict[str, list[Run]], rtt_ms: float) -> None:
    names = list(runs)
    print()
    print(f"{'':26}{'msg/s (median)':>15}{'SQS calls/msg':>15}{'AWS calls/msg':>15}")
    for name in names:
        rate = statistics.median(r.rate for r in runs[name])
        total = sum(r.messages for r in runs[name])
        sqs = sum(r.per_message("sqs") * r.messages for r in runs[name]) / total
        aws = sum(r.per_message() * r.messages for r in runs[name]) / total
        print(f"{name:26}{rate:15.1f}{sqs:15.3f}{aws:15.3f}")
    phoenix = statistics.median(r.rate for r in runs[PHOENIX])
    for name in names[1:]:
        per_round = " ".join(
            f"{p.rate / r.rate:.2f}x" for p, r in zip(runs[PHOENIX], runs[name], strict=True)
        )
        ratio = phoenix / statistics.median(r.rate for r in runs[name])
        print(f"ratio phoenix / {name:22}{ratio:7.2f}x  (rounds: {per_round})")
    print(f"modelled network round trip {rtt_ms:g} ms")

    print()
    print("AWS calls per message by operation, all rounds (failed calls in brackets):")
    ops = sorted({op for name in names for r in runs[name] for op in r.calls})
    print(f"{'':38}" + "".join(f"{name.split(',')[-1].strip():>14}" for name in names))
    for op in ops:
        cells = []
        for name in names:
            total = sum(r.messages for r in runs[name])
            made = sum(r.calls.get(op, 0) for r in runs[name]) / total
            failed = sum(sum(r.errors.get(op, {}).values()) for r in runs[name]) / total
            cells.append(f"{made:.3f}" + (f" ({failed:.3f})" if failed else ""))
        print(f"{op:38}" + "".join(f"{cell:>14}" for cell in cells))
    codes = collections.Counter()
    for name in names:
        for r in runs[name]:
            for op, by_code in r.errors.items():
                for code, n in by_code.items():
                    codes[f"{name}: {op} {code}"] += n
    for what, n in sorted(codes.items()):
        print(f"  failed: {what} x{n}")


def print_setup(args: argparse.Namespace) -> None:
    print(
        f"{args.messages} messages a round, {args.rounds} rounds, queue kept at "
        f"{args.depth} messages by a producer (not counted, not delayed)"
    )
    if args.rtt_ms:
        network = (
            f"{args.rtt_ms:g} ms (a TCP proxy on 127.0.0.1 holds every chunk "
            f"{args.rtt_ms / 2:g} ms each way, in front of the emulator and the lifecycle-"
            "actions endpoint, for every loop alike: a model of an in-region AWS call)"
        )
    else:
        network = "none (the proxy on 127.0.0.1 forwards at once and only counts calls)"
    print(f"modelled network round trip: {network}", flush=True)
    if args.separate_services:
        print("DynamoDB served by a second emulator process, apart from SQS", flush=True)
    else:
        print("SQS and DynamoDB served by one emulator process", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--depth", type=int, default=50, help="messages kept in the queue (visible or in flight)"
    )
    parser.add_argument(
        "--rtt-ms", type=float, default=10.0, help="modelled AWS round trip (0: none)"
    )
    parser.add_argument(
        "--plain-reference", action="store_true", help="also run the plain-write reference"
    )
    parser.add_argument(
        "--pollers", type=int, default=2, help="concurrent polls of the engine (phoenix.pollers)"
    )
    parser.add_argument(
        "--separate-services",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve DynamoDB from a second emulator process, as AWS serves it apart from SQS "
        "(--no-separate-services: one emulator process serves both, one request at a time)",
    )
    return parser.parse_args()


def point_at_proxy(
    emulator: Emulator, tables: Emulator, actions: LifecycleActions, proxy: LatencyProxy
) -> tuple[str, str]:
    """Points this process's AWS calls at the proxy: everything the measured loops call
    goes through it (the producer does not). Returns the SQS and DynamoDB URLs."""
    os.environ.update({**emulator.env(), **actions.env()})
    sqs_url, dynamodb_url = proxy.url(emulator.port), proxy.url(tables.port)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": sqs_url,
            "AWS_ENDPOINT_URL_AUTO_SCALING": proxy.url(actions.port),
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        }
    )
    return sqs_url, dynamodb_url


def main() -> None:
    interrupt_on_sigterm()
    args = parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="phx-bench-", dir="/tmp"))
    emulator = Emulator(workdir)
    # One emulator process serves every service one request at a time; AWS does not.
    tables = Emulator(workdir / "dynamodb") if args.separate_services else emulator
    actions = LifecycleActions()
    ports = list(dict.fromkeys([emulator.port, tables.port, actions.port]))
    proxy = LatencyProxy(ports, args.rtt_ms, workdir)
    try:
        emulator.start()
        if tables is not emulator:
            tables.start()
        actions.start()
        proxy.start()
        sqs_url, dynamodb_url = point_at_proxy(emulator, tables, actions, proxy)
        stack = provision(emulator, "bench", visibility_timeout=60)
        config = _core.Config.from_json(json.dumps(stack.phoenix_block(minion_groups=[GROUP])))
        if tables is not emulator:
            _core.Session(config).create_registry_tables()
        engine = _core.Engine(config)
        sqs = boto3.client("sqs", endpoint_url=sqs_url, region_name=REGION)
        dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_url, region_name=REGION)
        queue = stack.queue_url

        loops: dict[str, Callable[[int], Callable[[Any], collections.Counter[str]]]] = {
            PHOENIX: lambda total: (
                lambda consumed: run_phoenix(engine, total, consumed, args.pollers)
            ),
            REFERENCE: lambda total: (
                lambda consumed: run_reference(engine, sqs, queue, total, consumed)
            ),
        }
        if args.plain_reference:
            loops[PLAIN] = lambda total: (
                lambda consumed: run_plain(sqs, dynamodb, queue, total, consumed)
            )
        print_setup(args)
        runs: dict[str, list[Run]] = {name: [] for name in loops}
        first_instance = 10_000
        for round_number in range(args.rounds):
            names = list(loops)
            turn = round_number % len(names)
            for name in names[turn:] + names[:turn]:
                bodies, tokens = mixed_bodies(args.messages, actions, first_instance)
                first_instance += (args.messages + 3) // 4
                run = measure(loops[name](len(bodies)), bodies, args.depth, emulator, queue, proxy)
                runs[name].append(run)
                print(
                    f"round {round_number + 1}/{args.rounds} {name:24}{describe(run)}", flush=True
                )
                left = stack.queue_depth(emulator)
                pending = sum(actions.get(token).status == "pending" for token in tokens)
                if left or (name != PLAIN and pending):
                    print(f"  after it: {left} messages in the queue, {pending} actions pending")
        print_table(runs, args.rtt_ms)
    finally:
        proxy.stop()
        actions.stop()
        emulator.stop()
        if tables is not emulator:
            tables.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
