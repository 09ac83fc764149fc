"""`make demo` runs end to end: the key of a minion the registry does not know waits, and is
accepted once AutoScaling's launch reaches the registry."""

from __future__ import annotations

import os
import signal

import pytest

from phoenix_salt.lab import demo

pytestmark = pytest.mark.integration


def test_the_demo_runs_the_main_job(capsys: pytest.CaptureFixture[str]) -> None:
    # The demo points this process at its own emulator and handles SIGTERM: undo both after.
    environment = dict(os.environ)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        assert demo.main([]) == 0
    finally:
        os.environ.clear()
        os.environ.update(environment)
        signal.signal(signal.SIGTERM, on_sigterm)
    printed = capsys.readouterr().out
    assert "key is pending: the registry does not know it" in printed
    assert "accepted and pinned" in printed
    assert "lifecycle action CONTINUE" in printed
