"""The AWS side of a cluster, in the emulator: registry tables, the events queue and its
dead-letter queue. The same names and settings as cfn/phoenix-data.yaml."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from phoenix_salt.lab.emulator import REGION, Emulator

# The emulator's redelivery is as real as AWS's: a message not deleted comes back after the
# visibility timeout, and after this many receives it moves to the dead-letter queue.
MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class Stack:
    cluster: str
    queue_url: str
    dead_letter_queue_url: str

    def phoenix_block(self, **extra: Any) -> dict[str, Any]:
        """The ``phoenix:`` block that points at this stack."""
        return {"cluster": self.cluster, "region": REGION, "queue_url": self.queue_url, **extra}

    def send(self, emulator: Emulator, body: Mapping[str, Any] | str) -> None:
        """Puts one message (a dict as JSON, or a raw body) into the events queue."""
        text = body if isinstance(body, str) else json.dumps(body)
        _sqs(emulator).send_message(QueueUrl=self.queue_url, MessageBody=text)

    def queue_depth(self, emulator: Emulator, dead_letters: bool = False) -> int:
        """Messages in the queue (or its dead-letter queue), visible or in flight."""
        attributes = _sqs(emulator).get_queue_attributes(
            QueueUrl=self.dead_letter_queue_url if dead_letters else self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


def _sqs(emulator: Emulator) -> Any:
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fake key
    )


def provision(emulator: Emulator, cluster: str, visibility_timeout: int = 10) -> Stack:
    """Creates the registry tables and the queues for ``cluster`` in the emulator."""
    from phoenix_salt import _core

    config = _core.Config.from_json(json.dumps({"cluster": cluster, "region": REGION}))
    session = _core.Session(config)
    session.create_registry_tables()
    sqs = _sqs(emulator)
    dlq_url = sqs.create_queue(QueueName=f"phoenix-{cluster}-events-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"phoenix-{cluster}-events",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    return Stack(cluster, queue_url, dlq_url)
