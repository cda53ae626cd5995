"""Failure-domain tree and per-partition quotas: how many slots each domain should hold.

Rules: pure. The tree has one item per region, zone, node and device (levels 1..4) under a
root (level 0). Each item gets a quota q = the number of a partition's slots it holds on
average. Every partition gives it at most its dispersion cap (`hi`, below: the durability
rule, always kept) and, in a fresh build, at least floor(q) slots (`lo`, so that every domain
with a quota >= 1 is used; a rebalance keeps floors where it can but does not move data for
them).

Quotas are computed top-down. Dispersion comes first, weight second (the documented rule
when they conflict): a parent with quota Q splits it among its children in proportion to
their weight, but no child may get more than `cap` slots per partition, where cap is the
smallest number with sum(min(cap, devices in child)) >= the parent's own cap (the root's is
the width): the most even spread the cluster allows (most-unique first: regions, then
zones, nodes, devices); ring.validate checks the same bound, computed on its own. A child
whose weight asks for more than cap is clamped and the rest spills to its siblings; validate
reports that.
A device's cap is 1, so a partition never holds two slots on one device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ring.model import Device

LEVELS = ("root", "region", "zone", "node", "device")
DEVICE_LEVEL = 4
_EPS = 1e-9


def floor_eps(x: float) -> int:
    return math.floor(x + _EPS)


def ceil_eps(x: float) -> int:
    return math.ceil(x - _EPS)


@dataclass(frozen=True)
class Tree:
    names: tuple[str, ...]  # item -> domain path prefix ("" for the root)
    level: tuple[int, ...]
    parent: tuple[int, ...]  # -1 for the root (item 0)
    children: tuple[tuple[int, ...], ...]
    weight: tuple[float, ...]  # sum of device weights under the item
    capacity: tuple[int, ...]  # devices under the item: most slots it can take per partition
    quota: tuple[float, ...]
    lo: tuple[int, ...]  # floor(quota): fewest slots of any partition the item holds
    hi: tuple[int, ...]  # its dispersion cap: most slots of any partition it may hold
    device_ids: tuple[int, ...]  # leaf item -> device id (-1 for inner items)
    leaf_of: dict[int, int]  # device id -> leaf item
    path_of: dict[int, tuple[int, ...]]  # device id -> (region, zone, node, leaf) items

    def share(self, item: int) -> float:
        """The item's weighted share of all slots, ignoring dispersion."""
        return self.weight[item] / self.weight[0]


def _split(
    q: float, most: int, kids: Sequence[int], weight: list[float], cap: list[int]
) -> list[tuple[float, int]]:
    """Water-fill quota q over kids by weight, each kid bounded by the dispersion cap that
    spreads `most` slots (the parent's own cap) as evenly as the kids' sizes allow. Returns
    each kid's quota and cap."""
    need = most
    spread = 1
    while sum(min(spread, cap[k]) for k in kids) < need and spread < need:
        spread += 1
    bound = {k: min(spread, cap[k]) for k in kids}
    out = dict.fromkeys(kids, 0.0)
    left, wleft = q, sum(weight[k] for k in kids)
    # Kids whose weight asks for more than their bound are clamped first (smallest bound per
    # unit of weight first); the rest share what is left in proportion to weight.
    for k in sorted(kids, key=lambda k: (bound[k] / weight[k], k)):
        fair = left * weight[k] / wleft if wleft > 0 else 0.0
        out[k] = min(float(bound[k]), fair)
        left -= out[k]
        wleft -= weight[k]
    return [(out[k], bound[k]) for k in kids]


def build_tree(devices: Sequence[Device], width: int) -> Tree:
    """The domain tree of `devices` with quotas for `width` slots per partition."""
    names: list[str] = [""]
    level = [0]
    parent = [-1]
    index: dict[str, int] = {"": 0}
    dev_ids = [-1]
    leaf_of: dict[int, int] = {}
    path_of: dict[int, tuple[int, ...]] = {}
    for dev in sorted(devices, key=lambda d: (d.domain, d.id)):
        path: list[int] = []
        up = 0
        for lvl, name in enumerate((*dev.tiers(), f"{dev.domain}#{dev.id}"), start=1):
            item = index.get(name)
            if item is None:
                item = index[name] = len(names)
                names.append(name)
                level.append(lvl)
                parent.append(up)
                dev_ids.append(dev.id if lvl == DEVICE_LEVEL else -1)
            path.append(item)
            up = item
        leaf_of[dev.id] = path[-1]
        path_of[dev.id] = tuple(path)
    n = len(names)
    children: list[list[int]] = [[] for _ in range(n)]
    for item in range(1, n):
        children[parent[item]].append(item)
    weight = [0.0] * n
    capacity = [0] * n
    for dev in devices:
        for item in (0, *path_of[dev.id]):
            weight[item] += dev.weight
            capacity[item] += 1
    quota = [0.0] * n
    quota[0] = float(min(width, capacity[0]))
    hi = [min(width, capacity[0])] * n
    for item in range(n):  # parents come before children: items were numbered top-down
        kids = children[item]
        if kids:
            split = _split(quota[item], hi[item], kids, weight, capacity)
            for k, (q, bound) in zip(kids, split, strict=True):
                quota[k], hi[k] = q, bound
    return Tree(
        names=tuple(names),
        level=tuple(level),
        parent=tuple(parent),
        children=tuple(tuple(c) for c in children),
        weight=tuple(weight),
        capacity=tuple(capacity),
        quota=tuple(quota),
        lo=tuple(floor_eps(q) for q in quota),
        hi=tuple(hi),
        device_ids=tuple(dev_ids),
        leaf_of=leaf_of,
        path_of=path_of,
    )
