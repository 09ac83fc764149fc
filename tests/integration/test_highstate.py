"""Every new minion's first highstate, with real masters and minions and the emulator: run
once across masters, recorded in the registry, retried, and gating the launch lifecycle
action (served by the lab, since the emulator lacks CompleteLifecycleAction and
RecordLifecycleActionHeartbeat: the tests check the requests the engine made)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from phoenix_lab import messages
from phoenix_lab.cluster import Cluster, master_instance_id
from phoenix_lab.emulator import Emulator
from phoenix_lab.lifecycle_actions import LifecycleAction, LifecycleActions
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import BusListener
from phoenix_lab.stack import Stack, provision
from phoenix_salt import _core, highstate_report
from phoenix_salt.highstate import HIGHSTATE_FUNCTION
from phoenix_salt.reactor import reactor_config

from . import fleet

pytestmark = pytest.mark.integration

MINIONS_GROUP = fleet.MINIONS_GROUP
HOOK = "phoenix-launch"
# Fast retries and sweeps, so a failing highstate ends within seconds.
HIGHSTATE = {
    "attempts": 2,
    "retry_delay": 2,
    "timeout": 120,
    "check_interval": 1,
    "lifecycle_heartbeat_interval": 1,
}


@pytest.fixture
def stack(aws: Emulator) -> Stack:
    return provision(aws, "test")


def _cluster(make_cluster: Callable[..., Cluster], stack: Stack, masters: int) -> Cluster:
    """Masters with the engine and Phoenix's reactor files (no auto_accept: Phoenix accepts
    the minion's key because the registry knows it); the minion is not started yet."""
    phoenix = stack.phoenix_block(
        heartbeat_interval=1, master_stale_after=4, highstate_gating=True, highstate=HIGHSTATE
    )
    master_opts = {"engines": [{"instance_manager": {}}], "auto_accept": False, **reactor_config()}
    return make_cluster(
        phoenix, masters=masters, minions=1, master_opts=master_opts, start_minions=False
    )


def _state_tree(cluster: Cluster) -> tuple[Path, Path]:
    """A highstate that appends a line to ``runs`` on every run, then fails unless
    ``fixed`` exists; the same tree on every master."""
    runs, fixed = cluster.workdir / "runs", cluster.workdir / "fixed"
    for master in cluster.masters:
        root = Path(master.opts["file_roots"]["base"][0])
        root.mkdir(parents=True, exist_ok=True)
        (root / "top.sls").write_text("base:\n  '*':\n    - first\n")
        (root / "first.sls").write_text(
            f"count_runs:\n  cmd.run:\n    - name: echo run >> {runs}\n"
            f"broken_state:\n  cmd.run:\n    - name: test -e {fixed}\n"
            "    - require:\n      - cmd: count_runs\n"
        )
    return runs, fixed


def _runs(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def _launch(
    aws: Emulator, stack: Stack, lifecycle_actions: LifecycleActions, minion_id: str
) -> LifecycleAction:
    """AutoScaling launches the minion behind a lifecycle hook; the registry records it
    with the hook that waits for its first highstate."""
    action = lifecycle_actions.begin(MINIONS_GROUP, HOOK, minion_id)
    stack.send(
        aws,
        messages.lifecycle_hook(
            messages.LAUNCHING, minion_id, MINIONS_GROUP, action.token, HOOK, messages.aws_time()
        ),
    )
    registry = fleet.session(stack)
    # Polled through the listing, which skips rows the emulator is still creating (see
    # fleet.register).
    wait_for(
        lambda: any(
            row["instance_id"] == minion_id and row["launch_hook"]
            for row in registry.list_instances("minion")
        ),
        60,
        f"the registry to hold {minion_id} with its launch hook",
    )
    return action


def _highstates(stack: Stack) -> _core.FirstHighstate:
    return _core.FirstHighstate(_core.Config.from_json(json.dumps(stack.phoenix_block())))


def _row(stack: Stack, minion_id: str) -> dict[str, Any] | None:
    return _highstates(stack).status(minion_id)


def _record(stack: Stack, minion_id: str) -> dict[str, Any]:
    return (_row(stack, minion_id) or {}).get("first_highstate") or {}


def test_a_new_minion_gets_one_first_highstate_and_its_launch_goes_on(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    lifecycle_actions: LifecycleActions,
) -> None:
    cluster = _cluster(make_cluster, stack, masters=2)
    runs, fixed = _state_tree(cluster)
    fixed.touch()
    minion = cluster.minions[0]
    action = _launch(aws, stack, lifecycle_actions, minion.minion_id)
    minion.start()

    wait_for(
        lambda: _record(stack, minion.minion_id).get("status") == "succeeded",
        120,
        "the first highstate to be recorded as succeeded",
    )
    record = _record(stack, minion.minion_id)
    assert record["attempt"] == 1
    assert record["master"] in {master_instance_id(1), master_instance_id(2)}
    assert record["states"] == 2 and record["failed_count"] == 0
    assert record["error"] is None
    assert _runs(runs) == 1
    # Gating: the launch went on only now, with CONTINUE, and the row forgot the hook.
    wait_for(
        lambda: lifecycle_actions.get(action.token).status == "completed",
        30,
        "the launch lifecycle action to be completed",
    )
    assert lifecycle_actions.get(action.token).result == "CONTINUE"
    # The exact call the engine made (the emulator lacks it; the lab serves it). Another
    # master's sweep may repeat it in the moment before the hook is forgotten; AutoScaling
    # answers that one "No active Lifecycle Action", which counts as done.
    expected = {
        "AutoScalingGroupName": MINIONS_GROUP,
        "LifecycleHookName": HOOK,
        "LifecycleActionToken": action.token,
        "InstanceId": minion.minion_id,
        "LifecycleActionResult": "CONTINUE",
    }
    completions = [p for name, p in lifecycle_actions.requests if name == "CompleteLifecycleAction"]
    assert completions
    assert all(p.items() >= expected.items() for p in completions)
    assert (_row(stack, minion.minion_id) or {})["launch_hook"] is None

    # Both masters asked at once: neither runs it again.
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda master: master.salt_run("highstate_runner.run", minion.minion_id),
                cluster.masters,
            )
        )
    for answer in answers:
        assert answer["started"] is False
        assert "succeeded already" in answer["reason"]

    # A restart, as the master_list beacon does: the start event reaches the reactor,
    # whose run finds the record and does nothing.
    ids = [master_instance_id(number) for number in range(1, len(cluster.masters) + 1)]
    served_by = cluster.masters[ids.index(record["master"])]
    with BusListener(served_by) as bus:
        minion.stop()
        minion.start()
        ran = bus.wait_for(
            "salt/run/",
            90,
            where=lambda data: (
                "highstate_runner.run" in str(data.get("fun"))
                and isinstance(data.get("return"), dict)
                and data["return"].get("minion_id") == minion.minion_id
            ),
        )
    assert ran["return"]["started"] is False
    assert _runs(runs) == 1
    assert _record(stack, minion.minion_id)["jid"] == record["jid"]


def test_a_failing_highstate_is_retried_recorded_and_abandons_the_launch(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    lifecycle_actions: LifecycleActions,
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1)
    master = cluster.masters[0]
    runs, fixed = _state_tree(cluster)
    minion = cluster.minions[0]
    action = _launch(aws, stack, lifecycle_actions, minion.minion_id)
    with BusListener(master) as bus:
        minion.start()
        retrying = bus.wait_for(f"phoenix/highstate/{minion.minion_id}/retrying", 120)
        failed = bus.wait_for(f"phoenix/highstate/{minion.minion_id}/failed", 120)
    assert retrying["attempt"] == 1
    assert [state["id"] for state in retrying["failed_states"]] == ["broken_state"]
    assert failed["attempt"] == 2
    assert failed["lifecycle"] == "abandon"

    record = _record(stack, minion.minion_id)
    assert record["status"] == "failed"
    assert record["attempt"] == 2
    assert record["failed_count"] == 1
    assert record["failed_states"][0]["function"] == "cmd.run"
    assert _runs(runs) == 2
    # The launch was kept alive while the retry waited, then abandoned.
    state = lifecycle_actions.get(action.token)
    assert state.result == "ABANDON"
    assert state.heartbeats >= 1
    heartbeats = [
        params
        for name, params in lifecycle_actions.requests
        if name == "RecordLifecycleActionHeartbeat"
    ]
    assert heartbeats and all(
        p["InstanceId"] == minion.minion_id and p["LifecycleActionToken"] == action.token
        for p in heartbeats
    )

    # What an operator sees, and how it gets the minion configured after a fix.
    pending = master.salt_run("highstate_runner.pending")
    assert pending[minion.minion_id]["status"] == "failed"
    assert pending[minion.minion_id]["failed_states"] == ["broken_state"]
    status = master.salt_run("highstate_runner.status", minion.minion_id)
    assert status["first_highstate"]["failed_states"][0]["id"] == "broken_state"
    assert master.salt_run("highstate_runner.run", minion.minion_id)["started"] is False

    fixed.touch()
    rerun = master.salt_run("highstate_runner.rerun", minion.minion_id)
    assert rerun["started"] is True and rerun["attempt"] == 1
    wait_for(
        lambda: _record(stack, minion.minion_id).get("status") == "succeeded",
        120,
        "the rerun to be recorded as succeeded",
    )
    assert _record(stack, minion.minion_id)["rerun"] is True
    assert _runs(runs) == 3
    assert minion.minion_id not in master.salt_run("highstate_runner.pending")


def test_the_runner_refuses_unknown_ids_and_patterns(
    stack: Stack, make_cluster: Callable[..., Cluster]
) -> None:
    cluster = _cluster(make_cluster, stack, masters=1)
    master = cluster.masters[0]
    unknown = master.cli("salt-run", ["highstate_runner.run", "i-00000000000000999"])
    assert unknown.returncode == 1
    assert "holds no live instance" in unknown.stdout
    pattern = master.cli("salt-run", ["highstate_runner.rerun", "i-*"])
    assert pattern.returncode == 2
    assert "is a pattern" in pattern.stdout


# Run by the attacker minion's Python with its own config and key: Salt's request channel
# (authenticated as the attacker) carries a `_syndic_return` holding a return for the victim,
# and, on Salt 3008, a `_return` whose `resource_id` is the victim. Both reach the master's
# `_return`, which writes the victim's entry in the job cache and fires its return event.
FORGE_THROUGH_THE_MASTER = """
import json, sys
import salt.channel.client, salt.config, salt.minion, salt.version
conf, victim, jid, forged = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
opts = salt.config.minion_config(conf)
opts.update(salt.minion.resolve_dns(opts))
loads = [{"cmd": "_syndic_return", "id": opts["id"], "jid": jid, "fun": forged["fun"],
          "return": {victim: {k: forged[k] for k in ("return", "retcode", "success")}}}]
if salt.version.__saltstack_version__.major >= 3008:
    loads.append({**forged, "cmd": "_return", "id": opts["id"], "resource_id": victim})
with salt.channel.client.ReqChannel.factory(opts, crypt="aes") as channel:
    for load in loads:
        channel.send(load, timeout=30)
print(len(loads))
"""


def test_a_forged_return_changes_no_first_highstate(
    aws: Emulator,
    stack: Stack,
    make_cluster: Callable[..., Cluster],
    lifecycle_actions: LifecycleActions,
) -> None:
    """An accepted minion forges a success for the victim's running first highstate (it saw
    the job id on the publish channel) in every way Salt lets it: an event fired with the
    victim's return tag, and returns the master's own ``_return`` path takes for the victim
    (``_syndic_return``; ``resource_id`` on 3008), which even land in the master's job cache.
    The record takes only the report the victim signed."""
    phoenix = stack.phoenix_block(
        heartbeat_interval=1, master_stale_after=4, highstate_gating=True, highstate=HIGHSTATE
    )
    master_opts = {"engines": [{"instance_manager": {}}], "auto_accept": False, **reactor_config()}
    cluster = make_cluster(
        phoenix, masters=1, minions=2, master_opts=master_opts, start_minions=False
    )
    master = cluster.masters[0]
    victim, attacker = cluster.minions
    # The victim's highstate runs a while, then fails: a forged success would be a lie.
    root = Path(master.opts["file_roots"]["base"][0])
    root.mkdir(parents=True, exist_ok=True)
    (root / "top.sls").write_text(f"base:\n  '{victim.minion_id}':\n    - slow\n")
    (root / "slow.sls").write_text("slow_then_broken:\n  cmd.run:\n    - name: sleep 8; exit 1\n")
    fleet.register(aws, stack, attacker.minion_id)
    attacker.start()
    wait_for(lambda: fleet.answers(master, attacker.minion_id), 90, "the attacker minion")
    _launch(aws, stack, lifecycle_actions, victim.minion_id)
    victim.start()
    wait_for(
        lambda: _record(stack, victim.minion_id).get("status") == "running",
        90,
        "the victim's first highstate to start",
    )
    jid = _record(stack, victim.minion_id)["jid"]
    # A well-formed report of success for the victim's job, signed with the attacker's key.
    states = {"forged_|-forged_|-forged_|-run": {"result": True, "changes": {}}}
    forged = {
        "id": victim.minion_id,
        "jid": jid,
        "fun": HIGHSTATE_FUNCTION,
        "retcode": 0,
        "success": True,
        "return": highstate_report.sign(
            str(attacker.pki_dir / "minion.pem"), victim.minion_id, jid, 0, states
        ),
    }
    tag = f"salt/job/{jid}/ret/{victim.minion_id}"
    with BusListener(master) as bus:
        fired = _as_attacker(
            attacker,
            [
                str(attacker.bin_dir / "salt-call"),
                "-c",
                str(attacker.conf_dir),
                "event.fire_master",
                "{}",
                "anything",
                f"preload={json.dumps({'events': [{'tag': tag, 'data': forged}]})}",
            ],
        )
        sent = int(
            _as_attacker(
                attacker,
                [
                    str(attacker.bin_dir / "python"),
                    "-c",
                    FORGE_THROUGH_THE_MASTER,
                    str(attacker.conf_dir / "minion"),
                    victim.minion_id,
                    jid,
                    json.dumps(forged),
                ],
            )
        )
        # Every forgery reached the master's bus as the victim's return...
        seen = bus.wait_for(
            tag,
            30,
            where=lambda data: "forged" in json.dumps(data["return"], default=str),
            count=1 + sent,
        )
        assert seen["id"] == victim.minion_id
        assert "True" in fired
    # ...and the job cache holds a forged entry for the victim: it is no evidence either.
    cached = master.run_json("salt-run", ["jobs.lookup_jid", jid])
    assert "forged" in json.dumps(cached.get(victim.minion_id)), cached
    # Nothing changed: the attempt runs on, then fails as the victim itself reports.
    assert _record(stack, victim.minion_id)["status"] == "running"
    wait_for(
        lambda: (
            _record(stack, victim.minion_id).get("attempt", 1) > 1
            or _record(stack, victim.minion_id).get("status") == "failed"
        ),
        120,
        "the victim's real return (a failure) to be recorded",
    )
    record = _record(stack, victim.minion_id)
    assert record.get("status") != "succeeded"
    assert "forged" not in json.dumps(record)
    assert "a first highstate takes only a report its minion signed" in master.log_text()


def _as_attacker(attacker: Any, argv: list[str]) -> str:
    """Runs ``argv`` as the attacker minion's own tools would; its output."""
    result = subprocess.run(
        argv, env=attacker.env, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, f"{argv[0]} exited {result.returncode}: {result.stderr}"
    return result.stdout.strip()
