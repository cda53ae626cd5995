"""Ring benchmark: build time, lookup cost, and moved fraction against the optimum.

Seeded and self-contained (no cluster needed). Prints one table; never asserts a time.
    .venv/bin/python bench/ring_bench.py [--part-power 16] [--devices 100] [--seed 1]
Scenarios start from a settled ring of equal devices spread over 2 regions x 5 zones and
rebalance round after round (min_part_hours apart) until nothing moves. "optimum" is the
least movement that brings every device up to its new target (each move fills one slot of
one device below target); "share" is what the weights alone ask for, which the spread rule
may forbid (here each region is capped at 3 of 6 slots, so weight added in one region only
takes slots from that region's devices).
A second table runs small clusters at a small part power (9) where the exact optimum can be
solved (tests/ring/optimum.py, needs scipy from the [test] extra; without it the column
shows the count bound above): a tight cluster (2 regions x 3 zones x 3 nodes x 1 device,
width 9: a partition uses half of all devices, so node, zone and region caps all bind) and
a mixed-weight one (3 uneven regions, weights 0.5-3, width 6).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ring import ringfile
from ring import state as st
from ring.builder import build_state, rebalance
from ring.model import Device, Ring
from ring.ringset import RingSet
from ring.validate import balance_table, ok, validate

HOUR = 3600


def make_devices(count: int) -> list[Device]:
    """`count` equal devices, 4 per node, nodes round-robin over 2 regions x 5 zones."""
    out = []
    for i in range(count):
        node = i // 4
        zone = node % 10
        domain = f"r{zone % 2}/z{zone}/n{node}/d{i % 4}"
        out.append(Device(i, f"127.0.0.1:{7000 + node}", 1.0, domain))
    return out


def moved(a: Ring, b: Ring) -> int:
    return sum(x != y for x, y in zip(a.assignment, b.assignment, strict=True))


def settle(state: st.BuilderState) -> tuple[st.BuilderState, int, int, float]:
    """Rebalance until stable: final state, slots moved, rounds, seconds."""
    now, total, rounds, seconds = 10 * HOUR, 0, 0, 0.0
    while True:
        t0 = time.perf_counter()
        result = rebalance(state, now)
        seconds += time.perf_counter() - t0
        if not result.changed:
            return state, total, rounds, seconds
        total += moved(state.ring, result.state.ring)
        rounds += 1
        state = result.state
        now += state.min_part_hours * HOUR + 1


def lookup_us(ring: Ring, count: int = 200_000) -> float:
    keys = [f"bucket/object-{i}".encode() for i in range(1000)]
    partition_of, slots = ring.partition_of, ring.slots
    t0 = time.perf_counter()
    for _ in range(count // 1000):
        for key in keys:
            slots(partition_of(key))
    return (time.perf_counter() - t0) / count * 1e6


def optimum(before: Ring, after: Ring) -> int:
    """Least slots moved from `before` to reach `after`'s per-device targets: every slot a
    device lacks below floor(target) comes in, every slot above ceil(target) or on a device
    that left goes out, one move each."""
    held = Counter(before.assignment)
    rows = balance_table(after)
    into = sum(max(0, math.floor(r.target_slots + 1e-9) - held[r.id]) for r in rows)
    out = sum(max(0, held[r.id] - math.ceil(r.target_slots - 1e-9)) for r in rows)
    out += sum(n for dev_id, n in held.items() if dev_id not in {r.id for r in rows})
    return max(into, out)


def scenarios(base: st.BuilderState, devices: list[Device]) -> list[tuple[str, st.BuilderState,
                                                                          float]]:
    """(name, changed state, slots moved if weights alone decided)."""
    total = base.ring.partitions * base.ring.width
    n = len(devices)
    first = devices[0]
    new = Device(n + 1000, "127.0.0.1:9999", 1.0, first.domain.rsplit("/", 1)[0] + "/dnew")
    counts: dict[int, int] = {}
    for dev_id in base.ring.assignment:
        counts[dev_id] = counts.get(dev_id, 0) + 1
    double = 2.0 * first.weight
    share_after = double / (n - 1 + double)
    return [
        ("add 1 device", st.add_device(base, new), total / (n + 1)),
        ("remove 1 device", st.remove_device(base, first.id), float(counts[first.id])),
        ("re-weight 1 device x2", st.set_weight(base, first.id, double),
         total * share_after - counts[first.id]),
    ]


def tight_devices() -> list[Device]:
    """2 regions x 3 zones x 3 nodes x 1 device."""
    return [
        Device(i, f"127.0.0.1:{7000 + i}", 1.0, f"r{i // 9}/z{i // 3}/n{i}/d0")
        for i in range(18)
    ]


def mixed_devices(seed: int) -> list[Device]:
    """16 devices, 2 per node, over 3 regions of 4, 2 and 1 zones (uneven), weights 0.5-3."""
    rng = random.Random(seed)
    zones = ["r0/z0", "r0/z1", "r0/z2", "r0/z3", "r1/z4", "r1/z5", "r2/z6"]
    out = []
    for i in range(16):
        node = i // 2
        out.append(Device(i, f"127.0.0.1:{7000 + node}", rng.choice([0.5, 1.0, 2.0, 3.0]),
                          f"{zones[node % len(zones)]}/n{node}/d{i}"))
    return out


def small_scenarios(part_power: int, seed: int) -> list[tuple[str, st.BuilderState,
                                                              st.BuilderState]]:
    """(name, settled state before, changed state) on the tight and mixed clusters."""
    tight = build_state(tight_devices(), part_power, 9, seed=seed)
    mixed = build_state(mixed_devices(seed), part_power, 6, seed=seed)
    heavy = max(mixed.devices, key=lambda d: (d.weight, d.id))
    light = min(mixed.devices, key=lambda d: (d.weight, d.id))
    return [
        ("tight: add to a node", tight,
         st.add_device(tight, Device(100, "127.0.0.1:9999", 1.0, "r1/z4/n12/new"))),
        ("tight: add a node", tight,
         st.add_device(tight, Device(100, "127.0.0.1:9999", 1.0, "r1/z4/nnew/new"))),
        ("tight: remove 1", tight, st.remove_device(tight, 4)),
        ("mixed: add w=2", mixed,
         st.add_device(mixed, Device(100, "127.0.0.1:9999", 2.0, "r1/z5/n0/new"))),
        ("mixed: remove heaviest", mixed, st.remove_device(mixed, heavy.id)),
        ("mixed: re-weight x4", mixed, st.set_weight(mixed, light.id, 4 * light.weight)),
    ]


def exact_solver() -> Callable[[Ring, list[Device]], int] | None:
    """The exact optimum's solver, or None without scipy (a test dependency only)."""
    try:
        from tests.ring.optimum import fewest_moves
    except ImportError:
        return None
    return lambda before, after: fewest_moves(before, after).moves


def print_small(part_power: int, seed: int) -> None:
    solve = exact_solver()
    kind = "exact" if solve is not None else "bound"
    print(f"small clusters, part_power={part_power}; optimum: {kind}")
    print(f"{'scenario':<24} {'moved':>8} {'optimum':>8} {'ratio':>6} {'rounds':>6} "
          f"{'time':>7} {'solve':>7}  valid")
    for name, before, changed in small_scenarios(part_power, seed):
        final, slots, rounds, seconds = settle(changed)
        t0 = time.perf_counter()
        if solve is not None:
            best = solve(before.ring, list(final.devices))
        else:
            best = optimum(before.ring, final.ring)
        solve_s = time.perf_counter() - t0
        ratio = slots / best if best else float("nan")
        print(f"{name:<24} {slots:>8} {best:>8} {ratio:>6.3f} {rounds:>6} {seconds:>6.2f}s "
              f"{solve_s:>6.1f}s  {ok(validate(final.ring))}")


def timed(fn: Callable[[], st.BuilderState]) -> tuple[st.BuilderState, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part-power", type=int, default=16)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--width", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--small-part-power", type=int, default=9,
                        help="part power of the small-cluster table (0 skips it)")
    args = parser.parse_args()
    devices = make_devices(args.devices)
    print(f"seed={args.seed} part_power={args.part_power} devices={args.devices} "
          f"width={args.width}")
    base, build_s = timed(lambda: build_state(devices, args.part_power, args.width,
                                              seed=args.seed))
    ring = base.ring
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"data-{args.width}.ring")
        t0 = time.perf_counter()
        ringfile.save_state(base, path)
        save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rings = RingSet(tmp)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(1000):
            rings.reload_if_changed()
        reload_us = (time.perf_counter() - t0) / 1000 * 1e6
        size = os.path.getsize(path)
    rows = [
        ("build", f"{build_s:.2f} s", "valid" if ok(validate(ring)) else "INVALID"),
        ("lookup partition_of+slots", f"{lookup_us(ring):.3f} us", ""),
        ("save ring file", f"{save_s * 1e3:.1f} ms", f"{size / 1e6:.2f} MB"),
        ("load ring file (RingSet)", f"{load_s * 1e3:.1f} ms", ""),
        ("reload_if_changed, unchanged", f"{reload_us:.1f} us", ""),
    ]
    print(f"{'measure':<32} {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:<32} {value:>12}  {note}")
    print()
    print(f"{'scenario':<24} {'moved':>8} {'optimum':>8} {'ratio':>6} {'share':>7} "
          f"{'fraction':>9} {'rounds':>6} {'time':>7}  valid")
    total = ring.partitions * ring.width
    for name, changed, share in scenarios(base, devices):
        final, slots, rounds, seconds = settle(changed)
        best = optimum(base.ring, final.ring)
        ratio = slots / best if best else float("nan")
        print(f"{name:<24} {slots:>8} {best:>8} {ratio:>6.3f} {share:>7.0f} "
              f"{slots / total:>9.4f} {rounds:>6} {seconds:>6.1f}s  {ok(validate(final.ring))}")
    if args.small_part_power:
        print()
        print_small(args.small_part_power, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
