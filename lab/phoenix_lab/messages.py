"""The exact JSON AutoScaling sends, for the fleet the lab simulates: lifecycle hook
messages (direct to SQS, or in an SNS envelope) and ASG notifications (in an SNS envelope,
raw delivery off). The shapes follow AWS's documentation."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:phoenix-asg-events"

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCH = "autoscaling:EC2_INSTANCE_LAUNCH"
TERMINATE = "autoscaling:EC2_INSTANCE_TERMINATE"
LAUNCH_ERROR = "autoscaling:EC2_INSTANCE_LAUNCH_ERROR"
TERMINATE_ERROR = "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"


def aws_time(when: datetime | None = None) -> str:
    """AWS's timestamp format: UTC, milliseconds, a Z."""
    when = when or datetime.now(timezone.utc)
    return (
        when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{when.microsecond // 1000:03d}Z"
    )


def group_arn(group: str) -> str:
    return (
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:"
        f"0d6a5a3e-0000-4000-8000-000000000000:autoScalingGroupName/{group}"
    )


def lifecycle_hook(
    transition: str,
    instance_id: str,
    group: str,
    token: str,
    hook_name: str,
    time: str,
    metadata: str | None = None,
) -> dict[str, Any]:
    """A lifecycle hook message as AutoScaling sends it to an SQS target."""
    launching = transition == LAUNCHING
    message = {
        "Origin": "EC2" if launching else "AutoScalingGroup",
        "Destination": "AutoScalingGroup" if launching else "EC2",
        "LifecycleHookName": hook_name,
        "AccountId": ACCOUNT,
        "RequestId": str(uuid.uuid4()),
        "LifecycleTransition": transition,
        "AutoScalingGroupName": group,
        "Service": "AWS Auto Scaling",
        "Time": time,
        "EC2InstanceId": instance_id,
        "LifecycleActionToken": token,
    }
    if metadata is not None:
        message["NotificationMetadata"] = metadata
    return message


def asg_notification(
    event: str, instance_id: str, group: str, time: str, zone: str = "us-east-1a"
) -> dict[str, Any]:
    """An AutoScaling notification (the payload SNS carries)."""
    activity = str(uuid.uuid4())
    return {
        "Origin": "EC2",
        "Destination": "AutoScalingGroup",
        "Progress": 50,
        "AccountId": ACCOUNT,
        "Description": f"{event} of EC2 instance: {instance_id}",
        "RequestId": activity,
        "EndTime": time,
        "AutoScalingGroupARN": group_arn(group),
        "ActivityId": activity,
        "StartTime": time,
        "Service": "AWS Auto Scaling",
        "Time": time,
        "EC2InstanceId": instance_id,
        "StatusCode": "Failed" if event.endswith("_ERROR") else "InProgress",
        "StatusMessage": "",
        "Details": {"Subnet ID": "subnet-0a1b2c3d4e5f60718", "Availability Zone": zone},
        "AutoScalingGroupName": group,
        "Cause": "At the time shown, an instance changed in response to a difference between "
        "desired and actual capacity.",
        "Event": event,
    }


def sns_envelope(message: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    """The SNS envelope an SQS subscriber with raw delivery off receives."""
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC_ARN,
        "Message": json.dumps(message),
        "Timestamp": aws_time(),
        "SignatureVersion": "2",
        "Signature": "unsigned-in-the-lab",
        "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-lab.pem",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
    }
    if subject is not None:
        envelope["Subject"] = subject
    return envelope
