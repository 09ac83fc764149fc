"""Phoenix's instance_manager engine: how the masters learn which instances exist.

It runs inside every salt-master. It consumes the SQS queue fed by the AutoScaling
lifecycle hooks and notifications, records masters and minions in the registry
(DynamoDB), completes lifecycle actions, registers and heartbeats its own master, and puts
what happened on the master's event bus. Several masters consume one queue; the result is
the same as with one.

Enable it in the master config:

.. code-block:: yaml

    engines:
      - instance_manager: {}

    phoenix:
      cluster: prod
      queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/phoenix-prod-events
      # off EC2 only (on EC2 the instance metadata says who this master is):
      # master_id: i-0123456789abcdef0
      # master_address: 10.0.1.10

Every option lives in the ``phoenix:`` block (docs/configuration.md). Events fired:

- ``phoenix/instance/<id>/launched`` and ``phoenix/instance/<id>/terminated``
- ``phoenix/masters/changed`` with the new live master list
- ``phoenix/instance/<id>/unhealthy`` when this engine reported a silent master to
  AutoScaling, which replaces it (docs/masters.md)
- ``phoenix/message/rejected`` for a message that can never be applied
- ``phoenix/key/reconciled`` with the key actions a reconcile carried out on this master
- ``phoenix/key/mismatch`` when a key claims a pinned id with another key
- ``phoenix/key/pinned`` when an identity claim pinned a minion's key, and
  ``phoenix/key/claim_refused`` (with the reason) for a claim that pins nothing
- ``phoenix/highstate/<id>/succeeded``, ``.../retrying`` and ``.../failed`` when a first
  highstate's attempt ends (``.../started`` comes from ``highstate_runner``)

It also keeps this master's minion keys in line with the registry (docs/keys.md): a full
reconcile every ``phoenix.keys.reconcile_interval`` seconds, and a reconcile of one id as
soon as that id's key waits for acceptance (``salt/auth`` with ``act: pend``), Salt denies
it, or the registry learns of the instance (``phoenix/instance/<id>/...``). With
``phoenix.keys.trust: identity_document`` (the default) it also takes identity claims off
the claim queue, pins the key of each valid one, and reconciles that id at once, in this
process.

And it follows every new minion's first highstate (docs/highstate.md): it records the
return of each attempt as it reaches this master, and every
``phoenix.highstate.check_interval`` seconds it sweeps the registry: attempts past their
timeout are recorded as failed, due retries are started when the minion answers this
master, and (with ``phoenix.highstate_gating``) launches that wait get lifecycle heartbeats
and are completed once the first highstate is done.
"""

import logging
import queue
import threading
import time

from phoenix_salt.loader import core_unavailable

log = logging.getLogger(__name__)

__virtualname__ = "instance_manager"

# Backoff after an AWS failure: doubling from the first to the last, then steady.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# How often a poller looks again whether heartbeats are recorded again.
REGISTRY_WAIT_SECONDS = 1.0
# A configuration error cannot heal by itself: say so again this often, and do nothing else.
CONFIG_ERROR_REPEAT_SECONDS = 600.0


def __virtual__():
    reason = core_unavailable()
    if reason:
        return False, reason
    return __virtualname__


def _bus():
    import salt.utils.event

    return salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False)


def _fire(bus, events):
    for event in events:
        bus.fire_event(event["data"], event["tag"])


def _backoff(failures):
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, failures - 1))


def _heartbeat_loop(engine, interval, serve_timeout, registry_reachable, stopping):
    """Registers this master once salt-master listens, then heartbeats it every ``interval``
    seconds, each time only once its request server answered a ping within
    ``serve_timeout`` seconds (readiness.py): a master whose workers are wedged goes stale
    even though this engine lives. ``registry_reachable`` is cleared while heartbeats fail
    and set again once one is recorded: the queue pollers wait on it."""
    import phoenix_salt
    from phoenix_salt.readiness import answers_requests, wait_until_serving

    bus = _bus()
    registered = False
    failures = 0
    # Why salt-master did not answer, while it does not (said once per episode).
    not_serving = None
    # Minions follow the live list: this master joins it only once it can serve them.
    if not wait_until_serving(__opts__, stopping):
        return
    while not stopping.is_set():
        try:
            why = answers_requests(__opts__, serve_timeout)
            if why is not None:
                if not_serving is None and not registered:
                    # Its workers may still be starting: not live yet, nothing is wrong.
                    log.info(
                        "phoenix: waiting for salt-master's request workers to answer (%s) "
                        "before registering this master as running",
                        why,
                    )
                elif not_serving is None:
                    log.error(
                        "phoenix: salt-master does not serve: %s. No heartbeat until it "
                        "answers: it leaves the live list, and the live masters report it to "
                        "AutoScaling if it stays so past replacement.replace_after",
                        why,
                    )
                not_serving = why
                stopping.wait(interval)
                continue
            if not_serving is not None and registered:
                log.warning("phoenix: salt-master answers again: heartbeats go on")
            not_serving = None
            if not registered:
                identity = engine.register_master()
                registered = True
                log.info(
                    "phoenix: this master is %s at %s (group %s)",
                    identity["instance_id"],
                    identity["address"],
                    identity["group"],
                )
            _fire(bus, engine.heartbeat())
            if failures:
                log.warning(
                    "phoenix: heartbeats recorded again after %d failed; polling the queues again",
                    failures,
                )
            registry_reachable.set()
            failures = 0
            stopping.wait(interval)
        except phoenix_salt.PhoenixError as exc:
            failures += 1
            # A master that cannot reach the registry can apply no message: taking them off
            # the queues would only use up their receives (the dead-letter queue takes a
            # message after MaxReceiveCount of them) and hide them from the masters that can.
            registry_reachable.clear()
            # Tried again at the next interval, not after a growing backoff: one call per
            # interval is the usual load, and a later heartbeat would keep this master out of
            # the live list for longer than the outage. Said at the first failure, then every
            # minute's worth of them.
            if failures == 1 or failures % max(1, round(60 / interval)) == 0:
                log.warning(
                    "phoenix: heartbeat failed %d time(s) in a row (%s: %s); trying again every "
                    "%.0f s, and polling no queue until one is recorded",
                    failures,
                    type(exc).__name__,
                    exc,
                    interval,
                )
            stopping.wait(interval)
        except Exception:  # a bug must not silence the heartbeat for good
            failures += 1
            log.exception(
                "phoenix: heartbeat failed unexpectedly; next try in %.0f s", _backoff(failures)
            )
            stopping.wait(_backoff(failures))


def _key_trigger(tag, data):
    """The minion id whose keys an event asks to reconcile now, or None."""
    if tag == "salt/auth":
        if data.get("act") in ("pend", "denied") and isinstance(data.get("id"), str):
            return data["id"]
        return None
    from phoenix_salt._core import INSTANCE_TAG_PREFIX

    if tag.startswith(INSTANCE_TAG_PREFIX):
        parts = tag.split("/")
        if len(parts) == 4 and parts[3] in ("launched", "terminated"):
            return parts[2]
    return None


def _key_loop(config, interval, pinned, stopping):
    """Reconciles this master's keys: all of them every ``interval`` seconds, one id as soon
    as an event says it changed or the claim loop pinned its key (``pinned``, a queue of
    ids). Whatever fails, it waits and starts over."""
    from phoenix_salt import keys

    opts = dict(__opts__)
    try:
        keys.pki_dir(opts)
    except keys.UnsupportedKeyStore as exc:
        log.error("phoenix: not managing minion keys on this master: %s", exc)
        return
    failures = 0
    while not stopping.is_set():
        try:
            _reconcile_keys(opts, config, interval, pinned, stopping)
            return
        except Exception:  # a bug, or Salt's wheel client failing to load: try again later
            failures += 1
            log.exception(
                "phoenix: key management failed; starting over in %.0f s", _backoff(failures)
            )
            stopping.wait(_backoff(failures))


def _pinned_id(pinned):
    """An id whose key the claim loop pinned, if one waits."""
    try:
        return pinned.get_nowait()
    except queue.Empty:
        return None


def _reconcile_keys(opts, config, interval, pinned, stopping):
    import salt.utils.event

    import phoenix_salt
    from phoenix_salt import keys

    listener = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)
    bus = _bus()
    failures = 0
    next_full = 0.0
    try:
        with keys.wheel_client(opts) as wheel:
            reconciler = keys.Reconciler(opts, config, wheel, bus.fire_event)
            while not stopping.is_set():
                minion_id = _pinned_id(pinned)
                now = time.monotonic()
                if minion_id is None and now < next_full:
                    # Never wait=0: Salt reads that as "block forever". A short wait: a pin
                    # from the claim loop is picked up between two waits.
                    event = listener.get_event(
                        wait=max(0.05, min(0.25, next_full - now)), full=True, no_block=False
                    )
                    if not event:
                        continue
                    minion_id = _key_trigger(event.get("tag", ""), event.get("data") or {})
                    if minion_id is None:
                        continue
                try:
                    summary = reconciler.reconcile(minion_id)
                    failures = 0
                    if minion_id is None:
                        next_full = time.monotonic() + interval
                    if summary["counts"]:
                        log.debug(
                            "phoenix: key reconcile %s: %s", minion_id or "all", summary["counts"]
                        )
                except phoenix_salt.PhoenixError as exc:
                    failures += 1
                    log.warning(
                        "phoenix: key reconcile failed (%s: %s); next full try in %.0f s",
                        type(exc).__name__,
                        exc,
                        _backoff(failures),
                    )
                    next_full = time.monotonic() + _backoff(failures)
    finally:
        listener.destroy()
        bus.destroy()


def _highstate_loop(config, interval, stopping):
    """Follows first highstates until salt-master stops; whatever fails, it waits and
    starts over."""
    failures = 0
    while not stopping.is_set():
        try:
            _follow_highstates(config, interval, stopping)
            return
        except Exception:  # a bug, or Salt's client failing to load: try again later
            failures += 1
            log.exception(
                "phoenix: following first highstates failed; starting over in %.0f s",
                _backoff(failures),
            )
            stopping.wait(_backoff(failures))


def _follow_highstates(config, interval, stopping):
    import salt.utils.event

    import phoenix_salt
    from phoenix_salt.highstate import FirstHighstates, IgnoredReturns, job_return

    opts = dict(__opts__)
    listener = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)
    bus = _bus()
    highstates = FirstHighstates(opts, config, lambda events: _fire(bus, events))
    refusals = IgnoredReturns()
    # Returns that could not be recorded (AWS failing): tried again before each sweep, so
    # none is lost while this engine runs (the attempt's timeout covers a restart).
    unrecorded = []
    failures = 0
    next_sweep = 0.0
    try:
        while not stopping.is_set():
            now = time.monotonic()
            if now >= next_sweep:
                try:
                    while unrecorded:
                        highstates.returned(*unrecorded[0])
                        unrecorded.pop(0)
                    report = highstates.sweep()
                    failures = 0
                    next_sweep = time.monotonic() + interval
                    if report["timed_out"] or report["completed"] or report["retried"]:
                        log.info(
                            "phoenix: first highstates: %d timed out, %d launches completed, "
                            "%d retries started",
                            len(report["timed_out"]),
                            len(report["completed"]),
                            sum(1 for r in report["retried"] if r["published"]),
                        )
                except phoenix_salt.PhoenixError as exc:
                    failures += 1
                    next_sweep = time.monotonic() + _backoff(failures)
                    log.warning(
                        "phoenix: first-highstate sweep failed (%s: %s); next try in %.0f s",
                        type(exc).__name__,
                        exc,
                        _backoff(failures),
                    )
                continue
            # Never wait=0: Salt reads that as "block forever".
            event = listener.get_event(
                wait=max(0.05, min(1.0, next_sweep - now)), full=True, no_block=False
            )
            if not event:
                continue
            data = event.get("data") or {}
            found = job_return(event.get("tag", ""), data)
            if found is None:
                continue
            report, why = highstates.verified(*found, data)
            if report is None:
                refusals.note(found, why)
                continue
            try:
                highstates.returned(*found, report)
            except phoenix_salt.PhoenixError as exc:
                log.warning(
                    "phoenix: recording the return of job %s from %s failed (%s: %s); "
                    "trying again before the next sweep",
                    found[1],
                    found[0],
                    type(exc).__name__,
                    exc,
                )
                unrecorded.append((*found, report))
    finally:
        highstates.close()
        listener.destroy()
        bus.destroy()


def _keep_polling(poll, queue_name, handle, registry_reachable, stopping):
    """Calls ``poll()`` and hands each report to ``handle`` until salt-master stops. This
    loop never ends by itself: an AWS error or a bug means a backoff and another poll, and
    what was not settled stays on ``queue_name``. A configuration error (no account or
    region to judge claims by) is said at error level, then again every
    ``CONFIG_ERROR_REPEAT_SECONDS``. No poll while ``registry_reachable`` is clear (this
    master's heartbeats fail): the other masters take the messages."""
    import phoenix_salt

    failures = 0
    while not stopping.is_set():
        if not registry_reachable.is_set():
            stopping.wait(REGISTRY_WAIT_SECONDS)
            continue
        try:
            report = poll()
        except phoenix_salt.ConfigError as exc:
            failures += 1
            log.error("phoenix: cannot poll the %s: %s", queue_name, exc)
            stopping.wait(CONFIG_ERROR_REPEAT_SECONDS if failures > 3 else _backoff(failures))
            continue
        except phoenix_salt.PhoenixError as exc:
            failures += 1
            log.warning(
                "phoenix: polling the %s failed (%s: %s); next try in %.0f s",
                queue_name,
                type(exc).__name__,
                exc,
                _backoff(failures),
            )
            stopping.wait(_backoff(failures))
            continue
        except Exception:  # a bug must not stop the engine: messages stay queued
            failures += 1
            log.exception(
                "phoenix: polling the %s failed unexpectedly; next try in %.0f s",
                queue_name,
                _backoff(failures),
            )
            stopping.wait(_backoff(failures))
            continue
        failures = 0
        handle(report)


def _poll_loop(engine, registry_reachable, stopping):
    """Polls the queue, applies what arrives and fires its events, until salt-master stops."""
    bus = _bus()

    def handle(report):
        _fire(bus, report["events"])
        if report["received"]:
            log.debug(
                "phoenix: %(received)d received, %(deleted)d deleted, %(retry)d to retry "
                "(%(postponed)d postponed), %(rejected)d rejected",
                report,
            )

    _keep_polling(engine.poll, "queue", handle, registry_reachable, stopping)


def _claim_loop(engine, pinned, registry_reachable, stopping):
    """Takes identity claims off the claim queue until salt-master stops; hands each id
    whose key was pinned to the key loop (``pinned``), and fires what the claims caused."""
    bus = _bus()

    def handle(report):
        for minion_id in report["pinned"]:
            pinned.put(minion_id)
        _fire(bus, report["events"])

    _keep_polling(engine.poll_claims, "claim queue", handle, registry_reachable, stopping)


def start():
    """The engine's main loop, run by Salt in its own process until salt-master stops."""
    import phoenix_salt
    from phoenix_salt import _core
    from phoenix_salt import config as phoenix_config

    try:
        config = phoenix_config.load(dict(__opts__))
        engine = _core.Engine(config)
    except phoenix_salt.ConfigError as exc:
        # Returning would make Salt restart the engine in a tight loop; idle and repeat the
        # reason instead, until the operator fixes the config and restarts salt-master.
        while True:
            log.error("phoenix instance_manager cannot start: invalid configuration: %s", exc)
            time.sleep(CONFIG_ERROR_REPEAT_SECONDS)

    log.info(
        "phoenix instance_manager started for cluster %s (queue %s)",
        config.cluster,
        config.queue_url,
    )
    stopping = threading.Event()
    # Set until a heartbeat fails; the pollers wait while it is clear.
    registry_reachable = threading.Event()
    registry_reachable.set()
    threading.Thread(
        target=_heartbeat_loop,
        args=(
            engine,
            config.heartbeat_interval,
            config.serve_timeout,
            registry_reachable,
            stopping,
        ),
        name="phoenix-heartbeat",
        daemon=True,
    ).start()

    # Ids whose key a claim pinned: the claim loop hands them to the key loop directly.
    pinned = queue.Queue()
    threading.Thread(
        target=_key_loop,
        args=(config, config.keys.reconcile_interval, pinned, stopping),
        name="phoenix-keys",
        daemon=True,
    ).start()
    if config.keys.trust == "identity_document":
        threading.Thread(
            target=_claim_loop,
            args=(engine, pinned, registry_reachable, stopping),
            name="phoenix-claims",
            daemon=True,
        ).start()

    threading.Thread(
        target=_highstate_loop,
        args=(config, config.highstate.check_interval, stopping),
        name="phoenix-highstate",
        daemon=True,
    ).start()

    # More than one long poll at a time: while one batch is applied (registry writes,
    # lifecycle completions), the next is already being received. Each poll releases the
    # GIL while it waits on AWS.
    for number in range(2, config.pollers + 1):
        threading.Thread(
            target=_poll_loop,
            args=(engine, registry_reachable, stopping),
            name=f"phoenix-poller-{number}",
            daemon=True,
        ).start()
    try:
        _poll_loop(engine, registry_reachable, stopping)
    finally:
        stopping.set()
