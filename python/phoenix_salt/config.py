"""Reading the ``phoenix:`` block from Salt's options (master or minion config, or pillar).

Validation happens in the core, which names the bad key (``phoenix.heartbeat_interval``)
and says why. See docs/configuration.md for every key and its default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phoenix_salt._core import Config

CONFIG_KEY = "phoenix"


def load(opts: Mapping[str, Any], pillar: Mapping[str, Any] | None = None) -> Config:
    """Validates the ``phoenix:`` block of ``opts`` (or, failing that, of ``pillar``).

    Raises ``phoenix_salt.ConfigError`` naming the bad key.
    """
    from phoenix_salt import _core

    # Salt may hand over dict subclasses and non-JSON scalars (dates from YAML): keep
    # mappings and lists, and turn anything else into a string so that the core reports
    # a wrong type against the right key instead of this layer failing.
    document = json.dumps(block_of(opts, pillar), default=str)
    return _core.Config.from_json(document)


def block_of(opts: Mapping[str, Any], pillar: Mapping[str, Any] | None = None) -> Any:
    """The raw ``phoenix:`` block: from ``opts``, else from ``pillar``, else empty."""
    block = opts.get(CONFIG_KEY)
    if block is None and pillar is not None:
        block = pillar.get(CONFIG_KEY)
    return block if block is not None else {}


def as_dict(config: Config) -> dict[str, Any]:
    """The effective configuration, every default filled in."""
    result: dict[str, Any] = json.loads(config.to_json())
    return result
