"""A minion following the live masters: the work behind the ``master_list`` beacon.

Salt runs a beacon in the minion's main loop every second, so everything here is cheap:
the registry is read by the core's background refresher, and a check compares cached
snapshots. See docs/beacon.md for the model and every option.

The followers live in this module, not in the beacon module: Salt re-executes a beacon
module's code when it refreshes beacons (pillar refresh, ``saltutil.refresh_beacons``), which
would orphan a follower kept there and start a second refresher.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix_salt._core import BeaconSettings, Config, MasterFollower

log = logging.getLogger(__name__)

DROP_IN_NAME = "phoenix-masters.conf"
# How long a restart command may run before it counts as failed. It is waited for in a
# thread: the minion's main loop never waits on it.
RESTART_COMMAND_TIMEOUT_SECONDS = 120.0


@dataclass
class _Entry:
    key: str
    config: Config
    follower: MasterFollower


_LOCK = threading.Lock()
_ENTRIES: dict[str, _Entry] = {}
# Failures of restart commands, reported on the next check (the command is waited for in a
# thread, and only a check can return an event to Salt).
_RESTART_FAILURES: list[tuple[MasterFollower, str]] = []


def default_drop_in_path(opts: Mapping[str, Any]) -> str:
    """``minion.d/phoenix-masters.conf`` beside the minion's config file: Salt includes
    ``minion.d/*.conf`` relative to it (its ``default_include``)."""
    conf_file = opts.get("conf_file") or "/etc/salt/minion"
    return os.path.join(os.path.dirname(str(conf_file)), "minion.d", DROP_IN_NAME)


def drop_in_path(config: Config, opts: Mapping[str, Any]) -> str:
    """``phoenix.drop_in.path``, else the default beside the minion's config file."""
    return config.drop_in.path or default_drop_in_path(opts)


def own_master(config: Config, minion_id: str) -> str:
    """The master a minion runs beside, which it puts first while that master is live:
    ``phoenix.master_id`` where set, else the minion's own id (minion ids are instance ids,
    so a master's minion has its master's id)."""
    return config.master_id or minion_id


def follower_for(opts: Mapping[str, Any]) -> tuple[MasterFollower, Config]:
    """This minion's follower and its validated ``phoenix:`` block, made on first use and
    made again when the ``phoenix:`` block, the minion id or the config file changes.

    Raises ``phoenix_salt.ConfigError`` for an invalid block.
    """
    from phoenix_salt import _core
    from phoenix_salt import config as phoenix_config

    minion_id = str(opts.get("id"))
    # The block as Salt gives it, with the identity it is used under: cheap to compute
    # every second for a block of a few keys, and exact (no stale cache on a pillar edit).
    key = json.dumps(
        [phoenix_config.block_of(opts, opts.get("pillar")), minion_id, opts.get("conf_file")],
        sort_keys=True,
        default=str,
    )
    with _LOCK:
        entry = _ENTRIES.get(minion_id)
        if entry is not None and entry.key == key:
            return entry.follower, entry.config
        config = phoenix_config.load(opts, opts.get("pillar"))
        follower = _core.MasterFollower(
            config, minion_id, drop_in_path(config, opts), own_master(config, minion_id)
        )
        if entry is not None:
            log.info("phoenix: the beacon's settings changed; following with the new ones")
            # Failures of the replaced follower's restarts can no longer be reported by it.
            _RESTART_FAILURES[:] = [f for f in _RESTART_FAILURES if f[0] is not entry.follower]
        _ENTRIES[minion_id] = _Entry(key, config, follower)
        return follower, config


def running_masters(
    opts: Mapping[str, Any], config: Config | None = None
) -> tuple[str | None, list[str]]:
    """The master the running minion is connected to (a ``str`` minion: its first master),
    and the list it loaded.

    In failover mode Salt sets ``master`` to the master it connected to and ``master_list``
    to the configured list. Salt 3008 shows a beacon the minion's live options; 3006 and
    3007 show a copy taken when beacons were (re)loaded, so after Salt's own failover they
    still name the old master until the next beacon refresh (docs/beacon.md).

    A ``str`` minion runs one connection per master, each with its own options naming only
    its master, and its beacons in the first one's: the list it loaded is read from the
    drop-in (``loaded_masters``); empty when that is not known.
    """
    master = opts.get("master")
    if config is not None and config.drop_in.master_type == "str":
        loaded = loaded_masters(drop_in_path(config, opts))
        return (master if isinstance(master, str) else None), loaded or []
    listed = opts.get("master_list")
    if isinstance(master, str):
        masters = [str(m) for m in listed] if listed else [master]
        return master, masters
    return None, [str(m) for m in (master or [])]


# A drop-in written by user data just before salt-minion started is what it loaded, however
# coarse the process's start time is (``_process_started``).
START_TIME_SLACK_SECONDS = 2.0

# What each drop-in carried when this process first looked, by path: the list a str minion
# loaded when it started (None: not known).
_LOADED: dict[str, list[str] | None] = {}


def loaded_masters(path: str) -> list[str] | None:
    """The master list salt-minion loaded from the drop-in at ``path`` when this process
    started: the drop-in as the beacon first finds it, which is before the beacon itself
    rewrites it. None when that is not known: there was no drop-in, it cannot be read, or
    something rewrote it after the process started (an operator's ``phoenix
    minion-config``)."""
    with _LOCK:
        if path in _LOADED:
            return _LOADED[path]
    from phoenix_salt import _core

    masters: list[str] | None = None
    try:
        if os.stat(path).st_mtime <= _process_started() + START_TIME_SLACK_SECONDS:
            masters = _core.read_drop_in(path)
        else:
            log.warning(
                "phoenix: %s changed after salt-minion started; its list is not known", path
            )
    except FileNotFoundError:
        pass
    except (OSError, _core.PhoenixError) as exc:
        log.warning("phoenix: cannot tell which masters salt-minion loaded from %s: %s", path, exc)
    with _LOCK:
        return _LOADED.setdefault(path, masters)


def _process_started() -> float:
    """When this process started, as a Unix time (psutil is one of Salt's own
    dependencies). On Linux it is off by up to a second: the boot time it adds to the
    process's start is whole seconds (``btime`` in /proc/stat)."""
    import psutil

    return float(psutil.Process().create_time())


def check(opts: Mapping[str, Any], salt: Mapping[str, Callable[..., Any]] | None) -> list[dict]:
    """One beacon run: the events for Salt to fire, after carrying out a due restart."""
    follower, config = follower_for(opts)
    events: list[dict] = []
    with _LOCK:
        failures = [error for owner, error in _RESTART_FAILURES if owner is follower]
        _RESTART_FAILURES[:] = [f for f in _RESTART_FAILURES if f[0] is not follower]
    for error in failures:
        events.append(follower.restart_failed(error))
    master, masters = running_masters(opts, config)
    found, restart = follower.check(master, masters)
    events.extend(found)
    if restart is not None:
        error = restart_minion(config.beacon, salt, follower)
        if error is not None:
            events.append(follower.restart_failed(error))
    return events


def restart_minion(
    beacon: BeaconSettings,
    salt: Mapping[str, Callable[..., Any]] | None,
    follower: MasterFollower,
) -> str | None:
    """Starts the restart; returns why it could not start, or None.

    ``phoenix.beacon.restart_command`` runs detached (its own session, so it outlives the
    minion it restarts) and is waited for in a thread. Without it, Salt's own
    ``service.restart <restart_service>`` with ``no_block=True``: on systemd that queues the
    restart (``systemctl --no-block``) and returns at once, which is safe from inside the
    minion; Salt's ``minion.restart`` is not (from the main loop its kill step times out
    and the minion stops without coming back).
    """
    command = beacon.restart_command
    if command:
        return _start_command(command, follower)
    service = beacon.restart_service
    restart = salt.get("service.restart") if salt is not None else None
    if restart is None:
        return (
            "this minion has no service.restart (no service manager Salt knows): set "
            "phoenix.beacon.restart_command"
        )
    try:
        result = restart(service, no_block=True)
    # Any failure is reported; none may stop the beacon.
    except Exception as exc:
        return f"service.restart {service} no_block=True raised {type(exc).__name__}: {exc}"
    if result is not True:
        return f"service.restart {service} no_block=True returned {result!r}"
    return None


def _start_command(command: Sequence[str], follower: MasterFollower) -> str | None:
    argv = [str(part) for part in command]
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return f"{argv[0]}: {exc}"

    def wait() -> None:
        try:
            _, stderr = process.communicate(timeout=RESTART_COMMAND_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            error = f"{argv} still runs after {RESTART_COMMAND_TIMEOUT_SECONDS:.0f} s"
        else:
            if process.returncode == 0:
                return
            tail = stderr.decode(errors="replace").strip()[-500:]
            error = f"{argv} exited with {process.returncode}" + (f": {tail}" if tail else "")
        with _LOCK:
            _RESTART_FAILURES.append((follower, error))

    threading.Thread(target=wait, name="phoenix-restart-wait", daemon=True).start()
    return None
