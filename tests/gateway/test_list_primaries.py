"""Which replica sends each shard's listing page: spread over the nodes (a listing waits for
its busiest node), always one of the partition's own replicas."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.list_replicas import pick_primaries
from ring.model import Device


def _device(node: int, dev: int) -> Device:
    return Device(node * 10 + dev, f"127.0.0.1:{9100 + node}", 1.0, f"r/z/n{node}/d{dev}")


def test_first_replicas_on_one_node_are_spread() -> None:
    # Every partition lists node 0 first (what made one node send half of a root listing).
    nodes = 6
    replicas = [[_device(0, 0), _device(1 + i % 5, 0), _device(1 + (i + 1) % 5, 0)]
                for i in range(8)]
    picks = pick_primaries(replicas)
    per_node = Counter(d.addr for d in picks)
    assert max(per_node.values()) <= 2, per_node
    assert len(per_node) >= min(nodes, 5)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 40), st.integers(1, 3), st.randoms())
def test_each_pick_is_a_least_loaded_replica(nodes: int, partitions: int, width: int,
                                         rnd: random.Random) -> None:
    width = min(width, nodes)
    replicas = [[_device(n, 0) for n in rnd.sample(range(nodes), width)]
                for _ in range(partitions)]
    picks = pick_primaries(replicas)
    assert all(p in r for p, r in zip(picks, replicas, strict=True))
    # Read back from the picks alone: each partition went to one of its replicas' nodes
    # that had the fewest pages so far (always taking the first replica breaks this as soon
    # as a node is first for two partitions while another replica's node has none).
    load: Counter[str] = Counter()
    for pick, devices in zip(picks, replicas, strict=True):
        assert load[pick.addr] == min(load[d.addr] for d in devices), (pick, devices, load)
        load[pick.addr] += 1
