"""Registration with Salt: the entry point, the shipped loader modules, __virtual__."""

from __future__ import annotations

import filecmp
import importlib.util
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from phoenix_salt import loader

REPO = Path(__file__).resolve().parents[2]
SHIMS = {
    "modules": ("_modules", "phoenix_highstate.py"),
    "engines": ("_engines", "instance_manager.py"),
    "runners": ("_runners", "phoenix.py"),
    "beacons": ("_beacons", "master_list.py"),
}


def test_the_entry_point_is_registered_with_salt() -> None:
    entry_points = metadata.entry_points(group="salt.loader")
    phoenix = [ep for ep in entry_points if ep.value == "phoenix_salt.loader:loader_dirs"]
    assert phoenix, f"no phoenix-salt entry point in {list(entry_points)}"
    assert phoenix[0].load() is loader.loader_dirs


@pytest.mark.parametrize("loader_type", sorted(SHIMS))
def test_the_wheel_ships_the_one_source_of_each_loader_module(loader_type: str) -> None:
    folders = loader.loader_dirs()[loader_type]
    assert len(folders) == 1
    shipped = Path(folders[0])
    source_dir, module = SHIMS[loader_type]
    # The installed copy, not the source tree: the test must not pass from a repo checkout.
    assert "site-packages" in shipped.parts, shipped
    assert REPO / "python" not in shipped.parents
    assert filecmp.cmp(shipped / module, REPO / source_dir / module, shallow=False)


def _load_shim(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("loader_type", sorted(SHIMS))
def test_virtual_says_why_when_the_core_is_missing(
    loader_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_dir, module = SHIMS[loader_type]
    shim = _load_shim(REPO / source_dir / module, f"shim_{loader_type}")
    assert isinstance(shim.__virtual__(), str)
    # A None entry in sys.modules makes the import raise ImportError, as a core built for
    # another platform would.
    monkeypatch.setitem(sys.modules, "phoenix_salt._core", None)
    available, reason = shim.__virtual__()
    assert available is False
    assert "phoenix_salt._core cannot be imported" in reason


def test_importing_every_module_starts_no_thread() -> None:
    code = """
import os, threading
import phoenix_salt, phoenix_salt._core, phoenix_salt.config, phoenix_salt.cli, phoenix_salt.loader
from phoenix_salt import _core
_core.Session(_core.Config.from_json('{"cluster": "x"}'))
print(threading.active_count(), len(os.listdir('/proc/self/task')))
"""
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.split()
    assert output == ["1", "1"], f"python threads, OS threads: {output}"
