"""How a Phoenix runner function tells ``salt-run`` that it failed.

``salt-run`` exits with the ``retcode`` of a returned dict; an exception would print a
traceback instead, and ``SaltInvocationError`` prints the usage but exits 0. So runner
functions return ``{"error": ..., "retcode": 1}`` on failure, which reads well with every
outputter (``--out=json`` included), and log the same line for the master log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_BAD_ARGUMENTS = 2

F = TypeVar("F", bound=Callable[..., Any])


class ArgumentError(ValueError):
    """A runner was called with arguments it cannot use; the message says which and why."""


def failed(message: str, retcode: int = EXIT_FAILED, **fields: Any) -> dict[str, Any]:
    """The return value of a failed runner call."""
    return {"error": message, **fields, "retcode": retcode}


def reports_failures(function: F) -> F:
    """Turns Phoenix errors and argument errors raised by a runner function into a failed
    result, so ``salt-run`` exits non-zero with one readable line."""
    import phoenix_salt

    @functools.wraps(function)
    def runner_function(*args: Any, **kwargs: Any) -> Any:
        name = f"{function.__module__.rsplit('.', 1)[-1]}.{function.__name__}"
        try:
            return function(*args, **kwargs)
        except ArgumentError as exc:
            log.error("%s: %s", name, exc)
            return failed(f"{name}: {exc}", EXIT_BAD_ARGUMENTS)
        except phoenix_salt.PhoenixError as exc:
            log.error("%s failed: %s: %s", name, type(exc).__name__, exc)
            return failed(f"{name} failed: {type(exc).__name__}: {exc}", kind=type(exc).__name__)

    return runner_function  # type: ignore[return-value]
