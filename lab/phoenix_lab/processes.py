"""Child processes that are always stopped: by PID and process group, also on failure.

Every process started here runs in its own session (its own process group), so stopping it
also stops whatever it forked (salt-master forks a dozen workers). A registry of live
processes is stopped at interpreter exit as a last resort.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_LIVE: dict[int, ManagedProcess] = {}


class ManagedProcess:
    """One long-running child process and everything it forks."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        kill_mode: str = "control-group",
    ) -> None:
        """``kill_mode`` says who gets SIGTERM at ``stop``, in systemd's words:
        ``control-group`` every process of the group, ``process`` the main process only (it
        stops its own children; what is left is killed after the timeout)."""
        if kill_mode not in {"control-group", "process"}:
            raise ValueError(f"kill_mode {kill_mode!r}: control-group or process")
        self.kill_mode = kill_mode
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.time() of the last start, 0 before the first

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        if self.running():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as output:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self.started_at = time.time()
        _LIVE[self._popen.pid] = self
        log.debug("%s started as pid %s", self.name, self._popen.pid)

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def signal_group(self, signum: int) -> None:
        """Sends ``signum`` to the process and everything it forked."""
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL what is left; waits for the process to be reaped."""
        if self._popen is None:
            return
        pid = self._popen.pid
        # A stopped (SIGSTOP) process cannot act on SIGTERM until it is continued.
        self.signal_group(signal.SIGCONT)
        if self.kill_mode == "process":
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(signal.SIGTERM)
        else:
            self.signal_group(signal.SIGTERM)
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s (pid %s) ignored SIGTERM for %.0f s: killing it", self.name, pid, timeout
            )
        # Children that outlived their parent are still in the group.
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=timeout)
        _wait_group_gone(pid, timeout)
        _LIVE.pop(pid, None)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.05)


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.2,
    on_wait: Callable[[float], None] | None = None,
) -> object:
    """Polls ``condition`` until it returns something truthy; raises TimeoutError naming
    ``what`` after ``timeout`` seconds. ``on_wait`` gets the seconds waited so far."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        value = condition()
        if value:
            return value
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        if on_wait is not None:
            on_wait(now - started)
        time.sleep(interval)


def stop_all() -> None:
    """Stops every process this interpreter started and has not stopped yet."""
    for process in list(_LIVE.values()):
        process.stop(timeout=5.0)


atexit.register(stop_all)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so the caller's ``finally`` blocks
    stop what it started: Python's default SIGTERM ends the interpreter without running
    them, or the atexit hook, and would leave the daemons behind."""
    signal.signal(signal.SIGTERM, _interrupt)
