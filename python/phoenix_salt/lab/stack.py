"""The AWS side of a cluster, in the emulator: the data stack (cfn/phoenix-data.yaml, shipped
as phoenix_salt/templates) deployed through the emulator's CloudFormation, so every test and
the demo run the engine against the tables, queues and topic the template creates."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from phoenix_salt.lab.emulator import REGION, Emulator
from phoenix_salt.lab.metadata import lab_signer

# The emulator's redelivery is as real as AWS's: a message not deleted comes back after the
# visibility timeout, and after this many receives it moves to the dead-letter queue.
MAX_RECEIVE_COUNT = 5
DEPLOY_TIMEOUT_SECONDS = 60
# phoenix.retry on the lab's timings: a message that failed is hidden 2 s, doubling to 10 s
# (the defaults, 30 s to 1 h, are for AWS outages of hours).
LAB_RETRY = {"first_delay": 2, "max_delay": 10}


def data_template() -> str:
    """The data stack's template, as the wheel ships it."""
    return (resources.files("phoenix_salt") / "templates" / "phoenix-data.yaml").read_text()


@dataclass(frozen=True)
class Stack:
    cluster: str
    queue_url: str
    dead_letter_queue_url: str
    # The data stack's outputs (TopicArn, PhoenixConfig, ClaimQueueUrl, ...).
    outputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def claim_queue_url(self) -> str:
        return self.outputs["ClaimQueueUrl"]

    def phoenix_block(self, **extra: Any) -> dict[str, Any]:
        """The ``phoenix:`` block that points at this stack. A message that failed comes
        back within seconds (``retry``), as the lab's short visibility timeout has it.
        Attested enrolment as on AWS: claims go to the stack's claim queue, and the masters
        trust the lab's signer of identity documents (lab/metadata.py); each engine learns the
        account from its own master's document, as on EC2. ``keys`` in ``extra`` is merged
        into that, key by key."""
        keys = {
            "claim_queue_url": self.claim_queue_url,
            "identity_certificates": {REGION: lab_signer().certificate_pem},
            **(extra.pop("keys", None) or {}),
        }
        return {
            "cluster": self.cluster,
            "region": REGION,
            "queue_url": self.queue_url,
            "retry": LAB_RETRY,
            "keys": keys,
            **extra,
        }

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


def client(emulator: Emulator, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's fake key
    )


def _sqs(emulator: Emulator) -> Any:
    return client(emulator, "sqs")


def provision(emulator: Emulator, cluster: str, visibility_timeout: int = 10) -> Stack:
    """Deploys the data stack for ``cluster`` into the emulator and returns its queues.

    ``visibility_timeout`` is short here (the template's default is 120 s) so that tests see
    a message that was not applied come back within seconds."""
    cloudformation = client(emulator, "cloudformation")
    name = f"phoenix-{cluster}-data"
    parameters = {
        "ClusterName": cluster,
        "VisibilityTimeoutSeconds": str(visibility_timeout),
        "MaxReceiveCount": str(MAX_RECEIVE_COUNT),
        # Tests and the demo throw the emulator away; nothing to protect.
        "TableDeletionProtection": "false",
    }
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=data_template(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.monotonic() + DEPLOY_TIMEOUT_SECONDS
    while True:
        (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            break
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            raise RuntimeError(
                f"stack {name}: {status} {stack.get('StackStatusReason', '')}".strip()
            )
        time.sleep(0.2)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Stack(cluster, outputs["QueueUrl"], outputs["DeadLetterQueueUrl"], outputs)
