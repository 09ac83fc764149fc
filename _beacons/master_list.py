"""Phoenix's master_list beacon: minions follow the live masters.

Enable it in the minion config (or pillar):

.. code-block:: yaml

    beacons:
      master_list:
        - interval: 1

    phoenix:
      cluster: prod

Every second it compares the live masters, read from the registry in the background and
ordered for this minion, with the list in the Phoenix drop-in
(``minion.d/phoenix-masters.conf``). On drift it rewrites the drop-in atomically and, when
the running minion is on the wrong master, restarts salt-minion: at once (with a little
jitter) when its master left the live list, within a splay window when another master
should come first. Events, under ``salt/beacon/<minion id>/master_list/``:

- ``changed``: the drop-in was rewritten (``old``, ``new``, ``added``, ``removed``,
  ``restart``: the reason or null, ``restart_in``: seconds)
- ``restart``: the minion restarts now (``reason``, ``master``, ``masters``)
- ``problem``: something keeps the beacon from its job (``error``), once until it changes

Every option lives in the ``phoenix:`` block (docs/beacon.md, docs/configuration.md).
"""

import logging

from phoenix_salt.loader import core_unavailable

log = logging.getLogger(__name__)

__virtualname__ = "master_list"


def __virtual__():
    reason = core_unavailable()
    if reason:
        return False, reason
    return __virtualname__


def validate(config):
    """Checks the beacon's own list-form configuration and the ``phoenix:`` block.

    Salt calls this before every run, so it reuses the follower's cached validation.
    """
    from phoenix_salt import ConfigError, follow

    if not isinstance(config, list):
        return False, "master_list: the beacon configuration must be a list (- interval: 1)"
    try:
        follow.follower_for(__opts__)
    except ConfigError as exc:
        return False, f"master_list: invalid Phoenix configuration: {exc}"
    return True, "master_list: valid"


def beacon(config):
    """Returns the events of this run; an empty list while nothing has drifted."""
    from phoenix_salt import PhoenixError, follow

    try:
        return follow.check(__opts__, __salt__)
    except PhoenixError as exc:
        # validate() catches configuration errors first; anything else must not stop
        # the minion's other beacons.
        log.error("master_list: %s", exc)
        return []
