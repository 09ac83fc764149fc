"""Queue message bodies through the core's parser, from Python: every sample shape of the
catalogue, and bad bodies arriving as MessageError with a machine-readable reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import phoenix_salt
from phoenix_salt import _core

FIXTURES = Path(__file__).resolve().parents[2] / "src" / "lifecycle" / "fixtures"
EXPECTED = {
    "asg-launch-via-sns.json": ("instance", "launched", "sns"),
    "asg-terminate-via-sns.json": ("instance", "terminated", "sns"),
    "asg-launch-error-via-sns.json": ("instance", "launch_failed", "sns"),
    "asg-test-notification-via-sns.json": ("test", None, "sns"),
    "lifecycle-launching-direct.json": ("instance", "launching", "direct"),
    "lifecycle-terminating-direct.json": ("instance", "terminating", "direct"),
    "lifecycle-terminating-via-sns.json": ("instance", "terminating", "sns"),
    "lifecycle-launching-eventbridge.json": ("instance", "launching", "event_bridge"),
    "lifecycle-test-direct.json": ("test", None, "direct"),
}


def test_the_catalogue_is_complete() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_every_sample_shape_parses(fixture: str) -> None:
    message = _core.parse_message((FIXTURES / fixture).read_text())
    kind, event, delivery = EXPECTED[fixture]
    assert message["type"] == kind
    assert message["delivery"] == delivery
    if kind == "instance":
        assert message["kind"] == event
        assert message["instance_id"].startswith("i-")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "empty_body"),
        ("not json", "not_json"),
        ('{"hello": "world"}', "unknown_shape"),
        (
            '{"Event": "autoscaling:EC2_INSTANCE_LAUNCH", "EC2InstanceId": "i-0123456789abcdef0"}',
            "missing_field",
        ),
        ("x" * (256 * 1024 + 1), "too_large"),
        (
            json.dumps(
                {
                    "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                    "AutoScalingGroupName": "g",
                    "EC2InstanceId": "i-nothex",
                    "LifecycleHookName": "h",
                    "LifecycleActionToken": "t",
                    "Time": "2026-11-21T10:00:00Z",
                }
            ),
            "invalid_instance_id",
        ),
    ],
)
def test_a_bad_body_is_a_message_error_with_its_reason(body: str, reason: str) -> None:
    with pytest.raises(phoenix_salt.MessageError) as caught:
        _core.parse_message(body)
    assert caught.value.reason == reason
    assert isinstance(caught.value, phoenix_salt.PhoenixError)
