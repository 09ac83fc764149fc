"""Phoenix's first highstate on the minion: ``state.apply``, reported under the minion's
own signature.

The instance_manager engine publishes ``phoenix_highstate.apply`` for a new minion's first
highstate (and ``highstate_runner.rerun``); the master takes its return only when the
minion's key signed it, since any accepted minion can send a master a return with another
minion's id (phoenix_salt/highstate_report.py, docs/highstate.md). Run by hand, it is a
``state.apply`` whose output is wrapped in the signed report.
"""

import os

from phoenix_salt.loader import core_unavailable

__virtualname__ = "phoenix_highstate"


def __virtual__():
    reason = core_unavailable()
    if reason:
        return False, reason
    return __virtualname__


def apply(**kwargs):
    """Runs ``state.apply`` (waiting behind a state run already going) and returns
    ``{"format", "retcode", "states", "signature"}``; the job's retcode is the state run's.

    CLI Example:

    .. code-block:: bash

        salt i-0123456789abcdef0 phoenix_highstate.apply
    """
    from phoenix_salt import highstate_report

    jid = str(kwargs.get("__pub_jid") or "")
    # The job's own context (__pub_jid...), as Salt gives it to a state.apply it runs itself:
    # the queue waits for the state runs published before this job.
    job = {key: value for key, value in kwargs.items() if key.startswith("__pub_")}
    states = __salt__["state.apply"](queue=True, **job)
    # state.apply sets the job's retcode here when a state fails or nothing compiles.
    retcode = int(__context__.get("retcode", 0) or 0)
    private_key = os.path.join(__opts__["pki_dir"], "minion.pem")
    return highstate_report.sign(private_key, __opts__["id"], jid, retcode, states)
