"""The master config block that wires Phoenix's reactor files, with their installed paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phoenix_salt._core import INSTANCE_TERMINATED_TAGS

# (event tag, reactor file) pairs, in the order Salt should list them.
REACTIONS = (
    ("salt/auth", "auth_pending.sls"),
    (INSTANCE_TERMINATED_TAGS, "instance_terminated.sls"),
    ("salt/minion/*/start", "minion_start.sls"),
)
# SNS push delivery through salt-api's webhook: wired only where an operator turns it on.
SNS_REACTION = ("salt/netapi/hook/phoenix/sns", "sns_hook.sls")


def reactor_dir() -> Path:
    """Where the installed package keeps its reactor files."""
    return Path(__file__).resolve().parent / "salt_modules" / "reactor"


def reactor_config(sns: bool = False) -> dict[str, Any]:
    """``{"reactor": [{tag: [path]}, ...]}`` for the master config; with ``sns``, also the
    SNS push hook."""
    reactions = [*REACTIONS, SNS_REACTION] if sns else list(REACTIONS)
    return {"reactor": [{tag: [str(reactor_dir() / name)]} for tag, name in reactions]}
