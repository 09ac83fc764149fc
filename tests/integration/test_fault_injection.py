"""The lab's fault injector (lab/phoenix_lab/faults.py, in latency_proxy.py beside it) against the
emulator: each fault reaches the AWS SDKs, Python's and Phoenix's own, as the service's own error, a
cut connection or a hung call, at the rate asked, and only for the calls it names."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest

import phoenix_salt
from phoenix_lab.emulator import Emulator
from phoenix_lab.faults import (
    DYNAMODB_WRITES,
    REFUSE,
    SERVER_ERROR,
    STALL,
    THROTTLING,
    Fault,
)
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_salt import _core

pytestmark = pytest.mark.integration

TABLE = "phoenix-faults"


@pytest.fixture
def proxy(aws: Emulator, workdir: Path) -> Iterator[LatencyProxy]:
    proxy = LatencyProxy([aws.port], 0, workdir)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _client(proxy: LatencyProxy, aws: Emulator, service: str, **config: Any) -> Any:
    """A boto3 client whose calls go through the proxy, each tried once."""
    settings = botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": 1}, **config
    )
    return boto3.client(service, endpoint_url=proxy.url(aws.port), config=settings)


def _table(aws: Emulator) -> None:
    boto3.client("dynamodb", endpoint_url=aws.url).create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, int]:
    """The error code and HTTP status of the ClientError that ``call`` raises."""
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_each_service_answers_with_its_own_error_in_its_own_protocol(
    aws: Emulator, proxy: LatencyProxy
) -> None:
    _table(aws)
    dynamodb = _client(proxy, aws, "dynamodb")
    sqs = _client(proxy, aws, "sqs")
    autoscaling = _client(proxy, aws, "autoscaling")
    queue = sqs.create_queue(QueueName="phoenix-faults")["QueueUrl"]

    proxy.fault(Fault("dynamodb", THROTTLING["dynamodb"], operations=DYNAMODB_WRITES))
    proxy.fault(Fault("autoscaling", THROTTLING["autoscaling"]))
    proxy.fault(Fault("sqs", "KmsThrottled", operations=frozenset({"ReceiveMessage"})))

    assert _error(dynamodb.put_item, TableName=TABLE, Item={"id": {"S": "a"}}) == (
        "ProvisionedThroughputExceededException",
        400,
    )
    # A read is not a write: it goes through.
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "a"}})
    assert _error(autoscaling.describe_auto_scaling_groups) == ("Throttling", 400)
    assert _error(sqs.receive_message, QueueUrl=queue) == ("KmsThrottled", 400)
    sqs.send_message(QueueUrl=queue, MessageBody="kept")

    counts = proxy.counts()
    assert counts["injected"] == {
        "dynamodb PutItem": {"ProvisionedThroughputExceededException": 1},
        "autoscaling DescribeAutoScalingGroups": {"Throttling": 1},
        "sqs ReceiveMessage": {"KmsThrottled": 1},
    }
    assert counts["calls"]["dynamodb GetItem"] == 1

    # Cleared, every call reaches the emulator again.
    proxy.clear()
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": "a"}})
    received = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert [message["Body"] for message in received] == ["kept"]
    assert proxy.counts()["faults"] == []


def test_a_server_error_is_a_5xx(aws: Emulator, proxy: LatencyProxy) -> None:
    dynamodb = _client(proxy, aws, "dynamodb")
    autoscaling = _client(proxy, aws, "autoscaling")
    proxy.fault(Fault("dynamodb", SERVER_ERROR["dynamodb"]))
    proxy.fault(Fault("autoscaling", SERVER_ERROR["autoscaling"]))
    assert _error(dynamodb.list_tables) == ("InternalServerError", 500)
    assert _error(autoscaling.describe_auto_scaling_groups) == ("InternalFailure", 500)


def test_a_rate_hits_about_that_share_of_the_calls_and_only_those_fail(
    aws: Emulator, proxy: LatencyProxy
) -> None:
    _table(aws)
    dynamodb = _client(proxy, aws, "dynamodb")
    proxy.fault(Fault("dynamodb", THROTTLING["dynamodb"], rate=0.3, operations=DYNAMODB_WRITES))
    written, throttled = [], 0
    for n in range(100):
        try:
            dynamodb.put_item(TableName=TABLE, Item={"id": {"S": str(n)}})
            written.append(str(n))
        except botocore.exceptions.ClientError as error:
            assert error.response["Error"]["Code"] == THROTTLING["dynamodb"]
            throttled += 1
    injected = proxy.counts()["injected"]["dynamodb PutItem"][THROTTLING["dynamodb"]]
    assert injected == throttled
    # 30 % of 100 (the draws are seeded; a fair coin at 0.3 lands in 10..50 all but always).
    assert 10 <= throttled <= 50, throttled
    items = boto3.client("dynamodb", endpoint_url=aws.url).scan(TableName=TABLE)["Items"]
    assert sorted(item["id"]["S"] for item in items) == sorted(written)


def test_a_refused_call_is_a_cut_connection_and_a_stalled_one_hangs_until_cleared(
    aws: Emulator, proxy: LatencyProxy
) -> None:
    dynamodb = _client(proxy, aws, "dynamodb", read_timeout=2, connect_timeout=2)
    proxy.fault(Fault("dynamodb", REFUSE))
    with pytest.raises(
        (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)
    ):
        dynamodb.list_tables()
    proxy.clear()
    proxy.fault(Fault("dynamodb", STALL))
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        dynamodb.list_tables()
    assert proxy.counts()["injected"]["dynamodb ListTables"] == {REFUSE: 1, STALL: 1}
    proxy.clear()
    assert dynamodb.list_tables()["TableNames"] == []


def test_phoenix_retries_throttling_and_5xx_and_reports_the_code(
    aws: Emulator, proxy: LatencyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Rust core's SDK retries what AWS says is passing (its standard retry mode) and
    keeps the code; a code that is not passing is tried once."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url(aws.port))
    block = {"cluster": "test", "aws": {"max_attempts": 3}}
    session = _core.Session(_core.Config.from_json(json.dumps(block)))
    for code, retried in [
        (THROTTLING["dynamodb"], True),
        (SERVER_ERROR["dynamodb"], True),
        ("AccessDeniedException", False),
    ]:
        proxy.clear()
        proxy.reset()
        proxy.fault(Fault("dynamodb", code))
        with pytest.raises(phoenix_salt.AwsError) as caught:
            session.describe_table("phoenix-test-masters")
        assert (caught.value.code, caught.value.retryable) == (code, retried)
        assert proxy.counts()["calls"]["dynamodb DescribeTable"] == (3 if retried else 1)
