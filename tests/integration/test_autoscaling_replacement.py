"""A master that stops serving is replaced by AutoScaling on the live masters' word: one of
them reports it (``SetInstanceHealth``, once, from one engine), and AutoScaling (the fleet
simulator, doing what AWS does with an Unhealthy instance) terminates it through its hook and
launches a replacement, which boots through ``phoenix master-bootstrap``. Nobody else does
anything: the test only hangs the master."""

from __future__ import annotations

import json
import signal
import threading
import uuid
from typing import Any

import pytest

from phoenix_lab import messages
from phoenix_lab.demo import Demo
from phoenix_lab.fleet import TERMINATE_HOOK, Fleet
from phoenix_lab.latency_proxy import LatencyProxy
from phoenix_lab.salt import SaltMaster
from phoenix_lab.stack import client
from tests.conftest import running_demo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# What the engine logs when it claimed a silent master and when AutoScaling took the report.
CLAIMED = "reporting it to AutoScaling as Unhealthy"
REPORTED = "reported to AutoScaling as Unhealthy"
# Quick timings: the demo's masters beat every 2 s and are stale after 10 s.
REPLACEMENT = {"replace_after": 12, "launch_grace": 0}


def _started(request: pytest.FixtureRequest, **replacement: Any) -> Any:
    """The demo's cluster with no group minions and quick replacement settings."""
    return running_demo(request, minions=0, replacement={**REPLACEMENT, **replacement})


def _launch_masters(demo: Demo) -> tuple[Fleet, dict[str, SaltMaster]]:
    """The emulator, the data stack, the groups and 3 masters: the fleet and the masters."""
    for step in (demo.start_emulator, demo.provision_stack, demo.create_groups):
        step()
    demo.start_masters()
    assert demo.fleet is not None
    return demo.fleet, dict(demo.masters)


def _hang_first(masters: dict[str, SaltMaster]) -> tuple[str, SaltMaster]:
    """SIGSTOPs the salt-master with the lowest instance id; returns it and its id."""
    instance_id, master = sorted(masters.items())[0]
    master.process.signal_group(signal.SIGSTOP)
    return instance_id, master


def _row(demo: Demo, instance_id: str) -> dict[str, Any]:
    """A master's registry row as DynamoDB holds it."""
    assert demo.stack is not None
    item: dict[str, Any] = client(demo.emulator, "dynamodb").get_item(
        TableName=demo.stack.outputs["MastersTable"],
        Key={"cluster": {"S": demo.stack.cluster}, "instance_id": {"S": instance_id}},
    )["Item"]
    return item


def _wait_terminated(demo: Demo, instance_id: str, timeout: float = 180) -> None:
    """Until AutoScaling ended ``instance_id`` (its replacement is launched meanwhile)."""
    assert demo.fleet is not None
    fleet = demo.fleet
    demo.wait(
        lambda: fleet.instances[instance_id].state == "terminated",
        timeout,
        f"AutoScaling to replace {instance_id}",
    )


def _replacement_row(demo: Demo, instance_id: str) -> dict[str, Any]:
    """The replacement claim in a master's row ({} when there is none)."""
    claim: dict[str, Any] = _row(demo, instance_id).get("replacement", {}).get("M", {})
    return claim


def _reported_alone(demo: Demo, first: dict[str, SaltMaster], broken_id: str) -> None:
    """``broken_id`` was reported once, by a live master; no other master was."""
    assert demo.fleet is not None
    assert demo.fleet.replaced_unhealthy == [broken_id]
    claimed = _log_count(first, CLAIMED)
    assert len(claimed) == 1 and sum(claimed.values()) == 1, claimed
    (reporter,) = claimed
    assert reporter != broken_id
    assert _replacement_row(demo, broken_id)["by"]["S"] == reporter
    for instance_id in first.keys() - {broken_id}:
        assert _replacement_row(demo, instance_id) == {}


def _log_count(masters: dict[str, SaltMaster], text: str) -> dict[str, int]:
    return {i: m.log_text().count(text) for i, m in masters.items() if text in m.log_text()}


def test_a_hung_master_is_reported_once_and_autoscaling_replaces_it(
    request: pytest.FixtureRequest,
) -> None:
    with _started(request) as demo:
        fleet, first = _launch_masters(demo)
        hung_id, _ = _hang_first(first)

        # AutoScaling's replacement serves and the hung one's termination went on.
        _wait_terminated(demo, hung_id)
        demo.wait(
            lambda: len(demo.live_masters()) == 3 and hung_id not in demo.masters,
            120,
            "the replacement to serve",
        )
        demo.wait(
            demo.reach().complete,
            120,
            "every master to reach every minion",
            explain=demo.unreached,
        )

        # Reported once, by one of the two live masters; nobody else was.
        _reported_alone(demo, first, hung_id)
        assert _log_count(first, REPORTED) == _log_count(first, CLAIMED)
        assert "reported_ms" in _replacement_row(demo, hung_id)
        # The replacement came from the group, through master-bootstrap, and runs its own
        # minion, which every master reaches.
        (replacement,) = demo.masters.keys() - first.keys()
        assert fleet.instances[replacement].state == "in_service"
        assert replacement in demo.own_minions


def test_two_hung_masters_are_replaced_one_at_a_time_by_the_survivor(
    request: pytest.FixtureRequest,
) -> None:
    with _started(request) as demo:
        fleet, first = _launch_masters(demo)
        (survivor, _), *hung = sorted(first.items())
        for _, master in hung:
            master.process.signal_group(signal.SIGSTOP)
        hung_ids = {instance_id for instance_id, _ in hung}

        demo.wait(
            lambda: all(fleet.instances[i].state == "terminated" for i in hung_ids),
            300,
            "AutoScaling to replace both hung masters",
        )
        demo.wait(lambda: len(demo.live_masters()) == 3, 120, "both replacements to serve")

        assert sorted(fleet.replaced_unhealthy) == sorted(hung_ids)
        claims = {i: _replacement_row(demo, i) for i in hung_ids}
        # The survivor was the only live master when the first was reported.
        earlier, later = sorted(claims.values(), key=lambda claim: int(claim["at_ms"]["N"]))
        assert earlier["by"]["S"] == survivor
        # replacement.max_in_flight is 1: the second was claimed only once the first was
        # terminated.
        (first_out,) = [i for i, claim in claims.items() if claim is earlier]
        terminated_ms = _row(demo, first_out)["terminated_ms"]["N"]
        assert int(later["at_ms"]["N"]) >= int(terminated_ms)
        # Two reports in all (the first replacement may have made the second).
        assert sum(_log_count({**first, **demo.masters}, REPORTED).values()) == 2


def test_a_master_in_its_launch_grace_is_not_reported_and_one_that_recovers_stays(
    request: pytest.FixtureRequest,
) -> None:
    with _started(request, launch_grace=600) as demo:
        fleet, first = _launch_masters(demo)
        held_id, held = _hang_first(first)
        # It leaves the live list, and its silence passes replace_after on every peer.
        demo.wait(
            lambda: (
                held not in demo.live_masters()
                and all(
                    "within replacement.launch_grace" in m.log_text()
                    for i, m in first.items()
                    if i != held_id
                )
            ),
            120,
            "the live masters to hold the hung one for its launch grace",
        )
        held.process.signal_group(signal.SIGCONT)
        demo.wait(lambda: len(demo.live_masters()) == 3, 60, "the master to serve again")
        assert fleet.replaced_unhealthy == []
        assert _log_count(first, CLAIMED) == {}
        assert _replacement_row(demo, held_id) == {}
        assert fleet.instances[held_id].state == "in_service"


def test_a_master_whose_workers_are_wedged_is_replaced_though_its_engine_lives(
    request: pytest.FixtureRequest,
) -> None:
    with _started(request) as demo:
        _, first = _launch_masters(demo)
        wedged_id, wedged = sorted(first.items())[0]
        # Its ports stay open and its engine runs on: only the request workers hang.
        for worker in wedged.request_workers():
            worker.send_signal(signal.SIGSTOP)

        _wait_terminated(demo, wedged_id)
        # Its own engine stopped heartbeating it, and said why.
        assert "salt-master does not serve: no answer within" in wedged.log_text()
        _reported_alone(demo, first, wedged_id)


def test_a_salt_master_that_keeps_crashing_on_a_live_instance_is_replaced(
    request: pytest.FixtureRequest,
) -> None:
    with _started(request) as demo:
        fleet, first = _launch_masters(demo)
        crashing_id, crashing = sorted(first.items())[0]
        # salt-master dies as soon as its service manager starts it, again and again; the
        # instance (its service manager, its own minion) stays up.
        stop = threading.Event()

        def crash_loop() -> None:
            while not stop.wait(0.2):
                crashing.crash()

        loop = threading.Thread(target=crash_loop, daemon=True)
        loop.start()
        try:
            demo.wait(
                lambda: crashing_id in fleet.replaced_unhealthy,
                180,
                f"a live master to report {crashing_id}",
            )
        finally:
            stop.set()
            loop.join()
        _wait_terminated(demo, crashing_id)
        # EC2's check found the instance healthy: the replacement is Phoenix's report.
        assert crashing_id not in fleet.failed_ec2_check
        starts = [what for _, what in crashing.journal() if what.startswith("started")]
        assert len(starts) >= 3, crashing.journal()
        _reported_alone(demo, first, crashing_id)


def test_a_master_cut_off_from_dynamodb_reports_nobody_and_is_replaced(
    request: pytest.FixtureRequest,
) -> None:
    """The master's DynamoDB calls go through a proxy that the test cuts; AutoScaling stays
    reachable to it, so a report from it would go through."""
    with _started(request) as demo:
        proxy = LatencyProxy([demo.emulator.port], 0, demo.workdir)
        proxy.start()
        try:
            demo.master_env[1] = {"AWS_ENDPOINT_URL_DYNAMODB": proxy.url(demo.emulator.port)}
            _, first = _launch_masters(demo)
            ((cut_id, cut),) = [(i, m) for i, m in first.items() if m.name == "master1"]
            assert proxy.counts()["calls"].get("dynamodb UpdateItem", 0) > 0
            proxy.block()

            _wait_terminated(demo, cut_id)
            # It tried, failed and said so, and judged nobody meanwhile. Nor did it take
            # messages it could not apply: its own termination went to the live masters
            # (were it to take it, each failed try would use up one of the message's
            # receives, and the lab's queue dead-letters a message after 5).
            assert "phoenix: heartbeat failed" in cut.log_text()
            assert "polling no queue until one is recorded" in cut.log_text()
            _reported_alone(demo, first, cut_id)
        finally:
            proxy.stop()


def test_a_forged_termination_of_a_live_master_is_refused_and_it_stays_live(
    request: pytest.FixtureRequest,
) -> None:
    """A termination hook message for a serving master that AutoScaling did not send (it
    lists the instance InService): the engine asks AutoScaling before it records the end of
    a master that heartbeats, refuses the message, and the master stays in the live list."""
    with _started(request) as demo:
        fleet, first = _launch_masters(demo)
        target_id, target = sorted(first.items())[0]
        assert demo.stack is not None
        metadata = json.dumps({"cluster": demo.stack.cluster, "role": "master"})
        forged = messages.lifecycle_hook(
            messages.TERMINATING,
            target_id,
            fleet.group("master"),
            str(uuid.uuid4()),
            TERMINATE_HOOK,
            messages.aws_time(),
            metadata,
        )
        demo.stack.send(demo.emulator, forged)
        refusal = f"terminating of master {target_id} not recorded"
        demo.wait(
            lambda: any(refusal in m.log_text() for m in first.values()),
            60,
            "an engine to refuse the forged termination",
        )
        assert "AutoScaling lists it InService" in "".join(m.log_text() for m in first.values())
        # Moved to the dead-letter queue at once (what the events-rejected alarm counts).
        demo.wait(
            lambda: demo.stack.queue_depth(demo.emulator, dead_letters=True) == 1,
            30,
            "the forged termination to be moved to the dead-letter queue",
        )
        # Nothing moved: the row, the live list, AutoScaling's group.
        assert _row(demo, target_id)["state"]["S"] == "running"
        assert target in demo.live_masters()
        assert fleet.instances[target_id].state == "in_service"
        assert fleet.replaced_unhealthy == []
