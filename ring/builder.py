"""The ring builder: assign every partition's slots to devices, and rebalance after changes.

Rules: pure and deterministic (the same state, seed and `now` give the same ring). One
rebalance runs four phases over a copy of the current assignment:
  1. slots on devices that left the ring are emptied (they must move, whatever the limits);
  2. partitions whose domain spread is worse than the quotas allow (ring.tiers) give up slots
     to fix it;
  3. empty slots are filled top-down: at each level the child below its per-partition floor
     first, then the least filled (assigned / target) child still below its ceiling;
  4. balance: a slot moves from a device over its target to one under it while that brings
     both closer, the cheapest moves that exist.
Phases 2 and 4 are voluntary: they skip partitions moved less than `min_part_hours` ago and
never take a partition past `max_moves` moved slots in one rebalance, so at least
width - max_moves fragments of every partition stay where readers find them. Running
rebalance again later finishes what the limits held back.
"""

from __future__ import annotations

import dataclasses
import random
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ring import limits
from ring.model import Device, Ring
from ring.state import BuilderState, RingInputError, add_device, new_state
from ring.tiers import Tree, build_tree

EMPTY = limits.empty_slot_id
_HOUR_SECONDS = 3600
# Balance passes over the under-filled devices; each pass only makes moves that help, so
# more passes cannot move more than needed, they only cost build time.
_BALANCE_PASSES = 3


@dataclass(frozen=True)
class Rebalanced:
    state: BuilderState
    changed: bool  # False: nothing could move, the state is the one given
    slots_moved: int


class _Work:
    """Mutable build in progress: the flat assignment and per-item totals."""

    def __init__(self, state: BuilderState, tree: Tree, now: int, rng: random.Random) -> None:
        ring = state.ring
        self.tree = tree
        self.width = ring.width
        self.parts = ring.partitions
        self.path = tree.path_of
        self.lo, self.hi = tree.lo, tree.hi
        self.target = [q * self.parts for q in tree.quota]
        self.assigned = [0] * len(tree.names)
        self.slots = array("H", ring.assignment) if ring.built else self._empty(ring)
        self.budget = array("B", [state.max_moves]) * self.parts
        self.frozen = self._recently_moved(state, now)
        rank = list(range(len(tree.names)))
        rng.shuffle(rank)
        self.rank = [r / (len(rank) + 1) for r in rank]  # tie-break between equal items
        self.order = list(range(self.parts))
        rng.shuffle(self.order)

    def _empty(self, ring: Ring) -> array[int]:
        return array("H", [EMPTY]) * (ring.partitions * ring.width)

    def _recently_moved(self, state: BuilderState, now: int) -> bytearray:
        frozen = bytearray(self.parts)
        if state.last_moved:
            window = state.min_part_hours * _HOUR_SECONDS
            for p, t in enumerate(state.last_moved):
                frozen[p] = t != 0 and now - t < window
        return frozen

    # -- bookkeeping ------------------------------------------------------------------------

    def ids(self, p: int) -> list[int]:
        base = p * self.width
        return list(self.slots[base : base + self.width])

    def counts(self, ids: Iterable[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for dev in ids:
            if dev != EMPTY:
                for item in self.path[dev]:
                    counts[item] = counts.get(item, 0) + 1
        return counts

    def _add(self, dev: int, sign: int) -> None:
        for item in self.path[dev]:
            self.assigned[item] += sign
        self.assigned[0] += sign

    def total_up(self) -> None:
        for dev in self.slots:
            if dev != EMPTY:
                self._add(dev, 1)

    def excess(self, dev: int) -> float:
        leaf = self.path[dev][-1]
        return self.assigned[leaf] - self.target[leaf]

    def unassign(self, p: int, slot: int, voluntary: bool) -> None:
        index = p * self.width + slot
        self._add(self.slots[index], -1)
        self.slots[index] = EMPTY
        if voluntary:
            self.budget[p] -= 1

    def movable(self, p: int) -> bool:
        return not self.frozen[p] and self.budget[p] > 0

    # -- phase 1: devices that left ------------------------------------------------------------

    def drop_gone(self) -> None:
        for index, dev in enumerate(self.slots):
            if dev != EMPTY and dev not in self.path:
                self.slots[index] = EMPTY
                p = index // self.width
                self.budget[p] = max(0, self.budget[p] - 1)

    # -- phase 2: domain spread ---------------------------------------------------------------

    def fix_spread(self, p: int, required: Sequence[int]) -> None:
        while self.movable(p):
            ids = self.ids(p)
            slot = self._spread_donor(ids, self.counts(ids), required)
            if slot < 0:
                return
            self.unassign(p, slot, voluntary=True)

    def _spread_donor(self, ids: list[int], counts: dict[int, int], required: Sequence[int]) -> int:
        """The slot to give up to improve the spread of this partition, or -1."""
        for item, n in counts.items():
            if n > self.hi[item]:
                return self._worst_slot(ids, item)
        if EMPTY in ids:
            return -1  # phase 3 fills the empty slots below-floor domains first
        for item in required:
            if counts.get(item, 0) < self.lo[item]:
                siblings = self.tree.children[self.tree.parent[item]]
                for sib in siblings:
                    if counts.get(sib, 0) > self.lo[sib]:
                        return self._worst_slot(ids, sib)
        return -1

    def _worst_slot(self, ids: list[int], item: int) -> int:
        """The slot under `item` whose device is the most over its target."""
        level = self.tree.level[item] - 1
        under = [s for s, d in enumerate(ids) if d != EMPTY and self.path[d][level] == item]
        return max(under, key=lambda s: (self.excess(ids[s]), -s))

    # -- phase 3: fill empty slots ------------------------------------------------------------

    def fill(self, p: int) -> None:
        base = p * self.width
        ids = self.ids(p)
        if EMPTY not in ids:
            return
        counts = self.counts(ids)
        for slot, dev in enumerate(ids):
            if dev == EMPTY:
                chosen = self._choose(counts)
                self.slots[base + slot] = chosen
                self._add(chosen, 1)
                for item in self.path[chosen]:
                    counts[item] = counts.get(item, 0) + 1

    def _choose(self, counts: dict[int, int]) -> int:
        tree, item = self.tree, 0
        while tree.children[item]:
            best, best_score = -1, 0.0
            for kid in tree.children[item]:
                n = counts.get(kid, 0)
                if n >= self.hi[kid]:
                    continue
                # Below-floor children first, then the least filled relative to target.
                score = (n < self.lo[kid]) * 1e9 - self.assigned[kid] / self.target[kid]
                score += self.rank[kid] * 1e-9
                if best < 0 or score > best_score:
                    best, best_score = kid, score
            item = best if best >= 0 else self._fallback(item, counts)
        return tree.device_ids[item]

    def _fallback(self, item: int, counts: dict[int, int]) -> int:
        """A child with a free device when every child is at its ceiling (a partition that
        phase 2 could not fix yet): keep devices distinct, spread as well as possible."""
        kids = [k for k in self.tree.children[item] if counts.get(k, 0) < self.tree.capacity[k]]
        return min(kids, key=lambda k: (counts.get(k, 0) - self.hi[k], self.rank[k]))

    # -- phase 4: balance -------------------------------------------------------------------------

    def balance(self) -> None:
        devices = sorted(self.path)
        for _ in range(_BALANCE_PASSES):
            needy = sorted(devices, key=lambda d: (self.excess(d), d))
            if not any([self._fill_device(d, devices) for d in needy]):
                return

    def _fill_device(self, dev: int, devices: list[int]) -> bool:
        """Move slots to `dev` while that improves balance. False if none moved."""
        moved = False
        most = max(self.excess(d) for d in devices)
        for p in self.order:
            if most - self.excess(dev) <= 1.0 + 1e-9:
                break
            if self.movable(p) and self._swap_into(p, dev):
                moved = True
                most = max(self.excess(d) for d in devices)
        return moved

    def _swap_into(self, p: int, dev: int) -> bool:
        ids = self.ids(p)
        if dev in ids:
            return False
        counts = self.counts(ids)
        best, best_excess = -1, 1.0 + self.excess(dev) + 1e-9
        for slot, old in enumerate(ids):
            exc = self.excess(old)
            if exc > best_excess and self._swap_keeps_spread(counts, old, dev):
                best, best_excess = slot, exc
        if best < 0:
            return False
        self.unassign(p, best, voluntary=True)
        self.slots[p * self.width + best] = dev
        self._add(dev, 1)
        return True

    def _swap_keeps_spread(self, counts: dict[int, int], old: int, new: int) -> bool:
        for a_old, a_new in zip(self.path[old], self.path[new], strict=True):
            if a_old != a_new and (
                counts.get(a_new, 0) + 1 > self.hi[a_new] or counts[a_old] - 1 < self.lo[a_old]
            ):
                return False
        return True


def _check_devices(devices: Sequence[Device], width: int) -> None:
    if len(devices) < width:
        raise RingInputError(
            f"need at least {width} devices for width {width}, have {len(devices)}"
        )


def _previous(
    old: Ring, new_slots: array[int], changed: Iterable[int], keep: Iterable[int],
    failed: frozenset[int],
) -> dict[int, tuple[int, ...]]:
    """Old device ids of moved partitions; a failed device's slot points at its new home."""
    w = old.width
    out: dict[int, tuple[int, ...]] = {}
    for p in keep:
        out[p] = old.previous[p]
    for p in changed:
        out[p] = tuple(old.assignment[p * w : (p + 1) * w])
    for p, ids in list(out.items()):
        now_ids = new_slots[p * w : (p + 1) * w]
        fixed = tuple(n if o in failed else o for o, n in zip(ids, now_ids, strict=True))
        if fixed == tuple(now_ids):
            del out[p]
        else:
            out[p] = fixed
    return out


def rebalance(state: BuilderState, now: int, version: int | None = None) -> Rebalanced:
    """Place the pending devices of `state`; `now` is epoch seconds (for min_part_hours).
    The new ring's version is `version`, by default one more than the current ring's."""
    _check_devices(state.devices, state.ring.width)
    old = state.ring
    tree = build_tree(state.devices, old.width)
    work = _Work(state, tree, now, random.Random(f"{state.seed}:{old.version}"))
    work.drop_gone()
    work.total_up()
    required = [i for i in range(1, len(tree.names)) if tree.lo[i] >= 1]
    for p in work.order:
        work.fix_spread(p, required)
    for p in range(old.partitions):
        work.fill(p)
    work.balance()
    return _finish(state, work.slots, now, old.version + 1 if version is None else version)


def _finish(state: BuilderState, slots: array[int], now: int, version: int) -> Rebalanced:
    old = state.ring
    w = old.width
    if old.built:
        changed = [
            p for p in range(old.partitions)
            if slots[p * w : (p + 1) * w] != old.assignment[p * w : (p + 1) * w]
        ]
    else:
        changed = []
    if old.built and not changed and state.devices == old.devices:
        return Rebalanced(state, False, 0)
    moved = sum(
        a != b for a, b in zip(slots, old.assignment, strict=False)
    ) if old.built else 0
    last = array("I", state.last_moved) if state.last_moved else array("I", [0]) * old.partitions
    for p in changed:
        last[p] = now
    window = state.min_part_hours * _HOUR_SECONDS
    keep = [p for p in old.previous if p not in set(changed) and now - last[p] < window]
    previous = _previous(old, slots, changed, keep, state.failed) if old.built else {}
    ring = _new_ring(state, slots, previous, version)
    new = dataclasses.replace(state, ring=ring, last_moved=last)
    return Rebalanced(new, True, moved)


def _new_ring(
    state: BuilderState, slots: array[int], previous: dict[int, tuple[int, ...]], version: int
) -> Ring:
    old = state.ring
    live = {d.id for d in state.devices}
    named = {i for ids in previous.values() for i in ids} - live
    known = {d.id: d for d in (*old.retired, *old.devices)}
    retired = tuple(known[i] for i in sorted(named))
    return Ring(
        version=version,
        part_power=old.part_power,
        width=old.width,
        devices=state.devices,
        assignment=slots,
        previous=previous,
        retired=retired,
    )


def build_ring(
    devices: Sequence[Device], part_power: int, width: int, seed: int = 0, version: int = 1
) -> Ring:
    """A fresh ring of `devices` (no history). Raises RingInputError on bad input."""
    return build_state(devices, part_power, width, seed, version).ring


def build_state(
    devices: Sequence[Device],
    part_power: int,
    width: int,
    seed: int = 0,
    version: int = 1,
    min_part_hours: int = 1,
    max_moves: int | None = None,
) -> BuilderState:
    """A builder state whose ring places `devices` from scratch, at `version`."""
    if version < 1:
        raise RingInputError("version must be >= 1")
    state = new_state(part_power, width, min_part_hours, seed, max_moves)
    for dev in devices:
        state = add_device(state, dev)
    return rebalance(state, now=0, version=version).state
