"""Three minutes of ``make soak`` (lab/phoenix_lab/soak.py): the demo's fleet behind the fault
injector, random changes and AWS faults drawn from a fixed seed, the invariants watched
throughout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phoenix_lab.demo import Demo
from phoenix_lab.soak import Soak, set_up
from tests.conftest import running_demo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

SEED = 20261207
MINUTES = 3


@pytest.fixture
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    with running_demo(request, masters=3, minions=4, join=1) as played:
        yield played


def test_a_short_soak_keeps_every_invariant(demo: Demo) -> None:
    proxy = set_up(demo, demo.workdir)
    try:
        soak = Soak(demo, proxy, MINUTES * 60, SEED, bound=300)
        summary = soak.run()
    finally:
        proxy.stop()
    print(summary.render())
    assert summary.violations == []
    # It did something: changes made, lifecycle events applied through them, and the
    # watcher looked at keys, drop-ins and the dead-letter queue all along.
    assert summary.changes and all(c.until_reached_s is not None for c in summary.changes)
    assert summary.events_sent > 0
    assert soak.watcher.keys_seen and soak.watcher.drop_ins_read > 100
    assert soak.watcher.dead_letter_checks > 10
