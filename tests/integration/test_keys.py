"""Minion keys on real masters and minions: accepted only for instances the registry knows,
pinned at first acceptance, pre-seeded on every master, deleted everywhere at termination.

The masters here do not auto-accept: every accepted key in these tests was accepted by
Phoenix (the instance_manager engine's key reconcile, or key_runner)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from phoenix_lab import messages
from phoenix_lab.cluster import Cluster
from phoenix_lab.emulator import Emulator
from phoenix_lab.metadata import ACCOUNT_ID
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener, SaltMaster, SaltMinion
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core

from . import fleet

pytestmark = pytest.mark.integration

MASTER_OPTS = {"engines": [{"instance_manager": {}}], "auto_accept": False}
PHOENIX = {"heartbeat_interval": 1, "master_stale_after": 4, "keys": {"reconcile_interval": 2}}


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _cluster(
    make_cluster: Callable[..., Cluster],
    stack: Stack,
    masters: int,
    minions: int,
    master_opts: dict[str, Any] = MASTER_OPTS,
) -> Cluster:
    """Masters that accept no key by themselves, and minions started without waiting for
    their keys to be accepted."""
    return make_cluster(
        stack.phoenix_block(**PHOENIX),
        masters=masters,
        minions=minions,
        master_opts=master_opts,
        wait_for_minions=False,
    )


def _answers(master: SaltMaster, minion_id: str) -> bool:
    return master.ping(minion_id, timeout=5).get(minion_id, False)


def _run(master: SaltMaster, *args: str) -> tuple[int, Any]:
    """``salt-run`` with JSON output: its exit code and what it printed."""
    result = master.cli("salt-run", [*args, "--out=json"])
    try:
        printed = json.loads(result.stdout)
    except json.JSONDecodeError:
        printed = result.stdout + result.stderr
    return result.returncode, printed


def _pinned(stack: Stack, instance: str) -> str | None:
    row = fleet.session(stack).get_instance("minion", instance) or {}
    return (row.get("key") or {}).get("fingerprint")


def test_keys_are_accepted_only_for_registered_instances(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1, minions=2)
    master = cluster.masters[0]
    registered, unknown = cluster.minions
    fleet.register(aws, stack, registered.minion_id)

    # Registered: accepted with no manual step, pinned with the minion's own key.
    wait_for(lambda: _answers(master, registered.minion_id), 90, "the registered minion to answer")
    assert _pinned(stack, registered.minion_id) == _core.pem_fingerprint(registered.public_key())

    # Not registered: stays pending, and key_runner refuses to accept it, saying why.
    wait_for(
        lambda: master.key_states(unknown.minion_id) == ["minions_pre"],
        60,
        "the unregistered minion's key to be pending",
    )
    code, printed = _run(master, "key_runner.accept", unknown.minion_id)
    assert code != 0
    assert "registry does not hold it" in printed["error"]
    assert master.key_states(unknown.minion_id) == ["minions_pre"]
    assert _pinned(stack, unknown.minion_id) is None

    # Once the registry learns it, it is accepted without anyone acting.
    fleet.register(aws, stack, unknown.minion_id)
    wait_for(lambda: _answers(master, unknown.minion_id), 90, "the newly registered minion")
    assert master.key_states(unknown.minion_id) == ["minions"]

    # key_runner.list shows both, pinned, with the registry's state.
    code, listing = _run(master, "key_runner.list")
    assert code == 0
    for minion in (registered, unknown):
        entry = listing[minion.minion_id]
        assert entry["registry_state"] == "running"
        assert entry["keys"]["accepted"]["standing"] == "pinned"
        assert entry["pinned"] == _core.pem_fingerprint(minion.public_key())

    # Status, as the runner and the CLI show it: the master live, each minion with its pin.
    code, status = _run(master, "phoenix.status")
    assert code == 0
    assert [(m["live"], m["state"]) for m in status["masters"]] == [(True, "running")]
    pins = {m["instance_id"]: m["key"] for m in status["minions"]}
    assert pins == {m.minion_id: _core.pem_fingerprint(m.public_key()) for m in cluster.minions}
    table = subprocess.run(
        [str(master.bin_dir / "phoenix"), "status", "-c", str(master.conf_dir / "master")],
        env=master.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert registered.minion_id in table
    assert pins[registered.minion_id][:11] in table

    # Arguments are checked: no globs, ever.
    code, printed = _run(master, "key_runner.accept", "i-*")
    assert code == 2
    assert "pattern" in printed["error"]


def test_a_key_that_differs_from_the_pinned_one_is_refused_and_reported(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1, minions=1)
    master = cluster.masters[0]
    genuine = cluster.minions[0]
    fleet.register(aws, stack, genuine.minion_id)
    wait_for(lambda: _answers(master, genuine.minion_id), 90, "the genuine minion to answer")
    pinned = _pinned(stack, genuine.minion_id)
    assert pinned == _core.pem_fingerprint(genuine.public_key())

    # A second minion claims the same id with a key of its own.
    impostor = SaltMinion(
        genuine.minion_id,
        cluster.workdir / "impostor",
        [master.interface],
        cluster.ret_port,
        genuine.env,
        {"phoenix": cluster.phoenix},
        publish_port=cluster.publish_port,
    )
    with BusListener(master) as bus:
        impostor.start()
        try:
            mismatch = bus.wait_for("phoenix/key/mismatch", 90)
        finally:
            impostor.stop()
    wait_for(lambda: impostor.pki_dir.joinpath("minion.pub").exists(), 10, "the impostor's key")
    assert mismatch["id"] == genuine.minion_id
    assert mismatch["fingerprint"] == _core.pem_fingerprint(impostor.public_key())
    assert mismatch["pinned"] == pinned
    # The genuine key is still the accepted one, and the pin did not move.
    assert _pinned(stack, genuine.minion_id) == pinned
    _, listing = _run(master, "key_runner.list")
    assert listing[genuine.minion_id]["keys"]["accepted"]["fingerprint"] == pinned
    assert _answers(master, genuine.minion_id)


def _engine_beside(stack: Stack) -> _core.Engine:
    """An engine of another master of the cluster, in this process: it applies lifecycle
    messages and judges identity claims, so that the master under test needs none."""
    return _core.Engine(
        _core.Config.from_json(
            json.dumps(
                stack.phoenix_block(
                    master_id="i-0000000000000a0ff",
                    master_address="127.0.0.1",
                    keys={"account_id": ACCOUNT_ID},
                )
            )
        )
    )


def test_the_runner_refuses_a_pending_key_that_is_not_the_pinned_one(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    """A key waiting as pending (e.g. an impostor's, on a master the genuine minion never
    reached) that is not the pinned one: ``key_runner.accept`` fails and says why, the
    pending key is deleted (not rejected: Salt would then refuse the genuine key too), and
    the pinned key is accepted in its place. The master runs neither the engine nor the
    reactor, so that nothing but the runner acts on its keys."""
    cluster = make_cluster(
        stack.phoenix_block(**PHOENIX),
        masters=1,
        minions=1,
        master_opts={"auto_accept": False},
        start_minions=False,
    )
    master, minion = cluster.masters[0], cluster.minions[0]
    engine = _engine_beside(stack)
    launched = fleet.notification(messages.LAUNCH, minion.minion_id)
    assert engine.apply_body(json.dumps(launched))["outcome"] == "done"
    minion.claim()
    wait_for(
        lambda: minion.minion_id in engine.poll_claims(wait_seconds=1)["pinned"],
        60,
        "the minion's claim to pin its key",
    )
    pinned = _pinned(stack, minion.minion_id)
    assert pinned == _core.pem_fingerprint(minion.public_key())

    pending = master.pki_dir / "minions_pre"
    pending.mkdir(parents=True, exist_ok=True)
    impostor = fleet.spare_public_key()
    (pending / minion.minion_id).write_text(impostor)
    code, printed = _run(master, "key_runner.accept", minion.minion_id)
    assert code != 0
    assert (
        f"its pending key {_core.pem_fingerprint(impostor)} is not the pinned key"
        in (printed["error"])
    )
    assert "the pinned key is accepted here instead" in printed["error"]
    # The impostor's key is gone, the pinned key accepted; nothing rejected.
    assert master.key_states(minion.minion_id) == ["minions"]
    accepted = (master.pki_dir / "minions" / minion.minion_id).read_text()
    assert _core.pem_fingerprint(accepted) == pinned


@pytest.mark.parametrize("squatted_as", ["minions_pre", "minions_rejected"])
def test_a_key_offered_before_the_pin_does_not_lock_the_genuine_minion_out(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster], squatted_as: str
) -> None:
    """Someone offers a key for a new instance's id on a master before the instance's own
    identity claim pins its key: a pending key, which Phoenix never accepts without a pin
    (or a rejected one, as an older Phoenix left it). Then the instance boots: its claim pins
    its key, and it is accepted on this master like on any other. The squatter's key must be
    deleted, not rejected: Salt (3006 to 3008) refuses every key of an id that has a
    rejected key ("Key is present in rejection key dir", salt/master.py), and Salt 3008's
    key store reads a rejected key before a pending or accepted one."""
    cluster = make_cluster(
        stack.phoenix_block(**PHOENIX),
        masters=1,
        minions=1,
        master_opts=MASTER_OPTS,
        start_minions=False,
        wait_for_minions=False,
    )
    master, minion = cluster.masters[0], cluster.minions[0]
    fleet.register(aws, stack, minion.minion_id)
    squatted = master.pki_dir / squatted_as
    squatted.mkdir(parents=True, exist_ok=True)
    squatter = fleet.spare_public_key()
    (squatted / minion.minion_id).write_text(squatter)
    with BusListener(master) as bus:
        minion.start()  # its first boot: the claim, then salt-minion
        wait_for(
            lambda: _answers(master, minion.minion_id),
            60,
            "the genuine minion to be accepted despite the squatter",
        )
        mismatches = [data for tag, data in bus.drain() if tag == "phoenix/key/mismatch"]
    assert _pinned(stack, minion.minion_id) == _core.pem_fingerprint(minion.public_key())
    assert master.key_states(minion.minion_id) in (["minions"], ["minions", "minions_denied"])
    assert any(
        m["fingerprint"] == _core.pem_fingerprint(squatter) and m["action"] == "deleted"
        for m in mismatches
    ), mismatches


def test_pinned_keys_follow_a_failover_and_termination_removes_them_everywhere(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=2, minions=1)
    first, second = cluster.masters
    minion = cluster.minions[0]
    fleet.register(aws, stack, minion.minion_id)
    with BusListener(second) as second_bus:
        wait_for(lambda: _answers(first, minion.minion_id), 90, "the minion on the first master")
        # The second master never saw the minion, yet holds its pinned key as accepted.
        wait_for(
            lambda: second.key_states(minion.minion_id) == ["minions"],
            60,
            "the pinned key to be pre-seeded on the second master",
        )
        fingerprint = _core.pem_fingerprint(minion.public_key())
        assert (
            _core.pem_fingerprint((second.pki_dir / "minions" / minion.minion_id).read_text())
            == fingerprint
        )

        # The first master goes away: the minion fails over and is accepted at once, with
        # no pending phase on the second master.
        first.stop()
        wait_for(lambda: _answers(second, minion.minion_id), 180, "the minion to fail over")
        auths = [
            data.get("act")
            for tag, data in second_bus.drain()
            if tag == "salt/auth" and data.get("id") == minion.minion_id
        ]
        # The minion authenticated here, and its key was never pending.
        assert "accept" in auths
        assert "pend" not in auths

    # Keys of the instance in other states too, then the instance terminates.
    for folder in ("minions_rejected", "minions_denied"):
        (second.pki_dir / folder).mkdir(exist_ok=True)
        (second.pki_dir / folder / minion.minion_id).write_text(minion.public_key())
    (first.pki_dir / "minions_pre").mkdir(exist_ok=True)
    (first.pki_dir / "minions_pre" / minion.minion_id).write_text(minion.public_key())
    first.start()
    fleet.terminate(aws, stack, minion.minion_id)
    for master in (first, second):
        wait_for(
            lambda master=master: master.key_states(minion.minion_id) == [],
            90,
            f"every key of the terminated minion to be gone from {master.name}",
        )


def test_the_reactor_files_accept_and_delete_keys_without_the_engine(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    from phoenix_salt.reactor import reactor_config

    # No engine: only the reactor files react to the minion's key.
    cluster = _cluster(
        make_cluster, stack, 1, 1, master_opts={"auto_accept": False, **reactor_config()}
    )
    master = cluster.masters[0]
    minion = cluster.minions[0]
    # The registry learns the instance through the engine's own apply path, and the minion's
    # identity claim is judged by an engine: both run here, as on another master of the
    # cluster; this master has only the reactor files.
    engine = _engine_beside(stack)
    launched = fleet.notification(messages.LAUNCH, minion.minion_id)
    assert engine.apply_body(json.dumps(launched))["outcome"] == "done"
    wait_for(
        lambda: minion.minion_id in engine.poll_claims(wait_seconds=1)["pinned"],
        60,
        "the minion's claim to pin its key",
    )
    wait_for(lambda: _answers(master, minion.minion_id), 90, "the reactor to accept the key")
    assert _pinned(stack, minion.minion_id) == _core.pem_fingerprint(minion.public_key())

    terminated = fleet.notification(messages.TERMINATE, minion.minion_id)
    applied = engine.apply_body(json.dumps(terminated))
    assert applied["outcome"] == "done"
    # What the engine would put on its master's bus.
    with BusListener(master) as bus:
        for event in applied["events"]:
            bus.fire(event["tag"], event["data"])
    assert any(e["tag"].endswith("/terminated") for e in applied["events"])
    wait_for(
        lambda: master.key_states(minion.minion_id) == [],
        60,
        "the reactor to delete the terminated minion's key",
    )
