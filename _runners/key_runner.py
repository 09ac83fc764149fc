"""Phoenix's minion key runner: keys accepted only for instances the registry knows.

.. code-block:: bash

    salt-run key_runner.accept i-0123456789abcdef0   # accept, if the registry holds it live
    salt-run key_runner.reject i-0123456789abcdef0   # reject its pending key
    salt-run key_runner.delete i-0123456789abcdef0   # delete its keys on this master
    salt-run key_runner.reconcile                    # bring every key in line with the registry
    salt-run key_runner.list                         # every key, its registry state and fingerprint

The policy: a key is accepted only for an exact minion id that the registry holds as a live
instance (launching or running), and only while its fingerprint matches the key pinned in
the registry at its first acceptance. Keys of terminated instances are deleted, in every
state. Ids listed in ``phoenix.keys.unmanaged``, and ids the registry does not hold, are
never touched (a pending key of an id the registry does not know yet stays pending until it
does). Every function acts on this master only; the instance_manager engine runs the same
reconcile on every master. See docs/keys.md.

Every failure makes ``salt-run`` exit non-zero with one line saying why.
"""

import contextlib
import logging

from phoenix_salt.loader import core_unavailable
from phoenix_salt.runner_result import ArgumentError, failed, reports_failures

log = logging.getLogger(__name__)

__virtualname__ = "key_runner"
__func_alias__ = {"list_": "list"}

GLOB_CHARACTERS = frozenset("*?[]")


def __virtual__():
    reason = core_unavailable()
    if reason:
        return False, reason
    return __virtualname__


def _exact_id(minion_id):
    if not isinstance(minion_id, str) or not minion_id.strip():
        raise ArgumentError(
            f"minion_id must be one exact minion id (an EC2 instance id), got {minion_id!r}"
        )
    if GLOB_CHARACTERS & set(minion_id):
        raise ArgumentError(
            f"{minion_id!r} is a pattern: key_runner matches one exact minion id, never globs"
        )
    return minion_id


@contextlib.contextmanager
def _reconciler():
    """This master's key reconciler, with Salt's wheel client and the master's event bus,
    both closed on exit."""
    import salt.utils.event

    from phoenix_salt import config as phoenix_config
    from phoenix_salt import keys

    opts = dict(__opts__)
    with keys.wheel_client(opts) as wheel:
        bus = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False)
        try:
            try:
                reconciler = keys.Reconciler(opts, phoenix_config.load(opts), wheel, bus.fire_event)
            except keys.UnsupportedKeyStore as exc:
                raise ArgumentError(str(exc)) from None
            yield reconciler
        finally:
            bus.destroy()


def _keys_of(plan, minion_id):
    return {row["key_state"]: row for row in plan["keys"] if row["id"] == minion_id}


@reports_failures
def accept(minion_id, fingerprint=None):
    """Accept the pending key of ``minion_id`` if the registry holds that exact id as a live
    instance and the key is the pinned one: pinned by the instance's identity claim (with
    ``phoenix.keys.trust: identity_document``), or at this first acceptance (``first_key``).
    A key that differs from the pinned one is deleted (the pinned key is pre-seeded in its
    place), ``phoenix/key/mismatch`` is fired, and the runner reports the failure.

    ``fingerprint``: an operator who verified the pending key out of band (``salt-call
    key.finger`` on the instance) pins it by naming its fingerprint; recorded and fired
    (``phoenix/key/pinned``, ``trust: operator``) as the operator's pin, never implied.

    CLI Example: ``salt-run key_runner.accept i-0123456789abcdef0``
    ``salt-run key_runner.accept i-0123456789abcdef0 fingerprint=66:c1:04:...``
    """
    minion_id = _exact_id(minion_id)
    with _reconciler() as reconciler:
        if fingerprint is not None:
            try:
                pinned = reconciler.operator_pin(minion_id, str(fingerprint))
            except ValueError as exc:
                return failed(str(exc), minion_id=minion_id)
            if pinned["outcome"] == "pinned_other":
                return failed(
                    f"{minion_id} not pinned: the registry already pins another key "
                    f"({pinned['fingerprint']}); the pin is made once",
                    minion_id=minion_id,
                )
            if pinned["outcome"] == "not_live":
                return failed(
                    f"{minion_id} not pinned: the registry does not hold it as a live instance",
                    minion_id=minion_id,
                )
        outcome = reconciler.reconcile(minion_id)
        plan = reconciler.plan(minion_id)
        trust = reconciler.trust
    keys = _keys_of(plan, minion_id)
    accepted = keys.get("accepted")
    if accepted and accepted["standing"] == "pinned" and not _mismatches(outcome):
        return {
            "minion_id": minion_id,
            "accepted": True,
            "fingerprint": accepted["fingerprint"],
            "registry_state": accepted["registry_state"],
        }
    return failed(_why_not_accepted(minion_id, keys, outcome, trust), minion_id=minion_id)


def _mismatches(outcome):
    """The keys the reconcile deleted because they were not the pinned key."""
    return [
        action
        for action in outcome["actions"]
        if action["action"] == "delete" and action["result"] == "done" and action.get("pinned")
    ]


def _why_not_accepted(minion_id, keys, outcome, trust):  # noqa: PLR0911 (one reason per case)
    """One line saying why ``minion_id`` has no accepted, pinned key after a reconcile."""
    if any(row["standing"] == "unmanaged" for row in keys.values()):
        return (
            f"{minion_id} is in phoenix.keys.unmanaged: Phoenix leaves its key alone (use salt-key)"
        )
    for held in outcome["held"]:
        if held["id"] == minion_id:
            return f"{minion_id} not accepted: {held['reason']}; the key stays pending"
    for action in _mismatches(outcome):
        accepted = keys.get("accepted")
        instead = (
            "; the pinned key is accepted here instead"
            if accepted and accepted["standing"] == "pinned"
            else ""
        )
        return (
            f"{minion_id} not accepted: its {action['state']} key {action['fingerprint']} is "
            f"not the pinned key ({action['pinned']}); it was deleted and phoenix/key/mismatch "
            f"was fired{instead}"
        )
    if not keys:
        return f"this master has no key for {minion_id}"
    registry_state = next(iter(keys.values()))["registry_state"]
    if registry_state is None:
        return (
            f"{minion_id} not accepted: the registry does not hold it (yet); the key stays "
            "pending and is accepted as soon as the registry records the instance"
        )
    if registry_state not in ("launching", "running"):
        return f"{minion_id} not accepted: the registry holds it as {registry_state}"
    if trust == "identity_document" and all(row["standing"] == "unpinned" for row in keys.values()):
        return (
            f"{minion_id} not accepted: no identity claim pinned a key for it "
            "(phoenix.keys.trust: identity_document); the instance claims its key at first "
            "boot (phoenix minion-config, or phoenix claim on the instance), and the key stays "
            "pending until a valid claim pins it; an operator who verified the key out of band "
            f"pins it with: salt-run key_runner.accept {minion_id} fingerprint=<its fingerprint>"
        )
    for action in outcome["actions"]:
        if action["result"] != "done":
            return f"{minion_id} not accepted: {action.get('detail', action['result'])}"
    states = ", ".join(f"{state} ({row['standing']})" for state, row in sorted(keys.items()))
    return f"{minion_id} not accepted: its keys here are {states}"


@reports_failures
def reject(minion_id):
    """Reject the pending key of ``minion_id`` on this master. Phoenix never accepts a
    rejected key by itself; delete it to let the minion try again. Salt then refuses every
    key of the id here, so when the registry pins another key for a live instance, the next
    reconcile deletes the rejected one and pre-seeds the pin: rejecting the pinned key itself
    is what keeps an instance out of this master.

    CLI Example: ``salt-run key_runner.reject i-0123456789abcdef0``
    """
    minion_id = _exact_id(minion_id)
    with _reconciler() as reconciler:
        if reconciler.manager.fingerprint(minion_id, "pending") is None:
            return failed(f"this master has no pending key for {minion_id}", minion_id=minion_id)
        reconciler.wheel.cmd(
            "key.reject_dict", kwarg={"match": {"minions_pre": [minion_id]}}, print_event=False
        )
        fingerprint = reconciler.manager.fingerprint(minion_id, "rejected")
    if fingerprint is None:
        return failed(f"Salt did not reject the key of {minion_id}", minion_id=minion_id)
    log.info("phoenix: rejected the key of %s by hand (%s)", minion_id, fingerprint)
    return {"minion_id": minion_id, "rejected": True, "fingerprint": fingerprint}


@reports_failures
def delete(minion_id):
    """Delete every key of ``minion_id`` on this master (accepted, pending, rejected,
    denied). When the registry still pins a key for a live instance, the next reconcile
    pre-seeds that key again: the registry is the truth, and terminating the instance is
    what removes its key everywhere.

    CLI Example: ``salt-run key_runner.delete i-0123456789abcdef0``
    """
    minion_id = _exact_id(minion_id)
    from phoenix_salt.keys import SALT_LISTS

    with _reconciler() as reconciler:
        present = {
            state: lst
            for state, lst in SALT_LISTS.items()
            if reconciler.manager.fingerprint(minion_id, state) is not None
        }
        if not present:
            return failed(f"this master has no key for {minion_id}", minion_id=minion_id)
        reconciler.wheel.cmd(
            "key.delete_dict",
            kwarg={"match": {lst: [minion_id] for lst in present.values()}},
            print_event=False,
        )
        left = [s for s in SALT_LISTS if reconciler.manager.fingerprint(minion_id, s)]
        plan = reconciler.plan(minion_id)
    if left:
        return failed(f"Salt kept the {', '.join(left)} key of {minion_id}", minion_id=minion_id)
    result = {"minion_id": minion_id, "deleted": sorted(present)}
    if any(a["action"] == "pre_seed" for a in plan["actions"]):
        result["note"] = (
            "the registry pins a key for this live instance: the next reconcile pre-seeds it again"
        )
    log.info("phoenix: deleted the keys of %s by hand (%s)", minion_id, ", ".join(sorted(present)))
    return result


@reports_failures
def reconcile(minion_id=None):
    """Bring this master's keys in line with the registry now: accept pending keys of live
    instances, delete keys of terminated ones and keys that are not the pin, pre-seed pinned
    keys. With ``minion_id``, only that id's keys. Exits non-zero when an action failed.

    CLI Example: ``salt-run key_runner.reconcile`` or ``salt-run key_runner.reconcile i-0123...``
    """
    if minion_id is not None:
        minion_id = _exact_id(minion_id)
    with _reconciler() as reconciler:
        summary = reconciler.reconcile(minion_id)
    failures = [r for r in summary["actions"] if r["result"] == "failed"]
    if failures:
        summary["error"] = f"{len(failures)} key action(s) failed"
        summary["retcode"] = 1
    return summary


@reports_failures
def list_():
    """Every key on this master with its state, fingerprint, the registry's state of its
    instance and how it stands against the pinned key (``pinned``, ``mismatch``,
    ``unpinned``, ``unregistered``, ``unmanaged``).

    CLI Example: ``salt-run key_runner.list`` (``--out=json`` for machines)
    """
    with _reconciler() as reconciler:
        plan = reconciler.plan()
    listing = {}
    for row in plan["keys"]:
        entry = listing.setdefault(
            row["id"],
            {"registry_state": row["registry_state"] or "unregistered", "keys": {}},
        )
        if row["pinned"]:
            entry["pinned"] = row["pinned"]
        entry["keys"][row["key_state"]] = {
            "fingerprint": row["fingerprint"],
            "standing": row["standing"],
        }
    return listing
