"""Spread caps of a cluster, computed from device counts alone (no hypothesis, no builder).

Apart from tests/ring/clusters.py so that tests/ring/optimum.py, which bench/ring_bench.py
imports, needs neither hypothesis nor the strategies.
"""

from __future__ import annotations

from collections import Counter

from ring.model import Device


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
