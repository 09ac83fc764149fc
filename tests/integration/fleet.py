"""What the integration tests do to the registry the way AWS would (AutoScaling notifications
through the real queue, read back through the core), and how they bring minions in."""

from __future__ import annotations

import json
from typing import Any

from phoenix_salt import _core
from phoenix_salt.lab import messages
from phoenix_salt.lab.cluster import Cluster, master_instance_id
from phoenix_salt.lab.emulator import Emulator
from phoenix_salt.lab.processes import wait_for
from phoenix_salt.lab.salt import SaltMaster, SaltMinion
from phoenix_salt.lab.stack import Stack

MINIONS_GROUP = "phoenix-test-minions"
MASTERS_GROUP = "phoenix-test-masters"


def session(stack: Stack) -> _core.Session:
    return _core.Session(_core.Config.from_json(json.dumps(stack.phoenix_block())))


def notification(event: str, instance: str, group: str = MINIONS_GROUP) -> dict[str, Any]:
    """AutoScaling's notification of ``event`` for ``instance``, as SNS delivers it."""
    return messages.sns_envelope(
        messages.asg_notification(event, instance, group, messages.aws_time())
    )


def register(aws: Emulator, stack: Stack, instance: str) -> None:
    """AutoScaling's launch notification for ``instance``, through the queue, and the
    registry row it makes."""
    stack.send(aws, notification(messages.LAUNCH, instance))
    registry = session(stack)
    # Polled through the listing, which skips unreadable rows: the emulator applies an
    # UpdateItem that creates a row in two steps (the key, then the attributes), so a read
    # racing with it can see a row with no state, which DynamoDB itself never shows.
    wait_for(
        lambda: any(
            row["instance_id"] == instance and row["state"] == "running"
            for row in registry.list_instances("minion")
        ),
        60,
        f"the registry to hold {instance} as running",
    )


def terminate(aws: Emulator, stack: Stack, instance: str) -> None:
    stack.send(aws, notification(messages.TERMINATE, instance))


def terminate_master(aws: Emulator, stack: Stack, instance: str) -> None:
    """AutoScaling's termination notification for master ``instance``, through the queue,
    and the registry row it makes."""
    stack.send(aws, notification(messages.TERMINATE, instance, MASTERS_GROUP))
    registry = session(stack)
    wait_for(
        lambda: any(
            row["instance_id"] == instance and row["state"] == "terminated"
            for row in registry.list_instances("master")
        ),
        60,
        f"the registry to hold master {instance} as terminated",
    )


def live_addresses(stack: Stack) -> set[str]:
    return {master["address"] for master in session(stack).live_masters()}


def order(minion: SaltMinion, cluster: Cluster) -> list[SaltMaster]:
    """The cluster's masters in the order this minion should try them."""
    by_id = {master_instance_id(i + 1): master for i, master in enumerate(cluster.masters)}
    return [by_id[i] for i in _core.order_masters(minion.minion_id, list(by_id))]


def answers(master: SaltMaster, minion_id: str) -> bool:
    return master.ping(minion_id, timeout=5).get(minion_id, False)


def start_minions(aws: Emulator, stack: Stack, cluster: Cluster) -> None:
    """Registers each minion, writes its drop-in the first-boot way (``phoenix
    minion-config``), starts it, and waits until it answers through its first master."""
    wait_for(
        lambda: len(live_addresses(stack)) == len(cluster.masters),
        60,
        "every master to heartbeat",
    )
    for minion in cluster.minions:
        register(aws, stack, minion.minion_id)
        result = minion.minion_config()
        assert result.returncode == 0, result.stderr
        expected = [m.interface for m in order(minion, cluster)]
        assert minion.drop_in_masters() == expected
        assert str(minion.drop_in_path) in result.stdout
        minion.start()
    for minion in cluster.minions:
        first = order(minion, cluster)[0]
        wait_for(
            lambda first=first, minion_id=minion.minion_id: answers(first, minion_id),
            120,
            f"{minion.minion_id} to answer",
        )
