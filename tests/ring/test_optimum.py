"""The builder's movement against the exact optimum (tests/ring/optimum.py, an integer program).

The solver is checked first on cases counted by hand and against least_moves (a lower bound
written apart, tests/ring/clusters.py); then the builder, settled round after round, must
end balanced (every device within floor..ceil of its target) and move at most 1.05 x the
fewest slots any such assignment moves. Part powers stay small (6-8) so that the solver
answers in about a second.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings

from ring import state as st
from ring.builder import build_state, rebalance
from ring.model import Device, Ring
from ring.tiers import build_tree
from tests.ring.clusters import cluster, least_moves, moved_slots, random_cluster, seeds
from tests.ring.optimum import fewest_moves

HOUR = 3600
# One slot on top of 5 %: the solver also picks which devices round up to ceil(target), and
# the builder's rounding may cost a slot more than the best one (seen once in 150 cases).
_ROUNDING_SLOTS = 1


def _settle(state: st.BuilderState) -> tuple[st.BuilderState, int]:
    """Rebalance min_part_hours apart until nothing moves: the final state, slots moved."""
    now, moved = HOUR, 0
    for _ in range(20):
        result = rebalance(state, now)
        if not result.changed:
            return state, moved
        moved += moved_slots(state.ring, result.state.ring)
        state = result.state
        now += state.min_part_hours * HOUR + 1
    raise AssertionError("rebalance never settled")


def _off_balance(ring: Ring) -> list[tuple[int, int, float]]:
    """Devices outside floor..ceil of their target: (id, slots, target)."""
    tree = build_tree(list(ring.devices), ring.width)
    held = Counter(ring.assignment)
    out = []
    for dev in ring.devices:
        target = tree.quota[tree.leaf_of[dev.id]] * ring.partitions
        if not math.floor(target + 1e-9) <= held[dev.id] <= math.ceil(target - 1e-9):
            out.append((dev.id, held[dev.id], target))
    return out


def _check_near_optimum(before: st.BuilderState, changed: st.BuilderState) -> tuple[int, int]:
    """Settle `changed`; assert it is balanced and near the optimum. Returns (moved, optimum)."""
    final, moved = _settle(changed)
    assert not _off_balance(final.ring), _off_balance(final.ring)
    best = fewest_moves(before.ring, list(final.devices)).moves
    print(f"moved {moved}, optimum {best}, ratio {moved / max(best, 1):.3f}")
    assert moved <= 1.05 * best + _ROUNDING_SLOTS, (moved, best)
    return moved, best


def test_solver_counts_a_flat_add_by_hand() -> None:
    # 3 devices of width 3 hold every partition; a 4th takes 3/4 of 16 partitions, one move
    # each, and no other slot needs to move.
    devices = cluster(1, 1, 3, 1)
    state = build_state(devices, 4, 3)
    new = Device(99, "127.0.0.1:9999", 1.0, "r0/z0/n9/d0")
    best = fewest_moves(state.ring, [*devices, new])
    assert best.moves == 12
    assert all(len(set(ids)) == 3 for ids in best.assignment)


def test_solver_counts_a_removal_by_hand() -> None:
    devices = cluster(1, 2, 2, 1)
    state = build_state(devices, 5, 2)
    own = Counter(state.ring.assignment)[0]
    assert fewest_moves(state.ring, devices[1:]).moves == own


def test_solver_keeps_the_spread_caps() -> None:
    # Two zones of 2 nodes, width 2: one slot per zone. Adding a node to zone 0 moves only
    # zone-0 slots (a zone-1 slot into zone 0 would break its cap).
    devices = cluster(1, 2, 2, 1)
    state = build_state(devices, 5, 2)
    new = Device(99, "127.0.0.1:9999", 1.0, "r0/z0/n9/d0")
    best = fewest_moves(state.ring, [*devices, new])
    zone = {d.id: d.zone for d in [*devices, new]}
    for ids in best.assignment:
        assert sorted(zone[i] for i in ids) == ["r0/z0", "r0/z1"]


@settings(max_examples=10, deadline=None)
@given(seeds)
def test_lower_bound_never_exceeds_the_optimum(seed: int) -> None:
    rng = random.Random(seed)
    width = rng.choice([3, 6])
    devices = random_cluster(rng, width, max_devices=16)
    print(f"seed={seed} width={width} devices={len(devices)}")
    state = build_state(devices, 6, width, seed=seed)
    after = [d for d in devices if d.id != rng.choice(devices).id]
    if len(after) < width:
        after = devices
    assert least_moves(state.ring, after) <= fewest_moves(state.ring, after).moves


# The case issue 4 left open: 2 regions x 3 zones x 3 nodes x 1 device, width 9. A device
# added to a node that has one already shares its node's single slot per partition, and the
# zone (2 of 9) and region (5 of 9) caps bind too: most partitions that lack the node have
# the zone full, so the new device gets in only by moving a zone-mate on first.
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tight_cluster_add_is_near_the_optimum(seed: int) -> None:
    devices = cluster(2, 3, 3, 1)
    state = build_state(devices, 8, 9, seed=seed)
    home = random.Random(seed).choice(devices).domain.rsplit("/", 1)[0]
    new = Device(1000, "127.0.0.1:9999", 1.0, f"{home}/new")
    _, best = _check_near_optimum(state, st.add_device(state, new))
    # Above the naive share (256 x 9 / 19 = 121 slots) and least_moves: the joint node, zone
    # and region caps cost moves that no count per domain sees.
    assert best > least_moves(state.ring, [*devices, new]) >= 121


def _tight(rng: random.Random, width: int) -> list[Device]:
    """A symmetric cluster where a partition uses a third of all devices or more."""
    while True:
        devices = cluster(rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3),
                          rng.randint(1, 2))
        if width < len(devices) < 3 * width:
            return devices


def _change(
    rng: random.Random, state: st.BuilderState, devices: list[Device], weights: list[float]
) -> st.BuilderState:
    """Add a device (to an existing node or a new one) or remove one, by the dice."""
    if rng.random() < 0.5 and len(devices) > state.ring.width:
        return st.remove_device(state, rng.choice(devices).id)
    node = rng.choice(devices).domain.rsplit("/", 1)[0]
    if rng.random() < 0.3:
        node = node.rsplit("/", 1)[0] + "/nnew"
    return st.add_device(state, Device(1000, "127.0.0.1:9999", rng.choice(weights), f"{node}/x"))


def _check_small(seed: int, part_power: int) -> None:
    rng = random.Random(seed)
    width = rng.choice([3, 6, 9])
    tight = rng.random() < 0.5
    devices = _tight(rng, width) if tight else random_cluster(rng, width, max_devices=24)
    print(f"seed={seed} width={width} devices={len(devices)} tight={tight}")
    state = build_state(devices, part_power, width, seed=seed)
    weights = [1.0] if tight else [0.5, 1.0, 2.0]
    _check_near_optimum(state, _change(rng, state, devices, weights))


@settings(max_examples=8, deadline=None)
@given(seeds)
def test_one_change_moves_near_the_optimum(seed: int) -> None:
    _check_small(seed, part_power=6)


@pytest.mark.long
@settings(max_examples=300, deadline=None)
@given(seeds)
def test_one_change_moves_near_the_optimum_long(seed: int) -> None:
    _check_small(seed, part_power=8)
