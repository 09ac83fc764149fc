"""The dead-letter queue of the data stack's events queue, against the emulator: the engine
moves a message it rejects there at once (and loses nothing when it cannot), and ``phoenix
dlq`` lists it with the engine's verdict on each message and redrives it through the
engine's own checks: what the engine would apply goes back and is applied, what it would
reject again stays, with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoenix_lab import messages
from phoenix_lab.cluster import minion_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.faults import SERVER_ERROR, Fault
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_lab.processes import wait_for
from phoenix_lab.stack import Stack, client, provision
from phoenix_salt import _core

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


POISON = '{"Event": "autoscaling:EC2_INSTANCE_LAUNCH", "EC2InstanceId": "i-0'


def _phoenix(conf: Path, *args: str) -> tuple[int, Any]:
    """``phoenix dlq <args> -c conf --json``: the exit code and the printed JSON."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "phoenix"), "dlq", *args, "-c", str(conf), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_redrive_sends_back_what_applies_and_keeps_the_poison_with_its_reason(
    aws: Emulator, stack: Stack, tmp_path: Path
) -> None:
    block = stack.phoenix_block()
    conf = tmp_path / "master"
    conf.write_text(yaml.safe_dump({"phoenix": block}))
    minion = minion_instance_id(5)
    launch = messages.asg_notification(
        messages.LAUNCH, minion, "phoenix-test-minions", messages.aws_time()
    )
    sqs = client(aws, "sqs")
    for body in (json.dumps(messages.sns_envelope(launch)), POISON):
        sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody=body)

    code, listing = _phoenix(conf, "list")
    assert code == 0
    # Found from the events queue's redrive policy (the emulator names its own host).
    assert listing["dead_letter_queue_url"].endswith("/123456789012/phoenix-test-events-dlq")
    verdicts = {letter["verdict"]: letter for letter in listing["messages"]}
    assert set(verdicts) == {"applies", "refused"}
    assert verdicts["applies"]["instance_id"] == minion
    assert verdicts["applies"]["role"] == "minion"
    assert verdicts["refused"]["reason"] == "not_json"
    # Listing leaves the queue as it was: both messages are visible again at once.
    assert stack.queue_depth(aws, dead_letters=True) == 2
    poison_id = verdicts["refused"]["message_id"]
    code, shown = _phoenix(conf, "show", poison_id)
    assert (code, shown["body"]) == (0, POISON)

    code, dry = _phoenix(conf, "redrive", "--dry-run")
    assert (code, dry["dry_run"], len(dry["moved"])) == (0, True, 1)
    assert stack.queue_depth(aws) == 0 and stack.queue_depth(aws, dead_letters=True) == 2

    code, report = _phoenix(conf, "redrive")
    assert code == 0
    assert report["moved"] == [verdicts["applies"]["message_id"]]
    assert [(k["message_id"], k["reason"]) for k in report["kept"]] == [(poison_id, "not_json")]
    assert report["failed"] == []
    # The good one is back in the events queue, and the engine applies it.
    engine = _core.Engine(_core.Config.from_json(json.dumps(block)))
    polled = engine.poll(wait_seconds=2)
    assert (polled["received"], polled["deleted"]) == (1, 1)
    session = _core.Session(_core.Config.from_json(json.dumps(block)))
    assert (session.get_instance("minion", minion) or {}).get("state") == "running"
    # The poison stays, with its reason.
    code, after = _phoenix(conf, "list")
    assert [(m["message_id"], m["verdict"]) for m in after["messages"]] == [(poison_id, "refused")]


def test_a_message_the_engine_rejects_is_moved_to_the_dead_letter_queue_at_once(
    aws: Emulator, stack: Stack, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message that can never apply goes to the dead-letter queue at its first receive
    (that send is what the events-rejected alarm counts), not after the redrive policy's
    15 receives. When the send fails (SQS answers InternalFailure to SendMessage, through
    the lab's fault injector), the message stays in the events queue, and the next receive
    moves it."""
    proxy = LatencyProxy([aws.port], 0, workdir)
    proxy.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url(aws.port))
        block = stack.phoenix_block(aws={"max_attempts": 1})
        engine = _core.Engine(_core.Config.from_json(json.dumps(block)))
        sqs = client(aws, "sqs")

        proxy.fault(Fault("sqs", SERVER_ERROR["sqs"], operations=frozenset({"SendMessage"})))
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=POISON)
        report = engine.poll(wait_seconds=5)
        assert (report["received"], report["rejected"], report["dead_lettered"]) == (1, 1, 0)
        assert [event["tag"] for event in report["events"]] == ["phoenix/message/rejected"]
        # Not sent, so not deleted: still in the events queue, nothing in the dead letters.
        assert stack.queue_depth(aws) == 1
        assert stack.queue_depth(aws, dead_letters=True) == 0

        proxy.clear()
        # It comes back after the queue's visibility timeout and is moved this time.
        wait_for(
            lambda: engine.poll(wait_seconds=5)["dead_lettered"] == 1,
            120,
            "the rejected message to come back and be moved to the dead-letter queue",
        )
        assert stack.queue_depth(aws) == 0
        assert stack.queue_depth(aws, dead_letters=True) == 1
        (moved,) = sqs.receive_message(QueueUrl=stack.dead_letter_queue_url, WaitTimeSeconds=1)[
            "Messages"
        ]
        assert moved["Body"] == POISON

        # A message that applies is not moved.
        launch = messages.asg_notification(
            messages.LAUNCH, minion_instance_id(6), "phoenix-test-minions", messages.aws_time()
        )
        sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody=json.dumps(messages.sns_envelope(launch))
        )
        report = engine.poll(wait_seconds=5)
        assert (report["deleted"], report["rejected"], report["dead_lettered"]) == (1, 0, 0)
    finally:
        proxy.stop()
