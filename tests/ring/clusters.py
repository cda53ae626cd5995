"""Test helpers: random clusters (hypothesis strategies) and small fixed ones."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import strategies as hs

from ring.model import Device, Ring
from ring.tiers import build_tree
from tests.ring.caps import spread_limits


def cluster(
    regions: int, zones: int, nodes: int, devs: int, weight: float = 1.0, port: int = 7000
) -> list[Device]:
    """A symmetric cluster: regions x zones x nodes x devices, one node process per node."""
    out: list[Device] = []
    for r in range(regions):
        for z in range(zones):
            for n in range(nodes):
                addr = f"127.0.0.1:{port + len(out) // devs}"
                for d in range(devs):
                    out.append(Device(len(out), addr, weight, f"r{r}/z{z}/n{n}/d{d}"))
    return out


def random_cluster(rng: random.Random, width: int, max_devices: int = 64) -> list[Device]:
    """1-5 regions, 1-8 zones in all, up to `max_devices` devices with mixed weights."""
    regions = rng.randint(1, 5)
    zones = rng.randint(regions, 8)
    count = rng.randint(max(width, zones), max_devices)
    zone_paths = [f"r{z % regions}/z{z}" for z in range(zones)]
    out = []
    for i in range(count):
        zone = zone_paths[i] if i < zones else rng.choice(zone_paths)
        node = rng.randint(0, 3)
        weight = rng.choice([1.0, 1.0, 2.0, 3.0, 0.5])
        out.append(Device(i, f"127.0.0.1:{7000 + i}", weight, f"{zone}/n{node}/d{i}"))
    return out


seeds = hs.integers(min_value=0, max_value=2**32 - 1)


def slot_counts(ring: Ring) -> Counter[int]:
    return Counter(ring.assignment)


def moved_slots(old: Ring, new: Ring) -> int:
    return sum(a != b for a, b in zip(old.assignment, new.assignment, strict=True))


def max_moved_per_partition(old: Ring, new: Ring) -> int:
    w = new.width
    most = 0
    for p in range(new.partitions):
        a = old.assignment[p * w : (p + 1) * w]
        b = new.assignment[p * w : (p + 1) * w]
        most = max(most, sum(x != y for x, y in zip(a, b, strict=True)))
    return most


def spread_ok(ring: Ring) -> bool:
    """No domain holds more slots of a partition than the cluster's shape forces on it."""
    limit = spread_limits(list(ring.devices), ring.width)
    w = ring.width
    for p in range(ring.partitions):
        counts: Counter[str] = Counter()
        for dev in ring.slots(p):
            parts = dev.domain.split("/")
            counts.update("/".join(parts[:d]) for d in range(1, 5))
        if any(n > limit[k] for k, n in counts.items()):
            return False
    return len(ring.assignment) == ring.partitions * w


def weighted_quotas_fit(devices: list[Device], width: int) -> bool:
    """True when every domain's weighted share of a partition's slots stays within its
    spread limit, so that every device can get its weighted share: the "weights allow" of
    the balance and movement goals."""
    weight: dict[str, float] = {}
    for dev in devices:
        parts = dev.domain.split("/")
        for depth in range(5):
            key = "/".join(parts[:depth])
            weight[key] = weight.get(key, 0.0) + dev.weight
    limit = spread_limits(devices, width)
    return all(width * w / weight[""] <= limit[k] + 1e-9 for k, w in weight.items())


def _domain_keys(dev: Device) -> list[str]:
    """The device's region, zone and node paths, then a key of its own ("#id")."""
    parts = dev.domain.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, 4)] + [f"#{dev.id}"]


def _bounds(devices: list[Device], width: int, partitions: int) -> tuple[
        dict[str, int], Counter[str], Counter[str]]:
    """Per domain key: the spread cap, and the sums of floor and ceil of its devices'
    targets (the builder's quota rule: weight, clamped by the caps)."""
    tree = build_tree(devices, width)
    limit = spread_limits(devices, width)
    cap: dict[str, int] = {}
    floors: Counter[str] = Counter()
    ceils: Counter[str] = Counter()
    for dev in devices:
        target = tree.quota[tree.leaf_of[dev.id]] * partitions
        for depth, key in enumerate(_domain_keys(dev)):
            cap[key] = limit[key] if depth < 3 else 1
            floors[key] += math.floor(target + 1e-9)
            ceils[key] += math.ceil(target - 1e-9)
    return cap, floors, ceils


def least_moves(before: Ring, devices: list[Device]) -> int:
    """A lower bound of the slots any valid assignment of `devices` (caps kept, every device
    within floor..ceil of its target) must move away from `before`. Slots on devices that
    left move (G); a partition holding more of a domain than its new cap moves the excess
    (C); and at each level, a domain must gain what its devices' floors ask beyond what it
    holds, but only G-slots of partitions where it has room can come in without an extra
    move, and it must shed what it holds beyond its ceilings. Each extra move enters one
    domain and leaves one at every level, so the largest level sum bounds them (V).
    G + C + V <= the optimum; written apart from the builder on purpose."""
    w = before.width
    cap, floors, ceils = _bounds(devices, w, before.partitions)
    live = {d.id: _domain_keys(d) for d in devices}
    held: Counter[str] = Counter()
    room: Counter[str] = Counter()  # slots that may enter without an extra move
    loose: Counter[str] = Counter()  # slots held in partitions that must move anyway
    gone = forced = 0
    for p in range(before.partitions):
        kept: Counter[str] = Counter()
        for dev in before.assignment[p * w : (p + 1) * w]:
            kept.update(live.get(dev, ()))
        lost = w - sum(n for key, n in kept.items() if key.startswith("#"))
        over = [0] * 4
        for key, n in kept.items():
            over[_level(key)] += max(0, n - cap[key])
        gone += lost
        forced += max(over)
        for key, c in cap.items():
            space = max(0, c - kept[key])
            room[key] += space if max(over) else min(space, lost)
        if max(over):
            loose.update(kept)
        held.update(kept)
    extra = 0
    for level in range(4):
        keys = [k for k in cap if _level(k) == level]
        gain = sum(max(0, floors[k] - held[k] - room[k]) for k in keys)
        shed = sum(max(0, held[k] - ceils[k] - loose[k]) for k in keys)
        extra = max(extra, gain, shed)
    return gone + forced + extra


def _level(key: str) -> int:
    """0 region, 1 zone, 2 node, 3 device."""
    return 3 if key.startswith("#") else key.count("/")
