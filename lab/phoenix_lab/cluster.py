"""A whole Phoenix cluster on loopback: N masters sharing one master key pair, M minions
listing all of them (in failover mode until Phoenix's drop-in, which Salt reads after the
main config file, says otherwise), every daemon with Phoenix loaded."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from phoenix_lab.emulator import Emulator
from phoenix_lab.metadata import MetadataService
from phoenix_lab.ports import free_port
from phoenix_lab.processes import wait_for
from phoenix_lab.salt import SaltMaster, SaltMinion, phoenix_printed, salt_bin_dir

LOOPBACK = "127.0.0.{}"


def master_instance_id(number: int) -> str:
    """A valid, recognisable EC2 instance id for the lab's master ``number``."""
    return f"i-{0xA000 + number:017x}"


def minion_instance_id(number: int) -> str:
    """A valid EC2 instance id for the lab's minion ``number``: minion ids are instance ids."""
    return f"i-{0xB000 + number:017x}"


def generate_master_key_pair(directory: Path, bin_dir: Path | None = None) -> tuple[Path, Path]:
    """A fresh master.pem/master.pub pair, made by Salt's own ``salt-key --gen-keys``."""
    directory.mkdir(parents=True, exist_ok=True)
    tool = (bin_dir or salt_bin_dir()) / "salt-key"
    subprocess.run(
        [str(tool), "--gen-keys=master", f"--gen-keys-dir={directory}", "--keysize=2048"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return directory / "master.pem", directory / "master.pub"


class Cluster:
    """Masters on 127.0.0.1..N with the same ports; minions listing every master."""

    def __init__(
        self,
        workdir: Path,
        emulator: Emulator,
        phoenix: Mapping[str, Any],
        masters: int = 1,
        minions: int = 1,
        master_opts: Mapping[str, Any] | None = None,
        minion_opts: Mapping[str, Any] | None = None,
        bin_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        supervised_minions: bool = False,
        bootstrap: bool = False,
        master_ids: Sequence[str] | None = None,
        minion_ids: Sequence[str] | None = None,
        supervised_masters: bool = False,
        master_env: Mapping[int, Mapping[str, str]] | None = None,
    ) -> None:
        """``master_ids`` / ``minion_ids``: the instances' ids (from the fleet simulator's
        groups); without them, ``masters`` / ``minions`` daemons with the lab's own ids.
        ``supervised_masters``: each salt-master runs under the lab's service manager, as
        systemd runs it on an instance. ``master_env``: more environment for the master of
        that number (1, 2, ...), e.g. its own route to one AWS service."""
        self.workdir = workdir
        self.emulator = emulator
        self.phoenix = dict(phoenix)
        self.bin_dir = bin_dir
        self.bootstrap = bootstrap
        self.master_opts = dict(master_opts or {})
        self.minion_opts = dict(minion_opts or {})
        self.supervised_minions = supervised_minions
        self.supervised_masters = supervised_masters
        self.master_env = dict(master_env or {})
        if master_ids is None:
            master_ids = [master_instance_id(i + 1) for i in range(masters)]
        if minion_ids is None:
            minion_ids = [minion_instance_id(i + 1) for i in range(minions)]
        interfaces = [LOOPBACK.format(i + 1) for i in range(len(master_ids))]
        self.publish_port = free_port(interfaces)
        self.ret_port = free_port(interfaces)
        self.env = {**emulator.env(), **(extra_env or {})}
        # Each instance's metadata stand-in (identity documents signed by the lab's key).
        self.metadata = MetadataService()
        self.masters = [self._master(i + 1, master_id) for i, master_id in enumerate(master_ids)]
        # The drop-in that the beacon and `phoenix minion-config` write names the lab's ports.
        self.minion_phoenix = {
            **self.phoenix,
            "drop_in": {
                "master_port": self.ret_port,
                "publish_port": self.publish_port,
                **(self.phoenix.get("drop_in") or {}),
            },
        }
        # The minions that run beside the masters (start_own_minion).
        self.own_minions: list[SaltMinion] = []
        self.minions: list[SaltMinion] = []
        for minion_id in minion_ids:
            self.minions.append(self._minion(minion_id))

    def _minion(
        self, minion_id: str, follow: bool = True, root: Path | None = None, **opts: Any
    ) -> SaltMinion:
        """A minion of the cluster (in ``root``, else the next ``minion<n>``), listing every
        master it has. ``follow=False``: Salt's own failover alone (no Phoenix block, no
        beacon, no supervisor), with ``opts``."""
        return SaltMinion(
            minion_id,
            root or self.workdir / f"minion{len(self.minions) + 1}",
            [master.interface for master in self.masters],
            self.ret_port,
            self.env,
            {"phoenix": self.minion_phoenix, **self.minion_opts, **opts} if follow else opts,
            self.bin_dir,
            publish_port=self.publish_port,
            supervised=self.supervised_minions and follow,
            metadata=self.metadata if follow else None,
        )

    def add_minion(self, minion_id: str, follow: bool = True, **opts: Any) -> SaltMinion:
        """A new minion (not started: user data runs ``phoenix minion-config`` first);
        ``follow=False`` for one that only has Salt's own failover (a benchmark's reference)."""
        minion = self._minion(minion_id, follow, **opts)
        self.minions.append(minion)
        return minion

    def start_own_minion(self, master: SaltMaster, wait: float = 60) -> SaltMinion:
        """The salt-minion that runs beside ``master``, as the master's user data starts it:
        its id is the master's instance id, ``phoenix minion-config --starting-master``
        lists its own master first, then salt-minion starts. Managed like any minion (the
        beacon, the cluster's supervision); stopped with the cluster."""
        master_id = master.opts["phoenix"]["master_id"]
        minion = self._minion(
            master_id,
            root=self.workdir / f"{master.name}-minion",
            phoenix={**self.minion_phoenix, "master_id": master_id},
        )
        minion.first_boot("--starting-master", master.interface, wait=wait)
        self.own_minions.append(minion)
        return minion

    def _master(self, number: int, master_id: str) -> SaltMaster:
        """Master ``number`` on 127.0.0.<number>, with the cluster's ports. Off EC2, each
        master is told who it is; everything else in the block is shared."""
        interface = LOOPBACK.format(number)
        return SaltMaster(
            f"master{number}",
            self.workdir / f"master{number}",
            interface,
            self.publish_port,
            self.ret_port,
            {**self.env, **self.metadata.env(master_id), **self.master_env.get(number, {})},
            {
                "phoenix": {
                    **self.phoenix,
                    "master_id": master_id,
                    "master_address": interface,
                },
                **self.master_opts,
            },
            self.bin_dir,
            supervised=self.supervised_masters,
        )

    def start(
        self, timeout: float = 120.0, wait_for_minions: bool = True, start_minions: bool = True
    ) -> None:
        """Starts the masters (sharing one key pair: from ``phoenix master-bootstrap`` when
        the cluster bootstraps, else generated here), then (unless told not to) the minions,
        and (unless told not to) waits until every minion answers ``test.ping`` through the
        first master."""
        if self.bootstrap:
            for master in self.masters:
                self.bootstrap_master(master)
                master.start()
        else:
            pem, pub = generate_master_key_pair(self.workdir / "master-key", self.bin_dir)
            for master in self.masters:
                master.pki_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(pem, master.pki_dir / "master.pem")
                shutil.copy(pub, master.pki_dir / "master.pub")
                (master.pki_dir / "master.pem").chmod(0o400)
                master.start()
        if not start_minions:
            return
        for minion in self.minions:
            minion.start()
        if self.minions and wait_for_minions:
            wait_for(self.all_minions_answer, timeout, "every minion to answer test.ping")

    def bootstrap_master(self, master: SaltMaster) -> dict[str, Any]:
        """``phoenix master-bootstrap`` for ``master``, as its user data runs it before
        salt-master starts; returns what it printed (``--json``)."""
        master.write_config()
        result = subprocess.run(
            [
                str(master.bin_dir / "phoenix"),
                "master-bootstrap",
                "-c",
                str(master.conf_dir / "master"),
                "--json",
            ],
            env=master.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return phoenix_printed(result, f"phoenix master-bootstrap for {master.name}")

    def add_master(self, master_id: str | None = None) -> tuple[SaltMaster, dict[str, Any]]:
        """AutoScaling's replacement master: the next number, on its own loopback address
        (the cluster's ports were free there when they were chosen, as loopback addresses
        rarely differ), booted as user data boots one: ``phoenix master-bootstrap``, then
        salt-master. Returns the master and what the bootstrap did."""
        number = len(self.masters) + 1
        master = self._master(number, master_id or master_instance_id(number))
        self.masters.append(master)
        result = self.bootstrap_master(master)
        master.start()
        return master, result

    def all_minions_answer(self) -> bool:
        answers = self.masters[0].ping(timeout=5)
        return all(answers.get(minion.minion_id) for minion in self.minions)

    def stop(self) -> None:
        """Stops every daemon, minions first, each group at once: a salt-minion sometimes
        sits out the whole SIGTERM grace period before it is killed, and one after another
        that adds up."""
        for daemons in ([*self.minions, *self.own_minions], self.masters):
            if daemons:
                with ThreadPoolExecutor(len(daemons)) as pool:
                    list(pool.map(lambda daemon: daemon.stop(), daemons))
        self.metadata.stop()
