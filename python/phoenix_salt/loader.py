"""How Salt finds Phoenix's loader modules: the ``salt.loader`` entry point.

The wheel ships the top-level ``_modules/ _engines/ _runners/ _beacons/`` folders of the
source tree as ``phoenix_salt/salt_modules/{modules,engines,runners,beacons}``; Salt asks
this function for the folders of each loader type and imports the modules it finds there.

The shims import nothing heavy at import time; they call :func:`core_unavailable` from
``__virtual__`` so that a missing or broken native core makes Salt say why.
"""

from __future__ import annotations

import importlib
from pathlib import Path

MODULES = Path(__file__).resolve().parent / "salt_modules"

# Salt's loader type -> folder in the wheel.
LOADER_TYPES = {
    "modules": "modules",
    "engines": "engines",
    "runners": "runners",
    "beacons": "beacons",
}


def loader_dirs() -> dict[str, list[str]]:
    """Salt's entry point: ``{loader type: [folders]}``."""
    return {
        loader_type: [str(MODULES / folder)]
        for loader_type, folder in LOADER_TYPES.items()
        if (MODULES / folder).is_dir()
    }


def core_unavailable() -> str | None:
    """Why the native core cannot be used here, or None when it can."""
    try:
        importlib.import_module("phoenix_salt._core")
    except ImportError as exc:
        return (
            f"phoenix_salt._core cannot be imported ({exc}); reinstall phoenix-salt for this Python"
        )
    return None
