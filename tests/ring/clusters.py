"""Test helpers: random clusters (hypothesis strategies) and small fixed ones."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import strategies as hs

from ring.model import Device, Ring


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


def _path_counts(devices: list[Device]) -> Counter[str]:
    """Devices under each domain path prefix ("" is the whole cluster)."""
    counts: Counter[str] = Counter()
    for dev in devices:
        parts = dev.domain.split("/")
        for depth in range(5):
            counts["/".join(parts[:depth])] += 1
    return counts


def spread_limits(devices: list[Device], width: int) -> dict[str, int]:
    """Most slots of a partition each domain may hold: the root holds `width`; a parent's
    limit is spread as evenly as its children's device counts allow. Written apart from the
    builder and ring.validate on purpose."""
    counts = _path_counts(devices)
    kids: dict[str, list[str]] = {}
    for path in counts:
        if path:
            kids.setdefault(path.rpartition("/")[0] if "/" in path else "", []).append(path)
    limit = {"": min(width, counts[""])}
    for depth in range(4):
        for parent in [p for p in counts if (p.count("/") + 1 if p else 0) == depth]:
            children = kids.get(parent, [])
            c = 1
            while sum(min(c, counts[k]) for k in children) < limit[parent] < 10**6:
                c += 1
            for k in children:
                limit[k] = min(c, counts[k])
    return limit


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
