"""What must hold at every moment of a lab fleet's life, watched while the demo, the e2e test
or the soak plays with it.

Five times a second the watcher looks at every master's accepted keys and every minion's
drop-in; every few seconds at the dead-letter queue. It records each breach:

- a key accepted on a master for an id the registry does not hold, or whose fingerprint is
  not the one the registry pinned for that id (Phoenix accepts only pinned keys);
- a minion's drop-in written empty (no master) or unreadable;
- a message in the dead-letter queue (an event that was never applied).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from phoenix_salt import _core

if TYPE_CHECKING:
    from phoenix_lab.demo import Demo

# Seconds between two looks at the dead-letter queue (each is one SQS call).
DEAD_LETTERS_EVERY = 5.0


class InvariantWatcher:
    """Watches ``demo``'s fleet in a thread of its own from ``start()`` to ``stop()``;
    ``breaches`` lists what it found, ``keys_seen`` every id it judged, ``drop_ins_read``
    how many drop-ins it read."""

    def __init__(self, demo: Demo, dead_letters: bool = False) -> None:
        self.demo = demo
        self.dead_letters = dead_letters
        self.breaches: list[str] = []
        self.keys_seen: set[str] = set()
        self.drop_ins_read = 0
        self.dead_letter_checks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="invariants", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        looked_at_dead_letters = 0.0
        while not self._stop.wait(0.2):
            if self.demo.cluster is None or not self.demo.phoenix:
                continue
            self._check_keys()
            self._check_drop_ins()
            now = time.monotonic()
            if self.dead_letters and now - looked_at_dead_letters >= DEAD_LETTERS_EVERY:
                looked_at_dead_letters = now
                self._check_dead_letters()

    def _check_keys(self) -> None:
        """A key that appears accepted on any master must be the key the registry pinned for
        its id at that moment (ids never leave the registry during a run). A file Salt is
        still writing (``_core.salt_write_in_flight``) is no key yet; one that stays under
        such a name is judged like any other."""
        cluster = self.demo.cluster
        assert cluster is not None
        session: _core.Session | None = None
        for master in list(cluster.masters):
            accepted_dir = master.pki_dir / "minions"
            try:
                ids = {p.name for p in accepted_dir.iterdir() if not p.name.startswith(".")}
            except FileNotFoundError:
                continue
            for minion_id in ids - self.keys_seen:
                path = accepted_dir / minion_id
                if _core.salt_write_in_flight(path):
                    # Salt 3008 writes a key to a temporary file beside the keys, then
                    # renames it: judged only if it is still there once no longer fresh.
                    continue
                if session is None:
                    session = self.demo.session()
                if self._judge_key(session, master.name, minion_id, path):
                    self.keys_seen.add(minion_id)

    def _judge_key(self, session: _core.Session, master: str, minion_id: str, path: Path) -> bool:
        """Records a breach if the key at ``path`` is not the one pinned for ``minion_id``;
        False if there is no key to judge (the file went away: deleted at a termination)."""
        row = session.get_instance("minion", minion_id) or session.get_instance("master", minion_id)
        if row is None:
            self.breaches.append(f"{master} accepted unregistered {minion_id}")
            return True
        try:
            held = _core.pem_fingerprint(path.read_text())
        except FileNotFoundError:
            return False
        except ValueError as error:
            self.breaches.append(f"{master} holds an unreadable accepted key {minion_id}: {error}")
            return True
        pinned = (row.get("key") or {}).get("fingerprint")
        if pinned != held:
            self.breaches.append(
                f"{master} accepted {minion_id} with key {held}, the registry pinned {pinned}"
            )
        return True

    def _check_drop_ins(self) -> None:
        for minion in list(self.demo.minions.values()):
            try:
                text = minion.drop_in_path.read_text()
            except FileNotFoundError:
                continue  # before its first `phoenix minion-config`
            self.drop_ins_read += 1
            try:
                masters = yaml.safe_load(text)["master"]
            except (yaml.YAMLError, TypeError, KeyError) as exc:
                self.breaches.append(f"{minion.minion_id}: unreadable drop-in ({exc}): {text!r}")
                continue
            if not masters:
                self.breaches.append(f"{minion.minion_id}: drop-in with no master: {text!r}")

    def _check_dead_letters(self) -> None:
        stack = self.demo.stack
        if stack is None:
            return
        self.dead_letter_checks += 1
        depth = stack.queue_depth(self.demo.emulator, dead_letters=True)
        if depth:
            breach = f"the dead-letter queue holds {depth} message(s)"
            if breach not in self.breaches:
                self.breaches.append(breach)
