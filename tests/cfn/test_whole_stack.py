"""The three templates deployed together through the emulator's CloudFormation, as
docs/deploy.md deploys them on AWS (lab/phoenix_lab/stack.py, ``provision`` and
``provision_compute``): what the emulator creates is what the templates declare, but for
the resources lab/phoenix_lab/cloudformation.py names, and the groups, launch templates,
roles and hooks fit together.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from phoenix_lab.cloudformation import LEFT_OUT, SKIPPED, created
from phoenix_lab.emulator import Emulator
from phoenix_lab.stack import Compute, Stack, client, provision, provision_compute

CLUSTER = "whole"


@pytest.fixture
def whole_stack(aws: Emulator) -> tuple[Stack, Compute]:
    data = provision(aws, CLUSTER)
    return data, provision_compute(aws, data)


def test_the_emulator_creates_every_resource_but_those_the_lab_names(
    aws: Emulator,
    whole_stack: tuple[Stack, Compute],
    all_templates: dict[str, dict[str, Any]],
) -> None:
    _, compute = whole_stack
    stacks = {
        "phoenix-data.yaml": created(aws, f"phoenix-{CLUSTER}-data"),
        "phoenix-network.yaml": compute.network.created,
        "phoenix-compute.yaml": compute.compute.created,
    }
    declared_types = set()
    for name, made in stacks.items():
        for logical, resource in all_templates[name]["Resources"].items():
            kind = resource["Type"]
            declared_types.add(kind)
            if "Condition" in resource:
                continue  # the emulator decides it; nothing to compare with
            expected = kind not in SKIPPED and not LEFT_OUT.match(kind)
            assert (logical in made) == expected, (
                f"{name} template: {logical} ({kind}) "
                f"{'was not created' if expected else 'was created'} by the emulator; "
                "lab/phoenix_lab/cloudformation.py says otherwise"
            )
            if expected:
                assert made[logical] == kind
    # No type is named that no template declares any longer.
    assert declared_types >= SKIPPED
    assert any(LEFT_OUT.match(kind) for kind in declared_types)


def test_the_subnets_take_the_blocks_fn_cidr_gives(
    aws: Emulator, whole_stack: tuple[Stack, Compute]
) -> None:
    # VpcCidr 10.40.0.0/16 and SubnetHostBits 12 (the defaults): /20 blocks in order, the
    # private subnets the first three, the public ones the next three.
    _, compute = whole_stack
    ec2 = client(aws, "ec2")
    outputs = compute.network.outputs
    blocks = {}
    for kind in ("Private", "Public"):
        ids = outputs[f"{kind}SubnetIds"].split(",")
        subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
        assert {s["VpcId"] for s in subnets} == {outputs["VpcId"]}
        blocks[kind] = sorted(s["CidrBlock"] for s in subnets)
    assert blocks == {
        "Private": ["10.40.0.0/20", "10.40.16.0/20", "10.40.32.0/20"],
        "Public": ["10.40.48.0/20", "10.40.64.0/20", "10.40.80.0/20"],
    }


@pytest.mark.parametrize(
    ("role", "group_output", "sizes", "security_group"),
    [
        ("master", "MastersGroupName", (3, 3, 3), "MastersSecurityGroupId"),
        ("minion", "MinionsGroupName", (1, 10, 2), "MinionsSecurityGroupId"),
    ],
)
def test_each_group_launches_from_its_template_with_its_role_into_the_private_subnets(
    aws: Emulator,
    whole_stack: tuple[Stack, Compute],
    role: str,
    group_output: str,
    sizes: tuple[int, int, int],
    security_group: str,
) -> None:
    data, compute = whole_stack
    out = compute.compute.outputs
    name = data.outputs[group_output]
    assert out[group_output] == name, "the compute stack names the groups the data stack does"
    autoscaling = client(aws, "autoscaling")
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == sizes
    assert len(group["Instances"]) == sizes[2]
    assert group["HealthCheckType"] == "EC2"
    assert set(group["VPCZoneIdentifier"].split(",")) == set(
        compute.network.outputs["PrivateSubnetIds"].split(",")
    )
    template_id = out[f"{role.capitalize()}LaunchTemplateId"]
    assert group["LaunchTemplate"]["LaunchTemplateId"] == template_id

    (version,) = client(aws, "ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    launch = version["LaunchTemplateData"]
    assert launch["SecurityGroupIds"] == [compute.network.outputs[security_group]]
    assert launch["MetadataOptions"]["HttpTokens"] == "required"
    profile_name = launch["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
    profile = client(aws, "iam").get_instance_profile(InstanceProfileName=profile_name)
    (profile_role,) = profile["InstanceProfile"]["Roles"]
    assert profile_role["Arn"] == out[f"{role.capitalize()}RoleArn"]

    user_data = base64.b64decode(launch["UserData"]).decode()
    assert f'"phoenix-salt=={compute.parameters["PhoenixVersion"]}"' in user_data
    boots = {
        "master": "/opt/phoenix/bin/phoenix master-bootstrap",
        "minion": "/opt/phoenix/bin/phoenix minion-config",
    }
    assert boots[role] in user_data
    assert not re.search(r"\$\{[A-Za-z:]+\}", user_data), "a Sub left unresolved"


def test_the_lab_puts_the_templates_hooks_on_both_groups(
    aws: Emulator, whole_stack: tuple[Stack, Compute]
) -> None:
    data, compute = whole_stack
    autoscaling = client(aws, "autoscaling")
    for role, output in (("master", "MastersGroupName"), ("minion", "MinionsGroupName")):
        group = data.outputs[output]
        held = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
        assert {
            hook["LifecycleHookName"]: (
                hook["LifecycleTransition"],
                hook["DefaultResult"],
                hook["HeartbeatTimeout"],
            )
            for hook in held
        } == {
            "phoenix-launch": ("autoscaling:EC2_INSTANCE_LAUNCHING", "ABANDON", 900),
            "phoenix-terminate": ("autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE", 900),
        }
        # The emulator keeps no hook's target, role or metadata (lab/phoenix_lab/cloudformation.py):
        # the lab's own record of them, which the fleet simulator's messages carry.
        resolved = compute.hooks[group]
        assert [hook["LifecycleHookName"] for hook in resolved] == [
            "phoenix-launch",
            "phoenix-terminate",
        ]
        for hook in resolved:
            assert hook["NotificationTargetARN"] == data.outputs["QueueArn"]
            assert hook["RoleARN"] == data.outputs["LifecycleHookRoleArn"]
            assert json.loads(hook["NotificationMetadata"]) == {"cluster": CLUSTER, "role": role}
