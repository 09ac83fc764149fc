"""Lifecycle events through AWS's faults (lab/phoenix_lab/faults.py, given by the lab's proxy in
place of the service): one service refused or failing for longer than the old policy of retrying at
once would have survived, or DynamoDB's writes throttled, while launches and terminations arrive.
Afterwards every event is applied once, nothing is dead-lettered, and every key and lifecycle action
happened (docs/engine.md, "When AWS fails").

Timings are compressed: the queue's visibility timeout is 3 s, so the old policy (a failed
message back after the visibility timeout, dead-lettered at the lab queue's fifth receive)
sent a message to the dead-letter queue after 15 s of failures. Each outage here is longer
than that; the engine's ``retry`` settings hide a failed message for 4 s, doubling (jittered
down by up to a quarter): its fifth receive comes at least 45 s after its first. In the
outages, each AWS call is tried once (``aws.max_attempts``), so that a failed message is
back in the queue as soon as the old policy had it (the SDK's own retries would stretch each
receive by seconds); under throttling, the SDK retries as it does by default (5 attempts)."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoenix_lab import messages
from phoenix_lab.cluster import Cluster, minion_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.faults import DYNAMODB_WRITES, REFUSE, THROTTLING, Fault
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener
from phoenix_lab.stack import Stack, provision

from . import fleet

pytestmark = pytest.mark.integration

VISIBILITY = 3
OLD_POLICY_WINDOW = 5 * VISIBILITY  # the lab queue's MaxReceiveCount times the visibility
OUTAGE = OLD_POLICY_WINDOW + 5
PHOENIX: dict[str, Any] = {
    "heartbeat_interval": 1,
    "master_stale_after": 4,
    "keys": {"reconcile_interval": 2},
    "retry": {"first_delay": 4, "max_delay": 60},
}
MASTER_OPTS = {"engines": [{"instance_manager": {}}], "auto_accept": False}


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test", visibility_timeout=VISIBILITY)


@pytest.fixture
def proxy(
    aws: Emulator, lifecycle_actions: LifecycleActions, workdir: Path
) -> Iterator[LatencyProxy]:
    proxy = LatencyProxy([aws.port, lifecycle_actions.port], 0, workdir)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _hook(
    aws: Emulator, stack: Stack, actions: LifecycleActions, transition: str, instance: str
) -> str:
    """AutoScaling's lifecycle hook message for ``instance``, sent; its action's token."""
    name = "phoenix-launch" if transition == messages.LAUNCHING else "phoenix-terminate"
    action = actions.begin(fleet.MINIONS_GROUP, name, instance)
    body = messages.lifecycle_hook(
        transition, instance, fleet.MINIONS_GROUP, action.token, name, messages.aws_time()
    )
    stack.send(aws, body)
    return action.token


def _ride_out(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    actions: LifecycleActions,
    proxy: LatencyProxy,
    faults: list[Fault],
    seconds: float = OUTAGE,
    launches: int = 2,
    attempts: int = 1,
) -> dict[str, dict[str, int]]:
    """One master, every AWS call of it through the proxy. Two minions are launched and their
    keys accepted; then ``faults`` hold for ``seconds`` while those two terminate and
    ``launches`` more launch (lifecycle hooks, each with its action, sent one after the other
    through the first half of the outage). Checks that everything was applied once the
    faults are cleared; returns what the proxy injected."""
    cluster = make_cluster(
        stack.phoenix_block(**PHOENIX, aws={"max_attempts": attempts}),
        masters=1,
        minions=2,
        master_opts=MASTER_OPTS,
        wait_for_minions=False,
        start_minions=False,
        master_env={
            1: {
                "AWS_ENDPOINT_URL": proxy.url(aws.port),
                "AWS_ENDPOINT_URL_AUTO_SCALING": proxy.url(actions.port),
            }
        },
    )
    master = cluster.masters[0]
    leaving = [minion.minion_id for minion in cluster.minions]
    for minion in cluster.minions:
        fleet.register(aws, stack, minion.minion_id)
        minion.claim()
    for instance in leaving:
        wait_for(
            lambda instance=instance: master.key_states(instance) == ["minions"],
            60,
            f"{instance}'s key to be accepted",
        )
    arriving = [minion_instance_id(31 + n) for n in range(launches)]
    registry = fleet.session(stack)

    with BusListener(master) as bus:
        for fault in faults:
            proxy.fault(fault)
        started = time.monotonic()
        hooks = [(messages.TERMINATING, i) for i in leaving]
        hooks += [(messages.LAUNCHING, i) for i in arriving]
        tokens = []
        for transition, instance in hooks:
            tokens.append(_hook(aws, stack, actions, transition, instance))
            time.sleep(seconds / 2 / len(hooks))
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        assert master.running(), "salt-master died during the outage"
        assert stack.queue_depth(aws, dead_letters=True) == 0
        injected = proxy.counts()["injected"]
        proxy.clear()

        def states() -> dict[str, str]:
            return {row["instance_id"]: row["state"] for row in registry.list_instances("minion")}

        # The hooks' states (AutoScaling's later notifications would move them on).
        expected = {
            **dict.fromkeys(leaving, "terminating"),
            **dict.fromkeys(arriving, "launching"),
        }
        try:
            wait_for(lambda: states() == expected, 120, "every event to be applied")
        except TimeoutError as error:
            raise AssertionError(f"{error}; the registry holds {states()}") from error
        wait_for(
            lambda: all(actions.get(token).result == "CONTINUE" for token in tokens),
            60,
            "every lifecycle action to be completed",
        )
        for instance in leaving:
            wait_for(
                lambda instance=instance: master.key_states(instance) == [],
                60,
                f"the terminated {instance}'s key to be deleted",
            )
        assert stack.queue_depth(aws) == 0
        assert stack.queue_depth(aws, dead_letters=True) == 0
        # Each event was applied once: one bus event per instance and change.
        changes = collections.Counter(
            tag for tag, _ in bus.drain() if tag.startswith("phoenix/instance/")
        )
    assert {tag: n for tag, n in changes.items() if tag.endswith(("/launched", "/terminated"))} == {
        **{f"phoenix/instance/{i}/terminated": 1 for i in leaving},
        **{f"phoenix/instance/{i}/launched": 1 for i in arriving},
    }
    return injected


@pytest.mark.parametrize(
    ("faults", "hit"),
    [
        pytest.param([Fault("dynamodb", REFUSE)], "dynamodb", id="dynamodb-refused"),
        pytest.param(
            [Fault("autoscaling", REFUSE)], "autoscaling CompleteLifecycleAction", id="autoscaling"
        ),
        pytest.param(
            # What an SQS queue encrypted with a KMS key answers while KMS throttles it.
            [Fault("sqs", "KmsThrottled", operations=frozenset({"ReceiveMessage"}))],
            "sqs ReceiveMessage",
            id="sqs-kms-errors",
        ),
    ],
)
def test_an_outage_longer_than_the_old_policy_loses_nothing(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    lifecycle_actions: LifecycleActions,
    proxy: LatencyProxy,
    faults: list[Fault],
    hit: str,
) -> None:
    injected = _ride_out(aws, stack, make_cluster, lifecycle_actions, proxy, faults)
    # The outage really met the engine's calls.
    assert any(call.startswith(hit) for call in injected), injected


def test_throttled_dynamodb_writes_apply_every_event_once(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    lifecycle_actions: LifecycleActions,
    proxy: LatencyProxy,
) -> None:
    """30 % of DynamoDB's writes throttled for a minute (the SDK retries them; what still
    fails comes back after its retry delay), with events arriving through it."""
    throttled = Fault("dynamodb", THROTTLING["dynamodb"], rate=0.3, operations=DYNAMODB_WRITES)
    injected = _ride_out(
        aws,
        stack,
        make_cluster,
        lifecycle_actions,
        proxy,
        [throttled],
        seconds=60,
        launches=8,
        attempts=5,
    )
    assert sum(n for call, codes in injected.items() for n in codes.values()) > 0, injected
