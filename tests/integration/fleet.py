"""What the integration tests do to the registry the way AWS would (AutoScaling notifications
through the real queue, read back through the core), and how they bring minions in."""

from __future__ import annotations

import json
from typing import Any

from phoenix_lab import messages
from phoenix_lab.cluster import Cluster, master_instance_id
from phoenix_lab.emulator import REGION, Emulator
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import SaltMaster, SaltMinion
from phoenix_lab.stack import Stack, client
from phoenix_salt import _core

MINIONS_GROUP = "phoenix-test-minions"
MASTERS_GROUP = "phoenix-test-masters"

# Masters whose engine accepts keys (Salt accepts none by itself) and minions that follow
# the live masters with the beacon, all on fast timings.
BEACON_MASTER_OPTS = {"engines": [{"instance_manager": {}}], "auto_accept": False}
BEACON_MINION_OPTS = {"beacons": {"master_list": [{"interval": 1}]}}
BEACON_PHOENIX: dict[str, Any] = {
    "heartbeat_interval": 1,
    "master_stale_after": 4,
    "keys": {"reconcile_interval": 2},
    "beacon": {
        "refresh_interval": 1,
        "restart_jitter": 1,
        "restart_splay": 2,
        "min_restart_interval": 2,
    },
}


def session(stack: Stack) -> _core.Session:
    return _core.Session(_core.Config.from_json(json.dumps(stack.phoenix_block())))


def notification(event: str, instance: str, group: str = MINIONS_GROUP) -> dict[str, Any]:
    """AutoScaling's notification of ``event`` for ``instance``, as SNS delivers it."""
    return messages.sns_envelope(
        messages.asg_notification(event, instance, group, messages.aws_time())
    )


def wait_for_state(stack: Stack, role: str, instance: str, state: str) -> None:
    """Waits until the registry holds ``instance`` in ``state``. Polled through the listing,
    which skips unreadable rows: the emulator applies an UpdateItem that creates a row in
    two steps (the key, then the attributes), so a read racing with it can see a row with no
    state, which DynamoDB itself never shows."""
    registry = session(stack)
    wait_for(
        lambda: any(
            row["instance_id"] == instance and row["state"] == state
            for row in registry.list_instances(role)
        ),
        60,
        f"the registry to hold {role} {instance} as {state}",
    )


def register(aws: Emulator, stack: Stack, instance: str) -> None:
    """AutoScaling's launch notification for ``instance``, through the queue, and the
    registry row it makes."""
    stack.send(aws, notification(messages.LAUNCH, instance))
    wait_for_state(stack, "minion", instance, "running")


def terminate(aws: Emulator, stack: Stack, instance: str) -> None:
    stack.send(aws, notification(messages.TERMINATE, instance))


def terminate_master(aws: Emulator, stack: Stack, instance: str) -> None:
    """AutoScaling's termination notification for master ``instance``, through the queue,
    and the registry row it makes."""
    stack.send(aws, notification(messages.TERMINATE, instance, MASTERS_GROUP))
    wait_for_state(stack, "master", instance, "terminated")


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


def autoscaling_instance(aws: Emulator, group: str) -> str:
    """An instance that AutoScaling really runs in ``group`` (in the emulator): the group is
    made with one instance."""
    image = client(aws, "ec2").describe_images()["Images"][0]["ImageId"]
    autoscaling = client(aws, "autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{group}-lc", ImageId=image, InstanceType="t3.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group,
        LaunchConfigurationName=f"{group}-lc",
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=[f"{REGION}a"],
    )
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return str(groups["AutoScalingGroups"][0]["Instances"][0]["InstanceId"])


def spare_public_key() -> str:
    """A fresh RSA public key in the PEM form of a minion.pub, of no instance (made here, not
    with Salt's key writer, whose signature differs between Salt releases)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
