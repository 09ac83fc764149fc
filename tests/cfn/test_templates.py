"""Checks on the CloudFormation templates in cfn/.

cfn-lint and checkov run as subprocesses from the same environment as this interpreter
(`pip install cfn-lint==1.58.0 checkov==3.3.30`) and must report nothing. The structural tests
below hold the properties a future edit could quietly lose: least-privilege IAM, closed
security groups, IMDSv2, lifecycle hooks wired to the queue, the exact Phoenix config keys,
and user data that is valid shell writing valid YAML.

When moto is installed, the data template is also deployed into moto's CloudFormation.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from phoenix_salt.reactor import REACTIONS

from .templates import (
    CFN_DIR,
    DATA,
    REPO,
    TEMPLATES,
    as_list,
    is_wildcard_action,
    policy_documents,
    resources_of,
    role_statements,
    statements,
    sub_template,
    tool,
)

# The keys the engine and the beacon read from the `phoenix:` block.
PHOENIX_CONFIG_KEYS = {
    "cluster",
    "region",
    "masters_table",
    "minions_table",
    "queue_url",
    "master_key_secret",
    "master_groups",
    "minion_groups",
    "keys",
}

DATA_OUTPUTS = {
    "MastersTable",
    "MinionsTable",
    "QueueUrl",
    "QueueArn",
    "ClaimQueueUrl",
    "ClaimQueueArn",
    "DeadLetterQueueUrl",
    "DeadLetterQueueArn",
    "TopicArn",
    "AlarmTopicArn",
    "KmsKeyArn",
    "MasterKeySecretArn",
    "MasterKeySecretName",
    "LifecycleHookRoleArn",
    "PhoenixConfig",
}

# Identity policies may use Resource "*" only for actions that support no resource-level
# permissions; each one here is read-only.
RESOURCE_STAR_ACTIONS = {"autoscaling:DescribeAutoScalingInstances"}

# The instance roles' actions are read from the code: test_iam_from_code.py.

CLAIM_QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/phoenix-qa-claims"

NOTIFICATION_TYPES = {
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
}


# -------------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------------


SUB_REFERENCE = re.compile(r"\$\{([^}]+)\}")


def render_sub(template: str, values: dict[str, str]) -> str:
    """Fn::Sub with made-up values; an unknown name fails the test, like a bad reference."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} stays ${Literal}
            return "${" + name[1:] + "}"
        if name not in values:
            pytest.fail(f"Fn::Sub refers to ${{{name}}}, which is not a parameter or variable")
        return values[name]

    return SUB_REFERENCE.sub(replace, template)


def heredocs(script: str) -> list[str]:
    """Bodies of the here-documents (<<EOF / <<'EOF') of a shell script."""
    bodies: list[str] = []
    lines = script.splitlines()
    index = 0
    while index < len(lines):
        if re.search(r"<<'?EOF'?\s*$", lines[index]):
            end = lines.index("EOF", index + 1)
            bodies.append("\n".join(lines[index + 1 : end]) + "\n")
            index = end
        index += 1
    return bodies


# -------------------------------------------------------------------------------------------
# Linters
# -------------------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing() -> None:
    result = subprocess.run(
        [tool("cfn-lint"), "--format", "parseable", *map(str, TEMPLATES)],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, f"cfn-lint findings:\n{findings}"


def test_checkov_reports_no_failed_check() -> None:
    result = subprocess.run(
        [
            tool("checkov"),
            "-d",
            str(CFN_DIR),
            "--framework",
            "cloudformation",
            "--compact",
            "--quiet",
            "--skip-download",  # no network: the guideline download only adds links
            "--output",
            "json",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report:\n{result.stdout}\n{result.stderr}")
    summary = report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for check in report["results"].get("failed_checks", [])
    ]
    assert not failed and summary["failed"] == 0, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0 and summary["resource_count"] > 0, summary
    assert result.returncode == 0, result.stderr


def test_every_checkov_skip_says_why(all_templates: dict[str, dict[str, Any]]) -> None:
    for name, template in all_templates.items():
        for logical_id, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                comment = str(skip.get("comment", "")).strip()
                assert len(comment) > 20, f"{name} {logical_id}: skip {skip['id']} has no reason"


# -------------------------------------------------------------------------------------------
# IAM
# -------------------------------------------------------------------------------------------


def test_no_statement_allows_wildcard_actions_on_every_resource(
    all_templates: dict[str, dict[str, Any]],
) -> None:
    for name, template in all_templates.items():
        for path, document in policy_documents(template["Resources"]):
            for statement in statements(document):
                where = f"{name}{path} {statement.get('Sid', '')}"
                if statement["Effect"] != "Allow":
                    continue
                assert "NotAction" not in statement, f"{where}: Allow with NotAction"
                assert "NotResource" not in statement, f"{where}: Allow with NotResource"
                actions = as_list(statement.get("Action", []))
                resources = as_list(statement.get("Resource", []))
                assert not (
                    any(is_wildcard_action(action) for action in actions) and "*" in resources
                ), f"{where}: wildcard action on Resource '*'"


def identity_policies(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Policies attached to roles (inline) or standalone IAM policies."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield f"{logical_id}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield logical_id, properties["PolicyDocument"]


def test_identity_policies_name_their_actions_and_resources(
    all_templates: dict[str, dict[str, Any]],
) -> None:
    for name, template in all_templates.items():
        for where, document in identity_policies(template):
            for statement in statements(document):
                actions = as_list(statement["Action"])
                assert not any("*" in action for action in actions), (
                    f"{name} {where}: wildcard in {actions}"
                )
                if "*" in as_list(statement["Resource"]):
                    assert set(actions) <= RESOURCE_STAR_ACTIONS, (
                        f"{name} {where}: {actions} on Resource '*'"
                    )


def test_masters_group_gives_a_new_master_its_grace_period(compute: dict[str, Any]) -> None:
    # The masters' role itself is held to the code by test_iam_from_code.py.
    masters = compute["Resources"]["MastersGroup"]["Properties"]
    assert masters["HealthCheckGracePeriod"] == {"Ref": "MasterHealthCheckGracePeriod"}


def test_minion_role_reads_the_live_masters_its_enrolment_and_sends_its_claim(
    compute: dict[str, Any],
) -> None:
    # Which actions on which resources is held to the code by test_iam_from_code.py; here,
    # the conditions and shapes that reading does not see.
    granted = role_statements(compute, "MinionRole")
    by_sid = {statement["Sid"]: statement for statement in granted}
    # Of the minions' table, only a row's pin and who holds it, by a projection.
    enrolment = by_sid["ReadEnrolment"]
    assert enrolment["Action"] == "dynamodb:GetItem"
    assert sub_template(enrolment["Resource"])[0].endswith(":table/${MinionsTable}")
    assert enrolment["Condition"] == {
        "ForAllValues:StringEquals": {
            "dynamodb:Attributes": ["cluster", "instance_id", "minion_key", "seeded_on"]
        },
        "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
    }
    # A minion sends its identity claim and nothing else: it cannot read anyone's claim,
    # nor write a lifecycle event.
    assert by_sid["SendIdentityClaim"] == {
        "Sid": "SendIdentityClaim",
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": {"Ref": "ClaimQueueArn"},
    }


def test_lifecycle_hook_role_only_sends_to_the_queue(data: dict[str, Any]) -> None:
    role = data["Resources"]["LifecycleHookRole"]["Properties"]
    trust = statements(role["AssumeRolePolicyDocument"])
    assert [statement["Principal"] for statement in trust] == [
        {"Service": "autoscaling.amazonaws.com"}
    ]
    granted = role_statements(data, "LifecycleHookRole")
    actions = {action for statement in granted for action in as_list(statement["Action"])}
    assert actions == {"sqs:SendMessage", "sqs:GetQueueUrl", "kms:GenerateDataKey", "kms:Decrypt"}
    by_sid = {statement["Sid"]: statement for statement in granted}
    assert by_sid["SendToEventsQueue"]["Resource"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}


def test_key_policy_names_no_wildcard_principal(data: dict[str, Any]) -> None:
    key = data["Resources"]["Key"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    for statement in statements(key["Properties"]["KeyPolicy"]):
        principal = statement["Principal"]
        assert principal != "*" and principal.get("AWS") != "*", statement["Sid"]


# -------------------------------------------------------------------------------------------
# Network
# -------------------------------------------------------------------------------------------


def ingress_rules(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rules = []
    for logical_id, group in resources_of(template, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            rules.append((logical_id, rule))
    for rule in resources_of(template, "AWS::EC2::SecurityGroupIngress").values():
        rules.append((rule["Properties"]["GroupId"]["Ref"], rule["Properties"]))
    return rules


def test_no_ingress_from_anywhere_and_no_ssh(all_templates: dict[str, dict[str, Any]]) -> None:
    for name, template in all_templates.items():
        for group, rule in ingress_rules(template):
            assert rule.get("CidrIp") != "0.0.0.0/0", f"{name} {group}: ingress from 0.0.0.0/0"
            assert rule.get("CidrIpv6") != "::/0", f"{name} {group}: ingress from ::/0"
            assert str(rule["IpProtocol"]) not in ("-1", "all"), f"{name} {group}: all traffic"
            assert not (int(rule["FromPort"]) <= 22 <= int(rule["ToPort"])), f"{group}: SSH"


def test_masters_accept_salt_only_from_minions_and_masters(network: dict[str, Any]) -> None:
    rules = ingress_rules(network)
    masters = sorted(
        (rule["SourceSecurityGroupId"]["Ref"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"])
        for group, rule in rules
        if group == "MastersSecurityGroup"
    )
    assert masters == [
        ("MastersSecurityGroup", "tcp", 4505, 4506),
        ("MinionsSecurityGroup", "tcp", 4505, 4506),
    ]
    assert not [rule for group, rule in rules if group == "MinionsSecurityGroup"]


def test_subnets_come_from_the_region_and_stay_private(network: dict[str, Any]) -> None:
    for logical_id, subnet in resources_of(network, "AWS::EC2::Subnet").items():
        properties = subnet["Properties"]
        assert properties["MapPublicIpOnLaunch"] is False, logical_id
        assert "Fn::GetAZs" in properties["AvailabilityZone"]["Fn::Select"][1], logical_id


# -------------------------------------------------------------------------------------------
# Compute
# -------------------------------------------------------------------------------------------


def test_launch_templates_require_imdsv2_and_encrypt_volumes(compute: dict[str, Any]) -> None:
    templates = resources_of(compute, "AWS::EC2::LaunchTemplate")
    assert set(templates) == {"MasterLaunchTemplate", "MinionLaunchTemplate"}
    for logical_id, template in templates.items():
        launch = template["Properties"]["LaunchTemplateData"]
        metadata = launch["MetadataOptions"]
        assert metadata["HttpTokens"] == "required", logical_id
        assert metadata["HttpPutResponseHopLimit"] == 1, logical_id
        assert launch["BlockDeviceMappings"], logical_id
        for mapping in launch["BlockDeviceMappings"]:
            assert mapping["Ebs"]["Encrypted"] is True, logical_id
        assert "NetworkInterfaces" not in launch, f"{logical_id}: could ask for a public address"


def test_lifecycle_hooks_target_the_queue(compute: dict[str, Any]) -> None:
    groups = resources_of(compute, "AWS::AutoScaling::AutoScalingGroup")
    roles = {"MastersGroup": "master", "MinionsGroup": "minion"}
    assert set(groups) == set(roles)
    for logical_id, group in groups.items():
        properties = group["Properties"]
        hooks = {
            hook["LifecycleHookName"]: hook for hook in properties["LifecycleHookSpecificationList"]
        }
        assert set(hooks) == {"phoenix-launch", "phoenix-terminate"}, logical_id
        expected = {
            "phoenix-launch": ("autoscaling:EC2_INSTANCE_LAUNCHING", "ABANDON"),
            "phoenix-terminate": ("autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE"),
        }
        for hook_name, (transition, default_result) in expected.items():
            hook = hooks[hook_name]
            assert hook["LifecycleTransition"] == transition
            assert hook["DefaultResult"] == default_result
            assert hook["NotificationTargetARN"] == {"Ref": "QueueArn"}
            assert hook["RoleARN"] == {"Ref": "LifecycleHookRoleArn"}
            assert hook["HeartbeatTimeout"] == {"Ref": "HeartbeatTimeout"}
            metadata = render_sub(
                sub_template(hook["NotificationMetadata"])[0], {"ClusterName": "qa"}
            )
            assert json.loads(metadata) == {"cluster": "qa", "role": roles[logical_id]}
        (notifications,) = properties["NotificationConfigurations"]
        assert notifications["TopicARN"] == {"Ref": "TopicArn"}
        assert set(notifications["NotificationTypes"]) == NOTIFICATION_TYPES
        # The group's launch template version follows every template change.
        assert properties["LaunchTemplate"]["Version"]["Fn::GetAtt"][1] == "LatestVersionNumber"


def test_group_names_agree_between_data_and_compute(
    data: dict[str, Any], compute: dict[str, Any]
) -> None:
    for parameter, condition, suffix in (
        ("MastersGroupName", "DefaultMastersGroupName", "masters"),
        ("MinionsGroupName", "DefaultMinionsGroupName", "minions"),
    ):
        for template in (data, compute):
            assert template["Parameters"][parameter]["Default"] == ""
            assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": parameter}, ""]}
        default_name = {"Fn::Sub": f"phoenix-${{ClusterName}}-{suffix}"}
        expected = {"Fn::If": [condition, default_name, {"Ref": parameter}]}
        assert data["Outputs"][parameter]["Value"] == expected
        group = "MastersGroup" if suffix == "masters" else "MinionsGroup"
        assert compute["Resources"][group]["Properties"]["AutoScalingGroupName"] == expected


def test_only_the_minions_group_scales_and_only_when_asked(compute: dict[str, Any]) -> None:
    parameters = compute["Parameters"]
    assert parameters["MinionScalingMetric"]["Default"] == ""
    assert "" in parameters["MinionScalingMetric"]["AllowedValues"]
    assert compute["Conditions"]["HasMinionScaling"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MinionScalingMetric"}, ""]}]
    }
    scaling = {
        name: resource
        for name, resource in compute["Resources"].items()
        if resource["Type"].startswith("AWS::AutoScaling::")
        and resource["Type"] not in ("AWS::AutoScaling::AutoScalingGroup",)
    }
    # One policy, target tracking, on the minions' group, only when a metric is named.
    assert list(scaling) == ["MinionsScalingPolicy"]
    policy = scaling["MinionsScalingPolicy"]
    assert policy["Condition"] == "HasMinionScaling"
    properties = policy["Properties"]
    assert properties["AutoScalingGroupName"] == {"Ref": "MinionsGroup"}
    assert properties["PolicyType"] == "TargetTrackingScaling"
    tracking = properties["TargetTrackingConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": {"Ref": "MinionScalingMetric"}
    }
    assert tracking["TargetValue"] == {"Ref": "MinionScalingTarget"}
    # With a policy, a stack update must not reset the capacity the policy chose; the
    # masters' group keeps its fixed count whatever.
    groups = compute["Resources"]
    assert groups["MinionsGroup"]["Properties"]["DesiredCapacity"] == {
        "Fn::If": ["HasMinionScaling", {"Ref": "AWS::NoValue"}, {"Ref": "MinionDesiredCapacity"}]
    }
    masters = groups["MastersGroup"]["Properties"]
    assert masters["MinSize"] == masters["MaxSize"] == masters["DesiredCapacity"]


SAMPLE_VALUES = {
    "AWS::Region": "eu-west-1",
    "ClusterName": "qa",
    "MastersTable": "phoenix-qa-masters",
    "MinionsTable": "phoenix-qa-minions",
    "QueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/phoenix-qa-events",
    "ClaimQueueUrl": CLAIM_QUEUE_URL,
    "MastersGroup": "phoenix-qa-masters",
    "MinionsGroup": "phoenix-qa-minions",
    "HighstateGating": "true",
    "MasterHealthCheckGracePeriod": "450",
    "SaltVersion": "3008.3",
    "PhoenixVersion": "0.1.0",
    "PipIndexUrl": "",
    "StateSource": "https://git.example.com/salt/states.git",
    "StateBranch": "main",
    "PillarSource": "git@git.example.com:salt/pillar-qa.git",
    "PillarBranch": "main",
}
SHELL_VALUES = {"$INSTANCE_ID": "i-0123456789abcdef0", "$REACTOR_DIR": "/opt/phoenix/reactor"}


def user_data(compute: dict[str, Any], launch_template: str) -> str:
    properties = compute["Resources"][launch_template]["Properties"]
    template, variables = sub_template(properties["LaunchTemplateData"]["UserData"]["Fn::Base64"])
    assert set(variables) == {"MastersGroup", "MinionsGroup"}
    return render_sub(template, SAMPLE_VALUES)


def config_documents(script: str) -> list[dict[str, Any]]:
    """The YAML files the script writes (systemd units left out), shell variables filled in."""
    bodies = heredocs(script)
    values = dict(SHELL_VALUES)
    if "PHOENIX_BLOCK=$(cat <<'EOF'" in script:
        # The first here-document is the shared phoenix: block, a file of its own nowhere.
        values["$PHOENIX_BLOCK"] = bodies.pop(0).rstrip("\n")
    documents = []
    for body in bodies:
        if body.startswith("[Unit]"):
            continue
        text = body
        for variable, value in values.items():
            text = text.replace(variable, value)
        documents.append(yaml.safe_load(text))
    return documents


@pytest.mark.parametrize("launch_template", ["MasterLaunchTemplate", "MinionLaunchTemplate"])
def test_user_data_is_valid_shell(compute: dict[str, Any], launch_template: str) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = user_data(compute, launch_template)
    assert script.startswith("#!/bin/bash\n")
    result = subprocess.run([bash, "-n"], check=False, input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "set -euo pipefail" in script


def test_master_user_data_configures_phoenix_engine_reactor_and_git(
    compute: dict[str, Any],
) -> None:
    script = user_data(compute, "MasterLaunchTemplate")
    documents = config_documents(script)
    (master,) = [document for document in documents if "engines" in document]
    (own_minion,) = [document for document in documents if "id" in document]
    assert set(master["phoenix"]) == PHOENIX_CONFIG_KEYS | {"highstate_gating", "replacement"}
    assert master["phoenix"]["highstate_gating"] is True
    assert master["phoenix"]["master_groups"] == ["phoenix-qa-masters"]
    assert master["phoenix"]["minion_groups"] == ["phoenix-qa-minions"]
    # The live masters never report a master within the group's own grace period.
    assert master["phoenix"]["replacement"] == {"launch_grace": 450}
    assert master["phoenix"]["keys"] == {"claim_queue_url": CLAIM_QUEUE_URL}
    assert set(own_minion["phoenix"]) == PHOENIX_CONFIG_KEYS | {"replacement"}
    assert own_minion["beacons"] == {"master_list": [{"interval": 1}]}
    merged: dict[str, Any] = {}
    for document in documents:
        merged.update(document)
    assert {"instance_manager": {}} in merged["engines"]
    # The user data wires exactly Phoenix's reactions, each to the file the wheel ships.
    wired = {
        tag: [path.rsplit("/", 1)[-1] for path in paths]
        for entry in merged["reactor"]
        for tag, paths in entry.items()
    }
    assert wired == {tag: [name] for tag, name in REACTIONS}
    assert merged["fileserver_backend"] == ["gitfs"]
    assert merged["gitfs_remotes"] == [
        {"https://git.example.com/salt/states.git": [{"base": "main"}]}
    ]
    assert merged["ext_pillar"] == [
        {"git": [{"main git@git.example.com:salt/pillar-qa.git": [{"env": "base"}]}]}
    ]
    for step in ("phoenix master-bootstrap", "phoenix minion-config", "enable --now salt-master"):
        assert step in script
    assert script.index("phoenix master-bootstrap") < script.index("enable --now salt-master")


def systemd_units(script: str) -> dict[str, configparser.ConfigParser]:
    """The systemd units the script writes, by description."""
    units = {}
    for body in heredocs(script):
        if body.startswith("[Unit]"):
            # Comment lines stay out of the values.
            unit = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
            unit.optionxform = str  # type: ignore[assignment,method-assign]
            unit.read_string(body)
            units[unit["Unit"]["Description"]] = unit
    return units


@pytest.mark.parametrize("launch_template", ["MasterLaunchTemplate", "MinionLaunchTemplate"])
def test_units_restart_salt_for_ever(compute: dict[str, Any], launch_template: str) -> None:
    """A salt daemon that exits is started again 5 s later, and systemd never gives up: a
    master that cannot come back is replaced on its peers' report (docs/masters.md)."""
    units = systemd_units(user_data(compute, launch_template))
    expected = {"Salt minion (Phoenix)"}
    if launch_template == "MasterLaunchTemplate":
        expected.add("Salt master (Phoenix)")
    assert set(units) == expected
    for unit in units.values():
        assert unit["Unit"]["StartLimitIntervalSec"] == "0"
        assert unit["Service"]["Restart"] == "always"
        assert unit["Service"]["RestartSec"] == "5"


def test_minion_user_data_configures_phoenix_and_the_beacon(compute: dict[str, Any]) -> None:
    script = user_data(compute, "MinionLaunchTemplate")
    (config,) = config_documents(script)
    assert config["id"] == "i-0123456789abcdef0"
    assert set(config["phoenix"]) == PHOENIX_CONFIG_KEYS
    assert config["phoenix"]["keys"] == {"claim_queue_url": CLAIM_QUEUE_URL}
    assert config["beacons"] == {"master_list": [{"interval": 1}]}
    assert script.index("phoenix minion-config") < script.index("enable --now salt-minion")
    assert "salt-master" not in script


# -------------------------------------------------------------------------------------------
# Data
# -------------------------------------------------------------------------------------------


def test_data_outputs_name_everything(data: dict[str, Any]) -> None:
    missing = DATA_OUTPUTS - set(data["Outputs"])
    assert not missing, f"data outputs missing: {sorted(missing)}"


def test_phoenix_config_output_uses_exactly_the_engine_keys(data: dict[str, Any]) -> None:
    template, variables = sub_template(data["Outputs"]["PhoenixConfig"]["Value"])
    assert set(variables) == {"MastersGroup", "MinionsGroup"}
    rendered = render_sub(
        template,
        {
            "ClusterName": "qa",
            "AWS::Region": "eu-west-1",
            "MastersTable": "phoenix-qa-masters",
            "MinionsTable": "phoenix-qa-minions",
            "EventsQueue": "https://sqs.eu-west-1.amazonaws.com/123456789012/phoenix-qa-events",
            "ClaimQueue": "https://sqs.eu-west-1.amazonaws.com/123456789012/phoenix-qa-claims",
            "MastersGroup": "phoenix-qa-masters",
            "MinionsGroup": "phoenix-qa-minions",
        },
    )
    config = yaml.safe_load(rendered)
    assert set(config) == {"phoenix"}
    assert set(config["phoenix"]) == PHOENIX_CONFIG_KEYS
    assert config["phoenix"] == {
        "cluster": "qa",
        "region": "eu-west-1",
        "masters_table": "phoenix-qa-masters",
        "minions_table": "phoenix-qa-minions",
        "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/phoenix-qa-events",
        "master_key_secret": "phoenix/qa/master-key",
        "master_groups": ["phoenix-qa-masters"],
        "minion_groups": ["phoenix-qa-minions"],
        "keys": {
            "claim_queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/phoenix-qa-claims"
        },
    }


def test_claim_queue_takes_claims_for_the_enrolment_window_only(data: dict[str, Any]) -> None:
    (queue,) = [
        resource["Properties"]
        for resource in resources_of(data, "AWS::SQS::Queue").values()
        if resource["Properties"]["QueueName"] == {"Fn::Sub": "phoenix-${ClusterName}-claims"}
    ]
    # Longer than the default enrolment window (900 s): a claim waiting for its launch to be
    # recorded is still there when it is.
    assert queue["MessageRetentionPeriod"] >= 900
    # SQS's own encryption: instances send without any KMS permission.
    assert queue["SqsManagedSseEnabled"] is True
    assert "RedrivePolicy" not in queue


def test_registry_tables(data: dict[str, Any]) -> None:
    tables = resources_of(data, "AWS::DynamoDB::Table")
    assert set(tables) == {"MastersTable", "MinionsTable"}
    for logical_id, table in tables.items():
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
        properties = table["Properties"]
        role = "masters" if logical_id == "MastersTable" else "minions"
        assert properties["TableName"] == {"Fn::Sub": f"phoenix-${{ClusterName}}-{role}"}
        assert properties["KeySchema"] == [
            {"AttributeName": "cluster", "KeyType": "HASH"},
            {"AttributeName": "instance_id", "KeyType": "RANGE"},
        ]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert properties["SSESpecification"]["SSEType"] == "KMS"
        assert properties["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["Key", "Arn"]}
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": "expires_at",
            "Enabled": True,
        }


def test_events_queue_topic_and_secret(data: dict[str, Any]) -> None:
    resources = data["Resources"]
    queue = resources["EventsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == {"Ref": "VisibilityTimeoutSeconds"}
    assert data["Parameters"]["VisibilityTimeoutSeconds"]["Default"] == 120
    assert queue["ReceiveMessageWaitTimeSeconds"] == 20
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]
    }
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    # With phoenix.retry's defaults, 15 receives ride out 6 hours of failures (the engine's
    # src/engine/retry.rs checks the arithmetic against this template).
    assert data["Parameters"]["MaxReceiveCount"]["Default"] == 15
    assert (
        "KmsMasterKeyId" in queue
        and "KmsMasterKeyId" in resources["EventsDeadLetterQueue"]["Properties"]
    )

    topic = resources["AsgEventsTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "Key"}
    assert topic["Subscription"] == [
        {"Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["EventsQueue", "Arn"]}}
    ]
    for subscription in resources_of(data, "AWS::SNS::Subscription").values():
        assert subscription["Properties"].get("RawMessageDelivery") in (None, False, "false")

    (queue_policy,) = resources_of(data, "AWS::SQS::QueuePolicy").values()
    allow, _ = statements(queue_policy["Properties"]["PolicyDocument"])
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "AsgEventsTopic"}}}

    secret = resources["MasterKeySecret"]
    assert secret["DeletionPolicy"] == "Retain" and secret["UpdateReplacePolicy"] == "Retain"
    assert secret["Properties"]["SecretString"] == "{}"
    assert secret["Properties"]["KmsKeyId"] == {"Ref": "Key"}
    assert secret["Properties"]["Name"] == {"Fn::Sub": "phoenix/${ClusterName}/master-key"}


def test_alarms_watch_the_stacks_queues_and_publish_only_to_the_alarm_topic(
    data: dict[str, Any],
) -> None:
    """What reaches a person: dead letters, a rejected event, an event stuck in the queue, a
    claim nobody judges. Each alarm watches the stack's own queue and notifies the alarm
    topic, which only this cluster's alarms may publish to (through the cluster's key).
    moto's CloudFormation does not create alarms, so they are checked here, in the
    template."""
    alarms = {
        name: alarm["Properties"]
        for name, alarm in resources_of(data, "AWS::CloudWatch::Alarm").items()
    }
    watched = {
        name: (alarm["MetricName"], alarm["Dimensions"], alarm["Threshold"])
        for name, alarm in alarms.items()
    }
    assert watched == {
        "DeadLetterAlarm": (
            "ApproximateNumberOfMessagesVisible",
            [
                {
                    "Name": "QueueName",
                    "Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]},
                }
            ],
            0,
        ),
        "RejectedEventsAlarm": (
            "NumberOfMessagesSent",
            [
                {
                    "Name": "QueueName",
                    "Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]},
                }
            ],
            0,
        ),
        "OldestEventAlarm": (
            "ApproximateAgeOfOldestMessage",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}],
            {"Ref": "OldestEventAlarmSeconds"},
        ),
        "OldestClaimAlarm": (
            "ApproximateAgeOfOldestMessage",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["ClaimQueue", "QueueName"]}}],
            1200,
        ),
    }
    # Rejections are counted as they are sent, not as they sit in the queue.
    assert alarms["RejectedEventsAlarm"]["Statistic"] == "Sum"
    # A claim may wait for its launch for the whole enrolment window, never longer.
    enrolment_window = 900
    assert alarms["OldestClaimAlarm"]["Threshold"] > enrolment_window
    # An event is retried for hours; the alarm says so long before it is dead-lettered.
    assert data["Parameters"]["OldestEventAlarmSeconds"]["Default"] < 6 * 3600
    policies = resources_of(data, "AWS::SNS::TopicPolicy")
    (topic_policy,) = [
        p for p in policies.values() if p["Properties"]["Topics"] == [{"Ref": "AlarmTopic"}]
    ]
    (publish,) = statements(topic_policy["Properties"]["PolicyDocument"])
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    source, values = sub_template(publish["Condition"]["ArnLike"]["aws:SourceArn"])
    assert source.endswith(":alarm:phoenix-${ClusterName}-*") and not values
    key_statements = data["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"]
    (key_use,) = [s for s in key_statements if s.get("Sid") == "CloudWatchPublishesAlarms"]
    assert (
        key_use["Condition"]["ArnLike"]["aws:SourceArn"]
        == publish["Condition"]["ArnLike"]["aws:SourceArn"]
    )
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        # The name is what lets the alarm publish: it must match the policies' pattern.
        alarm_name, _ = sub_template(alarm["AlarmName"])
        assert alarm_name.startswith("phoenix-${ClusterName}-"), name
    topic = data["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "Key"}
    assert data["Parameters"]["AlarmSubscriptionEndpoint"]["Default"] == ""


# -------------------------------------------------------------------------------------------
# The data stack in the emulator
# -------------------------------------------------------------------------------------------


def test_data_stack_deploys_into_moto() -> None:
    mock_aws = pytest.importorskip("moto").mock_aws
    boto3 = pytest.importorskip("boto3")

    region = "us-east-1"
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=region)
        cloudformation.create_stack(
            StackName="phoenix-data-qa",
            TemplateBody=DATA.read_text(),
            Parameters=[{"ParameterKey": "ClusterName", "ParameterValue": "qa"}],
            Capabilities=["CAPABILITY_IAM"],
        )
        (stack,) = cloudformation.describe_stacks(StackName="phoenix-data-qa")["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
        # moto skips AWS::SecretsManager::Secret, so MasterKeySecretArn has no value there.
        assert DATA_OUTPUTS - {"MasterKeySecretArn"} <= set(outputs)

        dynamodb = boto3.client("dynamodb", region_name=region)
        for table in ("phoenix-qa-masters", "phoenix-qa-minions"):
            described = dynamodb.describe_table(TableName=table)["Table"]
            assert [key["AttributeName"] for key in described["KeySchema"]] == [
                "cluster",
                "instance_id",
            ]

        # Group notifications reach the queue inside the SNS envelope the engine parses.
        sns = boto3.client("sns", region_name=region)
        sqs = boto3.client("sqs", region_name=region)
        sns.publish(
            TopicArn=outputs["TopicArn"], Message='{"Event": "autoscaling:TEST_NOTIFICATION"}'
        )
        messages = sqs.receive_message(QueueUrl=outputs["QueueUrl"], WaitTimeSeconds=1)["Messages"]
        envelope = json.loads(messages[0]["Body"])
        assert envelope["Type"] == "Notification"
        assert envelope["TopicArn"] == outputs["TopicArn"]
        assert json.loads(envelope["Message"]) == {"Event": "autoscaling:TEST_NOTIFICATION"}

        config = yaml.safe_load(outputs["PhoenixConfig"])["phoenix"]
        assert config["queue_url"] == outputs["QueueUrl"]
        assert config["masters_table"] == "phoenix-qa-masters"
        assert config["region"] == region

        # The alarm topic has no subscription unless one is given.
        assert (
            sns.list_subscriptions_by_topic(TopicArn=outputs["AlarmTopicArn"])["Subscriptions"]
            == []
        )
        cloudformation.create_stack(
            StackName="phoenix-data-ops",
            TemplateBody=DATA.read_text(),
            Parameters=[
                {"ParameterKey": "ClusterName", "ParameterValue": "ops"},
                {"ParameterKey": "AlarmSubscriptionEndpoint", "ParameterValue": "ops@example.com"},
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
        (ops,) = cloudformation.describe_stacks(StackName="phoenix-data-ops")["Stacks"]
        assert ops["StackStatus"] == "CREATE_COMPLETE", ops.get("StackStatusReason")
        alarm_topic = {o["OutputKey"]: o["OutputValue"] for o in ops["Outputs"]}["AlarmTopicArn"]
        (subscription,) = sns.list_subscriptions_by_topic(TopicArn=alarm_topic)["Subscriptions"]
        assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")


def _names(values: Any, sender: str) -> set[str]:
    """The resources a condition's values name (``Ref`` X or X's ``Arn``), the optional
    EventsQueueSenderArn standing for ``sender`` (``""``: the parameter is empty)."""
    if isinstance(values, dict) and "Fn::If" in values:
        _, with_sender, without = values["Fn::If"]
        values = with_sender if sender else without
    names = set()
    for value in values if isinstance(values, list) else [values]:
        name = value.get("Ref") or value["Fn::GetAtt"][0]
        names.add(sender if name == "EventsQueueSenderArn" else name)
    return names


def _denied(statement: dict[str, Any], request: dict[str, str], sender: str) -> bool:
    """Whether a Deny whose only operator is ArnNotEquals applies to a request with these
    context keys: in IAM every key of the operator must hold, and a negated operator holds
    for a key the request does not have."""
    ((operator, keys),) = statement["Condition"].items()
    assert operator == "ArnNotEquals"
    return all(
        key not in request or request[key] not in _names(values, sender)
        for key, values in keys.items()
    )


def test_only_the_topic_and_the_hooks_may_send_lifecycle_events(data: dict[str, Any]) -> None:
    """A forged termination would drop a live master from the registry: the queue denies
    every sender but the stack's topic (SNS's delivery) and the lifecycle hook role, whatever
    identity policies allow, plus one optional operator role."""
    (queue_policy,) = resources_of(data, "AWS::SQS::QueuePolicy").values()
    _, deny = statements(queue_policy["Properties"]["PolicyDocument"])
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Action"] == "sqs:SendMessage"
    assert deny["Resource"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    topic = {"aws:SourceArn": "AsgEventsTopic"}
    hooks = {"aws:PrincipalArn": "LifecycleHookRole"}
    operator = {"aws:PrincipalArn": "OperatorRole"}
    for sender in ("", "OperatorRole"):
        assert not _denied(deny, topic, sender)
        assert not _denied(deny, hooks, sender)
        # An instance's role, an administrator, another topic of the account, anyone.
        assert _denied(deny, {"aws:PrincipalArn": "MinionRole"}, sender)
        assert _denied(deny, {"aws:SourceArn": "OtherTopic"}, sender)
        assert _denied(deny, {}, sender)
        assert _denied(deny, operator, sender) == (sender == "")
    assert data["Parameters"]["EventsQueueSenderArn"]["Default"] == ""


def test_only_the_masters_role_may_read_the_master_key(compute: dict[str, Any]) -> None:
    (policy,) = resources_of(compute, "AWS::SecretsManager::ResourcePolicy").values()
    properties = policy["Properties"]
    assert properties["SecretId"] == {"Ref": "MasterKeySecretArn"}
    assert properties["BlockPublicPolicy"] is True
    (statement,) = properties["ResourcePolicy"]["Statement"]
    # A deny for everyone else: it holds whatever identity policies the account has.
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    condition, with_reader, masters_only = allowed["Fn::If"]
    assert condition == "HasMasterKeyReader"
    master_role = {"Fn::GetAtt": ["MasterRole", "Arn"]}
    assert masters_only == [master_role]
    assert with_reader == [master_role, {"Ref": "MasterKeyReaderArn"}]
    assert compute["Parameters"]["MasterKeyReaderArn"]["Default"] == ""
    # The minions' role never had the secret in its policies either.
    minion = json.dumps(role_statements(compute, "MinionRole"))
    assert "secretsmanager" not in minion and "MasterKeySecret" not in minion
