"""What the integration tests do to the registry the way AWS would: AutoScaling notifications
through the real queue, read back through the core."""

from __future__ import annotations

import json
from typing import Any

from phoenix_salt import _core
from phoenix_salt.lab import messages
from phoenix_salt.lab.emulator import Emulator
from phoenix_salt.lab.processes import wait_for
from phoenix_salt.lab.stack import Stack

MINIONS_GROUP = "phoenix-test-minions"


def session(stack: Stack) -> _core.Session:
    return _core.Session(_core.Config.from_json(json.dumps(stack.phoenix_block())))


def notification(event: str, instance: str) -> dict[str, Any]:
    """AutoScaling's notification of ``event`` for ``instance``, as SNS delivers it."""
    return messages.sns_envelope(
        messages.asg_notification(event, instance, MINIONS_GROUP, messages.aws_time())
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
