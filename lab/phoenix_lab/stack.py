"""The AWS side of a cluster, in the emulator: the data stack (cfn/phoenix-data.yaml, shipped
as phoenix_salt/templates) deployed through the emulator's CloudFormation, so every test and
the demo run the engine against the tables, queues and topic the template creates; and the
network and compute stacks on it (``provision_compute``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from phoenix_lab.cloudformation import Deployed, deploy, parse, put_group_hooks, template_text
from phoenix_lab.emulator import REGION, Emulator
from phoenix_lab.messages import ACCOUNT
from phoenix_lab.metadata import lab_signer

# The emulator's redelivery is as real as AWS's: a message not deleted comes back after the
# visibility timeout, and after this many receives it moves to the dead-letter queue.
MAX_RECEIVE_COUNT = 5
# phoenix.retry on the lab's timings: a message that failed is hidden 2 s, doubling to 10 s
# (the defaults, 30 s to 1 h, are for AWS outages of hours).
LAB_RETRY = {"first_delay": 2, "max_delay": 10}


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
        Attested enrolment as on AWS: claims go to the stack's claim queue, and the masters trust
        the lab's signer of identity documents (lab/phoenix_lab/metadata.py); each engine learns the
        account from its own master's document, as on EC2. ``keys`` in ``extra`` is merged into
        that, key by key."""
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
    parameters = {
        "ClusterName": cluster,
        "VisibilityTimeoutSeconds": str(visibility_timeout),
        "MaxReceiveCount": str(MAX_RECEIVE_COUNT),
        # Tests and the demo throw the emulator away; nothing to protect.
        "TableDeletionProtection": "false",
    }
    data = parse(template_text("data"))
    outputs = deploy(emulator, f"phoenix-{cluster}-data", data, parameters).outputs
    return Stack(cluster, outputs["QueueUrl"], outputs["DeadLetterQueueUrl"], outputs)


@dataclass(frozen=True)
class Compute:
    """The network and compute stacks of a cluster in the emulator (what the emulator leaves
    out: lab/phoenix_lab/cloudformation.py), and the hooks the lab put on the groups."""

    network: Deployed
    compute: Deployed
    parameters: Mapping[str, str]
    hooks: Mapping[str, list[dict[str, Any]]]


def provision_compute(emulator: Emulator, stack: Stack, **parameters: str) -> Compute:
    """Deploys the network stack, then the compute stack on it and on the data ``stack``,
    into the emulator, as docs/deploy.md deploys them on AWS; ``parameters`` go to the
    compute stack (its groups' sizes, instance types, ...)."""
    from phoenix_salt import __version__

    cluster = stack.cluster
    network = deploy(
        emulator,
        f"phoenix-{cluster}-network",
        parse(template_text("network")),
        {"ClusterName": cluster},
    )
    data = stack.outputs
    given = {
        "ClusterName": cluster,
        "MastersGroupName": data["MastersGroupName"],
        "MinionsGroupName": data["MinionsGroupName"],
        **{
            name: data[name]
            for name in (
                "MastersTable",
                "MinionsTable",
                "QueueUrl",
                "QueueArn",
                "DeadLetterQueueArn",
                "ClaimQueueUrl",
                "ClaimQueueArn",
                "TopicArn",
                "KmsKeyArn",
                "LifecycleHookRoleArn",
            )
        },
        # The emulator has no model for the secret (lab/phoenix_lab/cloudformation.py): its
        # ARN as AWS would form it.
        "MasterKeySecretArn": data.get("MasterKeySecretArn")
        or f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{data['MasterKeySecretName']}",
        "SubnetIds": network.outputs["PrivateSubnetIds"],
        "MastersSecurityGroupId": network.outputs["MastersSecurityGroupId"],
        "MinionsSecurityGroupId": network.outputs["MinionsSecurityGroupId"],
        "PhoenixVersion": __version__,
        **parameters,
    }
    template = parse(template_text("compute"))
    compute = deploy(emulator, f"phoenix-{cluster}-compute", template, given)
    hooks = put_group_hooks(emulator, template, given, compute)
    return Compute(network, compute, given, hooks)
