"""The rebalancer's pure parts: verdicts, plans, the pacer, progress records, rebuild windows."""

from __future__ import annotations

import dataclasses
import os
import random

from hypothesis import given, settings
from hypothesis import strategies as hs

from ring.builder import build_state, rebalance
from ring.model import Device, Ring
from ring.state import add_device, fail_device
from storage import rebalance_plan as plan
from storage.erasure import Codec


def _devices(n: int) -> list[Device]:
    return [Device(i, f"127.0.0.1:{7000 + i}", 1.0, f"r/z/n{i}/d0") for i in range(n)]


def _grown(n: int, width: int = 6, part_power: int = 6) -> tuple[Ring, Ring]:
    state = build_state(_devices(n), part_power, width)
    new = Device(n, f"127.0.0.1:{7000 + n}", 1.0, f"r/z/n{n}/d0")
    return state.ring, rebalance(add_device(state, new), now=10**9).state.ring


def _uniform_sizes(ring: Ring, per_slot: int) -> plan.Sizes:
    sizes: dict[int, dict[int, plan.PartSize]] = {}
    for p in range(ring.partitions):
        for dev in ring.slot_ids(p):
            sizes.setdefault(dev, {})[p] = plan.PartSize(2, per_slot)
    return sizes


def test_verdict_and_owned_slot() -> None:
    old, new = _grown(6)
    moved = [(p, i) for p in range(new.partitions) for i in range(6)
             if old.slot_ids(p)[i] != new.slot_ids(p)[i]]
    assert moved
    p, i = moved[0]
    key = plan.fragment_key(b"d" * 16, i)
    assert plan.verdict(new, old.slot_ids(p)[i], p, key) is plan.Verdict.MOVE
    assert plan.verdict(new, new.slot_ids(p)[i], p, key) is plan.Verdict.KEEP
    assert plan.verdict(new, 0, p, b"x") is plan.Verdict.STRAY
    assert plan.verdict(new, 0, p, b"d" * 16 + bytes([6])) is plan.Verdict.STRAY
    assert plan.owned_slot(new, new.slot_ids(p)[i], p) == i
    assert plan.owned_slot(new, 999, p) is None
    assert plan.data_id_of(key) == b"d" * 16 and plan.fragment_index(key) == i


def test_plan_add_device_moves_only_to_it_and_matches_optimum() -> None:
    old, new = _grown(6)
    sizes = _uniform_sizes(old, 1000)
    moves = plan.plan_moves(old, new, sizes, bytes_per_s=500.0)
    assert moves.slots_moved > 0
    assert moves.bytes_moved == 1000 * moves.slots_moved
    assert moves.fragments_moved == 2 * moves.slots_moved
    newcomer = next(f for f in moves.nodes if f.addr == "127.0.0.1:7006")
    assert newcomer.bytes_in == moves.bytes_moved and newcomer.bytes_out == 0
    # 1/7 of all slot bytes is the least any placement must carry to the new device.
    total = 1000 * old.partitions * old.width
    assert moves.optimal_bytes == total // 7 or abs(moves.optimal_bytes - total / 7) < 2
    assert moves.bytes_moved <= 1.1 * moves.optimal_bytes
    busiest = max(f.bytes_out for f in moves.nodes)
    assert moves.eta_s == busiest / 500.0


def test_plan_without_sizes_from_a_node_uses_its_peers() -> None:
    old, new = _grown(6)
    sizes = dict(_uniform_sizes(old, 1000))
    del sizes[0]  # device 0 did not answer
    moves = plan.plan_moves(old, new, sizes)
    assert moves.bytes_moved == 1000 * moves.slots_moved
    assert moves.eta_s is None


def test_plan_after_fail_counts_nothing_from_the_dead_device_twice() -> None:
    state = build_state(_devices(7), 6, 6)
    after = rebalance(fail_device(state, 3), now=10**9).state.ring
    moves = plan.plan_moves(state.ring, after, _uniform_sizes(state.ring, 10))
    lost = sum(1 for p in range(after.partitions) if 3 in state.ring.slot_ids(p))
    assert moves.slots_moved >= lost
    assert not any(3 in after.slot_ids(p) for p in range(after.partitions))


def test_k_candidates() -> None:
    assert plan.k_candidates(6, 4, 5) == [4, 1, 3, 2]  # each checked by a 5th fragment
    assert plan.k_candidates(6, 4, 4) == [4, 1, 3, 2]  # 4 = the guess: taken unchecked
    assert plan.k_candidates(6, 4, 3) == [1, 2]  # never an unchecked k below the guess
    assert plan.k_candidates(6, 4, 1) == []  # an orphan: nothing to rebuild from
    assert plan.k_candidates(3, 1, 1) == [1]  # replication: one copy is enough
    assert plan.k_candidates(3, None, 2) == [1]
    assert plan.default_k(6) == 4 and plan.default_k(3) == 1


def test_pace_holds_the_rate_over_a_window() -> None:
    seed = int(os.environ.get("COFFRE_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    pace = plan.Pace(10 * plan.MB)
    now, sent = 0.0, 0
    while now < 30.0:
        n = rng.randrange(1, 2 * 1024 * 1024)
        now += pace.take(n, now) + rng.random() * 0.001
        sent += n
    rate = sent / now
    assert 0.8 * 10 * plan.MB <= rate <= 1.2 * 10 * plan.MB
    assert plan.Pace(0).take(10**12, 0.0) == 0.0


def test_progress_round_trip_and_version_change() -> None:
    p = plan.Progress().with_versions({"data-6.ring": 3})
    p = p.unit_done("data-6.ring:5", plan.Counters(bytes_moved=10, fragments_moved=1))
    p = p.count(plan.Counters(errors=2))
    back = plan.Progress.from_json(p.to_json())
    assert back == p
    assert back.since_change.bytes_moved == 10 and back.since_change.errors == 2
    # A change while data still moves keeps counting; one after a settled pass restarts.
    moving = back.with_versions({"data-6.ring": 4})
    assert moving.done == frozenset() and moving.since_change == back.since_change
    assert not moving.settled
    settled = dataclasses.replace(moving, settled=True)
    changed = settled.with_versions({"data-6.ring": 5})
    assert changed.done == frozenset() and changed.since_change == plan.Counters()
    assert changed.total == back.total
    assert back.with_versions({"data-6.ring": 3}) is back
    assert plan.Progress.from_json({"format": 99}) == plan.Progress()
    assert plan.Progress.from_json("garbage") == plan.Progress()
    assert plan.Progress.from_json({"format": 1, "versions": 5}) == plan.Progress()


def test_aggregate_done_needs_every_node() -> None:
    ok = {"done": True, "bytes_moved": 5, "bytes_left": 0, "errors": 0, "eta_s": 0.0}
    busy = {"done": False, "bytes_moved": 1, "bytes_left": 9, "errors": 1, "eta_s": 3.0}
    doc = plan.aggregate({"a:1": ok, "b:2": ok})
    assert doc["done"] and doc["bytes_moved"] == 10 and doc["errors"] == 0
    doc = plan.aggregate({"a:1": ok, "b:2": busy})
    assert not doc["done"] and doc["bytes_left"] == 9 and doc["eta_s"] == 3.0
    doc = plan.aggregate({"a:1": ok, "b:2": None})
    assert not doc["done"] and doc["unreachable"] == ["b:2"] and doc["errors"] == 1
    doc = plan.aggregate({"a:1": ok}, expected=["a:1", "c:3"])
    assert not doc["done"] and doc["unreachable"] == ["c:3"]
    assert plan.progress_bar(1, 4, 8) == "[##......]  25.0%"


@settings(max_examples=40, deadline=None)
@given(k=hs.integers(1, 6), m=hs.integers(1, 3), data=hs.binary(min_size=0, max_size=5000),
       cut=hs.integers(1, 700), seed=hs.integers(0, 2**32 - 1))
def test_rebuild_any_window_of_any_fragment(k: int, m: int, data: bytes, cut: int,
                                            seed: int) -> None:
    """A fragment rebuilt window by window from any k others equals the original, for
    windows that ignore the stripe layout; a wrong k is caught by the extra source."""
    rng = random.Random(seed)
    codec = Codec(k, m)
    block = max(1, -(-len(data) // k))
    frags = [bytes(b) for b in codec.encode(codec.split(data, block))]
    want = rng.randrange(k + m)
    others = [i for i in range(k + m) if i != want]
    rng.shuffle(others)
    use, check = sorted(others[:k]), (others[k] if len(others) > k else None)
    rebuilt = b""
    for off in range(0, block, cut):
        window = {i: f[off:off + cut] for i, f in enumerate(frags)}
        out, ok = plan.derive(codec, window, use, want, check)
        assert ok
        rebuilt += out
    assert rebuilt == frags[want]
    if k >= 2:
        # Random bytes (a repetitive body can satisfy a wrong k: then the guess decides).
        noise = rng.randbytes(64 * k)
        frags = [bytes(b) for b in codec.encode(codec.split(noise, 64))]
        wrong = Codec(k - 1, m + 1)
        _, ok = plan.derive(wrong, dict(enumerate(frags)), use[: k - 1], want, use[k - 1])
        assert not ok
