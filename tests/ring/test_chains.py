"""ring.chains on a hand-made build in progress: detours undone, counts and caps kept."""

from __future__ import annotations

import random
from array import array

from ring import chains
from ring.builder import build_state
from ring.tiers import build_tree
from ring.work import Work
from tests.ring.clusters import cluster

HOUR = 3600


def _work(original: list[int]) -> Work:
    """A rebalance of 5 devices (one zone, 5 nodes), width 2, 2 partitions, starting from
    `original`."""
    devices = cluster(1, 1, 5, 1)
    state = build_state(devices, 1, 2)
    work = Work(state, build_tree(devices, 2), HOUR, random.Random(0))
    work.slots = array("H", original)
    work.original = array("H", original)
    work.assigned = [0] * len(work.assigned)
    work.total_up()
    return work


def test_a_detour_is_undone() -> None:
    work = _work([0, 1, 2, 3])
    # Device 0 leaves partition 0 for device 4 and takes device 2's place in partition 1:
    # two moves where one (4 into partition 1) gives the same counts.
    work.move(0, 0, 4)
    work.move(1, 0, 0)
    counts = [work.slots_of(d) for d in range(5)]
    assert chains.cancel_detours(work)
    assert list(work.slots) == [0, 1, 4, 3]
    assert [work.slots_of(d) for d in range(5)] == counts
    assert not chains.cancel_detours(work)


def test_no_detour_no_change() -> None:
    work = _work([0, 1, 2, 3])
    work.move(0, 0, 4)  # one plain move: nothing to undo
    assert not chains.cancel_detours(work)
    assert list(work.slots) == [4, 1, 2, 3]


def test_a_detour_stays_where_the_caps_forbid_the_swap() -> None:
    # Device 4 already holds partition 1, so it cannot take device 0's place there.
    work = _work([0, 1, 4, 3])
    work.move(0, 0, 4)
    work.move(1, 1, 0)
    assert not chains.cancel_detours(work)
    assert list(work.slots) == [4, 1, 4, 0]
