"""A service manager for the lab's salt daemons, standing in for systemd.

On an instance, systemd starts salt-master and salt-minion again when they exit
(``Restart=always``), and the beacon restarts salt-minion through it; the lab has none, so a
lab daemon can run under this supervisor, and a minion's ``restart_command`` asks the
supervisor for the restart, as ``systemctl --no-block restart`` asks systemd:

    python -m phoenix_lab.supervise run --pidfile P --journal J -- salt-minion -c DIR
    python -m phoenix_lab.supervise restart --pidfile P

``run`` starts the command and starts it again on SIGUSR1 (each restart is a line in the
journal, which tests count) or when it exits; SIGTERM stops the command and the supervisor.
The command stays in the supervisor's process group, so stopping that group (the lab's
``ManagedProcess.stop``) stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

# How long the supervised command gets to stop on SIGTERM before it is killed.
STOP_TIMEOUT_SECONDS = 20.0
# A command that exits by itself is started again after this pause (systemd's RestartSec).
RESTART_PAUSE_SECONDS = 1.0


def journal_entries(journal: Path) -> list[tuple[float, str]]:
    """``(time, what)`` for each line of a supervisor's journal."""
    try:
        lines = journal.read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        stamp, _, what = line.partition(" ")
        entries.append((float(stamp), what))
    return entries


def _session_of(member: psutil.Process) -> int | None:
    try:
        return os.getsid(member.pid)
    except OSError:
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stops the command as systemd stops Salt's own salt-minion unit (``KillMode=process``):
    SIGTERM to the main process, which stops its own children; what is left of its session
    after the timeout is killed. A process that started a session of its own on purpose is
    left alone: the beacon's restart command (detached, as ``systemctl --no-block restart``
    is) may still be exiting when the restart it asked for begins, and killing it would make
    the beacon see its own restart fail."""
    try:
        main = psutil.Process(process.pid)
        session = _session_of(main)
        tree = [main, *main.children(True)]
    except psutil.NoSuchProcess:
        main, session, tree = None, None, []
    if main is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            main.terminate()
        psutil.wait_procs([main], timeout=STOP_TIMEOUT_SECONDS)
    leftovers = [m for m in tree if m.is_running() and _session_of(m) == session]
    for member in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(leftovers, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _run(pidfile: Path, journal: Path, command: Sequence[str]) -> int:
    wanted: list[str] = []
    signal.signal(signal.SIGUSR1, lambda *_: wanted.append("restart"))
    signal.signal(signal.SIGTERM, lambda *_: wanted.append("stop"))
    signal.signal(signal.SIGINT, lambda *_: wanted.append("stop"))
    pidfile.write_text(f"{os.getpid()}\n")

    def note(what: str) -> None:
        with journal.open("a") as out:
            out.write(f"{time.time():.3f} {what}\n")

    process = subprocess.Popen(list(command))
    note(f"started {process.pid}")
    while True:
        if "stop" in wanted:
            _stop(process)
            note("stopped")
            return 0
        if "restart" in wanted:
            wanted.clear()
            note("restart")
            _stop(process)
            process = subprocess.Popen(list(command))
            note(f"started {process.pid}")
        elif process.poll() is not None:
            note(f"exited {process.returncode}")
            time.sleep(RESTART_PAUSE_SECONDS)
            process = subprocess.Popen(list(command))
            note(f"started {process.pid}")
        time.sleep(0.05)


def _restart(pidfile: Path) -> int:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGUSR1)
    except (OSError, ValueError) as exc:
        print(f"supervise: cannot ask for a restart through {pidfile}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phoenix_lab.supervise")
    commands = parser.add_subparsers(dest="action", required=True)
    run = commands.add_parser("run")
    run.add_argument("--pidfile", type=Path, required=True)
    run.add_argument("--journal", type=Path, required=True)
    run.add_argument("command", nargs="+")
    restart = commands.add_parser("restart")
    restart.add_argument("--pidfile", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.action == "run":
        return _run(args.pidfile, args.journal, args.command)
    return _restart(args.pidfile)


if __name__ == "__main__":
    sys.exit(main())
