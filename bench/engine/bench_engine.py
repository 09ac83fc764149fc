"""Benchmark: 2,000 mixed AutoScaling messages through the emulator's queue.

Phoenix's engine (long poll of 10, concurrent conditional writes, batch deletes) against
a reference loop in the same run that takes one message per receive, writes it, and
deletes it, as a first-generation design would. Prints messages per second for both, the
ratio, and SQS calls per message.

    .venv/bin/python bench/engine/bench_engine.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import boto3

from phoenix_salt import _core
from phoenix_salt.lab import messages
from phoenix_salt.lab.cluster import minion_instance_id
from phoenix_salt.lab.emulator import REGION, Emulator
from phoenix_salt.lab.lifecycle_actions import LifecycleActions
from phoenix_salt.lab.stack import provision

GROUP = "phoenix-bench-minions"


def mixed_bodies(count: int, actions: LifecycleActions) -> list[str]:
    """Launch hooks, launch notifications, terminate hooks and notifications, some test
    notifications: the mix a scaling fleet sends."""
    bodies = []
    for n in range(count):
        instance = minion_instance_id(10_000 + n // 4)
        when = messages.aws_time()
        kind = n % 4
        if kind == 0:
            action = actions.begin(GROUP, "phoenix-launch", instance)
            body = messages.lifecycle_hook(
                messages.LAUNCHING, instance, GROUP, action.token, "phoenix-launch", when
            )
        elif kind == 1:
            body = messages.sns_envelope(
                messages.asg_notification(messages.LAUNCH, instance, GROUP, when)
            )
        elif kind == 2:
            action = actions.begin(GROUP, "phoenix-terminate", instance)
            body = messages.sns_envelope(
                messages.lifecycle_hook(
                    messages.TERMINATING, instance, GROUP, action.token, "phoenix-terminate", when
                )
            )
        else:
            body = messages.sns_envelope(
                messages.asg_notification(messages.TERMINATE, instance, GROUP, when)
            )
        bodies.append(json.dumps(body))
    return bodies


def fill(sqs, queue_url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def run_phoenix(engine: _core.Engine, total: int) -> tuple[float, int]:
    started = time.perf_counter()
    deleted = 0
    calls = 0
    while deleted < total:
        report = engine.poll(wait_seconds=1)
        deleted += report["deleted"]
        calls += report["sqs_calls"]
        if report["received"] == 0 and report["retry"] == 0 and deleted < total:
            raise RuntimeError(f"queue empty after {deleted} of {total} messages")
    return time.perf_counter() - started, calls


def run_reference(sqs, dynamodb, queue_url: str, table: str, total: int) -> tuple[float, int]:
    """One message per receive, one unconditional write, one delete."""
    started = time.perf_counter()
    done = 0
    calls = 0
    while done < total:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        calls += 1
        for message in received.get("Messages", []):
            body = json.loads(message["Body"])
            payload = json.loads(body["Message"]) if "Message" in body else body
            dynamodb.put_item(
                TableName=table,
                Item={
                    "cluster": {"S": "reference"},
                    "instance_id": {"S": payload["EC2InstanceId"]},
                    "event": {"S": payload.get("Event") or payload.get("LifecycleTransition")},
                },
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            calls += 1
            done += 1
    return time.perf_counter() - started, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="phx-bench-", dir="/tmp"))
    emulator = Emulator(workdir)
    actions = LifecycleActions()
    try:
        emulator.start()
        actions.start()
        os.environ.update({**emulator.env(), **actions.env()})
        stack = provision(emulator, "bench", visibility_timeout=60)
        block = stack.phoenix_block(minion_groups=[GROUP])
        engine = _core.Engine(_core.Config.from_json(json.dumps(block)))
        sqs = boto3.client("sqs", endpoint_url=emulator.url, region_name=REGION)
        dynamodb = boto3.client("dynamodb", endpoint_url=emulator.url, region_name=REGION)

        phoenix_rates, reference_rates, phoenix_calls, reference_calls = [], [], [], []
        for round_number in range(1, args.rounds + 1):
            bodies = mixed_bodies(args.messages, actions)
            fill(sqs, stack.queue_url, bodies)
            seconds, calls = run_phoenix(engine, len(bodies))
            phoenix_rates.append(len(bodies) / seconds)
            phoenix_calls.append(calls / len(bodies))

            fill(sqs, stack.queue_url, bodies)
            seconds, calls = run_reference(
                sqs, dynamodb, stack.queue_url, "phoenix-bench-minions", len(bodies)
            )
            reference_rates.append(len(bodies) / seconds)
            reference_calls.append(calls / len(bodies))
            print(
                f"round {round_number}: phoenix {phoenix_rates[-1]:7.1f} msg/s "
                f"({phoenix_calls[-1]:.3f} SQS calls/msg), reference {reference_rates[-1]:7.1f} "
                f"msg/s ({reference_calls[-1]:.3f} SQS calls/msg)",
                flush=True,
            )
        phoenix = statistics.median(phoenix_rates)
        reference = statistics.median(reference_rates)
        print()
        print(f"messages per round            {args.messages}")
        phoenix_per_msg = statistics.median(phoenix_calls)
        reference_per_msg = statistics.median(reference_calls)
        for name, rate, per_msg in (
            ("phoenix engine", phoenix, phoenix_per_msg),
            ("reference loop", reference, reference_per_msg),
        ):
            print(f"{name}  (median) {rate:8.1f} msg/s  {per_msg:.3f} SQS calls/msg")
        print(f"ratio phoenix / reference     {phoenix / reference:8.2f}x")
    finally:
        actions.stop()
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
