"""A replacement master picks up where the old one left off: booted from `phoenix
master-bootstrap` like every master, it holds the cluster's key pair and every pinned minion
key before salt-master starts, so the minions that move to it are served at once, with no
manual key action and no "master key has changed"."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from phoenix_lab.cluster import Cluster, master_instance_id
from phoenix_lab.demo import KEY_CHANGED
from phoenix_lab.emulator import Emulator
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener, SaltMaster, SaltMinion
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core

from . import fleet

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _pinned(stack: Stack, instance: str) -> str | None:
    row = fleet.session(stack).get_instance("minion", instance) or {}
    return (row.get("key") or {}).get("fingerprint")


def _two_bootstrapped_masters(
    stack: Stack, make_cluster: Callable[..., Cluster], minions: int
) -> Cluster:
    """Two masters booted through `phoenix master-bootstrap`, their engines accepting keys;
    ``minions`` beacon minions under the lab's supervisor, not started."""
    return make_cluster(
        stack.phoenix_block(**fleet.BEACON_PHOENIX),
        masters=2,
        minions=minions,
        master_opts=fleet.BEACON_MASTER_OPTS,
        minion_opts=fleet.BEACON_MINION_OPTS,
        supervised_minions=True,
        start_minions=False,
        wait_for_minions=False,
        bootstrap=True,
    )


def test_a_replacement_master_serves_every_minion_with_no_key_action(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _two_bootstrapped_masters(stack, make_cluster, minions=3)
    first, second = cluster.masters
    cluster_key = (second.pki_dir / "master.pub").read_text()
    assert (first.pki_dir / "master.pub").read_text() == cluster_key
    fleet.start_minions(aws, stack, cluster)
    ids = sorted(minion.minion_id for minion in cluster.minions)
    wait_for(
        lambda: all(_pinned(stack, minion_id) for minion_id in ids),
        60,
        "every minion's key to be pinned",
    )

    # AutoScaling replaces the first master: it dies hard, its termination reaches the
    # registry, and the replacement boots the way user data boots every master.
    first.process.signal_group(signal.SIGKILL)
    fleet.terminate_master(aws, stack, master_instance_id(1))
    replacement, booted = cluster.add_master()
    assert booted["key_pair"] == "existing"
    assert booted["registered"]["instance_id"] == master_instance_id(3)
    assert sorted(booted["pre_seeded"]) == ids
    assert (replacement.pki_dir / "master.pub").read_text() == cluster_key
    for minion in cluster.minions:
        seeded = (replacement.pki_dir / "minions" / minion.minion_id).read_text()
        assert _core.pem_fingerprint(seeded) == _pinned(stack, minion.minion_id)

    # Then the other original master goes as well: every minion must now be served by the
    # replacement, which no minion has ever talked to.
    with BusListener(replacement) as bus:
        second.process.signal_group(signal.SIGKILL)
        fleet.terminate_master(aws, stack, master_instance_id(2))
        for minion in cluster.minions:
            wait_for(
                lambda minion_id=minion.minion_id: fleet.answers(replacement, minion_id),
                240,
                f"{minion.minion_id} to answer through the replacement master",
            )
        auths = [
            (data.get("id"), data.get("act")) for tag, data in bus.drain() if tag == "salt/auth"
        ]
    # No key was ever pending on the replacement: each was accepted from the pin.
    assert not [auth for auth in auths if auth[1] == "pend"]
    assert replacement.keys() == {
        "minions": ids,
        "minions_pre": [],
        "minions_rejected": [],
        "minions_denied": [],
    }
    for minion in cluster.minions:
        assert KEY_CHANGED not in minion.log_text(), minion.minion_id


def test_every_master_runs_its_own_minion_which_every_master_accepts(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _two_bootstrapped_masters(stack, make_cluster, minions=0)
    own = [cluster.start_own_minion(master) for master in cluster.masters]
    ids = sorted(minion.minion_id for minion in own)
    assert ids == sorted(master_instance_id(n) for n in (1, 2))
    for master, minion in zip(cluster.masters, own, strict=True):
        # Its own master first: an operator on a master always reaches that master's host.
        assert (minion.drop_in_masters() or [])[0] == master.interface
        wait_for(
            lambda master=master, minion=minion: fleet.answers(master, minion.minion_id),
            120,
            f"{master.name}'s own minion to answer through it",
        )
    # Each key was accepted where it first arrived (the registry knows the master's id) and
    # pre-seeded on the other master from its pin: no key is left pending anywhere.
    for master in cluster.masters:
        wait_for(
            lambda master=master: master.keys()["minions"] == ids,
            60,
            f"{master.name} to hold both masters' minions' keys as accepted",
        )
        assert master.keys()["minions_pre"] == []


def _reach(master: SaltMaster, ids: list[str]) -> bool:
    answers = master.ping(timeout=5)
    return all(answers.get(minion_id) for minion_id in ids)


def _every_master_reaches_every_minion(
    cluster: Cluster, timeout: float, when: str
) -> tuple[list[SaltMinion], list[str]]:
    """Waits until salt '*' on each master reaches every minion of the cluster, the
    masters' own included; returns those minions and their ids."""
    every = [*cluster.minions, *cluster.own_minions]
    ids = sorted(minion.minion_id for minion in every)
    for master in cluster.masters:
        wait_for(
            lambda master=master: _reach(master, ids),
            timeout,
            f"salt '*' on {master.name} to reach {ids}{when}",
        )
    return every, ids


def test_from_any_master_salt_star_reaches_every_minion_and_every_masters_own_minion(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    # The default drop-in: every minion connected to every live master (master_type str).
    cluster = _two_bootstrapped_masters(stack, make_cluster, minions=2)
    fleet.start_minions(aws, stack, cluster)
    for master in cluster.masters:
        cluster.start_own_minion(master)
    every, ids = _every_master_reaches_every_minion(cluster, 120, "")
    for minion in every:
        assert "master_type: str" in minion.drop_in_path.read_text()

    # A master joins, with its own minion: every minion connects to it within the beacon's
    # splay, so salt '*' there reaches the whole fleet too, and the new own minion is
    # reached from the old masters.
    joined, _ = cluster.add_master()
    cluster.start_own_minion(joined)
    every, ids = _every_master_reaches_every_minion(cluster, 180, f" after {joined.name} joined")
    for minion in every:
        assert sorted(minion.drop_in_masters() or []) == sorted(
            m.interface for m in cluster.masters
        ), minion.minion_id

    # A master hangs: nothing has to move. Before its heartbeat is even stale, the others
    # still reach every minion, its own minion included, and no minion restarted for it.
    restarts = {minion.minion_id: len(minion.restarts()) for minion in every}
    hung = cluster.masters[0]
    hung.process.signal_group(signal.SIGSTOP)
    for master in cluster.masters[1:]:
        assert _reach(master, ids), master.name
    assert {minion.minion_id: len(minion.restarts()) for minion in every} == restarts
