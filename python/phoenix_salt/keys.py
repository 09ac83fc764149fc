"""Carrying a key plan out on this master, through Salt's own wheel key functions.

The plan comes from the core (``_core.KeyManager.plan``): which keys to delete, pin,
accept and pre-seed so that this master agrees with the registry. This module only
does what the core cannot: call Salt's ``key.*_dict`` wheel functions (exact ids, no glob
or name matching, the same on Salt 3006, 3007 and 3008) and fire events on the master bus.

Each action checks, just before it acts, that the key still has the fingerprint the plan
saw; a key that changed meanwhile (a minion re-authenticating with another key) is left
to the next plan. A pin refused by the registry (another master pinned another key first)
cancels the accept that follows it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix_salt._core import Config, KeyManager, _BusEvent

log = logging.getLogger(__name__)

# Salt's key lists, by the key state names the plan uses.
SALT_LISTS = {
    "accepted": "minions",
    "pending": "minions_pre",
    "rejected": "minions_rejected",
    "denied": "minions_denied",
}

# Phoenix reads and pre-seeds keys in the master's pki_dir folders. That is where Salt 3006
# and 3007 keep them, and Salt 3008's default key store (localfs_key) is a shim over the
# same folders; another driver keeps keys elsewhere, where Phoenix cannot see them.
SUPPORTED_KEY_STORES = (None, "localfs_key")

CHANGED = "the key changed since it was planned"

Fire = Callable[[Mapping[str, Any], str], None]


class UnsupportedKeyStore(RuntimeError):
    """The master keeps its keys where Phoenix cannot read them."""


def pki_dir(opts: Mapping[str, Any]) -> str:
    """Where this master keeps its minion keys: the shared ``cluster_pki_dir`` when Salt's
    master cluster is on, else ``pki_dir``. Raises UnsupportedKeyStore for a key store
    other than Salt's file layout."""
    driver = opts.get("keys.cache_driver")
    if driver not in SUPPORTED_KEY_STORES:
        raise UnsupportedKeyStore(
            f"keys.cache_driver is {driver!r}: Phoenix manages keys in the pki_dir folders "
            "(Salt's default localfs_key store); unset keys.cache_driver or set it to localfs_key"
        )
    if opts.get("cluster_id") and opts.get("cluster_pki_dir"):
        return str(opts["cluster_pki_dir"])
    return str(opts["pki_dir"])


def key_file(opts: Mapping[str, Any], state: str, minion_id: str) -> Path:
    """Where this master keeps ``minion_id``'s key in ``state`` (a SALT_LISTS key:
    accepted, pending, rejected, denied). Raises UnsupportedKeyStore as pki_dir does."""
    return Path(pki_dir(opts)) / SALT_LISTS[state] / minion_id


@contextlib.contextmanager
def wheel_client(opts: Mapping[str, Any]) -> Iterator[Any]:
    """Salt's WheelClient, destroyed on exit (its event socket and loaded modules). Salt
    3008's client is a context manager that does the same; older ones only have destroy()
    or nothing, hence this wrapper rather than ``with WheelClient(...)``."""
    import salt.wheel

    client = salt.wheel.WheelClient(dict(opts))
    try:
        yield client
    finally:
        destroy = getattr(client, "destroy", None)
        if destroy is not None:
            destroy()


class Reconciler:
    """Plans and carries out this master's keys against the registry.

    ``fire(data, tag)`` puts an event on the master bus. One reconciler lives as long as its
    process: it remembers which mismatches it has reported, so a denied key is reported once,
    not every round.
    """

    def __init__(
        self,
        opts: Mapping[str, Any],
        config: Config,
        wheel: Any,
        fire: Fire,
        manager: KeyManager | None = None,
    ) -> None:
        import phoenix_salt
        from phoenix_salt import _core

        self.opts = opts
        self.wheel = wheel
        self.fire = fire
        self.manager = manager or _core.KeyManager(config, pki_dir(opts))
        # Who pins and who holds keys, in the registry's words: the master's instance id
        # (the live list's), from the config or the instance metadata.
        try:
            self.master = _core.master_instance_id(config)
        except phoenix_salt.PhoenixError as exc:
            self.master = str(opts.get("id", "?"))
            log.warning(
                "phoenix: this master's instance id is unknown (%s); keys it pins and holds "
                "are recorded under Salt's id %s, which minions do not wait for",
                exc,
                self.master,
            )
        # On whose word keys are pinned: identity_document (a claim) or first_key.
        self.trust = config.keys.trust
        self._reported: set[tuple[str, str]] = set()
        self._held: dict[str, str] = {}

    def _fire(self, event: _BusEvent) -> None:
        """Fires an event the core built (phoenix_salt._core's ``*_event``)."""
        self.fire(event["data"], event["tag"])

    def plan(self, minion_id: str | None = None) -> dict[str, Any]:
        plan: dict[str, Any] = self.manager.plan(minion_id)
        return plan

    def operator_pin(self, minion_id: str, fingerprint: str) -> dict[str, Any]:
        """Pins ``minion_id``'s pending key here, which an operator verified out of band and
        names by ``fingerprint``: the pin is recorded as the operator's (``pinned_by``:
        ``operator on <master>``) and fired as ``phoenix/key/pinned`` with ``trust:
        operator``. Returns the registry's outcome (``pinned``, ``already_pinned``,
        ``pinned_other`` with its ``fingerprint``, ``not_live``); raises ValueError when
        there is no pending key with that fingerprint here."""
        from phoenix_salt import _core

        path = key_file(self.opts, "pending", minion_id)
        try:
            public_key = path.read_text()
        except FileNotFoundError:
            raise ValueError(f"this master has no pending key for {minion_id}") from None
        found = _core.pem_fingerprint(public_key)
        if found != fingerprint:
            raise ValueError(
                f"the pending key of {minion_id} has fingerprint {found}, not {fingerprint}: "
                "nothing pinned"
            )
        pinned_by = f"operator on {self.master}"
        outcome: dict[str, Any] = {"outcome": "not_live"}
        for role in ("minion", "master"):
            outcome = self.manager.pin(minion_id, role, fingerprint, public_key, pinned_by)
            if outcome["outcome"] != "not_live":
                break
        if outcome["outcome"] == "pinned":
            log.warning(
                "phoenix: pinned key %s for %s on an operator's word (%s)",
                fingerprint,
                minion_id,
                pinned_by,
            )
            self._fire(_core.key_pinned_by_operator_event(minion_id, role, fingerprint, pinned_by))
        return outcome

    def reconcile(self, minion_id: str | None = None) -> dict[str, Any]:
        """Plans (every key, or ``minion_id``'s), carries the plan out, and returns
        ``{"actions": [...], "counts": {...}, "held": [...]}``, each action with its
        ``result``: ``done``, ``skipped`` (and why) or ``failed`` (and why)."""
        plan = self.plan(minion_id)
        results = self.carry_out(plan["actions"])
        # Salt 3008's key store holds one key per id across accepted/pending/rejected:
        # deleting one of an id's keys there removes its others too (a pending key the plan
        # would accept next, say). Planning those ids again restores what must stay (the
        # pinned key is pre-seeded).
        touched = sorted(
            {r["id"] for r in results if r["result"] == "done" and r.get("reason") == "mismatch"}
        )
        for again in touched:
            if minion_id is None or again == minion_id:
                follow_up = self.plan(again)["actions"]
                if follow_up:
                    results.extend(self.carry_out(follow_up))
        self._report_mismatches(plan["mismatches"])
        self._report_held(plan["held"])
        counts = Counter(f"{r['action']}_{r['result']}" for r in results)
        summary = {"actions": results, "counts": dict(counts), "held": plan["held"]}
        done = [r for r in results if r["result"] == "done"]
        if done:
            from phoenix_salt import _core

            # The event lists the first RECONCILED_ACTIONS_MAX; the counts cover them all.
            self._fire(_core.key_reconciled_event(self.master, done, dict(counts)))
        return summary

    def carry_out(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        cancelled: set[str] = set()
        for action in actions:
            minion = action["id"]
            kind = action["action"]
            if kind == "accept" and minion in cancelled:
                results.append(_result(action, "skipped", "the registry refused the pin"))
                continue
            try:
                outcome, detail = self._do(action)
            except Exception as exc:  # one bad key must not stop the others
                log.warning("phoenix: key %s of %s failed: %s", kind, minion, exc)
                outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
            if kind == "pin" and outcome != "done":
                cancelled.add(minion)
            results.append(_result(action, outcome, detail))
        return results

    def _still(self, action: dict[str, Any], state: str) -> bool:
        current = self.manager.fingerprint(action["id"], state)
        return bool(current == action["fingerprint"])

    def _do(self, action: dict[str, Any]) -> tuple[str, str | None]:
        handler = {
            "delete": self._delete,
            "pin": self._pin,
            "accept": self._accept,
            "pre_seed": self._pre_seed,
        }.get(action["action"])
        if handler is None:
            return "skipped", f"unknown action {action['action']!r}"
        return handler(action)

    def _delete(self, action: dict[str, Any]) -> tuple[str, str | None]:
        minion, state = action["id"], action["state"]
        if not self._still(action, state):
            return "skipped", CHANGED
        self._wheel("key.delete_dict", {SALT_LISTS[state]: [minion]})
        if action["reason"] == "terminated":
            log.info("phoenix: deleted the %s key of %s (instance terminated)", state, minion)
            return "done", None
        log.warning(
            "phoenix: deleted the %s key of %s: fingerprint %s is not the pinned %s",
            state,
            minion,
            action["fingerprint"],
            action["pinned"],
        )
        self._mismatch(minion, state, action["fingerprint"], action["pinned"], "deleted")
        return "done", None

    def _pin(self, action: dict[str, Any]) -> tuple[str, str | None]:
        minion = action["id"]
        if action.get("public_key") is None or action.get("role") is None:
            return "skipped", CHANGED
        outcome = self.manager.pin(
            minion, action["role"], action["fingerprint"], action["public_key"], self.master
        )
        if outcome["outcome"] == "pinned":
            log.info("phoenix: pinned key %s for %s", action["fingerprint"], minion)
            return "done", None
        if outcome["outcome"] == "already_pinned":
            return "done", "already pinned"
        if outcome["outcome"] == "pinned_other":
            return "skipped", f"the registry pins another key ({outcome['fingerprint']})"
        return "skipped", "the registry no longer holds the instance as live"

    def _accept(self, action: dict[str, Any]) -> tuple[str, str | None]:
        minion = action["id"]
        if not self._still(action, "pending"):
            return "skipped", CHANGED
        if self.manager.fingerprint(minion, "rejected") is not None:
            # Salt 3008's key store reads an id's rejected key before its pending one, so
            # accepting "the pending key" would accept the rejected key.
            return "skipped", "a rejected key of the id appeared meanwhile"
        self._wheel("key.accept_dict", {"minions_pre": [minion]})
        log.info("phoenix: accepted the key of %s (%s)", minion, action["fingerprint"])
        self._seeded(action)
        return "done", None

    def _pre_seed(self, action: dict[str, Any]) -> tuple[str, str | None]:
        minion = action["id"]
        if self.manager.pre_seed(minion, action["public_key"]):
            log.info("phoenix: pre-seeded the pinned key of %s", minion)
            self._seeded(action)
            return "done", None
        return "skipped", "an accepted key appeared meanwhile"

    def _seeded(self, action: dict[str, Any]) -> None:
        """Records in the registry that this master holds the pinned key, for the minion's
        first boot to see (``seeded_on``). Only a wait depends on it, so a failure is logged
        and nothing more: the minion is then accepted when it authenticates."""
        import phoenix_salt

        if action.get("role") is None:
            return
        try:
            self.manager.record_seeded(
                action["id"], action["role"], action["fingerprint"], self.master
            )
        except phoenix_salt.PhoenixError as exc:
            log.debug(
                "phoenix: could not record that %s holds the key of %s: %s",
                self.master,
                action["id"],
                exc,
            )

    def _wheel(self, function: str, match: dict[str, list[str]]) -> Any:
        return self.wheel.cmd(function, kwarg={"match": match}, print_event=False)

    def _mismatch(self, minion: str, state: str, fingerprint: str, pinned: str, done: str) -> None:
        self._reported.add((minion, fingerprint))
        from phoenix_salt import _core

        self._fire(_core.key_mismatch_event(minion, state, fingerprint, pinned, done, self.master))

    def _report_mismatches(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if (row["id"], row["fingerprint"]) in self._reported:
                continue
            log.warning(
                "phoenix: %s claimed a key with fingerprint %s, but the registry pins %s; "
                "Salt denied it",
                row["id"],
                row["fingerprint"],
                row["pinned"],
            )
            self._mismatch(row["id"], "denied", row["fingerprint"], row["pinned"], "denied")

    def _report_held(self, held: list[dict[str, str]]) -> None:
        for entry in held:
            if self._held.get(entry["id"]) != entry["reason"]:
                log.warning(
                    "phoenix: not accepting the key of %s: %s", entry["id"], entry["reason"]
                )
                self._held[entry["id"]] = entry["reason"]


def _result(action: dict[str, Any], outcome: str, detail: str | None) -> dict[str, Any]:
    shown = {k: v for k, v in action.items() if k != "public_key"}
    shown["result"] = outcome
    if detail:
        shown["detail"] = detail
    return shown
