"""`make demo` runs end to end: the key of a minion the registry does not know waits, and is
accepted once AutoScaling's launch reaches the registry; its first highstate runs once and
lets the launch go on; when the minion's master hangs, the minion follows to the live master
without running its first highstate again; a replacement master booted through
`phoenix master-bootstrap` serves the minion with no key action once the last original
master is killed."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_runs_the_main_job() -> None:
    # Its own process, as `make demo` runs it: the demo stops every process it started on
    # the way out, which in this process would include the test session's emulator.
    result = subprocess.run(
        [sys.executable, "-m", "phoenix_salt.lab.demo"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "key is pending: the registry does not know it" in result.stdout
    assert "accepted and pinned" in result.stdout
    assert "its launch waits for its first highstate" in result.stdout
    assert "lifecycle action CONTINUE" in result.stdout
    assert "its first highstate not run again" in result.stdout
    assert "pre-seeded the key" in result.stdout
    assert "the beacon restarted the minion" in result.stdout
    assert "key pair existing, 1 pinned key(s) pre-seeded, registered as launching" in result.stdout
    assert "pending keys there: 0; 'master key has changed' never logged" in result.stdout
