"""The native core against the AWS emulator: clients from the standard chain with
AWS_ENDPOINT_URL, fork safety, and each error kind arriving as its exception class."""

from __future__ import annotations

import json
import os

import boto3
import pytest

import phoenix_salt
from phoenix_lab.emulator import Emulator
from phoenix_salt import _core

pytestmark = pytest.mark.integration


def _session(**overrides: object) -> _core.Session:
    block = {"cluster": "test", **overrides}
    return _core.Session(_core.Config.from_json(json.dumps(block)))


def test_the_core_creates_and_describes_the_registry_tables(aws: Emulator) -> None:
    session = _session()
    created = session.create_registry_tables()
    assert created == [("phoenix-test-masters", True), ("phoenix-test-minions", True)]
    table = session.describe_table("phoenix-test-masters")
    assert table["status"] == "ACTIVE"
    assert table["key_schema"] == [("cluster", "HASH"), ("instance_id", "RANGE")]
    # The emulator saw the same tables through its own API, with TTL on.
    client = boto3.client("dynamodb", endpoint_url=aws.url)
    assert sorted(client.list_tables()["TableNames"]) == [
        "phoenix-test-masters",
        "phoenix-test-minions",
    ]
    ttl = client.describe_time_to_live(TableName="phoenix-test-minions")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # Idempotent: a second run changes nothing.
    assert session.create_registry_tables() == [
        ("phoenix-test-masters", False),
        ("phoenix-test-minions", False),
    ]


def test_the_region_comes_from_the_standard_chain(aws: Emulator) -> None:
    assert _session().region() == "us-east-1"
    assert _session(region="eu-west-1").region() == "eu-west-1"


def test_a_forked_child_makes_its_own_calls(aws: Emulator) -> None:
    session = _session()
    session.create_registry_tables()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = 1
        try:
            os.close(read)
            table = session.describe_table("phoenix-test-minions")
            os.write(write, json.dumps(table).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_output = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, child_output
    assert json.loads(child_output)["name"] == "phoenix-test-minions"
    # The parent's runtime and clients still work after the fork.
    assert session.describe_table("phoenix-test-masters")["status"] == "ACTIVE"


def test_a_missing_table_is_not_found_with_the_aws_code(aws: Emulator) -> None:
    with pytest.raises(phoenix_salt.NotFoundError) as caught:
        _session().describe_table("phoenix-test-nothing")
    assert caught.value.code == "ResourceNotFoundException"
    assert isinstance(caught.value, phoenix_salt.PhoenixError)


def test_a_table_with_another_schema_is_a_conflict(aws: Emulator) -> None:
    boto3.client("dynamodb", endpoint_url=aws.url).create_table(
        TableName="phoenix-test-masters",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(phoenix_salt.ConflictError, match="phoenix-test-masters"):
        _session().create_registry_tables()


def test_a_request_the_sdk_cannot_build_is_a_permanent_aws_error(aws: Emulator) -> None:
    with pytest.raises(phoenix_salt.AwsError) as caught:
        _session().describe_table("")
    assert caught.value.service == "dynamodb"
    assert caught.value.operation == "DescribeTable"
    assert caught.value.retryable is False
    assert "table_name" in str(caught.value)


def test_an_unreachable_endpoint_is_a_retryable_aws_error(
    monkeypatch: pytest.MonkeyPatch, aws: Emulator
) -> None:
    from phoenix_lab.ports import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    session = _session(aws={"max_attempts": 2, "connect_timeout": 0.5})
    with pytest.raises(phoenix_salt.AwsError) as caught:
        session.describe_table("phoenix-test-masters")
    assert caught.value.retryable is True
    assert caught.value.code is None


def test_a_bad_config_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(phoenix_salt.ConfigError) as caught:
        _core.Config.from_json(json.dumps({"cluster": "test", "aws": {"max_attempts": 0}}))
    assert caught.value.key == "phoenix.aws.max_attempts"
