"""Which live master reaches which minion, probe after probe.

A wait for "every live master reaches every minion" used to ask every pair again in each
probe and pass only when one probe had every answer. On two cores running fourteen minions
and three masters that is a loop that feeds itself: each probe forks a job process in every
minion for every master (and, for a late answer, a ``saltutil.find_job`` more), a forked job
on a machine at load 30 starts 2 s after its publication, its answer misses ``salt -t 3``,
and the probe is asked again at once. Seen once: a scale-out's wait for every minion to
answer failed after 180 s, each minion's log showing every ping answered, 3 to 5 s late.

``Reach`` keeps what each probe established instead: a pair that answered stays reached, as
long as neither its minion nor its master has started again since the probe that reached it
was asked, and later probes ask (``salt -L``) only the pairs still missing. What it reports
is as strict as before (each pair answered, after the last start of both ends) and is
measured at the same moment (the probe that completes the set), without the load of asking
again what is already known.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from phoenix_lab.salt import SaltMaster, SaltMinion

# Seconds ``salt -t`` waits for answers in each probe. Short, since a wait probes again;
# Salt's CLI then asks the silent minions whether the job still runs (find_job).
PROBE_TIMEOUT = 3


class Reach:
    """``complete()`` probes the pairs still missing and says whether none is left.

    ``masters``: the live masters now; ``everyone``: every minion that should answer now;
    ``daemon``: the minion daemon of an id (None when the lab has none); ``hot``: each
    minion should answer through every live master (else through one).
    """

    def __init__(
        self,
        masters: Callable[[], list[SaltMaster]],
        everyone: Callable[[], set[str]],
        daemon: Callable[[str], SaltMinion | None],
        hot: bool,
        timeout: int = PROBE_TIMEOUT,
    ) -> None:
        self._masters = masters
        self._everyone = everyone
        self._daemon = daemon
        self.hot = hot
        self.timeout = timeout
        # (master name, minion id) -> when the probe that reached the pair was asked.
        self.answered: dict[tuple[str, str], float] = {}
        self.probes = 0

    def complete(self) -> bool:
        masters, everyone = self._masters(), self._everyone()
        if not masters:
            return False
        ask = {m: ids for m, ids in self._missing(masters, everyone).items() if ids}
        if ask:
            self._probe(ask)
        # Read again: a daemon that started during the probe voids what it answered before.
        return not any(self._missing(masters, everyone).values())

    def missing(self) -> dict[str, list[str]]:
        """The pairs not reached yet, by master name (for a failure's message)."""
        missing = self._missing(self._masters(), self._everyone())
        return {m.name: sorted(ids) for m, ids in missing.items() if ids}

    def _missing(self, masters: list[SaltMaster], everyone: set[str]) -> dict[SaltMaster, set[str]]:
        """For each master, the minions it has not reached since both last started (each
        daemon's last start read once: it is a file read for a supervised one)."""
        master_started = {m.name: m.last_started() for m in masters}
        minion_started = {}
        for minion_id in everyone:
            daemon = self._daemon(minion_id)
            minion_started[minion_id] = daemon.last_started() if daemon else 0.0

        def holds(master: SaltMaster, minion_id: str) -> bool:
            asked = self.answered.get((master.name, minion_id))
            since = max(master_started[master.name], minion_started[minion_id])
            return asked is not None and asked >= since

        if self.hot:
            return {m: {i for i in everyone if not holds(m, i)} for m in masters}
        # Failover: a minion answers through the one master it is connected to, any of them.
        unreached = {i for i in everyone if not any(holds(m, i) for m in masters)}
        return {m: unreached for m in masters}

    def _probe(self, ask: dict[SaltMaster, set[str]]) -> None:
        self.probes += 1
        asked = time.time()

        def ping(master: SaltMaster, ids: Iterable[str]) -> tuple[SaltMaster, dict[str, bool]]:
            return master, master.ping(sorted(ids), timeout=self.timeout)

        with ThreadPoolExecutor(len(ask)) as pool:
            answers = list(pool.map(lambda item: ping(*item), ask.items()))
        for master, answered in answers:
            for minion_id, ok in answered.items():
                if ok:
                    self.answered[(master.name, minion_id)] = asked

    def explain(self, state: Callable[[str], str]) -> str:
        """The pairs still missing, what the last ``salt`` on each of those masters printed,
        and (``state``) what each missing minion was doing."""
        by_master = {m.name: m for m in self._masters()}
        lines = []
        for name, ids in self.missing().items():
            ping = by_master[name].last_ping
            said = (
                f"salt exited {ping.returncode}; stdout {_answers(ping.stdout)}; stderr "
                f"{ping.stderr[-600:]!r}"
                if ping is not None
                else "never probed"
            )
            lines.append(f"{name} did not reach {', '.join(ids)} ({said})")
            lines.extend(state(i) for i in ids)
        if not lines:
            return "every minion reached"
        return f"after {self.probes} probe(s): " + "; ".join(lines)


def _answers(stdout: str) -> str:
    """``salt --out=json`` compacted for a message: which ids answered what."""
    try:
        return json.dumps(json.loads(stdout), sort_keys=True) if stdout.strip() else "empty"
    except json.JSONDecodeError:
        return repr(stdout[-600:])
