"""``phoenix dlq``: the events queue's dead-letter queue, as an operator reads it.

The core lists the messages and judges each as the engine would (``Session.dead_letters``)
and moves back those the engine would not reject (``Session.redrive_dead_letters``); this
module renders what they return.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

# A body is shown cut to this many characters in a listing (``show`` prints it whole).
BODY_PREVIEW = 60


def verdict_line(letter: Mapping[str, Any]) -> str:
    """What the engine would make of a message, in one line."""
    verdict = letter["verdict"]
    if verdict == "applies":
        age = _age(letter.get("time_ms"))
        return (
            f"applies: {letter['event']} of {letter['role']} {letter['instance_id']} "
            f"(group {letter['group']}, {age} ago)"
        )
    if verdict == "ignored":
        return f"ignored ({letter['reason']}): {letter['detail']}"
    return f"refused ({letter['reason']}): {letter['error']}"


def render_list(listing: Mapping[str, Any]) -> str:
    messages: Sequence[Mapping[str, Any]] = listing["messages"]
    lines = [f"{listing['dead_letter_queue_url']}: {len(messages)} message(s)"]
    for letter in messages:
        body = " ".join(str(letter["body"]).split())
        if len(body) > BODY_PREVIEW:
            body = body[: BODY_PREVIEW - 3] + "..."
        lines.append(f"{letter['message_id']}  received {letter['receive_count']}x")
        lines.append(f"    {verdict_line(letter)}")
        lines.append(f"    {body}")
    return "\n".join(lines)


def render_one(letter: Mapping[str, Any]) -> str:
    try:
        body = json.dumps(json.loads(letter["body"]), indent=2, sort_keys=True)
    except ValueError:
        body = str(letter["body"])
    return "\n".join(
        [
            f"message {letter['message_id']} (received {letter['receive_count']}x)",
            verdict_line(letter),
            body,
        ]
    )


def render_redrive(report: Mapping[str, Any]) -> str:
    moved = "would go back" if report["dry_run"] else "sent back to the events queue"
    lines = [f"{report['dead_letter_queue_url']}: {len(report['moved'])} {moved}"]
    lines += [f"  {message_id}" for message_id in report["moved"]]
    if report["kept"]:
        lines.append(f"{len(report['kept'])} stay (the engine would reject them again):")
        lines += [f"  {k['message_id']}: {verdict_line(k)}" for k in report["kept"]]
    if report["failed"]:
        lines.append(f"{len(report['failed'])} not moved (they stay; run it again):")
        lines += [f"  {f['message_id']}: {f['error']}" for f in report["failed"]]
    return "\n".join(lines)


def _age(time_ms: Any) -> str:
    if not isinstance(time_ms, int):
        return "?"
    seconds = max(0.0, time.time() - time_ms / 1000)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
