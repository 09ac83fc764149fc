"""The master config block that wires Phoenix's reactor files, with their installed paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (event tag, reactor file) pairs, in the order Salt should list them.
REACTIONS = (
    ("salt/auth", "auth_pending.sls"),
    ("phoenix/instance/*/terminated", "instance_terminated.sls"),
    ("salt/minion/*/start", "minion_start.sls"),
)


def reactor_dir() -> Path:
    """Where the installed package keeps its reactor files."""
    return Path(__file__).resolve().parent / "salt_modules" / "reactor"


def reactor_config() -> dict[str, Any]:
    """``{"reactor": [{tag: [path]}, ...]}`` for the master config."""
    return {"reactor": [{tag: [str(reactor_dir() / name)]} for tag, name in REACTIONS]}
