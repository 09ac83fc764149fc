"""Phoenix runner: what Phoenix is, and the configuration it runs with.

.. code-block:: bash

    salt-run phoenix.version
    salt-run phoenix.config            # the effective phoenix: block, defaults filled in
    salt-run phoenix.config --out=json
    salt-run phoenix.status            # masters (live or stale) and minions in the registry

Configure Phoenix with one ``phoenix:`` block in the master config (for example
``/etc/salt/master.d/phoenix.conf``); see docs/configuration.md for every key.

.. code-block:: yaml

    phoenix:
      cluster: prod
      region: us-east-1
      queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/phoenix-prod-events
"""

import logging

from phoenix_salt.loader import core_unavailable
from phoenix_salt.runner_result import reports_failures

log = logging.getLogger(__name__)

__virtualname__ = "phoenix"


def __virtual__():
    reason = core_unavailable()
    if reason:
        return False, reason
    return __virtualname__


def version():
    """Versions of phoenix-salt, its native core and Salt.

    CLI Example: ``salt-run phoenix.version``
    """
    import salt.version

    import phoenix_salt
    from phoenix_salt import _core

    return {
        "phoenix_salt": phoenix_salt.__version__,
        "core": _core.__version__,
        "salt": salt.version.__version__,
    }


@reports_failures
def config():
    """The effective ``phoenix:`` configuration of this master, every default filled in.

    A missing or invalid setting fails the call (``salt-run`` exits non-zero) with a message
    that names the key.

    CLI Example: ``salt-run phoenix.config``
    """
    from phoenix_salt import config as phoenix_config

    return phoenix_config.as_dict(phoenix_config.load(dict(__opts__)))


@reports_failures
def status():
    """Masters (live or stale, heartbeat age) and minions (state, group) in the registry.

    CLI Example: ``salt-run phoenix.status`` (``--out=json`` for machines)
    """
    from phoenix_salt import _core
    from phoenix_salt import config as phoenix_config
    from phoenix_salt import status as cluster

    return cluster.cluster_status(_core.Session(phoenix_config.load(dict(__opts__))))
