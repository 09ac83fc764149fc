"""The instance_manager engine inside real salt-masters, against the emulator's queue and
tables: messages become registry rows and bus events; launch then terminate; two masters
on one queue; a stopped master's heartbeat goes stale."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import boto3
import pytest
import yaml

from phoenix_lab import messages
from phoenix_lab.cluster import Cluster, master_instance_id, minion_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core

pytestmark = pytest.mark.integration

MINIONS_GROUP = "phoenix-test-minions"
MASTER_OPTS = {"engines": [{"instance_manager": {}}], "auto_accept": True}
FAST = {"heartbeat_interval": 1, "master_stale_after": 4}


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _session(stack: Stack) -> _core.Session:
    return _core.Session(_core.Config.from_json(json.dumps(stack.phoenix_block())))


def test_a_launch_then_a_terminate_become_rows_and_events(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    lifecycle_actions: LifecycleActions,
) -> None:
    cluster = make_cluster(
        stack.phoenix_block(**FAST), masters=1, minions=0, master_opts=MASTER_OPTS
    )
    master = cluster.masters[0]
    session = _session(stack)
    instance = minion_instance_id(42)
    action = lifecycle_actions.begin(MINIONS_GROUP, "phoenix-launch", instance)
    with BusListener(master) as bus:
        stack.send(
            aws,
            messages.lifecycle_hook(
                messages.LAUNCHING,
                instance,
                MINIONS_GROUP,
                action.token,
                "phoenix-launch",
                messages.aws_time(),
            ),
        )
        launched = bus.wait_for(f"phoenix/instance/{instance}/launched", 60)
        assert launched["role"] == "minion"
        assert launched["state"] == "launching"
        row = session.get_instance("minion", instance)
        assert row["state"] == "launching"
        assert row["group"] == MINIONS_GROUP
        # Without highstate gating, the engine lets the launch go on at once.
        wait_for(
            lambda: lifecycle_actions.get(action.token).status == "completed",
            30,
            "the launch lifecycle action to be completed",
        )
        assert lifecycle_actions.get(action.token).result == "CONTINUE"
        assert _session(stack).get_instance("minion", instance)["launch_hook"] is None

        stack.send(
            aws,
            messages.sns_envelope(
                messages.asg_notification(
                    messages.TERMINATE, instance, MINIONS_GROUP, messages.aws_time()
                ),
                subject=f'Auto Scaling: termination for group "{MINIONS_GROUP}"',
            ),
        )
        terminated = bus.wait_for(f"phoenix/instance/{instance}/terminated", 60)
        assert terminated["state"] == "terminated"
    row = session.get_instance("minion", instance)
    assert row["state"] == "terminated"
    assert row["expires_at"] is not None
    # Both messages were deleted once applied.
    wait_for(lambda: stack.queue_depth(aws) == 0, 30, "the queue to drain")


def test_the_engine_runs_on_what_the_data_stack_created(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    """The data template was deployed through the emulator's CloudFormation (provision):
    the engine is configured from nothing but its PhoenixConfig output, and a group
    notification published to its topic reaches the engine through the subscription the
    template declared."""
    block = yaml.safe_load(stack.outputs["PhoenixConfig"])["phoenix"]
    assert block["queue_url"] == stack.queue_url
    cluster = make_cluster({**block, **FAST}, masters=1, minions=0, master_opts=MASTER_OPTS)
    master = cluster.masters[0]
    instance = minion_instance_id(43)
    sns = boto3.client(
        "sns",
        endpoint_url=aws.url,
        region_name=block["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fake key
    )
    with BusListener(master) as bus:
        sns.publish(
            TopicArn=stack.outputs["TopicArn"],
            Subject=f'Auto Scaling: launch for group "{block["minion_groups"][0]}"',
            Message=json.dumps(
                messages.asg_notification(
                    messages.LAUNCH, instance, block["minion_groups"][0], messages.aws_time()
                )
            ),
        )
        launched = bus.wait_for(f"phoenix/instance/{instance}/launched", 60)
    assert launched["role"] == "minion"
    row = _session(stack).get_instance("minion", instance)
    assert row["state"] == "running"
    assert row["group"] == "phoenix-test-minions"
    wait_for(lambda: stack.queue_depth(aws) == 0, 30, "the queue to drain")


def test_messages_that_can_never_apply_but_nobody_needs_are_deleted_with_a_warning(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    """An event of a group the cluster does not configure (one the operator removed) and a
    launch error for an instance that never existed are deleted, each with a warning and
    a phoenix/message/ignored event, not left for the dead-letter queue; nothing is
    recorded."""
    cluster = make_cluster(
        stack.phoenix_block(**FAST), masters=1, minions=0, master_opts=MASTER_OPTS
    )
    master = cluster.masters[0]
    stranger = minion_instance_id(77)
    failed_launch = messages.asg_notification(
        messages.LAUNCH_ERROR, "", "phoenix-test-minions", messages.aws_time()
    )
    failed_launch["StatusMessage"] = "We currently do not have sufficient t3.small capacity"
    with BusListener(master) as bus:
        stack.send(
            aws,
            messages.lifecycle_hook(
                messages.LAUNCHING, stranger, "someone-elses-group", "t", "h", messages.aws_time()
            ),
        )
        stack.send(aws, messages.sns_envelope(failed_launch))
        first = bus.wait_for("phoenix/message/ignored", 60)
        second = bus.wait_for("phoenix/message/ignored", 60, count=2)
    ignored = {event["reason"]: event["detail"] for event in (first, second)}
    assert set(ignored) == {"unknown_group", "no_instance"}
    assert "someone-elses-group" in ignored["unknown_group"]
    assert "sufficient t3.small capacity" in ignored["no_instance"]
    # Salt's log file is written by its logging process, a moment after the event.
    wait_for(
        lambda: (
            "is in no configured group" in master.log_text()
            and "failed before an instance existed" in master.log_text()
        ),
        30,
        "the warnings' log lines",
    )
    assert _session(stack).get_instance("minion", stranger) is None
    # Deleted: neither waits for the dead-letter queue.
    wait_for(lambda: stack.queue_depth(aws) == 0, 30, "the queue to drain")
    assert stack.queue_depth(aws, dead_letters=True) == 0


def test_two_masters_on_one_queue_register_heartbeat_and_go_stale(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = make_cluster(
        stack.phoenix_block(**FAST), masters=2, minions=0, master_opts=MASTER_OPTS
    )
    session = _session(stack)
    both = [master_instance_id(1), master_instance_id(2)]
    wait_for(
        lambda: [m["instance_id"] for m in session.live_masters()] == both,
        60,
        "both masters in the live list",
    )
    addresses = {m["instance_id"]: m["address"] for m in session.live_masters()}
    assert addresses == {both[0]: "127.0.0.1", both[1]: "127.0.0.2"}

    # Messages spread over both engines; every one is applied exactly once in effect.
    instances = [minion_instance_id(n) for n in range(100, 110)]
    for instance in instances:
        stack.send(
            aws,
            messages.sns_envelope(
                messages.asg_notification(
                    messages.LAUNCH, instance, MINIONS_GROUP, messages.aws_time()
                )
            ),
        )
    wait_for(
        lambda: len(session.list_instances("minion")) == len(instances),
        60,
        "every launched minion in the registry",
    )
    wait_for(lambda: stack.queue_depth(aws) == 0, 30, "the queue to drain")

    # A hung master (SIGSTOP) stops heartbeating and leaves the live list.
    with BusListener(cluster.masters[0]) as bus:
        cluster.masters[1].process.signal_group(signal.SIGSTOP)
        try:
            wait_for(
                lambda: [m["instance_id"] for m in session.live_masters()] == both[:1],
                30,
                "the stopped master to go stale",
            )
            # The first master fires a change event when it sees its peer join, too; this
            # waits for the one about the peer leaving.
            changed = bus.wait_for(
                "phoenix/masters/changed",
                30,
                where=lambda data: len(data["masters"]) < len(data["previous"]),
            )
            assert [m["instance_id"] for m in changed["masters"]] == both[:1]
            assert [m["instance_id"] for m in changed["previous"]] == both
        finally:
            cluster.masters[1].process.signal_group(signal.SIGCONT)
