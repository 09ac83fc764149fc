"""Salt's own loaders (no daemons) find Phoenix's modules through the entry point alone."""

from __future__ import annotations

from pathlib import Path

import salt.config
import salt.loader


def _master_opts(tmp_path: Path) -> dict:
    opts = salt.config.master_config(None)
    opts.update(
        {
            "cachedir": str(tmp_path / "cache"),
            "extension_modules": str(tmp_path / "extmods"),
            "phoenix": {"cluster": "unit"},
        }
    )
    # Found through the entry point alone: no *_dirs option points at the modules.
    for key in ("runner_dirs", "engines_dirs", "beacons_dirs"):
        assert not opts.get(key)
    return opts


def test_the_runner_loader_finds_and_runs_phoenix(tmp_path: Path) -> None:
    runners = salt.loader.runner(_master_opts(tmp_path))
    assert "phoenix.version" in runners
    versions = runners["phoenix.version"]()
    assert set(versions) == {"phoenix_salt", "core", "salt"}
    assert runners["phoenix.config"]()["masters_table"] == "phoenix-unit-masters"


def test_the_engine_loader_finds_instance_manager(tmp_path: Path) -> None:
    opts = _master_opts(tmp_path)
    engines = salt.loader.engines(opts, {}, {}, {})
    assert "instance_manager.start" in engines


def test_the_beacon_loader_finds_master_list(tmp_path: Path) -> None:
    opts = salt.config.minion_config(None)
    opts.update({"cachedir": str(tmp_path / "cache"), "phoenix": {"cluster": "unit"}, "id": "m1"})
    beacons = salt.loader.beacons(opts, {})
    assert "master_list.beacon" in beacons
    assert beacons["master_list.validate"]([{"interval": 1}]) == (True, "master_list: valid")
    valid, reason = beacons["master_list.validate"]({"interval": 1})
    assert valid is False and "must be a list" in reason


def test_the_minion_loader_finds_the_signed_highstate(tmp_path: Path) -> None:
    opts = salt.config.minion_config(None)
    opts.update({"cachedir": str(tmp_path / "cache"), "phoenix": {"cluster": "unit"}, "id": "m1"})
    assert not opts.get("module_dirs")
    functions = salt.loader.minion_mods(opts)
    assert "phoenix_highstate.apply" in functions
