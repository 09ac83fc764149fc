"""Attested enrolment on real masters: a minion key is pinned only from an identity claim AWS
vouches for (here the lab's signer stands in for AWS, lab/phoenix_lab/metadata.py), and every other
claim is refused with its reason in a ``phoenix/key/claim_refused`` event.

Claims are judged by the masters' engines off the stack's claim queue; the crafted ones here
are put on that queue as any process with the minions' role could."""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phoenix_lab.cluster import Cluster
from phoenix_lab.emulator import Emulator
from phoenix_lab.metadata import MetadataService, Signer, identity_document, lab_signer
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener, SaltMaster, SaltMinion
from phoenix_lab.stack import Stack, client, provision
from phoenix_salt import _core

from . import fleet

pytestmark = pytest.mark.integration

MASTER_OPTS = {"engines": [{"instance_manager": {}}], "auto_accept": False}
PHOENIX = {"heartbeat_interval": 1, "master_stale_after": 4, "keys": {"reconcile_interval": 2}}
# A second region the masters trust the lab's signer for, so that a document of another
# region than the cluster's verifies and is refused for its region, not its signature.
OTHER_REGION = "eu-west-1"


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _cluster(
    make_cluster: Callable[..., Cluster],
    stack: Stack,
    masters: int,
    minions: int,
    **key_settings: Any,
) -> Cluster:
    keys = {
        **PHOENIX["keys"],
        **key_settings,
        "identity_certificates": {
            "us-east-1": lab_signer().certificate_pem,
            OTHER_REGION: lab_signer().certificate_pem,
        },
    }
    return make_cluster(
        stack.phoenix_block(**{**PHOENIX, "keys": keys}),
        masters=masters,
        minions=minions,
        master_opts=MASTER_OPTS,
        wait_for_minions=False,
        start_minions=False,
    )


def _send(stack: Stack, aws: Emulator, body: str) -> None:
    client(aws, "sqs").send_message(QueueUrl=stack.claim_queue_url, MessageBody=body)


def _claim(
    instance_id: str,
    public_key: str,
    signer: Signer | None = None,
    document_of: str | None = None,
    **document: Any,
) -> str:
    """A claim as ``instance_id`` for ``public_key``, carrying the (signed) document of
    ``document_of`` (default: the same instance)."""
    text = identity_document(document_of or instance_id, **document)
    return _core.claim_message(instance_id, text, (signer or lab_signer()).sign(text), public_key)


def _pinned(stack: Stack, instance: str, role: str = "minion") -> str | None:
    row = fleet.session(stack).get_instance(role, instance) or {}
    return (row.get("key") or {}).get("fingerprint")


def _refusal(bus: BusListener, instance: str | None, timeout: float = 30) -> dict[str, Any]:
    return bus.wait_for("phoenix/key/claim_refused", timeout, lambda d: d["id"] == instance)


def _auth_acts(bus: BusListener, minion_id: str) -> list[str]:
    """Every ``act`` of ``minion_id``'s authentications this bus has seen so far."""
    with contextlib.suppress(TimeoutError):
        bus.wait_for("never/", 2)
    return [
        data.get("act", "")
        for tag, data in bus.seen
        if tag == "salt/auth" and data.get("id") == minion_id
    ]


def test_a_claimed_key_is_accepted_on_every_master_before_the_minion_connects(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=2, minions=1)
    minion = cluster.minions[0]
    master_ids = {master.opts["phoenix"]["master_id"] for master in cluster.masters}
    fleet.register(aws, stack, minion.minion_id)
    wait_for(
        lambda: {m["instance_id"] for m in fleet.session(stack).live_masters()} == master_ids,
        60,
        "both masters live",
    )
    buses = [BusListener(master) for master in cluster.masters]
    try:
        # What user data does: `phoenix minion-config` makes the key pair, claims it, waits
        # until every live master holds it as accepted, writes the drop-in; then salt-minion
        # starts.
        minion.first_boot()
        fingerprint = _core.pem_fingerprint(minion.public_key())
        assert minion.claimed is not None
        assert minion.claimed["fingerprint"] == fingerprint
        assert set(minion.claimed["accepted_by"]) == master_ids
        assert _pinned(stack, minion.minion_id) == fingerprint
        wait_for(
            lambda: all(fleet.answers(m, minion.minion_id) for m in cluster.masters),
            90,
            "the minion on both masters",
        )
        for master in cluster.masters:
            assert master.key_states(minion.minion_id) == ["minions"]
        for bus in buses:
            with contextlib.suppress(TimeoutError):
                bus.wait_for("never/", 2)
        # No key was ever pending: every authentication was accepted at once.
        acts = [_auth_acts(bus, minion.minion_id) for bus in buses]
        assert all(acts) and all(set(act) == {"accept"} for act in acts), acts
        # One engine judged the claim (SQS hands a message to one receiver) and said so.
        events = [
            data
            for bus in buses
            for tag, data in bus.seen
            if tag == "phoenix/key/pinned" and data["id"] == minion.minion_id
        ]
        assert len(events) == 1, events
        assert events[0]["fingerprint"] == fingerprint
        assert events[0]["trust"] == "identity_document"
        assert events[0]["pinned_by"] in master_ids
    finally:
        for bus in buses:
            bus.close()


def test_a_key_without_a_valid_claim_is_never_accepted(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1, minions=0)
    master = cluster.masters[0]
    target = "i-0000000000000c001"
    fleet.register(aws, stack, target)
    mine = fleet.spare_public_key()
    with BusListener(master) as bus:
        # Each refused, with its reason, and nothing pinned.
        cases = [
            ("bad_signature", _claim(target, mine, signer=Signer("not AWS"))),
            ("wrong_instance", _claim(target, mine, document_of="i-0000000000000c002")),
            ("wrong_account", _claim(target, mine, account_id="210987654321")),
            ("wrong_region", _claim(target, mine, region=OTHER_REGION)),
            (
                "too_old",
                _claim(
                    target,
                    mine,
                    pending_time=datetime.datetime.now(datetime.timezone.utc)
                    - datetime.timedelta(hours=2),
                ),
            ),
        ]
        for reason, body in cases:
            _send(stack, aws, body)
            refused = _refusal(bus, target)
            assert refused["reason"] == reason, refused
            assert refused["error"]
            bus.seen.clear()
        _send(stack, aws, "not a claim at all")
        assert _refusal(bus, None)["reason"] == "not_a_claim"
        assert _pinned(stack, target) is None

        # A salt-minion that never claimed: its key stays pending, and key_runner will not
        # accept it, saying why.
        unclaimed = SaltMinion(
            target,
            cluster.workdir / "unclaimed",
            [master.interface],
            cluster.ret_port,
            cluster.env,
            {"phoenix": cluster.minion_phoenix},
            publish_port=cluster.publish_port,
        )
        unclaimed.start()
        try:
            wait_for(lambda: master.key_states(target) == ["minions_pre"], 60, "the pending key")
            result = master.cli("salt-run", ["key_runner.accept", target, "--out=json"])
            assert result.returncode != 0
            assert "identity claim" in json.loads(result.stdout)["error"]
            # Several reconciles (every 2 s) later, still pending.
            time.sleep(6)
            assert master.key_states(target) == ["minions_pre"]
            assert _pinned(stack, target) is None

            # An operator who verified the key out of band pins it by its fingerprint; a
            # wrong fingerprint pins nothing.
            fingerprint = _core.pem_fingerprint(unclaimed.public_key())
            result = master.cli(
                "salt-run", ["key_runner.accept", target, "fingerprint=00:11", "--out=json"]
            )
            assert result.returncode != 0
            assert fingerprint in json.loads(result.stdout)["error"]
            assert _pinned(stack, target) is None
            result = master.cli(
                "salt-run",
                ["key_runner.accept", target, f"fingerprint={fingerprint}", "--out=json"],
            )
            assert result.returncode == 0, result.stdout + result.stderr
            operator = bus.wait_for("phoenix/key/pinned", 30, lambda d: d["id"] == target)
            assert operator["trust"] == "operator"
            assert operator["pinned_by"].startswith("operator on ")
            assert master.key_states(target) == ["minions"]
            wait_for(lambda: fleet.answers(master, target), 60, "the operator-pinned minion")
        finally:
            unclaimed.stop()
    assert _pinned(stack, target) == fingerprint


def test_the_first_valid_claim_wins_and_a_squatter_cannot_take_it(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1, minions=1)
    master = cluster.masters[0]
    minion = cluster.minions[0]
    fleet.register(aws, stack, minion.minion_id)
    squatter = fleet.spare_public_key()
    with BusListener(master) as bus:
        # A process elsewhere claims the new instance's id first, with its own key and a
        # document it cannot have AWS sign.
        _send(stack, aws, _claim(minion.minion_id, squatter, signer=Signer("squatter")))
        assert _refusal(bus, minion.minion_id)["reason"] == "bad_signature"
        # The instance's own claim wins.
        minion.start()
        wait_for(lambda: fleet.answers(master, minion.minion_id), 90, "the genuine minion")
        genuine = _core.pem_fingerprint(minion.public_key())
        assert _pinned(stack, minion.minion_id) == genuine
        # A second valid claim with another key (the document replayed from the instance)
        # is refused: the pin is made once.
        bus.seen.clear()
        _send(stack, aws, _claim(minion.minion_id, squatter))
        refused = _refusal(bus, minion.minion_id)
        assert refused["reason"] == "pinned_other"
        assert refused["fingerprint"] == _core.pem_fingerprint(squatter)
        assert genuine in refused["error"]
    assert _pinned(stack, minion.minion_id) == genuine
    assert master.key_states(minion.minion_id) == ["minions"]


def test_a_masters_own_minion_id_cannot_be_taken_during_its_boot(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1, minions=0)
    master: SaltMaster = cluster.masters[0]
    master_id = master.opts["phoenix"]["master_id"]
    squatter = fleet.spare_public_key()
    with BusListener(master) as bus:
        # Before the master's own minion claims: a claim for its id, without AWS's word.
        _send(stack, aws, _claim(master_id, squatter, signer=Signer("squatter")))
        assert _refusal(bus, master_id)["reason"] == "bad_signature"
        own = cluster.start_own_minion(master)
        wait_for(lambda: fleet.answers(master, master_id), 90, "the master's own minion")
    assert _pinned(stack, master_id, role="master") == _core.pem_fingerprint(own.public_key())


def test_phoenix_claim_refuses_a_minion_id_that_is_not_the_instance_id(
    aws: Emulator, stack: Stack, workdir: Path
) -> None:
    metadata = MetadataService()
    try:
        minion = SaltMinion(
            "i-0000000000000d001",
            workdir / "minion",
            ["127.0.0.1"],
            4506,
            aws.env(),
            {"phoenix": stack.phoenix_block()},
            metadata=metadata,
        )
        # This instance is another one than the id the minion is configured with.
        minion.env.update(metadata.env("i-0000000000000d002"))
        with pytest.raises(RuntimeError) as failed:
            minion.claim(wait=0)
    finally:
        metadata.stop()
    assert "is instance i-0000000000000d002" in str(failed.value)
    assert "its id is its instance id" in str(failed.value)
    # Nothing was sent.
    assert stack.outputs["ClaimQueueUrl"]
    attributes = client(aws, "sqs").get_queue_attributes(
        QueueUrl=stack.claim_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_with_verify_autoscaling_a_claim_pins_only_what_autoscaling_runs(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    """Both instances are live in the registry and both claims are signed; AutoScaling runs
    only one of them in the minions' group, and only that one's key is pinned."""
    cluster = _cluster(make_cluster, stack, masters=1, minions=0, verify_autoscaling=True)
    master = cluster.masters[0]
    real = fleet.autoscaling_instance(aws, fleet.MINIONS_GROUP)
    ghost = "i-0000000000000c003"
    for instance in (real, ghost):
        fleet.register(aws, stack, instance)
    key = fleet.spare_public_key()
    with BusListener(master) as bus:
        _send(stack, aws, _claim(ghost, fleet.spare_public_key()))
        refused = _refusal(bus, ghost)
        assert refused["reason"] == "not_in_autoscaling", refused
        assert "AutoScaling does not know the instance" in refused["error"]
        _send(stack, aws, _claim(real, key))
        bus.wait_for("phoenix/key/pinned", 30, lambda d: d["id"] == real)
    assert _pinned(stack, real) == _core.pem_fingerprint(key)
    assert _pinned(stack, ghost) is None
