"""A build in progress: the flat assignment, per-domain totals, and phases 1 to 4 of a rebalance.

Rules: pure and deterministic (all choices follow `order`, a seeded shuffle, and sorted ids).
The phases are described in ring.builder. Moves are counted as sets: a partition has moved
by the number of its original devices it no longer holds, wherever the others sit in its
slots. So a device that comes back to a partition it left in this same rebalance undoes a
move (and gives the budget back), and ring.builder puts every device still there back in its
original slot index at the end.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterable

from ring import limits
from ring.model import Ring
from ring.state import BuilderState
from ring.tiers import Tree, ceil_eps, floor_eps

EMPTY = limits.empty_slot_id
HOUR_SECONDS = 3600
_NOTHING: frozenset[int] = frozenset()
# Redirect passes (moves that cost nothing) stop early once one changes nothing.
_FREE_PASSES = 8


def _zero() -> float:
    return 0.0


class Work:
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
        # The assignment before this rebalance: a device of original(p) that p no longer
        # holds is one move; sending a newcomer elsewhere instead costs nothing.
        self.original = array("H", self.slots)
        self.budget = array("B", [state.max_moves]) * self.parts
        self.frozen = self._recently_moved(state, now)
        self.rng = rng
        self.step = [1.0 / t if t > 0 else 0.0 for t in self.target]
        # Noise only for a fresh build (see _choose); a rebalance places few slots and noise
        # there would push devices past their targets and cost extra moves to undo.
        self.noise = 0.0 if ring.built else 1.0
        self.rebuilding = ring.built
        self.order = list(range(self.parts))
        rng.shuffle(self.order)
        # Partitions whose slots changed, in the order they first did (an ordered set):
        # the only places where a move can cost nothing (see ring.chains).
        self.touched: dict[int, None] = {}
        # Domains that every partition should use (floor >= 1), top-down. A fresh build
        # meets every floor. A rebalance keeps the caps (durability) but treats floors as
        # wishes: enforcing them would keep a removed device's slots in its domain and then
        # push other slots out of it, moving far more than the device held.
        floors = not ring.built
        self.required = [i for i in range(1, len(tree.names)) if tree.lo[i] >= 1 and floors]
        self.keep_lo = tree.lo if floors else (0,) * len(tree.names)
        self.up = [self._up(item) for item in range(len(tree.names))]

    def _empty(self, ring: Ring) -> array[int]:
        return array("H", [EMPTY]) * (ring.partitions * ring.width)

    def _recently_moved(self, state: BuilderState, now: int) -> bytearray:
        frozen = bytearray(self.parts)
        if state.last_moved:
            window = state.min_part_hours * HOUR_SECONDS
            for p, t in enumerate(state.last_moved):
                frozen[p] = t != 0 and now - t < window
        return frozen

    # -- bookkeeping ------------------------------------------------------------------------

    def ids(self, p: int) -> list[int]:
        base = p * self.width
        return list(self.slots[base : base + self.width])

    def original_ids(self, p: int) -> array[int]:
        base = p * self.width
        return self.original[base : base + self.width]

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

    def cost(self, p: int, old: int, new: int) -> int:
        """Moves that replacing `old` by `new` in `p` adds: +1 when `old` was there before
        this rebalance, -1 when `new` was (it comes back)."""
        orig = self.original_ids(p)
        return (old in orig) - (new in orig)

    def unassign(self, p: int, slot: int, voluntary: bool) -> None:
        index = p * self.width + slot
        dev = self.slots[index]
        if voluntary and dev in self.original_ids(p):
            self.budget[p] -= 1
        self._add(dev, -1)
        self.slots[index] = EMPTY
        self.touched[p] = None

    def place(self, p: int, slot: int, dev: int) -> None:
        """Put `dev` in an empty slot; a device that comes back returns its move's budget."""
        if dev in self.original_ids(p):
            self.budget[p] += 1
        self.slots[p * self.width + slot] = dev
        self._add(dev, 1)
        self.touched[p] = None

    def move(self, p: int, slot: int, dev: int) -> None:
        """Replace the device in `slot` of `p` by `dev`; the budget pays the net cost only
        (a move that brings a device back costs nothing even when the budget is spent)."""
        index = p * self.width + slot
        old = self.slots[index]
        self.budget[p] -= self.cost(p, old, dev)
        self._add(old, -1)
        self._add(dev, 1)
        self.slots[index] = dev
        self.touched[p] = None

    def moving_partitions(self) -> list[int]:
        w = self.width
        return [p for p in self.order if self.slots[p * w : (p + 1) * w] != self.original[
            p * w : (p + 1) * w]]

    def movable(self, p: int) -> bool:
        return not self.frozen[p] and self.budget[p] > 0

    def slots_of(self, dev: int) -> int:
        return self.assigned[self.path[dev][-1]]

    def low(self, dev: int) -> int:
        return floor_eps(self.target[self.path[dev][-1]])

    def high(self, dev: int) -> int:
        return ceil_eps(self.target[self.path[dev][-1]])

    def swap_keeps_spread(self, counts: dict[int, int], old: int, new: int) -> bool:
        for a_old, a_new in zip(self.path[old], self.path[new], strict=True):
            if a_old != a_new and (
                counts.get(a_new, 0) + 1 > self.hi[a_new]
                or counts[a_old] - 1 < self.keep_lo[a_old]
            ):
                return False
        return True

    # -- phase 1: devices that left ------------------------------------------------------------

    def drop_gone(self) -> None:
        for index, dev in enumerate(self.slots):
            if dev != EMPTY and dev not in self.path:
                self.slots[index] = EMPTY
                p = index // self.width
                self.budget[p] = max(0, self.budget[p] - 1)
                self.touched[p] = None

    # -- phase 2: domain spread ---------------------------------------------------------------

    def fix_spread(self, p: int) -> None:
        """Give up slots of `p` that sit where the quotas forbid, then refill them."""
        for _ in range(self.width):  # bounded even where slots are free (a fresh build)
            if not self.movable(p):
                return
            ids = self.ids(p)
            slot = self._spread_donor(ids, self.counts(ids))
            if slot < 0:
                return
            self.unassign(p, slot, voluntary=True)
            self.fill(p)

    def _spread_donor(self, ids: list[int], counts: dict[int, int]) -> int:
        """The slot to give up to improve the spread of this partition, or -1."""
        for item, n in counts.items():
            if n > self.hi[item]:
                return self._worst_slot(ids, item)
        for item in self.required:
            if counts.get(item, 0) < self.lo[item]:
                return self._floor_donor(ids, counts, item)
        return -1

    def _worst_slot(self, ids: list[int], item: int) -> int:
        """The slot under `item` whose device is the most over its target."""
        level = self.tree.level[item] - 1
        under = [s for s, d in enumerate(ids) if self.path[d][level] == item]
        return max(under, key=lambda s: (self.excess(ids[s]), -s))

    def _floor_donor(self, ids: list[int], counts: dict[int, int], item: int) -> int:
        """The slot of the most over-target device that can move under `item` (below its
        floor) without taking any other domain out of its bounds. A sibling of `item` above
        its own floor always qualifies, so there is one."""
        want = self.up[item]
        best, best_excess = -1, 0.0
        for slot, dev in enumerate(ids):
            path = self.path[dev]
            if item in path:
                continue
            fits = all(
                a == b or (counts[a] - 1 >= self.lo[a] and counts.get(b, 0) < self.hi[b])
                for a, b in zip(path, want, strict=False)
            ) and all(counts[a] - 1 >= self.lo[a] for a in path[len(want) :])
            if fits and (best < 0 or self.excess(dev) > best_excess):
                best, best_excess = slot, self.excess(dev)
        return best

    def _up(self, item: int) -> list[int]:
        """Items from a region down to `item`."""
        out = []
        while item > 0:
            out.append(item)
            item = self.tree.parent[item]
        return out[::-1]

    # -- phase 3: fill empty slots ------------------------------------------------------------

    def fill(self, p: int) -> None:
        ids = self.ids(p)
        if EMPTY not in ids:
            return
        counts = self.counts(ids)
        for slot, dev in enumerate(ids):
            if dev == EMPTY:
                wanting = self._wanting(counts) if self.required else _NOTHING
                chosen = self._choose(counts, wanting)
                self.place(p, slot, chosen)
                for item in self.path[chosen]:
                    counts[item] = counts.get(item, 0) + 1

    def _wanting(self, counts: dict[int, int]) -> set[int]:
        """Items below their floor in this partition, and all their ancestors."""
        out: set[int] = set()
        for item in self.required:
            if counts.get(item, 0) < self.lo[item]:
                out.update(self.up[item])
        return out

    def _choose(self, counts: dict[int, int], wanting: frozenset[int] | set[int]) -> int:
        """Walk down from the root: at each level the child below its floor first, then the
        least filled (assigned / target) child under its cap. Hot loop of a fresh build."""
        children, hi, step, assigned = self.tree.children, self.hi, self.step, self.assigned
        # Up to one slot's worth of noise in a fresh build: without it, equal devices are
        # picked in a fixed cycle and the same few device combinations repeat across
        # partitions, which leaves later rebalances few ways to move a slot in one step.
        random_ = self.rng.random if self.noise else _zero
        get = counts.get
        item = 0
        kids = children[0]
        while kids:
            best, best_score = -1, -2e9
            for kid in kids:
                if get(kid, 0) >= hi[kid]:
                    continue
                score = (random_() - assigned[kid]) * step[kid]
                if kid in wanting:
                    score += 1e9
                if score > best_score:
                    best, best_score = kid, score
            item = best if best >= 0 else self._fallback(item, counts)
            kids = children[item]
        return self.tree.device_ids[item]

    def _fallback(self, item: int, counts: dict[int, int]) -> int:
        """A child with a free device when every child is at its ceiling (a partition that
        phase 2 could not fix yet): keep devices distinct, spread as well as possible."""
        kids = [k for k in self.tree.children[item] if counts.get(k, 0) < self.tree.capacity[k]]
        return min(kids, key=lambda k: (counts.get(k, 0) - self.hi[k], k))

    # -- phase 4: balance -------------------------------------------------------------------------

    def free_passes(self, devices: list[int]) -> None:
        """Redirect slots that move anyway (or bring devices back) towards
        floor(target) <= slots <= ceil(target): moves that cost nothing, until they run out."""
        # In a fresh build every slot is free and one pass does it (the old behaviour).
        for _ in range(_FREE_PASSES if self.rebuilding else 1):
            parts = self.moving_partitions()
            if not self.fill_pass(devices, parts, True) | self.drain_pass(devices, parts, True):
                return

    def fill_pass(self, devices: list[int], parts: list[int], free_only: bool) -> bool:
        """One direct move at a time into each device under its floor, from a device above
        its own floor; the neediest device first. False if nothing moved."""
        moved = False
        for dev in sorted(devices, key=lambda d: (self.excess(d), d)):
            moved |= self._fill_device(dev, parts, free_only)
        return moved

    def drain_pass(self, devices: list[int], parts: list[int], free_only: bool) -> bool:
        """One direct move at a time out of each device over its ceiling, to a device under
        its own ceiling; the fullest device first. False if nothing moved."""
        moved = False
        for dev in sorted(devices, key=lambda d: (-self.excess(d), d)):
            moved |= self._drain_device(dev, devices, parts, free_only)
        return moved

    def _fill_device(self, dev: int, parts: list[int], free_only: bool) -> bool:
        """Move slots to `dev` while it is under its floor. False if none moved. A paid move
        takes from a device over its ceiling first: that slot has to move anyway, while one
        from a device within its range may leave a device over its ceiling to drain later,
        one more move."""
        moved = False
        for over_only in (False,) if free_only else (True, False):
            for p in parts:
                if self.slots_of(dev) >= self.low(dev):
                    return moved
                moved |= self._swap_into(p, dev, free_only, over_only)
        return moved

    def _swap_into(self, p: int, dev: int, free_only: bool, over_only: bool = False) -> bool:
        ids = self.ids(p)
        if dev in ids:
            return False
        counts = self.counts(ids)
        orig = self.original_ids(p)
        back = dev in orig
        open_ = back or (not free_only and self.movable(p))
        best, best_key = -1, (0, 0.0)
        for slot, old in enumerate(ids):
            cost = (old in orig) - back
            # Cheapest first, then the device most over its target.
            key = (-cost, self.excess(old))
            if (
                (cost <= 0 or open_)
                and self.slots_of(old) > (self.high(old) if over_only else self.low(old))
                and (best < 0 or key > best_key)
                and self.swap_keeps_spread(counts, old, dev)
            ):
                best, best_key = slot, key
        if best < 0:
            return False
        self.move(p, best, dev)
        return True

    def _drain_device(
        self, dev: int, devices: list[int], parts: list[int], free_only: bool
    ) -> bool:
        """Move slots away from `dev` while it is over its ceiling. False if none moved."""
        moved = False
        for p in parts:
            if self.slots_of(dev) <= self.high(dev):
                break
            ids = self.ids(p)
            if dev not in ids:
                continue
            orig = self.original_ids(p)
            leaving = dev in orig
            # Replacing a device that was here before costs a move, unless the one that
            # takes its place comes back.
            open_ = not leaving or (not free_only and self.movable(p))
            counts = self.counts(ids)
            room = [
                d for d in (devices if open_ else [d for d in orig if d in self.path])
                if self.slots_of(d) < self.high(d) and d not in ids
                and self.swap_keeps_spread(counts, dev, d)
            ]
            if room:
                best = min(room, key=lambda d: (leaving - (d in orig), self.excess(d), d))
                self.move(p, ids.index(dev), best)
                moved = True
        return moved
