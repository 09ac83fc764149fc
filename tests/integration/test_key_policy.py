"""The key manager's stricter, optional checks against the emulator: the registry row's
group (``phoenix.keys.require_group``) and AutoScaling's own view of the instance
(``phoenix.keys.verify_autoscaling``). No Salt daemons: a master's key folders are plain
files, planned by ``_core.KeyManager`` as the engine plans them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from phoenix_lab import messages
from phoenix_lab.cluster import minion_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core

from . import fleet

pytestmark = pytest.mark.integration

MINIONS_GROUP = "phoenix-test-minions"
LEGACY_GROUP = "legacy-minions"


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _pending(pki_dir: Path, minion_id: str) -> str:
    folder = pki_dir / "minions_pre"
    folder.mkdir(parents=True, exist_ok=True)
    text = fleet.spare_public_key()
    (folder / minion_id).write_text(text)
    return text


def _config(stack: Stack, **keys: Any) -> _core.Config:
    # These checks guard the first acceptance of a key found on a master (trust: first_key);
    # an identity claim is always checked against the configured groups (test_enrolment.py).
    block = stack.phoenix_block(minion_groups=[MINIONS_GROUP], keys={"trust": "first_key", **keys})
    return _core.Config.from_json(json.dumps(block))


def _register(stack: Stack, instance: str, group: str) -> None:
    # The operator once listed the legacy group too: the registry holds both kinds of row.
    config = stack.phoenix_block(minion_groups=[MINIONS_GROUP, LEGACY_GROUP])
    engine = _core.Engine(_core.Config.from_json(json.dumps(config)))
    body = messages.sns_envelope(
        messages.asg_notification(messages.LAUNCH, instance, group, messages.aws_time())
    )
    assert engine.apply_body(json.dumps(body))["outcome"] == "done"


def _kinds(plan: dict[str, Any], minion_id: str) -> list[str]:
    return [a["action"] for a in plan["actions"] if a["id"] == minion_id]


def test_require_group_holds_keys_of_rows_outside_the_configured_groups(
    aws: Emulator, stack: Stack, tmp_path: Path
) -> None:
    inside, outside = minion_instance_id(1), minion_instance_id(2)
    _register(stack, inside, MINIONS_GROUP)
    _register(stack, outside, LEGACY_GROUP)
    _pending(tmp_path, inside)
    _pending(tmp_path, outside)

    relaxed = _core.KeyManager(_config(stack), tmp_path).plan()
    assert _kinds(relaxed, inside) == ["pin", "accept"]
    assert _kinds(relaxed, outside) == ["pin", "accept"]
    assert relaxed["held"] == []

    strict = _core.KeyManager(_config(stack, require_group=True), tmp_path).plan()
    assert _kinds(strict, inside) == ["pin", "accept"]
    assert _kinds(strict, outside) == []
    assert [h["id"] for h in strict["held"]] == [outside]
    assert LEGACY_GROUP in strict["held"][0]["reason"]


def test_verify_autoscaling_accepts_only_what_autoscaling_runs_in_a_configured_group(
    aws: Emulator, stack: Stack, tmp_path: Path
) -> None:
    real = fleet.autoscaling_instance(aws, MINIONS_GROUP)
    ghost = minion_instance_id(3)  # in the registry, unknown to AutoScaling
    for instance in (real, ghost):
        _register(stack, instance, MINIONS_GROUP)
        _pending(tmp_path, instance)

    manager = _core.KeyManager(_config(stack, verify_autoscaling=True), tmp_path)
    plan = manager.plan()
    assert _kinds(plan, real) == ["pin", "accept"]
    assert _kinds(plan, ghost) == []
    assert [h["id"] for h in plan["held"]] == [ghost]
    assert "AutoScaling" in plan["held"][0]["reason"]

    # Pinning the verified key records it in the registry once; a second key is refused.
    pin = next(a for a in plan["actions"] if a["action"] == "pin")
    first = manager.pin(real, pin["role"], pin["fingerprint"], pin["public_key"], "test")
    assert first == {"outcome": "pinned"}
    again = manager.pin(real, pin["role"], pin["fingerprint"], pin["public_key"], "test")
    assert again == {"outcome": "already_pinned"}
    other = fleet.spare_public_key()
    refused = manager.pin(real, "minion", _core.pem_fingerprint(other), other, "test")
    assert refused == {"outcome": "pinned_other", "fingerprint": pin["fingerprint"]}
    row = _core.Session(_config(stack)).get_instance("minion", real)
    assert row["key"]["fingerprint"] == pin["fingerprint"]
    assert row["key"]["pinned_by"] == "test"


def test_a_pin_for_an_instance_the_registry_does_not_hold_is_refused(
    aws: Emulator, stack: Stack, tmp_path: Path
) -> None:
    manager = _core.KeyManager(_config(stack), tmp_path)
    key = fleet.spare_public_key()
    outcome = manager.pin(minion_instance_id(9), "minion", _core.pem_fingerprint(key), key, "t")
    assert outcome == {"outcome": "not_live"}
    # ... and writes no row.
    assert _core.Session(_config(stack)).get_instance("minion", minion_instance_id(9)) is None


def test_a_new_master_pre_seeds_every_pinned_key_and_reports_it_in_one_bounded_event(
    aws: Emulator, stack: Stack, tmp_path: Path
) -> None:
    from phoenix_salt.keys import Reconciler

    most = _core.RECONCILED_ACTIONS_MAX

    config = _config(stack)
    writer = _core.KeyManager(config, tmp_path / "first-master")
    key = fleet.spare_public_key()
    fingerprint = _core.pem_fingerprint(key)
    instances = [minion_instance_id(1000 + n) for n in range(most + 1)]
    for instance in instances:
        _register(stack, instance, MINIONS_GROUP)
        assert writer.pin(instance, "minion", fingerprint, key, "first")["outcome"] == "pinned"

    # A master that never saw any of them: nothing in its pki_dir yet.
    fired: list[tuple[str, dict[str, Any]]] = []
    pki_dir = tmp_path / "new-master"
    pki_dir.mkdir()
    opts = {"pki_dir": str(pki_dir), "id": "new-master"}
    reconciler = Reconciler(
        opts, config, wheel=None, fire=lambda data, tag: fired.append((tag, dict(data)))
    )
    summary = reconciler.reconcile()

    assert summary["counts"] == {"pre_seed_done": len(instances)}
    assert sorted(p.name for p in (pki_dir / "minions").iterdir()) == sorted(instances)
    assert [tag for tag, _ in fired] == ["phoenix/key/reconciled"]
    event = fired[0][1]
    assert event["master"] == "new-master"
    assert len(event["actions"]) == most
    assert event["actions_left_out"] == 1
    assert event["counts"] == {"pre_seed_done": len(instances)}
    # Planning again finds nothing to do.
    assert reconciler.reconcile()["counts"] == {}
