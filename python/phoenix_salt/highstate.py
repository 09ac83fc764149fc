"""Every new minion's first highstate, on the Salt side: publishing attempts and reading
their returns. The record, the claim that makes one master run each attempt, the retries
and the lifecycle gating live in the core (``_core.FirstHighstate``); this module only does
what needs Salt: generating job ids, publishing ``phoenix_highstate.apply`` (``state.apply``
under the minion's signature) without waiting for it, checking that signature on the
return, and pinging a minion before a retry. See docs/highstate.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix_salt._core import Config

log = logging.getLogger(__name__)

# What Phoenix publishes for a first highstate: state.apply, reported under the minion's own
# signature (_modules/phoenix_highstate.py). The record's job id decides which return
# counts, so an operator's own runs never do.
HIGHSTATE_FUNCTION = "phoenix_highstate.apply"
# How long a minion has to answer the ping that precedes a retry.
RETRY_PING_TIMEOUT_SECONDS = 5


def job_return(tag: str, data: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(minion_id, jid)`` when an event looks like the return of a highstate job, else
    None. Only a candidate: any accepted minion can fire an event with this tag and these
    fields (``FirstHighstates.verified`` says whether the minion itself reported it)."""
    if not tag.startswith("salt/job/") or "/ret/" not in tag:
        return None
    if data.get("fun") != HIGHSTATE_FUNCTION:
        return None
    minion_id, jid = data.get("id"), data.get("jid")
    if not isinstance(minion_id, str) or not isinstance(jid, str):
        return None
    return minion_id, jid


class FirstHighstates:
    """First highstates as seen from one master. ``fire(events)`` puts the core's events on
    the master's bus."""

    def __init__(
        self,
        opts: Mapping[str, Any],
        config: Config,
        fire: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        from phoenix_salt import _core

        self.opts = dict(opts)
        self.core = _core.FirstHighstate(config)
        self.fire = fire
        self._client: Any = None

    def close(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None

    def _local(self) -> Any:
        if self._client is None:
            import salt.client

            self._client = salt.client.LocalClient(mopts=self.opts)
        return self._client

    def start(self, minion_id: str, mode: str = "first") -> dict[str, Any]:
        """Claims the next attempt (``mode``: first, retry or rerun) and, when this master
        won it, publishes ``phoenix_highstate.apply`` to the minion without waiting for it:
        the engine records the return. Returns the claim's report, with ``published`` and
        ``error``."""
        import salt.utils.jid

        jid = salt.utils.jid.gen_jid(self.opts)
        report = self.core.claim(minion_id, self.core.master_id(), jid, mode)
        self.fire(report["events"])
        report["published"] = False
        report["error"] = None
        if not report["claimed"]:
            log.info("phoenix: no first highstate for %s now: %s", minion_id, report["reason"])
            return report
        error = self._publish(minion_id, jid)
        if error is None:
            report["published"] = True
            return report
        log.error("phoenix: first highstate of %s not published: %s", minion_id, error)
        failed = self.core.fail(minion_id, jid, error)
        self.fire(failed["events"])
        report["error"] = error
        report["record"] = failed["record"]
        return report

    def _publish(self, minion_id: str, jid: str) -> str | None:
        """Publishes the attempt's job; returns why it was not, or None."""
        try:
            # It runs state.apply behind any state run already going, and signs the result.
            published = self._local().run_job(
                [minion_id], HIGHSTATE_FUNCTION, tgt_type="list", jid=jid, listen=False
            )
        # Salt raises its own errors (SaltClientError, authentication) and OS errors alike.
        except Exception as exc:
            return f"publishing {HIGHSTATE_FUNCTION} failed: {type(exc).__name__}: {exc}"
        if not published or not published.get("jid"):
            return (
                "Salt published nothing: this master holds no accepted key for the minion "
                "(or the master's publisher is down)"
            )
        if minion_id not in (published.get("minions") or []):
            return "the minion is not among the job's targets: its key is not accepted here"
        return None

    def verified(
        self, minion_id: str, jid: str, data: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """``(what to record, None)`` when the return event ``data`` carries
        ``minion_id``'s report of job ``jid`` signed with the key this master accepted for
        it; else ``(None, why)``. A return event proves nothing by itself: any accepted
        minion can send one with another id (highstate_report.py)."""
        import salt.utils.verify

        from phoenix_salt import highstate_report
        from phoenix_salt.keys import UnsupportedKeyStore, key_file

        if not salt.utils.verify.valid_id(self.opts, minion_id):
            return None, "its minion id is not a valid one"
        try:
            key = key_file(self.opts, "accepted", minion_id)
        except UnsupportedKeyStore as exc:
            return None, str(exc)
        return highstate_report.verified(str(key), minion_id, jid, data.get("return"))

    def returned(self, minion_id: str, jid: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Records a highstate job's return, when it is a first highstate's running attempt."""
        report = self.core.finish(minion_id, jid, json.dumps(dict(data), default=str))
        self.fire(report["events"])
        return report

    def answers(self, minion_id: str) -> bool:
        """Whether the minion answers this master now (a retry is published only then, so
        attempts are not spent on a minion connected to another master)."""
        try:
            answer = self._local().cmd(
                [minion_id], "test.ping", tgt_type="list", timeout=RETRY_PING_TIMEOUT_SECONDS
            )
        except Exception as exc:  # Salt's client errors: not reachable from here, now
            log.debug("phoenix: ping of %s failed: %s", minion_id, exc)
            return False
        return bool(answer and answer.get(minion_id) is True)

    def sweep(self) -> dict[str, Any]:
        """One sweep (timeouts, gating, heartbeats), then the retries that are due and
        whose minion answers this master."""
        report = self.core.sweep(self.core.master_id())
        self.fire(report["events"])
        retried = []
        for minion_id in report["retry_due"]:
            if self.answers(minion_id):
                retried.append(self.start(minion_id, "retry"))
        report["retried"] = retried
        return report


class IgnoredReturns:
    """Says in the log which returns were not taken as a minion's report, and why: at
    most ``per_minute`` warnings a minute (a minion firing forgeries in a loop must not fill
    the log), the others counted and told with the next warning."""

    def __init__(self, per_minute: int = 20) -> None:
        self.per_minute = per_minute
        self.window_start = 0.0
        self.warned = 0
        self.suppressed = 0

    def note(self, found: tuple[str, str], why: str) -> None:
        now = time.monotonic()
        if now - self.window_start >= 60:
            self.window_start, self.warned = now, 0
        if self.warned >= self.per_minute:
            self.suppressed += 1
            return
        self.warned += 1
        also = (
            f" ({self.suppressed} more ignored since the last warning)" if self.suppressed else ""
        )
        self.suppressed = 0
        log.warning(
            "phoenix: ignored a return of job %s for %s: %s; a first highstate takes only "
            "a report its minion signed%s",
            found[1],
            found[0],
            why,
            also,
        )
