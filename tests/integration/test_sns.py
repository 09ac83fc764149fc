"""SNS push delivery: messages signed here with a key and certificate the test makes, the
certificate served over local HTTPS under a CA the test makes (trusted through
`phoenix.sns.ca_bundle` and `phoenix.sns.cert_hosts`, the operator settings for private CAs
and other partitions), verified and applied against the emulator; and end to end through a
real salt-master with salt-api."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import phoenix_salt
from phoenix_lab import messages
from phoenix_lab.cluster import Cluster, minion_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.ports import free_port
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener, SaltApi
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core, sns
from phoenix_salt.reactor import reactor_config

from . import fleet
from .sns_fixtures import CERT_PATH, CONFIRM_PATH, FakeSns, sns_time

pytestmark = pytest.mark.integration

TOPIC = "arn:aws:sns:us-east-1:123456789012:phoenix-test-asg-events"
OTHER_TOPIC = "arn:aws:sns:us-east-1:123456789012:someone-else"


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


@pytest.fixture
def fake_sns(tmp_path: Path) -> Iterator[FakeSns]:
    fake = FakeSns(tmp_path / "sns")
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def _notification(
    instance: str, subject: bool = True, topic: str = TOPIC, published: datetime | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": json.dumps(
            messages.asg_notification(
                messages.LAUNCH, instance, fleet.MINIONS_GROUP, messages.aws_time()
            )
        ),
        "Timestamp": sns_time(published),
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    if subject:
        message["Subject"] = f'Auto Scaling: launch for group "{fleet.MINIONS_GROUP}"'
    return message


def _receiver(
    stack: Stack, fake: FakeSns, fired: list[dict[str, Any]], **sns_settings: Any
) -> sns.Receiver:
    block = stack.phoenix_block(sns={**fake.settings(TOPIC), **sns_settings})
    return sns.Receiver(_core.Config.from_json(json.dumps(block)), fired.extend)


def _row(stack: Stack, instance: str) -> dict[str, Any] | None:
    return next(
        (r for r in fleet.session(stack).list_instances("minion") if r["instance_id"] == instance),
        None,
    )


def _refused(receiver: sns.Receiver, body: str) -> str:
    with pytest.raises(phoenix_salt.MessageError) as refused:
        receiver.receive(body)
    return str(refused.value.reason)


def test_signed_notifications_are_applied_and_everything_else_is_refused(
    stack: Stack, fake_sns: FakeSns
) -> None:
    fired: list[dict[str, Any]] = []
    receiver = _receiver(stack, fake_sns, fired)
    v2, v1 = minion_instance_id(61), minion_instance_id(62)

    result = receiver.receive(fake_sns.sign(_notification(v2), version="2"))
    assert (result["type"], result["outcome"]) == ("Notification", "done")
    assert (_row(stack, v2) or {}).get("state") == "running"
    assert [e["tag"] for e in fired] == [f"phoenix/instance/{v2}/launched"]
    # Version 1, and a Notification without Subject (signed without it): both pass.
    receiver.receive(fake_sns.sign(_notification(v1, subject=False), version="1"))
    assert (_row(stack, v1) or {}).get("state") == "running"
    # The certificate was fetched once, then served from the cache.
    assert fake_sns.requests == [CERT_PATH]

    tampered_id = minion_instance_id(63)
    body = json.loads(fake_sns.sign(_notification(minion_instance_id(64))))
    body["Message"] = body["Message"].replace(minion_instance_id(64), tampered_id)
    assert _refused(receiver, json.dumps(body)) == "bad_signature"
    assert _row(stack, tampered_id) is None

    # Refused before anything is fetched: a topic not allowed, a certificate URL off the
    # allowed hosts, a message outside the freshness window.
    fetched = list(fake_sns.requests)
    other = fake_sns.sign(_notification(minion_instance_id(65), topic=OTHER_TOPIC))
    assert _refused(receiver, other) == "topic_not_allowed"
    off_host = json.loads(fake_sns.sign(_notification(minion_instance_id(66))))
    off_host["SigningCertURL"] = "https://sns.us-east-1.amazonaws.com.example.org/x.pem"
    assert _refused(receiver, json.dumps(off_host)) == "url_refused"
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    stale = fake_sns.sign(_notification(minion_instance_id(67), published=old))
    assert _refused(receiver, stale) == "stale"
    assert fake_sns.requests == fetched
    for number in (65, 66, 67):
        assert _row(stack, minion_instance_id(number)) is None


def test_only_a_certificate_that_verified_a_message_is_cached(
    stack: Stack, fake_sns: FakeSns
) -> None:
    receiver = _receiver(stack, fake_sns, [])
    forged = json.loads(fake_sns.sign(_notification(minion_instance_id(75))))
    # A real signature, of another message.
    forged["Signature"] = json.loads(fake_sns.sign(_notification(minion_instance_id(76))))[
        "Signature"
    ]
    assert _refused(receiver, json.dumps(forged)) == "bad_signature"
    assert fake_sns.requests == [CERT_PATH]
    receiver.receive(fake_sns.sign(_notification(minion_instance_id(77))))
    receiver.receive(fake_sns.sign(_notification(minion_instance_id(78))))
    assert fake_sns.requests == [CERT_PATH, CERT_PATH]


def test_a_certificate_from_an_untrusted_server_is_not_used(
    stack: Stack, fake_sns: FakeSns, tmp_path: Path
) -> None:
    # Another CA than the one that signed the server's certificate.
    stranger = FakeSns(tmp_path / "stranger")
    receiver = _receiver(stack, fake_sns, [], ca_bundle=str(stranger.ca_bundle))
    instance = minion_instance_id(71)
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        receiver.receive(fake_sns.sign(_notification(instance)))
    assert _row(stack, instance) is None


def test_a_subscription_is_confirmed_only_at_a_checked_url(stack: Stack, fake_sns: FakeSns) -> None:
    receiver = _receiver(stack, fake_sns, [])
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": f"{fake_sns.base_url}{CONFIRM_PATH}?Action=ConfirmSubscription&Token=2336",
        "Timestamp": sns_time(),
    }
    result = receiver.receive(fake_sns.sign(confirmation, version="1"))
    assert result["confirmed"] is True
    assert fake_sns.requests == [CERT_PATH, f"{CONFIRM_PATH}?Action=ConfirmSubscription&Token=2336"]

    elsewhere = {**confirmation, "SubscribeURL": "https://attacker.example/?Action=Confirm"}
    assert _refused(receiver, fake_sns.sign(elsewhere, version="1")) == "url_refused"
    assert len(fake_sns.requests) == 2


def _post(api: SaltApi, body: str) -> int:
    request = urllib.request.Request(  # noqa: S310 - the lab's own salt-api
        f"{api.url}/hook/phoenix/sns",
        data=body.encode(),
        headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return int(response.status)


def test_salt_api_receives_a_post_and_the_registry_row_appears(
    stack: Stack, fake_sns: FakeSns, make_cluster: Callable[..., Cluster]
) -> None:
    port = free_port(["127.0.0.1"])
    cluster = make_cluster(
        stack.phoenix_block(sns=fake_sns.settings(TOPIC)),
        masters=1,
        minions=0,
        master_opts={
            **reactor_config(sns=True),
            **SaltApi.opts(port, "127.0.0.1", webhook_disable_auth=True),
        },
    )
    master = cluster.masters[0]
    api = SaltApi(master)
    api.start()
    try:
        instance, forged = minion_instance_id(81), minion_instance_id(82)
        with BusListener(master) as bus:
            assert _post(api, fake_sns.sign(_notification(instance))) == 200
            launched = bus.wait_for(f"phoenix/instance/{instance}/launched", 90)
            assert launched["delivery"] == "sns"
            body = json.loads(fake_sns.sign(_notification(forged)))
            body["Message"] = body["Message"].replace("_LAUNCH", "_TERMINATE")
            assert _post(api, json.dumps(body)) == 200
            rejected = bus.wait_for("phoenix/message/rejected", 90)
    finally:
        api.stop()
    assert (_row(stack, instance) or {}).get("state") == "running"
    assert rejected["reason"] == "bad_signature"
    assert rejected["delivery"] == "sns_push"
    assert _row(stack, forged) is None
    wait_for(
        lambda: "refused (bad_signature)" in master.log_text(),
        30,
        "the refusal's log line",
    )
