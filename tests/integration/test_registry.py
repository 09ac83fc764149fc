"""The registry under duplicates, reordering, racing engines and an emulator that goes
away (docs/architecture.md, invariants 1 and 2), through the engine's own apply path against
the emulator."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from phoenix_lab import messages
from phoenix_lab.cluster import Cluster, master_instance_id, minion_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.processes import wait_for
from phoenix_lab.stack import Stack, client, provision
from phoenix_salt import _core

from . import fleet

pytestmark = pytest.mark.integration

MASTERS_GROUP = "phoenix-test-masters"
MINIONS_GROUP = "phoenix-test-minions"


@pytest.fixture
def stack(
    aws: Emulator, lifecycle_actions: LifecycleActions, monkeypatch: pytest.MonkeyPatch
) -> Stack:
    for name, value in lifecycle_actions.env().items():
        monkeypatch.setenv(name, value)
    return provision(aws, "test")


def _engine(stack: Stack, cluster: str) -> _core.Engine:
    block = stack.phoenix_block(
        masters_table="phoenix-test-masters",
        minions_table="phoenix-test-minions",
        master_groups=[MASTERS_GROUP],
        minion_groups=[MINIONS_GROUP],
    )
    block["cluster"] = cluster
    return _core.Engine(_core.Config.from_json(json.dumps(block)))


def _session(stack: Stack, cluster: str) -> _core.Session:
    block = stack.phoenix_block(
        masters_table="phoenix-test-masters", minions_table="phoenix-test-minions"
    )
    block["cluster"] = cluster
    return _core.Session(_core.Config.from_json(json.dumps(block)))


def _message_set(actions: LifecycleActions) -> list[str]:
    """A day in the life of a small fleet, in every delivery shape, times one second apart."""
    # Recent times: a terminated row expires terminated_ttl after its event, and readers
    # leave expired rows out.
    base = int(time.time()) - 60

    def t(second: int) -> str:
        return messages.aws_time(datetime.fromtimestamp(base + second, timezone.utc))

    a, b, c, d = (minion_instance_id(n) for n in (1, 2, 3, 4))
    master = master_instance_id(1)

    def hook(transition: str, instance: str, group: str, when: int, name: str) -> dict[str, Any]:
        action = actions.begin(group, name, instance)
        return messages.lifecycle_hook(transition, instance, group, action.token, name, t(when))

    def note(event: str, instance: str, group: str, when: int) -> dict[str, Any]:
        return messages.sns_envelope(messages.asg_notification(event, instance, group, t(when)))

    bodies: list[dict[str, Any]] = [
        hook(messages.LAUNCHING, a, MINIONS_GROUP, 1, "phoenix-launch"),
        note(messages.LAUNCH, a, MINIONS_GROUP, 2),
        hook(messages.LAUNCHING, b, MINIONS_GROUP, 3, "phoenix-launch"),
        note(messages.LAUNCH, b, MINIONS_GROUP, 4),
        messages.sns_envelope(hook(messages.TERMINATING, b, MINIONS_GROUP, 5, "phoenix-terminate")),
        note(messages.TERMINATE, b, MINIONS_GROUP, 6),
        note(messages.LAUNCH_ERROR, c, MINIONS_GROUP, 7),
        hook(messages.LAUNCHING, master, MASTERS_GROUP, 8, "phoenix-launch"),
        note(messages.LAUNCH, master, MASTERS_GROUP, 9),
        hook(messages.LAUNCHING, d, MINIONS_GROUP, 10, "phoenix-launch"),
        note(messages.TERMINATE_ERROR, d, MINIONS_GROUP, 11),
    ]
    return [json.dumps(body) for body in bodies]


def _registry(stack: Stack, cluster: str) -> dict[str, list[dict[str, Any]]]:
    session = _session(stack, cluster)
    return {
        role: sorted(session.list_instances(role), key=lambda row: row["instance_id"])
        for role in ("master", "minion")
    }


def test_any_order_with_duplicates_yields_the_same_registry(
    stack: Stack, lifecycle_actions: LifecycleActions
) -> None:
    bodies = _message_set(lifecycle_actions)
    engine = _engine(stack, "ordered")
    for body in bodies:
        assert engine.apply_body(body)["outcome"] == "done"
    expected = _registry(stack, "ordered")
    assert {row["instance_id"]: row["state"] for row in expected["minion"]} == {
        minion_instance_id(1): "running",
        minion_instance_id(2): "terminated",
        minion_instance_id(3): "terminated",
        minion_instance_id(4): "terminating",
    }
    assert [row["state"] for row in expected["master"]] == ["running"]

    rng = random.Random(20261121)  # noqa: S311 - a reproducible shuffle, not a secret
    for attempt in range(6):
        # Each message up to three times, in a random order.
        shuffled = [body for body in bodies for _ in range(rng.randint(1, 3))]
        rng.shuffle(shuffled)
        cluster = f"shuffled{attempt}"
        engine = _engine(stack, cluster)
        for body in shuffled:
            assert engine.apply_body(body)["outcome"] == "done"
        # Rows carry no cluster field in the reader's view: clusters compare row for row.
        assert _registry(stack, cluster) == expected, f"shuffle {attempt}"


def test_two_engines_racing_on_the_same_instances_end_consistent(
    stack: Stack, lifecycle_actions: LifecycleActions
) -> None:
    bodies = _message_set(lifecycle_actions)
    reference = _engine(stack, "reference")
    for body in bodies:
        reference.apply_body(body)
    expected = _registry(stack, "reference")

    first, second = _engine(stack, "raced"), _engine(stack, "raced")
    copies = [body for body in bodies for _ in range(2)]
    random.Random(7).shuffle(copies)  # noqa: S311 - a reproducible shuffle
    errors: list[BaseException] = []

    def run(engine: _core.Engine, share: list[str]) -> None:
        try:
            for body in share:
                engine.apply_body(body)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(first, copies[0::2])),
        threading.Thread(target=run, args=(second, list(reversed(copies[1::2])))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert _registry(stack, "raced") == expected


def test_an_unparseable_body_is_rejected_not_applied(stack: Stack) -> None:
    outcome = _engine(stack, "bad").apply_body('{"Event": "autoscaling:EC2_INSTANCE_LAUNCH"}')
    assert outcome["outcome"] == "rejected"
    [event] = outcome["events"]
    assert event["tag"] == "phoenix/message/rejected"
    assert event["data"]["reason"] == "missing_field"
    assert _registry(stack, "bad") == {"master": [], "minion": []}


def test_a_launch_older_than_the_tombstones_is_recorded_only_if_autoscaling_runs_it(
    aws: Emulator, stack: Stack
) -> None:
    """A terminated instance's row is its tombstone for phoenix.terminated_ttl (7 days); a
    launch message older than that (redriven from the dead-letter queue, or very late) may be
    about an instance whose tombstone expired, so it is recorded only on AutoScaling's word."""
    engine = _engine(stack, "late")
    eight_days_ago = messages.aws_time(datetime.now(timezone.utc) - timedelta(days=8))
    running = fleet.autoscaling_instance(aws, MINIONS_GROUP)
    ended, fresh = minion_instance_id(90), minion_instance_id(91)

    def launch(instance: str, when: str) -> str:
        note = messages.asg_notification(messages.LAUNCH, instance, MINIONS_GROUP, when)
        return json.dumps(messages.sns_envelope(note))

    # AutoScaling does not run it: deleted with a warning, nothing recorded.
    outcome = engine.apply_body(launch(ended, eight_days_ago))
    assert outcome["outcome"] == "done"
    [event] = outcome["events"]
    assert event["tag"] == "phoenix/message/ignored"
    assert event["data"]["reason"] == "expired_instance"
    assert ended in event["data"]["detail"] and "does not list it" in event["data"]["detail"]
    # AutoScaling runs it: recorded, however late. A recent launch needs no check.
    assert engine.apply_body(launch(running, eight_days_ago))["outcome"] == "done"
    assert engine.apply_body(launch(fresh, messages.aws_time()))["outcome"] == "done"
    recorded = {row["instance_id"]: row["state"] for row in _registry(stack, "late")["minion"]}
    assert recorded == {running: "running", fresh: "running"}


def test_the_engine_outlives_an_emulator_outage_and_loses_nothing(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = make_cluster(
        # Short AWS timeouts, so calls made during the outage fail within it.
        stack.phoenix_block(
            heartbeat_interval=1,
            master_stale_after=4,
            aws={"attempt_timeout": 23, "operation_timeout": 25, "max_attempts": 1},
        ),
        masters=1,
        minions=0,
        master_opts={"engines": [{"instance_manager": {}}]},
    )
    session = _session(stack, "test")
    before = [minion_instance_id(n) for n in range(200, 210)]
    after = [minion_instance_id(n) for n in range(210, 220)]

    def send(instances: list[str]) -> None:
        for instance in instances:
            notification = messages.asg_notification(
                messages.LAUNCH, instance, MINIONS_GROUP, messages.aws_time()
            )
            body = messages.sns_envelope(notification)
            stack.send(aws, body)

    send(before)
    aws.pause()
    try:
        time.sleep(30)
        assert cluster.masters[0].running(), "salt-master died while AWS was away"
    finally:
        aws.resume()
    send(after)

    def applied() -> list[str]:
        return sorted(row["instance_id"] for row in session.list_instances("minion"))

    wait_for(
        lambda: applied() == sorted(before + after),
        120,
        "every message sent around the outage to be applied",
    )
    rows = session.list_instances("minion")
    assert all(row["state"] == "running" for row in rows)
    assert len(rows) == len(before + after)
    # The engine is still alive: its master heartbeats again and is live.
    wait_for(
        lambda: [m["instance_id"] for m in session.live_masters()] == [master_instance_id(1)],
        60,
        "the master to be live again",
    )
    wait_for(
        lambda: "heartbeat failed" in cluster.masters[0].log_text(),
        30,
        "the engine's warning about the outage",
    )
    assert cluster.masters[0].process.running()


def test_a_message_that_failed_for_a_passing_reason_is_hidden_for_its_retry_delay(
    aws: Emulator, stack: Stack, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB is cut (the engine's calls to it go through a proxy): the launch is not
    applied, and instead of coming back after the queue's visibility timeout (10 s here) it
    is hidden for phoenix.retry's delay (30 s, at least 22.5 s with the jitter). Once
    DynamoDB is back and the delay is over, it is applied, and nothing was dead-lettered."""
    proxy = LatencyProxy([aws.port], 0, workdir)
    proxy.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url(aws.port))
        block = stack.phoenix_block(
            minion_groups=[MINIONS_GROUP],
            retry={"first_delay": 30, "max_delay": 600},
            aws={"max_attempts": 1},
        )
        engine = _core.Engine(_core.Config.from_json(json.dumps(block)))
        instance = minion_instance_id(7)
        proxy.block()
        stack.send(
            aws,
            messages.sns_envelope(
                messages.asg_notification(
                    messages.LAUNCH, instance, MINIONS_GROUP, messages.aws_time()
                )
            ),
        )
        report = engine.poll(wait_seconds=10)
        assert (report["received"], report["retry"], report["postponed"]) == (1, 1, 1), report

        # Hidden for its delay, far past the queue's own 10 s: nobody receives it meanwhile.
        sqs = client(aws, "sqs")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert engine.poll(wait_seconds=2)["received"] == 0
        hidden = sqs.get_queue_attributes(
            QueueUrl=stack.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert (
            hidden["ApproximateNumberOfMessages"],
            hidden["ApproximateNumberOfMessagesNotVisible"],
        ) == ("0", "1")

        proxy.unblock()
        session = _core.Session(_core.Config.from_json(json.dumps(stack.phoenix_block())))
        wait_for(
            lambda: engine.poll(wait_seconds=5)["deleted"] == 1,
            120,
            "the launch to come back after its retry delay and be applied",
        )
        assert session.get_instance("minion", instance)["state"] == "running"
        assert stack.queue_depth(aws, dead_letters=True) == 0
    finally:
        proxy.stop()
