"""Real salt-master and salt-minion daemons, each in its own root_dir, as the current user.

Masters bind distinct loopback addresses (127.0.0.1, 127.0.0.2, ...) with the same ports,
so a minion's failover between them is real.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import yaml

from phoenix_lab.metadata import MetadataService
from phoenix_lab.ports import is_listening
from phoenix_lab.processes import ManagedProcess, wait_for
from phoenix_salt import _core


def salt_bin_dir() -> Path:
    """Salt's scripts next to this interpreter (the venv that has salt and phoenix-salt)."""
    return Path(sys.executable).parent


# Seconds the salt CLI waits for "is the job still running?" answers (see SaltMaster).
GATHER_JOB_TIMEOUT = 2


class SaltError(RuntimeError):
    """A salt CLI call failed; the message carries its output."""


class _SaltDaemon:
    role: str
    log_name: str
    # Who gets SIGTERM at stop, as in Salt's own systemd units (see ManagedProcess).
    kill_mode: str = "control-group"

    def __init__(
        self,
        name: str,
        root: Path,
        env: Mapping[str, str],
        opts: Mapping[str, Any],
        bin_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.root = root
        self.conf_dir = root / "conf"
        self.bin_dir = bin_dir or salt_bin_dir()
        self.env = {**os.environ, **env}
        self.opts: dict[str, Any] = {
            "root_dir": str(root),
            "user": getpass.getuser(),
            "log_file": str(self.log_path),
            "log_level_logfile": "info",
            **opts,
        }
        self.process = ManagedProcess(
            f"salt-{self.role}:{name}",
            [str(self.bin_dir / f"salt-{self.role}"), "-c", str(self.conf_dir), "-l", "quiet"],
            log_path=root / f"{self.role}.stdout",
            env=self.env,
            kill_mode=self.kill_mode,
        )

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.role}.log"

    def write_config(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        path = self.conf_dir / self.role
        path.write_text(yaml.safe_dump(self.opts, default_flow_style=False, sort_keys=True))

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.process.running()

    def _supervise(self) -> None:
        """Runs the daemon under the lab's service manager (supervise.py), as systemd runs it
        on an instance: started again when it exits. ``process`` is then the supervisor."""
        self.process.argv = [
            str(self.bin_dir / "python"),
            "-m",
            "phoenix_lab.supervise",
            "run",
            "--pidfile",
            str(self.root / "supervisor.pid"),
            "--journal",
            str(self.journal_path),
            "--",
            *self.process.argv,
        ]

    @property
    def journal_path(self) -> Path:
        """The supervisor's journal: one line per start, restart and exit."""
        return self.root / "supervisor.journal"

    def journal(self) -> list[tuple[float, str]]:
        """``(time, what)`` for each line of the supervisor's journal (empty if not
        supervised)."""
        from phoenix_lab.supervise import journal_entries

        return journal_entries(self.journal_path)

    def last_started(self) -> float:
        """When the daemon last started (``time.time()``): its supervisor's last start, or
        the lab's, when it is not supervised."""
        starts = [at for at, what in self.journal() if what.startswith("started")]
        return max(starts, default=self.process.started_at)

    def stop(self) -> None:
        self.process.stop()

    def _check_alive(self) -> None:
        if not self.process.running():
            raise RuntimeError(
                f"{self.process.name} exited with {self.process.exit_code()}:\n"
                f"{self.process.log_text()[-3000:]}\n{self.log_text()[-3000:]}"
            )


class SaltMaster(_SaltDaemon):
    role = "master"

    def __init__(
        self,
        name: str,
        root: Path,
        interface: str,
        publish_port: int,
        ret_port: int,
        env: Mapping[str, str],
        opts: Mapping[str, Any] | None = None,
        bin_dir: Path | None = None,
        supervised: bool = False,
    ) -> None:
        """``supervised``: salt-master runs under the lab's service manager, started again
        whenever it exits, as the templates' systemd unit runs it (``Restart=always``)."""
        self.interface = interface
        self.publish_port = publish_port
        self.ret_port = ret_port
        # What the last ``ping`` printed, to say why a minion was not reached.
        self.last_ping: subprocess.CompletedProcess[str] | None = None
        base = {
            "interface": interface,
            "publish_port": publish_port,
            "ret_port": ret_port,
            # Few workers: many daemons share two cores.
            "worker_threads": 2,
            # After a CLI's timeout, Salt asks the minions that did not answer whether the job
            # still runs and waits this long (default 10 s): in a failover cluster, most
            # minions are on another master and never answer, so every lab ping would take
            # that much longer.
            "gather_job_timeout": GATHER_JOB_TIMEOUT,
            "file_roots": {"base": [str(root / "srv" / "salt")]},
            "pillar_roots": {"base": [str(root / "srv" / "pillar")]},
        }
        super().__init__(name, root, env, {**base, **(opts or {})}, bin_dir)
        self.supervised = supervised
        if supervised:
            self._supervise()

    @property
    def pki_dir(self) -> Path:
        return self.root / "etc" / "salt" / "pki" / "master"

    def start(self, timeout: float = 90.0) -> None:
        self.write_config()
        for tree in self.opts["file_roots"]["base"] + self.opts["pillar_roots"]["base"]:
            Path(tree).mkdir(parents=True, exist_ok=True)
        self.process.start()
        wait_for(self._ready, timeout, f"{self.process.name} to listen on {self.interface}")

    def _ready(self) -> bool:
        self._check_alive()
        return is_listening(self.interface, self.ret_port) and is_listening(
            self.interface, self.publish_port
        )

    def crash(self) -> bool:
        """salt-master dies (SIGKILL to it and every process it forked) while its instance
        stays up: under supervision, the service manager starts it again. False when it was
        not running."""
        try:
            top = psutil.Process(self.process.pid)
            main = top.children()[0] if self.supervised else top
            tree = [main, *main.children(recursive=True)]
        except (psutil.NoSuchProcess, IndexError, TypeError):
            return False
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        return True

    def request_workers(self) -> list[psutil.Process]:
        """The request server's worker processes (Salt titles them ``MWorker-...``): what
        answers every minion's request, and the heartbeat's ping."""
        try:
            tree = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        workers = []
        for process in tree:
            with contextlib.suppress(psutil.Error):
                if any("MWorker-" in part for part in process.cmdline()):
                    workers.append(process)
        return workers

    def cli(
        self, tool: str, args: Sequence[str], timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``salt``, ``salt-run``, ``salt-key`` ... against this master."""
        argv = [str(self.bin_dir / tool), "-c", str(self.conf_dir), *args]
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def run_json(self, tool: str, args: Sequence[str], timeout: float = 120.0) -> Any:
        """Runs a salt CLI with ``--out=json`` and returns the parsed output; raises
        SaltError when it exits non-zero or prints no JSON."""
        result = self.cli(tool, [*args, "--out=json"], timeout=timeout)
        if result.returncode != 0:
            command = " ".join([tool, *args])
            raise SaltError(
                f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise SaltError(
                f"{tool} {' '.join(args)} printed no JSON:\n{result.stdout}\n{result.stderr}"
            ) from exc

    def salt_run(self, *args: str, timeout: float = 120.0) -> Any:
        return self.run_json("salt-run", args, timeout=timeout)

    def ping(self, target: str | Sequence[str] = "*", timeout: int = 10) -> dict[str, bool]:
        """``salt <target> test.ping`` (a list of ids: ``salt -L``): which minions answered
        through this master."""
        how = [target] if isinstance(target, str) else ["-L", ",".join(target)]
        result = self.cli(
            "salt",
            [*how, "test.ping", "--out=json", "--static", "-t", str(timeout)],
            timeout=timeout + GATHER_JOB_TIMEOUT + 30,
        )
        self.last_ping = result
        try:
            answers = json.loads(result.stdout) if result.stdout.strip() else {}
        except json.JSONDecodeError:
            return {}
        return {minion: value is True for minion, value in answers.items()}

    def accepted_keys(self) -> list[str]:
        return self.keys()["minions"]

    def keys(self) -> dict[str, list[str]]:
        """Every key list of ``salt-key -L``: minions, minions_pre, minions_rejected,
        minions_denied (each sorted; a list Salt leaves out is empty)."""
        keys = self.run_json("salt-key", ["-L"])
        # Salt 3008 lists the temporary file of a key it is writing as one more key: leave
        # it out, as Phoenix's own key listing does.
        return {
            name: sorted(
                i
                for i in keys.get(name) or []
                if not _core.salt_write_in_flight(self.pki_dir / name / i)
            )
            for name in ("minions", "minions_pre", "minions_rejected", "minions_denied")
        }

    def key_states(self, minion_id: str) -> list[str]:
        """The key lists that hold ``minion_id`` on this master."""
        return [name for name, ids in self.keys().items() if minion_id in ids]


class SaltMinion(_SaltDaemon):
    role = "minion"
    # salt-minion.service has KillMode=process: SIGTERM to every process of a salt-minion
    # at once sometimes leaves its main process waiting out the whole grace period.
    kill_mode = "process"

    def __init__(
        self,
        minion_id: str,
        root: Path,
        masters: Sequence[str],
        master_port: int,
        env: Mapping[str, str],
        opts: Mapping[str, Any] | None = None,
        bin_dir: Path | None = None,
        publish_port: int | None = None,
        supervised: bool = False,
        metadata: MetadataService | None = None,
    ) -> None:
        self.minion_id = minion_id
        self.root = root
        # The instance's metadata stand-in: with one, this minion claims its key at its first
        # start (attested enrolment), as user data has it do on an instance.
        self.metadata = metadata
        self.claimed: dict[str, Any] | None = None
        if metadata is not None:
            env = {**env, **metadata.env(minion_id)}
        base: dict[str, Any] = {
            "id": minion_id,
            "master": list(masters) if len(masters) > 1 else masters[0],
            "master_port": master_port,
            # Fast key acceptance and reconnection on loopback.
            "acceptance_wait_time": 1,
            "acceptance_wait_time_max": 2,
            "random_reauth_delay": 0,
            "auth_timeout": 5,
            "auth_tries": 3,
        }
        if publish_port is not None:
            # Salt's master-alive check (status.master) looks for a connection to the
            # minion's own `publish_port` setting (default 4505), not to the port the master
            # announced: without it, a failover minion on other ports thinks its master is
            # gone at every check and hops to the next one.
            base["publish_port"] = publish_port
        if len(masters) > 1:
            base.update({"master_type": "failover", "retry_dns": 0, "master_alive_interval": 10})
        merged = {**base, **(opts or {})}
        self.supervised = supervised
        if supervised:
            # The beacon's restart goes through the lab's service manager, as it would go
            # through systemd on an instance.
            phoenix = dict(merged.get("phoenix") or {})
            beacon = dict(phoenix.get("beacon") or {})
            beacon.setdefault("restart_command", self._restart_command(bin_dir))
            merged["phoenix"] = {**phoenix, "beacon": beacon}
        super().__init__(minion_id, root, env, merged, bin_dir)
        if supervised:
            self._supervise()

    def _restart_command(self, bin_dir: Path | None) -> list[str]:
        python = str((bin_dir or salt_bin_dir()) / "python")
        pidfile = str(self.root / "supervisor.pid")
        return [python, "-m", "phoenix_lab.supervise", "restart", "--pidfile", pidfile]

    def restarts(self) -> list[float]:
        """When the supervisor restarted this minion on request (empty if not supervised)."""
        return [at for at, what in self.journal() if what == "restart"]

    @property
    def drop_in_path(self) -> Path:
        """Where the beacon keeps this minion's master list (its default place)."""
        return self.conf_dir / "minion.d" / "phoenix-masters.conf"

    def drop_in_masters(self) -> list[str] | None:
        """The master list the drop-in carries, None when there is no drop-in."""
        try:
            masters: list[str] = yaml.safe_load(self.drop_in_path.read_text())["master"]
        except FileNotFoundError:
            return None
        return masters

    def _phoenix(self, command: str, wait: float, *extra: str) -> subprocess.CompletedProcess[str]:
        """``phoenix <command>`` with this minion's config, as user data runs it."""
        self.write_config()
        return subprocess.run(
            [
                str(self.bin_dir / "phoenix"),
                command,
                "-c",
                str(self.conf_dir / "minion"),
                "--wait",
                str(wait),
                *extra,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=wait + 60,
            env=self.env,
        )

    def _phoenix_json(self, command: str, wait: float, *extra: str) -> dict[str, Any]:
        """What ``phoenix <command> --json`` printed; RuntimeError if it failed."""
        result = self._phoenix(command, wait, "--json", *extra)
        return phoenix_printed(result, f"phoenix {command} for {self.minion_id}")

    def minion_config(self, wait: float = 60, *extra: str) -> subprocess.CompletedProcess[str]:
        """`phoenix minion-config` for this minion, as user data runs it at first boot."""
        return self._phoenix("minion-config", wait, *extra)

    def first_boot(self, *extra: str, wait: float = 60) -> None:
        """What user data does at an instance's first boot: ``phoenix minion-config`` (with
        ``extra`` arguments; it makes the key pair and claims it), then salt-minion starts.
        Raises RuntimeError if the first fails."""
        self.claimed = self._phoenix_json("minion-config", wait, *extra).get("claim")
        self.start()

    @property
    def claims(self) -> bool:
        """Whether this minion sends an identity claim before its first start: it has a
        metadata stand-in and its masters trust identity documents."""
        keys = (self.opts.get("phoenix") or {}).get("keys") or {}
        return self.metadata is not None and keys.get("trust", "identity_document") == (
            "identity_document"
        )

    def claim(self, wait: float = 60) -> dict[str, Any]:
        """``phoenix claim`` for this minion: its key pair made, its claim sent."""
        claimed = self._phoenix_json("claim", wait)
        self.claimed = claimed
        return claimed

    @property
    def pki_dir(self) -> Path:
        return self.root / "etc" / "salt" / "pki" / "minion"

    def public_key(self) -> str:
        """The minion's public key (Salt writes it on first start)."""
        return (self.pki_dir / "minion.pub").read_text()

    def start(self) -> None:
        """Starts salt-minion; at the first start of a minion that claims, its key pair is
        made and claimed first (as user data does before salt-minion first starts)."""
        if self.claims and self.claimed is None and not (self.pki_dir / "minion.pem").exists():
            self.claim()
        self.write_config()
        self.process.start()


def phoenix_printed(result: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    """What a ``phoenix ... --json`` run (``what``, for the message) printed; RuntimeError,
    with its output, if it failed."""
    if result.returncode != 0:
        raise RuntimeError(f"{what} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


class BusListener:
    """Listens on a master's event bus from this process (as Salt's own tools do)."""

    def __init__(self, master: SaltMaster) -> None:
        import salt.config
        import salt.utils.event

        opts = salt.config.master_config(str(master.conf_dir / "master"))
        self._event = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def wait_for(
        self,
        tag_prefix: str,
        timeout: float,
        where: Callable[[dict[str, Any]], bool] | None = None,
        count: int = 1,
    ) -> dict[str, Any]:
        """The data of the ``count``-th event whose tag starts with ``tag_prefix`` (and whose
        data satisfies ``where``, if given); raises TimeoutError when there are not that many
        within ``timeout`` seconds."""
        import time

        def wanted(tag: str, data: dict[str, Any]) -> bool:
            return tag.startswith(tag_prefix) and (where is None or where(data))

        found = [data for tag, data in self.seen if wanted(tag, data)]
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            event = self._event.get_event(wait=1, full=True, no_block=False)
            if not event:
                continue
            self.seen.append((event["tag"], event["data"]))
            if wanted(event["tag"], event["data"]):
                found.append(event["data"])
        if len(found) < count:
            raise TimeoutError(
                f"{len(found)} of {count} matching events tagged {tag_prefix}* within "
                f"{timeout:.0f} s"
            )
        return dict(found[count - 1])

    def fire(self, tag: str, data: Mapping[str, Any]) -> None:
        """Puts an event on the master's bus, as an engine in the master would."""
        self._event.fire_event(dict(data), tag)

    def drain(self, quiet: float = 1.0) -> list[tuple[str, dict[str, Any]]]:
        """Reads every event waiting on the bus (until none comes for ``quiet`` seconds)
        into ``seen``, and returns ``seen``."""
        while True:
            event = self._event.get_event(wait=quiet, full=True, no_block=False)
            if not event:
                return self.seen
            self.seen.append((event["tag"], event["data"]))

    def take(self, seconds: float) -> list[tuple[str, dict[str, Any]]]:
        """The events that come within ``seconds`` (at least one wait), not kept in
        ``seen``: for a watcher that reads the bus for a long time."""
        import time

        taken = []
        deadline = time.monotonic() + seconds
        while True:
            left = max(deadline - time.monotonic(), 0.05)
            event = self._event.get_event(wait=left, full=True, no_block=False)
            if event:
                taken.append((event["tag"], event["data"]))
            if time.monotonic() >= deadline:
                return taken

    def close(self) -> None:
        self._event.destroy()

    def __enter__(self) -> BusListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class SaltApi:
    """salt-api with rest_cherrypy beside a master, plain HTTP on the master's interface.
    The master's config must carry the ``rest_cherrypy`` block (:meth:`opts`) before the
    master starts: salt-api reads the master's config file."""

    def __init__(self, master: SaltMaster) -> None:
        self.master = master
        self.port = int(master.opts["rest_cherrypy"]["port"])
        self.process = ManagedProcess(
            f"salt-api:{master.name}",
            [str(master.bin_dir / "salt-api"), "-c", str(master.conf_dir), "-l", "quiet"],
            log_path=master.root / "api.stdout",
            env=master.env,
        )

    @staticmethod
    def opts(port: int, interface: str, **extra: Any) -> dict[str, Any]:
        """The master config block for salt-api on ``interface:port``, without TLS (the
        lab's loopback only)."""
        return {"rest_cherrypy": {"port": port, "host": interface, "disable_ssl": True, **extra}}

    @property
    def url(self) -> str:
        return f"http://{self.master.interface}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.process.start()
        wait_for(
            lambda: is_listening(self.master.interface, self.port),
            timeout,
            f"{self.process.name} to listen on port {self.port}",
        )

    def stop(self) -> None:
        self.process.stop()
