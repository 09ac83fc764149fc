"""The beacon's Python glue: what it reads from Salt's options, how it restarts the minion,
and how a failed restart is reported. No daemon and no registry: a follower whose refresher
never started (nothing calls its check here)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from phoenix_salt import ConfigError, follow
from phoenix_salt import config as phoenix_config
from phoenix_salt._core import BeaconSettings, Config

BLOCK = {"cluster": "test", "region": "us-east-1"}


def _config(**drop_in: str) -> Config:
    return phoenix_config.load({"phoenix": {**BLOCK, "drop_in": drop_in}})


def _beacon(**beacon: Any) -> BeaconSettings:
    return phoenix_config.load({"phoenix": {**BLOCK, "beacon": beacon}}).beacon


def _opts(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "id": "i-0b00000000000b001",
        "conf_file": str(tmp_path / "minion"),
        "phoenix": dict(BLOCK),
        **extra,
    }


def test_running_masters_read_the_way_salt_sets_them() -> None:
    # Failover, connected: master is the connected one, master_list the configured list.
    assert follow.running_masters(
        {"master": "10.0.0.2", "master_list": ["10.0.0.1", "10.0.0.2"]}
    ) == ("10.0.0.2", ["10.0.0.1", "10.0.0.2"])
    # One master, no failover list.
    assert follow.running_masters({"master": "salt"}) == ("salt", ["salt"])
    # Not connected: Salt still holds the whole list in master.
    assert follow.running_masters({"master": ["10.0.0.1", "10.0.0.2"]}) == (
        None,
        ["10.0.0.1", "10.0.0.2"],
    )


def _drop_in(path: Path, masters: list[str]) -> None:
    """A drop-in as Phoenix writes it (the part its reader checks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = "".join(f'  - "{m}"\n' for m in masters)
    quoted = ",".join(f'"{m}"' for m in masters)
    path.write_text(
        "# Managed by Phoenix (phoenix-salt): do not edit.\n"
        f"# phoenix-masters: [{quoted}]\nmaster:\n{listed}master_type: str\n"
    )


def test_a_str_minion_loaded_the_drop_in_it_had_when_it_started(tmp_path: Path) -> None:
    path = tmp_path / "minion.d" / "a.conf"
    settings = _config(master_type="str", path=str(path))
    _drop_in(path, ["10.0.0.2", "10.0.0.1"])
    # Written before this process started, as user data writes it before salt-minion starts.
    started = follow._process_started()
    os.utime(path, (started - 60, started - 60))
    # Salt shows the beacon only the connection to its first master.
    opts = {"master": "10.0.0.2"}
    assert follow.running_masters(opts, settings) == ("10.0.0.2", ["10.0.0.2", "10.0.0.1"])
    # The beacon rewrites the drop-in; the running minion still has what it loaded.
    _drop_in(path, ["10.0.0.3", "10.0.0.2", "10.0.0.1"])
    assert follow.running_masters(opts, settings) == ("10.0.0.2", ["10.0.0.2", "10.0.0.1"])


def test_a_str_minion_whose_drop_in_changed_after_it_started_loaded_an_unknown_list(
    tmp_path: Path,
) -> None:
    changed = tmp_path / "changed" / "a.conf"
    _drop_in(changed, ["10.0.0.1"])
    # Rewritten well after this process started.
    later = follow._process_started() + 60
    os.utime(changed, (later, later))
    settings = _config(master_type="str", path=str(changed))
    assert follow.running_masters({"master": "10.0.0.1"}, settings) == ("10.0.0.1", [])
    missing = _config(master_type="str", path=str(tmp_path / "none" / "a.conf"))
    assert follow.running_masters({"master": "10.0.0.1"}, missing) == ("10.0.0.1", [])
    # Failover minions are read from Salt's options as before.
    failover = _config(master_type="failover", path=str(changed))
    assert follow.running_masters({"master": "10.0.0.9"}, failover) == ("10.0.0.9", ["10.0.0.9"])


def test_the_follower_is_made_once_and_again_when_the_block_changes(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    first, settings = follow.follower_for(opts)
    assert follow.follower_for(dict(opts))[0] is first
    assert first.drop_in_path == str(tmp_path / "minion.d" / "phoenix-masters.conf")
    assert settings.beacon.refresh_interval == 10
    opts["phoenix"]["beacon"] = {"refresh_interval": 30}
    second, settings = follow.follower_for(opts)
    assert second is not first
    assert settings.beacon.refresh_interval == 30


def test_the_block_may_come_from_pillar_and_errors_name_the_key(tmp_path: Path) -> None:
    opts = _opts(tmp_path)
    del opts["phoenix"]
    opts["pillar"] = {"phoenix": {**BLOCK, "drop_in": {"path": "/etc/salt/minion.d/x.conf"}}}
    follower, _ = follow.follower_for(opts)
    assert follower.drop_in_path == "/etc/salt/minion.d/x.conf"
    opts["pillar"]["phoenix"]["drop_in"] = {"path": "/etc/salt/minion.d/masters.yaml"}
    with pytest.raises(ConfigError, match=r"phoenix\.drop_in\.path"):
        follow.follower_for(opts)
    opts["pillar"]["phoenix"]["drop_in"] = {}
    opts["pillar"]["phoenix"]["beacon"] = {"restart_command": []}
    with pytest.raises(ConfigError, match=r"phoenix\.beacon\.restart_command"):
        follow.follower_for(opts)


def _failures(follower: Any, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with follow._LOCK:
            found = [error for owner, error in follow._RESTART_FAILURES if owner is follower]
        if found:
            return found
        time.sleep(0.05)
    return []


def test_a_restart_command_runs_detached_and_a_failure_is_reported(tmp_path: Path) -> None:
    follower, _ = follow.follower_for(_opts(tmp_path))
    marker = tmp_path / "restarted"
    assert (
        follow.restart_minion(
            _beacon(restart_command=["sh", "-c", f"touch {marker}"]), None, follower
        )
        is None
    )
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    assert _failures(follower, timeout=0.5) == []

    failing = _beacon(restart_command=["sh", "-c", "echo nope >&2; exit 3"])
    assert follow.restart_minion(failing, None, follower) is None
    (failure,) = _failures(follower)
    assert "exited with 3" in failure and "nope" in failure
    # The failure goes out with the next check, as a problem event.
    event = follower.restart_failed(failure)
    assert event["tag"] == "problem" and "exited with 3" in event["error"]

    missing = _beacon(restart_command=[str(tmp_path / "missing")])
    error = follow.restart_minion(missing, None, follower)
    assert error is not None and "missing" in error


def test_the_default_restart_is_salts_service_restart_without_blocking(tmp_path: Path) -> None:
    """systemd does not run here, so this pins the call Phoenix makes (no_block=True is what
    makes it safe from inside the minion) with a stand-in; the next test uses Salt's own
    service module."""
    follower, _ = follow.follower_for(_opts(tmp_path))
    beacon = _beacon(restart_service="salt-minion")
    calls = []

    def restart(name: str, no_block: bool = False) -> bool:
        calls.append((name, no_block))
        return True

    assert follow.restart_minion(beacon, {"service.restart": restart}, follower) is None
    assert calls == [("salt-minion", True)]
    assert "restart_command" in follow.restart_minion(beacon, {}, follower)
    assert "returned False" in follow.restart_minion(
        beacon, {"service.restart": lambda name, no_block: False}, follower
    )


def test_without_systemd_salts_own_service_restart_fails_with_a_clear_error(
    tmp_path: Path,
) -> None:
    import salt.config
    import salt.loader

    opts = salt.config.minion_config(None)
    opts.update({"file_client": "local", "cachedir": str(tmp_path / "cache")})
    functions = salt.loader.minion_mods(opts)
    follower, _ = follow.follower_for(_opts(tmp_path))
    beacon = _beacon(restart_service="phoenix-no-such-service")
    error = follow.restart_minion(beacon, functions, follower)
    assert error is not None
    assert "service.restart" in error or "restart_command" in error
