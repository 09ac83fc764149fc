"""The phoenix-salt wheel holds what runs on masters and minions, and nothing of the lab."""

from __future__ import annotations

import re
from importlib.metadata import distribution

# The lab's own dependencies: a runtime module that imported one would fail on a master
# (psutil is one of Salt's own, the runtime may use it).
LAB_ONLY = re.compile(r"^\s*(import|from)\s+(phoenix_lab|moto|boto3|botocore)\b", re.M)


def test_the_installed_wheel_holds_no_test_harness() -> None:
    dist = distribution("phoenix-salt")
    files = [str(f) for f in dist.files or []]
    assert any(f.endswith("phoenix_salt/_core.pyi") for f in files), files[:10]
    assert [f for f in files if "/lab/" in f or "phoenix_lab" in f] == []
    python = [f for f in files if f.endswith(".py")]
    # The package, its CLI and the Salt modules it ships.
    assert len(python) > 20
    importing = [f for f in python if LAB_ONLY.search(dist.locate_file(f).read_text())]
    assert importing == []


def test_the_lab_is_a_package_of_its_own_declaring_what_it_needs() -> None:
    lab = distribution("phoenix-lab")
    needs = {re.split(r"[\[<>=;\s]", r, maxsplit=1)[0].lower() for r in lab.requires or []}
    assert {"phoenix-salt", "moto", "boto3", "psutil"} <= needs
