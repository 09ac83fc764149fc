"""Phoenix: SaltStack high availability on AWS.

Importing this package starts nothing: no thread, runtime, AWS client or connection. The
native core (``phoenix_salt._core``) is loaded on first use of an attribute that needs it,
so ``import phoenix_salt`` also works where the core could not be built, and Salt's loader
modules can say why instead of failing to import.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = _metadata.version("phoenix-salt")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

_EXCEPTIONS = (
    "PhoenixError",
    "ConfigError",
    "AwsError",
    "NotFoundError",
    "ConflictError",
    "MessageError",
    "ClaimError",
    "InternalError",
)

__all__ = [
    "AwsError",
    "ClaimError",
    "ConfigError",
    "ConflictError",
    "InternalError",
    "MessageError",
    "NotFoundError",
    "PhoenixError",
    "__version__",
]

if TYPE_CHECKING:
    from phoenix_salt._core import (
        AwsError,
        ClaimError,
        ConfigError,
        ConflictError,
        InternalError,
        MessageError,
        NotFoundError,
        PhoenixError,
    )


def __getattr__(name: str) -> Any:
    if name in _EXCEPTIONS:
        from phoenix_salt import _core

        return getattr(_core, name)
    raise AttributeError(f"module 'phoenix_salt' has no attribute {name!r}")
