"""The demo's boot-to-first-ping figure (lab.first_ping) on a real master and minion: a
minion that boots is timed from its boot to its answer; one that never answers has no
figure and is named."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from phoenix_lab.cluster import Cluster
from phoenix_lab.emulator import Emulator
from phoenix_lab.first_ping import FirstPings
from phoenix_lab.processes import wait_for
from phoenix_lab.stack import provision

pytestmark = pytest.mark.integration


def test_a_booted_minion_is_timed_to_its_first_answer_and_a_silent_one_is_named(
    make_cluster: Callable[..., Cluster], aws: Emulator
) -> None:
    stack = provision(aws, "test")
    cluster = make_cluster(
        stack.phoenix_block(),
        masters=1,
        minions=1,
        master_opts={"auto_accept": True},
        start_minions=False,
    )
    (master,), (minion,) = cluster.masters, cluster.minions
    with FirstPings([master]) as first_pings:
        first_pings.booting("i-0never0booted00")
        first_pings.booting(minion.minion_id)
        minion.start()
        wait_for(
            lambda: minion.minion_id in first_pings.answered or first_pings.error,
            60,
            "the minion's first answer",
        )
        assert not first_pings.wait(2), "an id that never booted cannot answer"
    assert first_pings.error is None
    assert set(first_pings.answered) == {minion.minion_id}
    assert first_pings.answered[minion.minion_id] > 0
    # One minion never answered: the step has no figure, and its summary names it.
    assert first_pings.slowest() is None
    assert "never answered: i-0never0booted00" in first_pings.summary()
