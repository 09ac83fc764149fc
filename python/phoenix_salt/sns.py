"""SNS push delivery: AutoScaling notifications that SNS POSTs to salt-api's webhook
(``/hook/phoenix/sns``, event tag ``salt/netapi/hook/phoenix/sns``).

The core checks each message before anything is fetched (shape, type, signature version,
topic allowlist, freshness, the certificate and subscribe URLs on SNS hosts), this module
fetches the signing certificate over TLS from the checked URL (cached per URL), the core
verifies the signature and applies a Notification as the engine applies a queue message,
and a SubscriptionConfirmation for an allowlisted topic is confirmed by fetching its
checked SubscribeURL. See docs/sns.md.

salt-api answers SNS before the reactor runs, so SNS never redelivers what failed here: an
apply that hit an AWS error is retried a few times in this call, and the queue subscription
(which stays the source of truth) delivers the same event again anyway.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix_salt._core import _BusEvent

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 5.0
# A signing certificate is a couple of KiB; anything far larger is not one.
MAX_CERTIFICATE_BYTES = 64 * 1024
CACHED_CERTIFICATES = 32
APPLY_ATTEMPTS = 3
APPLY_RETRY_SECONDS = 1.0

_CACHE: OrderedDict[str, str] = OrderedDict()
_CACHE_LOCK = threading.Lock()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Only the checked URL is fetched: a redirect elsewhere is an error, not followed."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _fetch(url: str, ca_bundle: str | None, limit: int) -> bytes:
    """GET ``url`` (checked by the core: https, an allowed host, no user info) over TLS
    with certificate and host name checks, trusting ``phoenix.sns.ca_bundle`` when set (a
    private CA, another partition's roots), else the system's store."""
    context = ssl.create_default_context(cafile=ca_bundle)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": "phoenix-salt"})  # noqa: S310
    with opener.open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        body: bytes = response.read(limit + 1)
    if len(body) > limit:
        raise ValueError(f"{url} served more than {limit} bytes")
    return body


def certificate(url: str, ca_bundle: str | None) -> tuple[str, bool]:
    """The PEM certificate at ``url`` and whether it came from the cache (which holds only
    certificates that verified a message), else fetched over TLS."""
    with _CACHE_LOCK:
        if url in _CACHE:
            _CACHE.move_to_end(url)
            return _CACHE[url], True
    return _fetch(url, ca_bundle, MAX_CERTIFICATE_BYTES).decode("ascii", errors="replace"), False


def _remember(url: str, pem: str) -> None:
    with _CACHE_LOCK:
        _CACHE[url] = pem
        while len(_CACHE) > CACHED_CERTIFICATES:
            _CACHE.popitem(last=False)


class Receiver:
    """Receives SNS push messages for one master; ``fire`` puts events on its bus."""

    def __init__(self, config: Any, fire: Callable[[list[dict[str, Any]]], None]) -> None:
        from phoenix_salt import _core

        self._core = _core.SnsReceiver(config)
        self._fire = fire

    def receive(self, body: str) -> dict[str, Any]:
        """Verifies ``body`` and acts on it; returns what happened. Raises
        ``phoenix_salt.MessageError`` (with ``reason``) for a refused message, and
        ``OSError`` when the certificate or the SubscribeURL cannot be fetched."""
        checked = self._core.check(body)
        pem, cached = certificate(checked["cert_url"], self._core.ca_bundle)
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            result: dict[str, Any] = self._core.receive(body, pem)
            if not cached:
                # It verified a signature: a certificate worth keeping.
                _remember(checked["cert_url"], pem)
                cached = True
            self._fire(result.get("events") or [])
            if result["outcome"] != "retry" or attempt == APPLY_ATTEMPTS:
                break
            log.warning(
                "phoenix: SNS message %s not applied (attempt %d of %d), trying again",
                result["message_id"],
                attempt,
                APPLY_ATTEMPTS,
            )
            time.sleep(APPLY_RETRY_SECONDS * attempt)
        if result["type"] == "SubscriptionConfirmation":
            _fetch(result["subscribe_url"], self._core.ca_bundle, MAX_CERTIFICATE_BYTES)
            result["confirmed"] = True
            log.info("phoenix: subscription of %s to this master confirmed", result["topic_arn"])
        elif result["type"] == "UnsubscribeConfirmation":
            # Nothing to do: the subscription is already gone; confirming would re-subscribe.
            log.info("phoenix: %s unsubscribed this master", result["topic_arn"])
        return result


def rejected_event(body: str, exc: Exception) -> _BusEvent:
    """``phoenix/message/rejected`` for a refused push message, as the engine fires it for
    a queue message. ``reason`` is the core's kind, ``fetch_failed`` when the certificate
    or the SubscribeURL could not be fetched."""
    from phoenix_salt import MessageError, _core

    if isinstance(exc, MessageError):
        reason = str(exc.reason)
    elif isinstance(exc, OSError):
        reason = "fetch_failed"
    else:
        reason = "invalid"
    return _core.push_rejected_event(_message_id(body), reason, str(exc))


def _message_id(body: str) -> str | None:
    import json

    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    value = parsed.get("MessageId") if isinstance(parsed, Mapping) else None
    return value if isinstance(value, str) else None
