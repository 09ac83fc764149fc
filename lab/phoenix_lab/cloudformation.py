"""The project's three templates (cfn/, shipped as phoenix_salt/templates) deployed through
the emulator's CloudFormation, and what the lab does where the emulator falls short.

The emulator (moto 5.2) deploys every resource of the templates but these:

- ``Fn::Cidr`` is not implemented: the network template's subnets take their blocks from
  it, so the lab works the blocks out as CloudFormation documents them (``count`` blocks of
  ``cidrBits`` host bits, in order, from the start of the block) before the template goes
  in (``resolve_cidr``).
- A custom resource's Lambda runs only in Docker: ``Custom::*`` resources (the network's
  ``RestrictDefaultSecurityGroup``, which empties the VPC's default security group) would
  wait for an answer forever, so the lab leaves them out (``LEFT_OUT``).
- ``SKIPPED``: types the emulator has no model for; it skips them with a warning, and the
  stack completes without them. They guard access (resource policies, egress rules) or
  watch (alarms): nothing the lab's daemons need.
- An AutoScaling group's ``LifecycleHookSpecificationList`` is ignored: the lab puts the
  template's hooks on the groups afterwards (``put_group_hooks``), from the template. The
  emulator's hook keeps its name, transition, default result and heartbeat timeout, but
  not its target, role or metadata (moto answers fixed placeholders): the lab keeps those
  as the template resolved them.
  ``NotificationConfigurations`` has no API in the emulator at all: the fleet simulator
  publishes what a group would notify (lab/phoenix_lab/fleet.py).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from phoenix_lab.emulator import REGION, Emulator
from phoenix_lab.messages import ACCOUNT

DEPLOY_TIMEOUT_SECONDS = 60

# Resource types the emulator skips with a warning (no CloudFormation model in moto 5.2).
SKIPPED = frozenset(
    {
        "AWS::AutoScaling::ScalingPolicy",
        "AWS::CloudWatch::Alarm",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::SecretsManager::ResourcePolicy",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
    }
)
# Resource types the lab leaves out: the emulator would wait for them forever.
LEFT_OUT = re.compile(r"^Custom::")


def template_text(name: str) -> str:
    """A template as the wheel ships it: ``data``, ``network`` or ``compute``."""
    return (resources.files("phoenix_salt") / "templates" / f"phoenix-{name}.yaml").read_text()


def parse(text: str) -> dict[str, Any]:
    """A template as a dict, short forms (``!Ref``, ``!Sub``) in their long form."""
    from cfnlint.decode import cfn_yaml

    return dict(cfn_yaml.loads(text))


def parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """``given``, and each parameter's default where it was not given."""
    values = {
        name: str(spec["Default"])
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }
    return {**values, **given}


def resolve_cidr(node: Any, parameters: Mapping[str, str]) -> Any:
    """``node`` with every ``Fn::Cidr`` replaced by the blocks it stands for: ``count``
    blocks with ``cidrBits`` host bits each, from the start of ``ipBlock`` (its arguments a
    value or a ``Ref`` to a parameter)."""
    if isinstance(node, list):
        return [resolve_cidr(item, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::Cidr"}:
        block, count, bits = (_value(arg, parameters) for arg in node["Fn::Cidr"])
        network = ipaddress.ip_network(block)
        blocks = network.subnets(new_prefix=network.max_prefixlen - int(bits))
        return [str(subnet) for _, subnet in zip(range(int(count)), blocks, strict=False)]
    return {key: resolve_cidr(value, parameters) for key, value in node.items()}


def _value(node: Any, parameters: Mapping[str, str]) -> str:
    """A literal, or a ``Ref`` to one of ``parameters``."""
    if isinstance(node, dict) and set(node) == {"Ref"} and node["Ref"] in parameters:
        return parameters[node["Ref"]]
    if isinstance(node, dict):
        raise ValueError(f"the lab cannot work out {json.dumps(node)} for the emulator")
    return str(node)


def for_emulator(template: Mapping[str, Any], parameters: Mapping[str, str]) -> str:
    """The ``parse``d template the emulator is given (JSON): without the resources
    ``LEFT_OUT``, with every ``Fn::Cidr`` worked out."""
    kept = {
        name: resource
        for name, resource in template["Resources"].items()
        if not LEFT_OUT.match(resource["Type"])
    }
    values = parameter_values(template, parameters)
    return json.dumps(resolve_cidr({**template, "Resources": kept}, values))


@dataclass(frozen=True)
class Deployed:
    """A stack the emulator completed."""

    name: str
    outputs: Mapping[str, str]
    # Logical id -> type of each resource the emulator created.
    created: Mapping[str, str]


def deploy(
    emulator: Emulator, name: str, template: Mapping[str, Any], parameters: Mapping[str, str]
) -> Deployed:
    """Creates stack ``name`` from the ``parse``d ``template`` in the emulator and waits
    until it is complete. Raises RuntimeError with the stack's status and reason if it is
    not, in time."""
    from phoenix_lab.stack import client

    cloudformation = client(emulator, "cloudformation")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=for_emulator(template, parameters),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
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
    return Deployed(
        name,
        {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", []) if "OutputValue" in o},
        created(emulator, name),
    )


def created(emulator: Emulator, name: str) -> dict[str, str]:
    """Logical id -> type of each resource the emulator created for stack ``name``."""
    from phoenix_lab.stack import client

    summaries = client(emulator, "cloudformation").list_stack_resources(StackName=name)[
        "StackResourceSummaries"
    ]
    # The emulator lists a resource whose condition is false without a logical id.
    return {s["LogicalResourceId"]: s["ResourceType"] for s in summaries if s["LogicalResourceId"]}


def put_group_hooks(
    emulator: Emulator,
    template: Mapping[str, Any],
    parameters: Mapping[str, str],
    deployed: Deployed,
) -> dict[str, list[dict[str, Any]]]:
    """Puts each AutoScaling group's ``LifecycleHookSpecificationList`` of the ``parse``d
    ``template`` on the group the emulator created for it (it ignores that property). A
    group is found by the output that names it (``!Ref`` of the group). Returns the hooks
    put, by group."""
    from phoenix_lab.stack import client

    values = {
        **parameter_values(template, parameters),
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
    }
    named = {
        output["Value"]["Ref"]: deployed.outputs[key]
        for key, output in template.get("Outputs", {}).items()
        if isinstance(output["Value"], dict) and set(output["Value"]) == {"Ref"}
    }
    autoscaling = client(emulator, "autoscaling")
    put: dict[str, list[dict[str, Any]]] = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::AutoScaling::AutoScalingGroup":
            continue
        group = named[logical]
        for spec in resource["Properties"].get("LifecycleHookSpecificationList", []):
            hook = {key: _resolved(value, values) for key, value in spec.items()}
            if "HeartbeatTimeout" in hook:
                hook["HeartbeatTimeout"] = int(hook["HeartbeatTimeout"])
            autoscaling.put_lifecycle_hook(AutoScalingGroupName=group, **hook)
            put.setdefault(group, []).append(hook)
    return put


def _resolved(node: Any, values: Mapping[str, str]) -> str:
    """A property's value: a literal, a ``Ref`` to a parameter or pseudo parameter, or a
    ``Fn::Sub`` of those. Raises ValueError on anything else, which the lab cannot work
    out without the stack."""
    if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return re.sub(r"\$\{([^}!]+)\}", lambda m: values[m.group(1)], node["Fn::Sub"])
    return _value(node, values)
