"""Reading a Salt config file the way the daemons do (the file, then its ``.d/*.conf``
includes), for the ``phoenix`` command, which runs outside any Salt daemon."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

DEFAULT_PATHS = (Path("/etc/salt/master"), Path("/etc/salt/minion"))


def default_path() -> Path:
    """The master's config where there is one, else the minion's."""
    for path in DEFAULT_PATHS:
        if path.is_file():
            return path
    return DEFAULT_PATHS[0]


def read(path: Path) -> dict[str, Any]:
    """The options of ``path`` merged with its includes, without Salt's defaults.

    Raises FileNotFoundError when ``path`` does not exist.
    """
    import salt.config

    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such Salt config file", str(path))
    opts: dict[str, Any] = salt.config.load_config(
        str(path), env_var="", default_path=str(path), exit_on_config_errors=False
    )
    default_include = opts.get("default_include", f"{path.name}.d/*.conf")
    opts.update(salt.config.include_config(default_include, str(path), verbose=False))
    opts.update(salt.config.include_config(opts.get("include", []), str(path), verbose=True))
    return opts
