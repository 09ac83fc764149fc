"""What the registry says about a cluster: masters (live or stale, heartbeat age) and
minions (state, group, launch time, pinned key, first highstate). Shared by ``phoenix status`` and
``salt-run phoenix.status``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix_salt._core import Session


def cluster_status(session: Session) -> dict[str, Any]:
    """The cluster as plain data (JSON-ready)."""
    now_ms = int(time.time() * 1000)
    live = {m["instance_id"] for m in session.live_masters()}
    masters = []
    for row in session.list_instances("master"):
        beat = row.get("heartbeat_ms")
        masters.append(
            {
                "instance_id": row["instance_id"],
                "address": row.get("address"),
                "state": row["state"],
                "live": row["instance_id"] in live,
                "heartbeat_age_s": None if beat is None else round((now_ms - beat) / 1000, 1),
                "key": _pinned(row),
            }
        )
    minions = [
        {
            "instance_id": row["instance_id"],
            "state": row["state"],
            "group": row.get("group"),
            "launch_ms": row.get("launch_ms"),
            "waiting_for_lifecycle": row.get("launch_hook") is not None,
            "key": _pinned(row),
            "highstate": _highstate(row),
        }
        for row in session.list_instances("minion")
    ]
    return {"masters": masters, "minions": minions}


def _pinned(row: dict[str, Any]) -> str | None:
    """The fingerprint of the key pinned for the instance, if any."""
    key = row.get("key") or {}
    fingerprint = key.get("fingerprint")
    return None if fingerprint is None else str(fingerprint)


def _highstate(row: dict[str, Any]) -> str | None:
    """Where the instance's first highstate stands: ``succeeded``, ``retrying 1/3`` ..."""
    record = row.get("first_highstate")
    if not record:
        return None
    if record["status"] in ("running", "retrying", "failed"):
        return f"{record['status']} (attempt {record['attempt']})"
    return str(record["status"])


def _short(fingerprint: str | None) -> str:
    # The first and last bytes tell keys apart at a glance; --json has the whole value.
    return "-" if fingerprint is None else f"{fingerprint[:11]}..{fingerprint[-5:]}"


def render(status: dict[str, Any]) -> str:
    """A readable table of :func:`cluster_status`'s result."""
    lines = ["MASTERS", f"{'instance':<21} {'address':<16} {'state':<12} {'live':<5} heartbeat"]
    for m in status["masters"]:
        age = "-" if m["heartbeat_age_s"] is None else f"{m['heartbeat_age_s']:.1f}s ago"
        live = "yes" if m["live"] else "no"
        lines.append(
            f"{m['instance_id']:<21} {m['address'] or '-':<16} {m['state']:<12} {live:<5} {age}"
        )
    if not status["masters"]:
        lines.append("(none)")
    lines += [
        "",
        "MINIONS",
        f"{'instance':<21} {'state':<12} {'group':<28} {'lifecycle':<9} "
        f"{'first highstate':<24} pinned key",
    ]
    for m in status["minions"]:
        waiting = "waiting" if m["waiting_for_lifecycle"] else "-"
        lines.append(
            f"{m['instance_id']:<21} {m['state']:<12} {m['group'] or '-':<28} {waiting:<9} "
            f"{m['highstate'] or '-':<24} {_short(m['key'])}"
        )
    if not status["minions"]:
        lines.append("(none)")
    return "\n".join(lines)
