"""Phoenix's first-highstate runner: every new minion's first highstate, run once across
all masters, retried, recorded in the registry.

.. code-block:: bash

    salt-run highstate_runner.run i-0123456789abcdef0     # start it, unless it ran already
    salt-run highstate_runner.status i-0123456789abcdef0  # its record: attempts, job, failed states
    salt-run highstate_runner.pending                     # live instances without a successful one
    salt-run highstate_runner.rerun i-0123456789abcdef0   # run it again, whatever happened before

``run`` is what the reactor calls on ``salt/minion/<id>/start`` (reactor/minion_start.sls):
it starts an attempt only for a minion whose first highstate never ran (or whose retry is
due), and only on one master even when several see the start; a minion restarted by the
master_list beacon or by Salt's failover does not run it again. It publishes
``phoenix_highstate.apply`` (``state.apply``, its result signed with the minion's key) and
returns at once: the instance_manager engine records the job's return, if the minion signed it,
retries failed attempts (``phoenix.highstate.attempts``, ``retry_delay``) and, with
``phoenix.highstate_gating``, completes the minion's launch lifecycle action (CONTINUE on
success, ABANDON after the last failed attempt). See docs/highstate.md.

Every failure makes ``salt-run`` exit non-zero with one line saying why.
"""

import contextlib
import logging

from phoenix_salt.loader import core_unavailable
from phoenix_salt.runner_result import ArgumentError, failed, reports_failures

log = logging.getLogger(__name__)

__virtualname__ = "highstate_runner"

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
        raise ArgumentError(f"{minion_id!r} is a pattern: name one exact minion id")
    return minion_id


@contextlib.contextmanager
def _first_highstates():
    import salt.utils.event

    from phoenix_salt import config as phoenix_config
    from phoenix_salt.highstate import FirstHighstates

    opts = dict(__opts__)
    bus = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False)

    def fire(events):
        for event in events:
            bus.fire_event(event["data"], event["tag"])

    highstates = FirstHighstates(opts, phoenix_config.load(opts), fire)
    try:
        yield highstates
    finally:
        highstates.close()
        bus.destroy()


def _started(report):
    result = {
        "minion_id": report["minion_id"],
        "started": report["claimed"] and report["published"],
        "attempt": report["attempt"],
        "jid": report["jid"] if report["claimed"] else None,
    }
    if report["claimed"] and not report["published"]:
        return failed(
            f"{report['minion_id']}: attempt {report['attempt']} could not start: "
            f"{report['error']}",
            **result,
        )
    if report["skip"] == "not_live":
        return failed(f"{report['minion_id']}: {report['reason']}", **result)
    if not report["claimed"]:
        result["reason"] = report["reason"]
    return result


@reports_failures
def run(minion_id):
    """Start ``minion_id``'s first highstate unless it succeeded, failed for good, runs,
    or waits for a retry. Returns at once with the job id; the engine records the outcome.

    CLI Example: ``salt-run highstate_runner.run i-0123456789abcdef0``
    """
    minion_id = _exact_id(minion_id)
    with _first_highstates() as highstates:
        return _started(highstates.start(minion_id, "first"))


@reports_failures
def rerun(minion_id):
    """Run ``minion_id``'s first highstate again, with a fresh count of attempts, whatever
    its record says (unless an attempt runs now).

    CLI Example: ``salt-run highstate_runner.rerun i-0123456789abcdef0``
    """
    minion_id = _exact_id(minion_id)
    with _first_highstates() as highstates:
        return _started(highstates.start(minion_id, "rerun"))


@reports_failures
def status(minion_id):
    """``minion_id``'s first-highstate record: status, attempt, job, master, times, and
    the failed states of the last attempt (``salt-run jobs.lookup_jid <jid>`` shows the
    whole return).

    CLI Example: ``salt-run highstate_runner.status i-0123456789abcdef0``
    """
    from phoenix_salt import _core
    from phoenix_salt import config as phoenix_config

    minion_id = _exact_id(minion_id)
    row = _core.FirstHighstate(phoenix_config.load(dict(__opts__))).status(minion_id)
    if row is None:
        return failed(f"{minion_id}: the registry holds no instance with this id")
    return {
        "minion_id": minion_id,
        "role": row["role"],
        "state": row["state"],
        "launch_waiting": row["launch_hook"] is not None,
        "first_highstate": row["first_highstate"],
    }


@reports_failures
def pending():
    """Live instances whose first highstate has not succeeded: never started, running,
    waiting for a retry, or failed for good.

    CLI Example: ``salt-run highstate_runner.pending``
    """
    from phoenix_salt import _core
    from phoenix_salt import config as phoenix_config

    rows = _core.FirstHighstate(phoenix_config.load(dict(__opts__))).pending()
    return {
        row["instance_id"]: {
            "role": row["role"],
            "state": row["state"],
            "status": (row["first_highstate"] or {}).get("status", "not_started"),
            "attempt": (row["first_highstate"] or {}).get("attempt", 0),
            "error": (row["first_highstate"] or {}).get("error"),
            "failed_states": [
                state["id"] for state in (row["first_highstate"] or {}).get("failed_states", [])
            ],
        }
        for row in rows
    }
