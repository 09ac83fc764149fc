"""How long a new minion takes from its first boot to its first answered ``test.ping``.

The demo's joins measure it per minion: the clock starts when its user data starts
(``phoenix minion-config``, which makes the key pair and claims it, then salt-minion) and
stops when a master receives the minion's answer to a ping. With attested enrolment there is
no pending time in between: the key is accepted on every master before salt-minion starts.

A watcher thread per master publishes ``salt --async -L <not yet answered> test.ping``
through it about once a second and reads the answers off its event bus (one per master: a
failover minion answers only the master it is on); each answer's time is the master's own
stamp on its return event (same machine, same clock), so the figure is exact to within one
publish round.
"""

from __future__ import annotations

import datetime
import statistics
import threading
import time
from collections.abc import Sequence

from phoenix_lab.salt import BusListener, SaltMaster

# Between two publishes; a round also takes the salt CLI's own start (about a second).
ROUND = 0.5


class FirstPings:
    """Boot-to-first-ping times of the minions that ``booting`` announced, through any of
    ``masters``."""

    def __init__(self, masters: Sequence[SaltMaster]) -> None:
        self._booted: dict[str, float] = {}  # wall-clock seconds, by minion id
        self.answered: dict[str, float] = {}  # seconds from first boot, by minion id
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(master,), name="first-ping", daemon=True)
            for master in masters
        ]
        self.error: BaseException | None = None

    def booting(self, minion_id: str) -> None:
        """``minion_id``'s user data starts now."""
        with self._lock:
            self._booted[minion_id] = time.time()

    def __enter__(self) -> FirstPings:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait(self, timeout: float) -> bool:
        """Until every announced minion answered (True), or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.error is None:
            if not self._pending():
                return True
            time.sleep(0.2)
        return not self._pending()

    def summary(self) -> str:
        """'boot to first ping 9.8-14.2 s (median 11.0)', or what is missing."""
        times = sorted(self.answered.values())
        missing = self._pending()
        if not times:
            return "no minion answered a ping"
        said = f"boot to first ping {times[0]:.1f}-{times[-1]:.1f} s"
        said += f" (median {statistics.median(times):.1f})"
        return said + (f"; never answered: {', '.join(missing)}" if missing else "")

    def slowest(self) -> float | None:
        """The longest boot-to-first-ping of the minions that answered, or None when one
        never did."""
        if self._pending() or not self.answered:
            return None
        return max(self.answered.values())

    def _pending(self) -> list[str]:
        with self._lock:
            return sorted(set(self._booted) - set(self.answered))

    def _watch(self, master: SaltMaster) -> None:
        try:
            with BusListener(master) as bus:
                while not self._stopping.is_set():
                    pending = self._pending()
                    if pending:
                        master.cli(
                            "salt", ["--async", "-L", ",".join(pending), "test.ping"], timeout=30
                        )
                    for tag, data in bus.take(ROUND):
                        self._answer(tag, data)
        except BaseException as exc:  # reported by the step, never lost in a thread
            self.error = exc

    def _answer(self, tag: str, data: dict[str, object]) -> None:
        if not tag.startswith("salt/job/") or data.get("fun") != "test.ping":
            return
        if data.get("return") is not True:
            return
        minion_id, stamp = data.get("id"), data.get("_stamp")
        if not isinstance(minion_id, str) or not isinstance(stamp, str):
            return
        with self._lock:
            booted = self._booted.get(minion_id)
            if booted is None or minion_id in self.answered:
                return
            self.answered[minion_id] = _wall_clock(stamp) - booted


def _wall_clock(stamp: str) -> float:
    """An event's ``_stamp`` (ISO 8601; UTC, with or without its offset) in epoch seconds."""
    moment = datetime.datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()
