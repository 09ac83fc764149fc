"""Phoenix's SNS push runner: AutoScaling notifications that SNS POSTs to salt-api's webhook,
verified before anything acts on them.

.. code-block:: bash

    salt-run sns_runner.receive body='<the POSTed JSON>'

The reactor file ``sns_hook.sls`` (on ``salt/netapi/hook/phoenix/sns``) calls ``receive``
with the body salt-api received. It checks the message (type, SignatureVersion 1 or 2,
``phoenix.sns.topics``, ``phoenix.sns.max_age``, the certificate URL on an SNS host),
fetches the signing certificate over TLS, verifies the signature, then applies a
Notification exactly as the instance_manager engine applies a queue message (same registry
writes, same ``phoenix/instance/...`` events) and confirms a SubscriptionConfirmation. A
refused message changes nothing: one log line and a ``phoenix/message/rejected`` event.
See docs/sns.md.
"""

import logging

from phoenix_salt.loader import core_unavailable
from phoenix_salt.runner_result import ArgumentError, failed, reports_failures

log = logging.getLogger(__name__)

__virtualname__ = "sns_runner"


def __virtual__():
    reason = core_unavailable()
    if reason:
        return False, reason
    return __virtualname__


@reports_failures
def receive(body=None):
    """Verifies one SNS message (the raw POSTed body) and acts on it.

    CLI Example:

    .. code-block:: bash

        salt-run sns_runner.receive body='{"Type": "Notification", ...}'
    """
    import salt.utils.event

    import phoenix_salt
    from phoenix_salt import config as phoenix_config
    from phoenix_salt import sns

    if not isinstance(body, str) or not body.strip():
        raise ArgumentError("body must be the SNS message as SNS POSTed it (a JSON text)")
    opts = dict(__opts__)
    bus = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False)

    def fire(events):
        for event in events:
            bus.fire_event(event["data"], event["tag"])

    try:
        receiver = sns.Receiver(phoenix_config.load(opts), fire)
        try:
            result = receiver.receive(body)
        except (phoenix_salt.MessageError, OSError, ValueError) as exc:
            event = sns.rejected_event(body, exc)
            log.error(
                "phoenix: SNS message %s refused (%s): %s",
                event["data"]["message_id"],
                event["data"]["reason"],
                exc,
            )
            fire([event])
            return failed(f"SNS message refused: {exc}", reason=event["data"]["reason"])
    finally:
        bus.destroy()
    if result.get("outcome") == "rejected":
        return failed(
            f"SNS message {result['message_id']} verified but not an AutoScaling event "
            "Phoenix applies (see the phoenix/message/rejected event)",
            **result,
        )
    if result.get("outcome") == "retry":
        return failed(
            f"SNS message {result['message_id']} verified but not applied (AWS errors): the "
            "queue delivers the same event again",
            **result,
        )
    return result
