"""The instances' roles grant what the code calls, on what it calls it, and nothing else.

Phoenix makes every AWS call in its Rust core, on a client of `AwsClients`
(src/aws/clients.rs), as `clients.<service>.<operation>()`; the Python that runs on masters
and minions imports no AWS SDK. This tier reads those calls out of the source, function by
function, and `CALLERS` says for each one who makes it and on what: under the masters' role,
the minions' role, or an operator's own credentials (`phoenix dlq`, `phoenix tables`, which no
role of the templates carries). The tests hold the code, `CALLERS` and the compute template
together:

- every function that calls AWS is in `CALLERS` with each of its operations, and `CALLERS`
  names nothing the code no longer calls, so a new call cannot ship without a decision here;
- a DynamoDB call is declared only on a table its function can name;
- each instance role grants exactly the IAM actions of the calls made under it, each on exactly
  the resources they are made on: a missing grant and a grant no code uses both fail;
- the cluster key is usable by a role exactly through the services that role calls on what the
  key encrypts.

Which process runs a function is `CALLERS`' word, not something read from the code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from .templates import REPO, as_list, role_statements, sub_template

SRC = REPO / "src"
MASTER = "MasterRole"
MINION = "MinionRole"
# An operator's own credentials (or the lab's): no role of the templates grants these calls.
OPERATOR = "operator"

MASTERS_TABLE = "MastersTable"
MINIONS_TABLE = "MinionsTable"
BOTH_TABLES = (MASTERS_TABLE, MINIONS_TABLE)
ANY = "*"  # the action supports no resource-level permission


@dataclass(frozen=True)
class Call:
    who: str
    on: str  # a compute template parameter naming the resource, a group, or ANY


def calls(who: str, *on: str) -> list[Call]:
    return [Call(who, resource) for resource in on]


# For each function of the Rust core that calls AWS ("path::function"), each operation it
# calls: who calls it, on what.
CALLERS: dict[str, dict[str, list[Call]]] = {
    # The engine confirms a master's termination and checks a claim's instance
    # (phoenix.keys.verify_autoscaling); the key manager checks a minion before accepting.
    "src/aws/autoscaling.rs::describe_instances": {
        "DescribeAutoScalingInstances": calls(MASTER, ANY),
    },
    # An identity claim (every minion's, a master's own minion's); a rejected event moved to
    # the dead-letter queue; `phoenix dlq redrive` sending a message back.
    "src/aws/sqs.rs::send": {
        "SendMessage": [
            *calls(MASTER, "ClaimQueueArn", "DeadLetterQueueArn"),
            *calls(MINION, "ClaimQueueArn"),
            *calls(OPERATOR, "QueueArn"),
        ],
    },
    # The dead-letter queue, found from the events queue's redrive policy.
    "src/engine/dead_letters.rs::dead_letter_queue_url": {
        "GetQueueAttributes": [*calls(MASTER, "QueueArn"), *calls(OPERATOR, "QueueArn")],
        "GetQueueUrl": [
            *calls(MASTER, "DeadLetterQueueArn"),
            *calls(OPERATOR, "DeadLetterQueueArn"),
        ],
    },
    "src/engine/lifecycle_action.rs::complete": {
        "CompleteLifecycleAction": calls(MASTER, "MastersGroup", "MinionsGroup"),
    },
    "src/engine/lifecycle_action.rs::heartbeat": {
        "RecordLifecycleActionHeartbeat": calls(MASTER, "MastersGroup", "MinionsGroup"),
    },
    # The engine reads lifecycle events and identity claims; `phoenix dlq` reads the
    # dead-letter queue.
    "src/engine/queue.rs::receive": {
        "ReceiveMessage": [
            *calls(MASTER, "QueueArn", "ClaimQueueArn"),
            *calls(OPERATOR, "DeadLetterQueueArn"),
        ],
    },
    "src/engine/queue.rs::postpone": {
        "ChangeMessageVisibilityBatch": [
            *calls(MASTER, "QueueArn", "ClaimQueueArn"),
            *calls(OPERATOR, "DeadLetterQueueArn"),
        ],
    },
    "src/engine/queue.rs::delete": {
        "DeleteMessageBatch": [
            *calls(MASTER, "QueueArn", "ClaimQueueArn"),
            *calls(OPERATOR, "DeadLetterQueueArn"),
        ],
    },
    # `phoenix master-bootstrap`.
    "src/master_key.rs::get_or_create": {"PutSecretValue": calls(MASTER, "MasterKeySecretArn")},
    "src/master_key.rs::read": {"GetSecretValue": calls(MASTER, "MasterKeySecretArn")},
    # Only where no stack made the secret (the data template creates it empty, and the first
    # master fills it): the masters may not create secrets.
    "src/master_key.rs::create_secret": {"CreateSecret": calls(OPERATOR, "MasterKeySecretArn")},
    "src/registry/highstate.rs::write_highstate": {"UpdateItem": calls(MASTER, *BOTH_TABLES)},
    "src/registry/instances.rs::apply_event": {"UpdateItem": calls(MASTER, *BOTH_TABLES)},
    "src/registry/instances.rs::clear_hook": {"UpdateItem": calls(MASTER, *BOTH_TABLES)},
    "src/registry/instances.rs::record_heartbeat": {"UpdateItem": calls(MASTER, MASTERS_TABLE)},
    "src/registry/instances.rs::list": {"Query": calls(MASTER, *BOTH_TABLES)},
    "src/registry/instances.rs::get": {"GetItem": calls(MASTER, *BOTH_TABLES)},
    "src/registry/keys.rs::pin_key": {"UpdateItem": calls(MASTER, *BOTH_TABLES)},
    "src/registry/keys.rs::record_seeded": {"UpdateItem": calls(MASTER, *BOTH_TABLES)},
    # A booting minion's enrolment (its own row, by projection); a master's own minion's.
    "src/registry/keys.rs::read_enrolment": {
        "GetItem": [*calls(MASTER, *BOTH_TABLES), *calls(MINION, MINIONS_TABLE)],
    },
    # The live masters: the engine, the master_list beacon, `phoenix minion-config`.
    "src/registry/masters.rs::read_master_heartbeats": {
        "Query": [*calls(MASTER, MASTERS_TABLE), *calls(MINION, MASTERS_TABLE)],
    },
    "src/registry/replacement.rs::claim_replacement": {
        "TransactWriteItems": calls(MASTER, MASTERS_TABLE),
    },
    "src/registry/replacement.rs::mark_reported": {"UpdateItem": calls(MASTER, MASTERS_TABLE)},
    "src/replacement/mod.rs::set_unhealthy": {"SetInstanceHealth": calls(MASTER, "MastersGroup")},
    # `phoenix tables create` (the lab, or a registry without the data template).
    "src/registry/tables.rs::create_table": {"CreateTable": calls(OPERATOR, *BOTH_TABLES)},
    "src/registry/tables.rs::enable_ttl": {"UpdateTimeToLive": calls(OPERATOR, *BOTH_TABLES)},
    "src/registry/tables.rs::describe_table": {"DescribeTable": calls(OPERATOR, *BOTH_TABLES)},
}

# Calls IAM authorizes as other actions (the SQS and DynamoDB API references): a batch as
# its single action, a transaction as the action of each of its items.
SQS_BATCHES = {
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    "DeleteMessageBatch": "DeleteMessage",
    "SendMessageBatch": "SendMessage",
}
TRANSACTION_ITEMS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}

CLIENT_FIELD = re.compile(r"pub (\w+): aws_sdk_(\w+)::Client")
FUNCTION = re.compile(r"\bfn\s+(\w+)")
TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{")


@dataclass(frozen=True)
class SdkCall:
    function: str  # "path::function"
    service: str  # the IAM service prefix: dynamodb, sqs, autoscaling, secretsmanager
    operation: str  # as the API reference names it: PutSecretValue
    body: str  # the calling function's source


def client_services() -> dict[str, str]:
    """`AwsClients`' fields, each with its SDK crate's service."""
    source = (SRC / "aws" / "clients.rs").read_text()
    fields = dict(CLIENT_FIELD.findall(source))
    assert fields, "src/aws/clients.rs declares no client: has AwsClients moved?"
    return fields


def pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def functions(source: str) -> list[tuple[str, str]]:
    """Each `fn` of a source file's non-test part: its name, its text up to the next fn."""
    source = source[: match.start()] if (match := TEST_MODULE.search(source)) else source
    starts = list(FUNCTION.finditer(source))
    ends = [match.start() for match in starts[1:]] + [len(source)]
    return [
        (match.group(1), source[match.start() : end])
        for match, end in zip(starts, ends[: len(starts)], strict=True)
    ]


@functools.cache
def sdk_calls() -> tuple[SdkCall, ...]:
    """Every SDK call of the Rust core's non-test code, read once per session."""
    services = client_services()
    field = "|".join(map(re.escape, services))
    call = re.compile(rf"\bclients\s*\.\s*({field})\s*\.\s*(\w+)\s*\(")
    any_use = re.compile(rf"\bclients\s*\.\s*({field})\b")
    found: list[SdkCall] = []
    for path in sorted(SRC.rglob("*.rs")):
        if path.name in ("tests.rs", "proptests.rs"):
            continue
        relative = path.relative_to(REPO).as_posix()
        for name, body in functions(path.read_text()):
            made = call.findall(body)
            # A client taken out of `clients` and called elsewhere would escape this reading.
            assert len(made) == len(any_use.findall(body)), (
                f"{relative}::{name} uses a client other than as clients.<service>.<operation>()"
            )
            found.extend(
                SdkCall(f"{relative}::{name}", services[client], pascal(operation), body)
                for client, operation in made
            )
    return tuple(found)


def iam_actions(call: SdkCall) -> set[str]:
    if call.service == "sqs" and call.operation in SQS_BATCHES:
        return {f"sqs:{SQS_BATCHES[call.operation]}"}
    if call.service == "dynamodb" and call.operation == "TransactWriteItems":
        items = re.findall(r"\b(Put|Update|Delete|ConditionCheck)::builder\(\)", call.body)
        assert items, f"{call.function}: a transaction with no item builder in sight"
        return {f"dynamodb:{TRANSACTION_ITEMS[item]}" for item in items}
    return {f"{call.service}:{call.operation}"}


def required(role: str) -> set[tuple[str, str]]:
    """(IAM action, resource) of every call made under `role`."""
    wanted: set[tuple[str, str]] = set()
    for call in sdk_calls():
        for use in CALLERS[call.function][call.operation]:
            if use.who == role:
                wanted.update((action, use.on) for action in iam_actions(call))
    return wanted


def resource_name(resource: Any) -> str:
    """A statement's resource as a compute template parameter name, a group or ANY."""
    if resource == "*":
        return ANY
    if isinstance(resource, dict) and set(resource) == {"Ref"}:
        return resource["Ref"]
    text, variables = sub_template(resource)
    if match := re.fullmatch(r"arn:\$\{AWS::Partition\}:dynamodb:.*:table/\$\{(\w+)\}", text):
        return match.group(1)
    if text.endswith(":autoScalingGroup:*:autoScalingGroupName/${Group}"):
        # !If [Default<Name>, phoenix-${ClusterName}-<role>s, !Ref <Name>]: the group's name
        # parameter, MastersGroupName or MinionsGroupName.
        default, named = variables["Group"]["Fn::If"][1:]
        assert default["Fn::Sub"].startswith("phoenix-${ClusterName}-"), default
        return named["Ref"].removesuffix("Name")
    raise AssertionError(f"a resource this test cannot name: {resource!r}")


def granted(compute: dict[str, Any], role: str) -> set[tuple[str, str]]:
    """(IAM action, resource) of every Allow of the role's own policies but the cluster key's."""
    grants: set[tuple[str, str]] = set()
    for statement in role_statements(compute, role):
        assert statement["Effect"] == "Allow", statement
        for action in as_list(statement["Action"]):
            if action.startswith("kms:"):
                continue
            grants.update((action, resource_name(r)) for r in as_list(statement["Resource"]))
    return grants


def describe(pairs: set[tuple[str, str]]) -> str:
    return ", ".join(f"{action} on {resource}" for action, resource in sorted(pairs)) or "-"


# -------------------------------------------------------------------------------------------
# The code and CALLERS
# -------------------------------------------------------------------------------------------


def test_the_runtime_python_calls_aws_only_through_the_core() -> None:
    """What this reading of the Rust source misses would be an AWS call from Python."""
    runtime = [
        path
        for folder in ("python/phoenix_salt", "_engines", "_runners", "_beacons", "_modules")
        for path in (REPO / folder).rglob("*.py")
        if "lab" not in path.relative_to(REPO).parts
    ]
    assert len(runtime) > 10
    sdk = re.compile(r"^\s*(import|from)\s+(boto3|botocore|aiobotocore|aioboto3)\b", re.M)
    importing = [str(path) for path in runtime if sdk.search(path.read_text())]
    assert importing == []
    clients = re.compile(r"aws_sdk_\w+::Client::(new|from_conf)")
    outside = [
        path.relative_to(REPO).as_posix()
        for path in SRC.rglob("*.rs")
        if clients.search(path.read_text())
    ]
    assert outside == ["src/aws/clients.rs"]


def test_the_reading_finds_the_calls_it_should() -> None:
    """The reading is not vacuous: known calls are found, attributed to their function."""
    found = {(call.function, call.operation) for call in sdk_calls()}
    assert ("src/engine/queue.rs::receive", "ReceiveMessage") in found
    assert ("src/master_key.rs::read", "GetSecretValue") in found
    assert len(found) >= 25
    transaction = next(call for call in sdk_calls() if call.operation == "TransactWriteItems")
    assert iam_actions(transaction) == {"dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}


def test_every_aws_call_in_the_code_is_declared_and_nothing_else() -> None:
    found: dict[str, set[str]] = {}
    for call in sdk_calls():
        found.setdefault(call.function, set()).add(call.operation)
    declared = {function: set(operations) for function, operations in CALLERS.items()}
    missing = {
        f"{function} {operation}"
        for function, operations in found.items()
        for operation in operations - declared.get(function, set())
    }
    stale = {
        f"{function} {operation}"
        for function, operations in declared.items()
        for operation in operations - found.get(function, set())
    }
    assert not missing, f"AWS calls with no entry in CALLERS (who makes them, on what): {missing}"
    assert not stale, f"CALLERS names calls the code no longer makes: {stale}"
    for function, operations in CALLERS.items():
        for operation, uses in operations.items():
            assert uses, f"{function} {operation}: nobody calls it?"
            assert {use.who for use in uses} <= {MASTER, MINION, OPERATOR}


def test_a_dynamodb_call_is_declared_only_on_a_table_its_function_names() -> None:
    for call in sdk_calls():
        if call.service != "dynamodb":
            continue
        names = set()
        if "table_for(" in call.body:
            names.update(BOTH_TABLES)
        if "masters_table" in call.body:
            names.add(MASTERS_TABLE)
        if "minions_table" in call.body:
            names.add(MINIONS_TABLE)
        for use in CALLERS[call.function][call.operation]:
            if use.who != OPERATOR:  # `phoenix tables` takes the names it is given
                assert use.on in names, f"{call.function} {call.operation} on {use.on}: {names}"


# -------------------------------------------------------------------------------------------
# The roles
# -------------------------------------------------------------------------------------------


def test_each_instance_role_grants_exactly_what_its_code_calls_on_what_it_calls_it(
    compute: dict[str, Any],
) -> None:
    for role in (MASTER, MINION):
        wanted, grants = required(role), granted(compute, role)
        assert wanted, f"{role}: no call is made under it?"
        assert not wanted - grants, f"{role} lacks {describe(wanted - grants)}"
        assert not grants - wanted, f"{role} grants what no code calls: {describe(grants - wanted)}"


def test_no_operator_call_is_granted_to_an_instance_role(compute: dict[str, Any]) -> None:
    actions = {role: {action for action, _ in granted(compute, role)} for role in (MASTER, MINION)}
    for call in sdk_calls():
        uses = CALLERS[call.function][call.operation]
        if {use.who for use in uses} != {OPERATOR}:
            continue
        for role, allowed in actions.items():
            assert not iam_actions(call) & allowed, f"{role} may {call.operation}"


def encrypted_by_the_cluster_key(data: dict[str, Any]) -> set[str]:
    """The data outputs (the compute template's parameters of the same names) naming a
    resource that the cluster key encrypts."""
    encrypted: set[str] = set()
    for output, spec in data["Outputs"].items():
        value = spec["Value"]
        logical_id = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
        resource = data["Resources"].get(logical_id, {}) if isinstance(logical_id, str) else {}
        properties = resource.get("Properties", {})
        keys = [
            properties.get("KmsMasterKeyId"),
            properties.get("KmsKeyId"),
            properties.get("SSESpecification", {}).get("KMSMasterKeyId"),
        ]
        if any(key in ({"Ref": "Key"}, {"Fn::GetAtt": ["Key", "Arn"]}) for key in keys):
            encrypted.add(output)
    return encrypted


def test_the_cluster_key_is_used_through_exactly_the_services_that_need_it(
    compute: dict[str, Any], data: dict[str, Any]
) -> None:
    encrypted = encrypted_by_the_cluster_key(data)
    # The claim queue is encrypted with SQS's own keys, so a minion needs no KMS to send.
    assert {MASTERS_TABLE, MINIONS_TABLE, "QueueArn", "MasterKeySecretArn"} <= encrypted
    assert "ClaimQueueArn" not in encrypted
    for role in (MASTER, MINION):
        services = {
            action.split(":")[0] for action, resource in required(role) if resource in encrypted
        }
        via = set()
        for statement in role_statements(compute, role):
            if any(action.startswith("kms:") for action in as_list(statement["Action"])):
                assert statement["Resource"] == {"Ref": "KmsKeyArn"}
                for service in as_list(statement["Condition"]["StringEquals"]["kms:ViaService"]):
                    via.add(sub_template(service)[0].split(".")[0])
        assert via == services, f"{role}: kms:ViaService {via}, calls on encrypted data {services}"
