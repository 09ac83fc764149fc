"""Minions follow the live masters: the master_list beacon and `phoenix minion-config` on real
salt-minions, with masters whose engines heartbeat into the emulator's registry.

Masters "hang" here by SIGSTOP: the process keeps its sockets open, so Salt's own failover
sees nothing, and only the registry heartbeat going stale tells the minions. Each lab minion
runs under the lab's supervisor, which restarts it when the beacon's restart command asks,
as systemd would, and journals every restart.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phoenix_lab import messages
from phoenix_lab.cluster import Cluster, master_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.lifecycle_actions import LifecycleActions
from phoenix_lab.metadata import MetadataService
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener, SaltMaster, SaltMinion
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core

from . import fleet

pytestmark = pytest.mark.integration

MASTER_OPTS = fleet.BEACON_MASTER_OPTS
MINION_OPTS = fleet.BEACON_MINION_OPTS
# These minions fail over: one master at a time, moved by the beacon. Minions on every master
# at once (the default, master_type str) are followed in test_replacement.py.
PHOENIX = {**fleet.BEACON_PHOENIX, "drop_in": {"master_type": "failover"}}
BEACON_TAG = "salt/beacon/{}/master_list/{}"


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _cluster(
    make_cluster: Callable[..., Cluster], stack: Stack, masters: int, minions: int
) -> Cluster:
    """Masters with engines, and supervised minions with the beacon, not started yet."""
    return make_cluster(
        stack.phoenix_block(**PHOENIX),
        masters=masters,
        minions=minions,
        master_opts=MASTER_OPTS,
        minion_opts=MINION_OPTS,
        supervised_minions=True,
        start_minions=False,
        wait_for_minions=False,
    )


@pytest.fixture
def metadata() -> Iterator[MetadataService]:
    service = MetadataService()
    try:
        yield service
    finally:
        service.stop()


def _config_only_minion(
    minion_id: str, aws: Emulator, stack: Stack, tmp_path: Path, metadata: MetadataService
) -> SaltMinion:
    """A minion that is never started: only its config file (and its instance's metadata,
    for the identity claim it sends first), for `phoenix minion-config`."""
    return SaltMinion(
        minion_id,
        tmp_path / "minion",
        ["127.0.0.1"],
        4506,
        aws.env(),
        {"phoenix": stack.phoenix_block()},
        metadata=metadata,
    )


def _decisions(minion: SaltMinion) -> str:
    """The beacon's restart decisions in the minion's log, for a failure message."""
    lines = [
        line
        for line in minion.log_text().splitlines()
        if "master_list" in line or "restart" in line
    ]
    return "\n".join(lines[-40:])


def _hang(master: SaltMaster) -> None:
    """The master's processes stop, sockets open: a hung host, as Salt's failover sees it."""
    master.process.signal_group(signal.SIGSTOP)


def test_minions_of_a_hung_master_restart_onto_a_live_one_and_the_others_do_not(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=3, minions=2)
    served, bystander = cluster.minions
    # The fixed ids give the two minions different first masters; the scenario needs that.
    first_of_served = fleet.order(served, cluster)[0]
    first_of_bystander = fleet.order(bystander, cluster)[0]
    assert first_of_served is not first_of_bystander
    (unused,) = [m for m in cluster.masters if m not in (first_of_served, first_of_bystander)]
    fleet.start_minions(aws, stack, cluster)

    # A master that serves neither minion hangs: both drop it from their drop-ins, say so on
    # their masters' buses, and neither restarts.
    with BusListener(first_of_served) as bus:
        _hang(unused)
        changed = bus.wait_for(BEACON_TAG.format(served.minion_id, "changed"), timeout=60)
    assert changed["removed"] == [unused.interface]
    assert changed["added"] == []
    assert changed["restart"] is None
    assert changed["new"] == [m.interface for m in fleet.order(served, cluster) if m is not unused]
    wait_for(
        lambda: unused.interface not in (bystander.drop_in_masters() or [unused.interface]),
        30,
        "the bystander's drop-in to lose the hung master",
    )
    # Several refreshes later, still no restart anywhere.
    time.sleep(3)
    assert served.restarts() == [] and bystander.restarts() == []

    # The master of the first minion hangs: that minion restarts promptly and comes back on
    # the one master left; the bystander only rewrites its list.
    hung_at = time.time()
    _hang(first_of_served)
    wait_for(served.restarts, 60, "the served minion to restart")
    assert served.drop_in_masters() == [first_of_bystander.interface]
    wait_for(
        lambda: fleet.answers(first_of_bystander, served.minion_id),
        120,
        "the restarted minion to answer through the live master",
    )
    wait_for(
        lambda: bystander.drop_in_masters() == [first_of_bystander.interface],
        30,
        "the bystander's drop-in to lose its second master",
    )
    time.sleep(3)
    assert bystander.restarts() == [], _decisions(bystander)
    assert len(served.restarts()) == 1, _decisions(served)
    beacon = PHOENIX["beacon"]
    print(
        f"\nrestart {served.restarts()[0] - hung_at:.1f} s after the master hung "
        f"(master_stale_after {PHOENIX['master_stale_after']} s, refresh "
        f"{beacon['refresh_interval']} s, jitter {beacon['restart_jitter']} s)"
    )


def test_a_terminating_master_drains_before_its_termination_goes_on(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    lifecycle_actions: LifecycleActions,
) -> None:
    drain = 15
    cluster = make_cluster(
        stack.phoenix_block(**PHOENIX, master_drain_time=drain),
        masters=2,
        minions=1,
        master_opts=MASTER_OPTS,
        minion_opts=MINION_OPTS,
        supervised_minions=True,
        start_minions=False,
        wait_for_minions=False,
    )
    (minion,) = cluster.minions
    fleet.start_minions(aws, stack, cluster)
    leaving, staying = fleet.order(minion, cluster)
    leaving_id = master_instance_id(cluster.masters.index(leaving) + 1)

    # AutoScaling terminates the minion's master behind a TERMINATING hook.
    group, hook = "phoenix-test-masters", "phoenix-terminate"
    action = lifecycle_actions.begin(group, hook, leaving_id)
    with BusListener(staying) as bus, BusListener(leaving) as leaving_bus:
        stack.send(
            aws,
            messages.lifecycle_hook(
                messages.TERMINATING, leaving_id, group, action.token, hook, messages.aws_time()
            ),
        )
        # Either master's engine may take the message from the queue.
        fleet.wait_for_state(stack, "master", leaving_id, "terminating")
        left_at = time.time()
        # Out of the live list at once: the minion restarts onto the other master while
        # AutoScaling still waits.
        wait_for(minion.restarts, 60, "the minion to leave the terminating master")
        assert lifecycle_actions.get(action.token).status == "pending"
        wait_for(
            lambda: fleet.answers(staying, minion.minion_id),
            120,
            "the minion to answer through the master that stays",
        )
        wait_for(
            lambda: lifecycle_actions.get(action.token).status != "pending",
            drain + 60,
            "the drain to end",
        )
        # Whichever engine applied the message, and whichever saw the drain end first,
        # said so on its own master's bus (the leaving master still runs: only its row is
        # terminating).
        seen = [event for listener in (bus, leaving_bus) for event in listener.drain()]
    events = [data for tag, data in seen if tag.startswith(f"phoenix/instance/{leaving_id}/")]
    assert [data["state"] for data in events if "state" in data] == ["terminating"]
    assert [data["lifecycle"] for data in events if "lifecycle" in data] == ["continue"]
    done = lifecycle_actions.get(action.token)
    assert done.status == "completed" and done.result == "CONTINUE"
    assert done.completed_at is not None
    # The termination went on only after the drain time, and after the minion had moved.
    assert done.completed_at - left_at >= drain / 2
    assert minion.restarts()[0] < done.completed_at
    row = fleet.session(stack).get_instance("master", leaving_id)
    assert row["state"] == "terminating"
    assert row["retire_hook"] is None
    assert minion.drop_in_masters() == [staying.interface]


def test_an_unreachable_or_empty_registry_changes_nothing(
    aws: Emulator, stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1, minions=1)
    (minion,) = cluster.minions
    fleet.start_minions(aws, stack, cluster)
    before = minion.drop_in_path.stat()
    text = minion.drop_in_path.read_text()

    # The emulator stops answering: reads fail, the beacon keeps the list and says why.
    aws.pause()
    try:
        wait_for(
            lambda: "reading the live masters failed" in minion.log_text(),
            60,
            "the beacon to report the failed read",
        )
        time.sleep(3)
    finally:
        aws.resume()

    # The only master stops: the registry has no live master; nothing is written.
    cluster.masters[0].stop()
    wait_for(
        lambda: "the registry lists no live master" in minion.log_text(),
        60,
        "the beacon to see an empty live list",
    )
    time.sleep(3)
    after = minion.drop_in_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert minion.drop_in_path.read_text() == text
    assert minion.restarts() == []
    assert minion.running()


def test_minion_config_waits_for_a_live_master_and_never_touches_a_foreign_file(
    aws: Emulator, stack: Stack, tmp_path: Path, metadata: MetadataService
) -> None:
    minion = _config_only_minion("i-0b00000000000cafe", aws, stack, tmp_path, metadata)
    # No master is live: it waits as long as told, then fails, writing nothing.
    result = minion.minion_config(wait=0)
    assert result.returncode == 1
    assert "no live master" in result.stderr
    assert not minion.drop_in_path.exists()

    # A live master, but the drop-in's path holds the operator's own file.
    registry = fleet.session(stack)
    engine = _core.Engine(
        _core.Config.from_json(
            json.dumps(
                stack.phoenix_block(master_id="i-0a0000000000000a1", master_address="10.0.0.1")
            )
        )
    )
    engine.register_master()
    engine.heartbeat()
    assert registry.live_masters()
    minion.drop_in_path.parent.mkdir(parents=True)
    minion.drop_in_path.write_text("master: salt.example.com\n")
    result = minion.minion_config(wait=0)
    assert result.returncode == 1
    assert "not managed by Phoenix" in result.stderr
    assert minion.drop_in_path.read_text() == "master: salt.example.com\n"

    # Once the path is Phoenix's, the live master is written.
    minion.drop_in_path.unlink()
    result = minion.minion_config(wait=0)
    assert result.returncode == 0, result.stderr
    assert minion.drop_in_masters() == ["10.0.0.1"]
    assert "was: no file" in result.stdout

    # A master starting on this host, not registered yet: listed first, with the live one.
    result = minion.minion_config(0, "--starting-master", "10.0.0.9")
    assert result.returncode == 0, result.stderr
    assert minion.drop_in_masters() == ["10.0.0.9", "10.0.0.1"]
    result = minion.minion_config(0, "--starting-master", "10.0.0.9")
    assert "unchanged" in result.stdout


def test_the_first_master_of_a_cluster_does_not_wait_for_itself(
    aws: Emulator, stack: Stack, tmp_path: Path, metadata: MetadataService
) -> None:
    minion = _config_only_minion("i-0a0000000000000a1", aws, stack, tmp_path, metadata)
    result = minion.minion_config(0, "--starting-master", "10.0.0.1")
    assert result.returncode == 0, result.stderr
    assert minion.drop_in_masters() == ["10.0.0.1"]
