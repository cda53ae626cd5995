"""Check a ring: distinct devices, domain spread, balance. Names the invariant that broke.

Rules: pure. The spread bound is computed here from device counts alone, independently of the
builder's quotas: a domain may hold at most `bound` slots of a partition, where the root's
bound is the width and a child's is the smallest c with sum over its siblings of
min(c, devices in sibling) >= its parent's bound. Errors (duplicate device in a partition,
spread worse than that bound, unbuilt ring) make the ring unfit; warnings say where weights
and failure domains conflict (dispersion wins, see ring.tiers) or where a device is off its
share.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass

from ring import limits
from ring.model import Ring
from ring.tiers import LEVELS, Tree, build_tree


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    check: str  # the invariant: "built", "distinct", "spread", "balance", "weight-conflict"
    message: str


@dataclass(frozen=True)
class DeviceBalance:
    id: int
    zone: str
    weight: float
    slots: int
    share_slots: float  # what its weight alone asks for
    target_slots: float  # what the dispersion rule lets it have (== share when no conflict)

    @property
    def over_percent(self) -> float:
        """Percent over (+) or under (-) its weighted share."""
        return 100.0 * (self.slots - self.share_slots) / self.share_slots


def spread_bounds(tree: Tree, width: int) -> list[int]:
    """Most slots of one partition each tree item may hold (see the module docstring)."""
    bound = [0] * len(tree.names)
    bound[0] = min(width, tree.capacity[0])
    for item in range(len(tree.names)):
        kids = tree.children[item]
        c = 1
        while sum(min(c, tree.capacity[k]) for k in kids) < bound[item] and c < bound[item]:
            c += 1
        for k in kids:
            bound[k] = min(c, tree.capacity[k])
    return bound


def balance_table(ring: Ring) -> tuple[DeviceBalance, ...]:
    if not ring.devices:
        return ()
    tree = build_tree(ring.devices, ring.width)
    held = Counter(ring.assignment)
    total = ring.partitions * ring.width
    rows = []
    for dev in sorted(ring.devices, key=lambda d: d.id):
        leaf = tree.leaf_of[dev.id]
        rows.append(
            DeviceBalance(
                id=dev.id,
                zone=dev.zone,
                weight=dev.weight,
                slots=held[dev.id],
                share_slots=total * tree.share(leaf),
                target_slots=ring.partitions * tree.quota[leaf],
            )
        )
    return tuple(rows)


def _structure(ring: Ring, tree: Tree) -> list[Finding]:
    bound = spread_bounds(tree, ring.width)
    duplicates = 0
    spread: Counter[int] = Counter()  # level -> partitions over the bound
    w = ring.width
    for p in range(ring.partitions):
        ids = ring.assignment[p * w : (p + 1) * w]
        if len(set(ids)) < w:
            duplicates += 1
        counts: Counter[int] = Counter()
        for dev in ids:
            counts.update(tree.path_of[dev])
        for level in {tree.level[i] for i, n in counts.items() if n > bound[i]}:
            spread[level] += 1
    out = []
    if duplicates:
        msg = f"{duplicates} partitions hold two slots on one device"
        out.append(Finding(Severity.ERROR, "distinct", msg))
    for level, n in sorted(spread.items()):
        msg = f"{n} partitions put more slots in one {LEVELS[level]} than the cluster requires"
        out.append(Finding(Severity.ERROR, "spread", msg))
    return out


def _balance(ring: Ring) -> list[Finding]:
    out = []
    tolerance = limits.balance_tolerance_percent / 100.0
    for row in balance_table(ring):
        slack = max(1.0, tolerance * row.share_slots)
        if abs(row.target_slots - row.share_slots) > slack:
            msg = (
                f"device {row.id} ({row.zone}): its weight asks for {row.share_slots:.0f} slots, "
                f"the domain spread allows {row.target_slots:.0f} (spread wins)"
            )
            out.append(Finding(Severity.WARNING, "weight-conflict", msg))
        if abs(row.slots - row.target_slots) > max(1.0, tolerance * row.target_slots):
            msg = f"device {row.id}: {row.slots} slots, target {row.target_slots:.1f}"
            out.append(Finding(Severity.WARNING, "balance", msg))
    return out


def validate(ring: Ring) -> tuple[Finding, ...]:
    """Findings about `ring`; no ERROR finding means it is fit to publish."""
    if not ring.built:
        return (Finding(Severity.ERROR, "built", "the ring has never been rebalanced"),)
    tree = build_tree(ring.devices, ring.width)
    return tuple(_structure(ring, tree) + _balance(ring))


def ok(findings: tuple[Finding, ...]) -> bool:
    return not any(f.severity is Severity.ERROR for f in findings)
