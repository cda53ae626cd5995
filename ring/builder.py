"""The ring builder: assign every partition's slots to devices, and rebalance after changes.

Rules: pure and deterministic (the same state, seed and `now` give the same ring). One
rebalance runs four phases over a copy of the current assignment:
  1. slots on devices that left the ring are emptied (they must move, whatever the limits);
  2. partitions whose domain spread breaks a dispersion cap (ring.tiers) give up slots to
     fix it;
  3. empty slots are filled top-down: at each level the child below its floor first (fresh
     builds only), then the least filled (assigned / target) child still under its cap;
  4. balance: until every device holds floor(target)..ceil(target) slots, a slot moves from
     a device above its range to one below it; slots that already move in this rebalance
     are redirected first, since that costs no extra move.
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
from ring.tiers import Tree, build_tree, ceil_eps, floor_eps

EMPTY = limits.empty_slot_id
_HOUR_SECONDS = 3600
_NOTHING: frozenset[int] = frozenset()
# Balance passes over the under-filled devices; each pass only makes moves that help, so
# more passes cannot move more than needed, they only cost build time.
_BALANCE_PASSES = 3


def _zero() -> float:
    return 0.0


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
        # Slots where original != current already move in this rebalance: sending them
        # somewhere else instead costs no extra move and no budget.
        self.original = array("H", self.slots)
        self.budget = array("B", [state.max_moves]) * self.parts
        self.frozen = self._recently_moved(state, now)
        self.rng = rng
        self.step = [1.0 / t if t > 0 else 0.0 for t in self.target]
        # Noise only for a fresh build (see _choose); a rebalance places few slots and noise
        # there would push devices past their targets and cost extra moves to undo.
        self.noise = 0.0 if ring.built else 1.0
        self.order = list(range(self.parts))
        rng.shuffle(self.order)
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
        if voluntary and not self.is_free(index):
            self.budget[p] -= 1
        self._add(self.slots[index], -1)
        self.slots[index] = EMPTY

    def is_free(self, index: int) -> bool:
        return self.slots[index] != self.original[index]

    def may_move(self, p: int, slot: int, free_only: bool) -> bool:
        if self.is_free(p * self.width + slot):
            return True
        return not free_only and self.movable(p)

    def moving_partitions(self) -> list[int]:
        w = self.width
        return [p for p in self.order if self.slots[p * w : (p + 1) * w] != self.original[
            p * w : (p + 1) * w]]

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
        want = self.tree_path(item)
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

    def tree_path(self, item: int) -> list[int]:
        """Items from a region down to `item`."""
        return self.up[item]

    def _up(self, item: int) -> list[int]:
        out = []
        while item > 0:
            out.append(item)
            item = self.tree.parent[item]
        return out[::-1]

    # -- phase 3: fill empty slots ------------------------------------------------------------

    def fill(self, p: int) -> None:
        base = p * self.width
        ids = self.ids(p)
        if EMPTY not in ids:
            return
        counts = self.counts(ids)
        for slot, dev in enumerate(ids):
            if dev == EMPTY:
                wanting = self._wanting(counts) if self.required else _NOTHING
                chosen = self._choose(counts, wanting)
                self.slots[base + slot] = chosen
                self._add(chosen, 1)
                for item in self.path[chosen]:
                    counts[item] = counts.get(item, 0) + 1

    def _wanting(self, counts: dict[int, int]) -> set[int]:
        """Items below their floor in this partition, and all their ancestors."""
        out: set[int] = set()
        for item in self.required:
            if counts.get(item, 0) < self.lo[item]:
                out.update(self.tree_path(item))
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

    def balance(self) -> None:
        """Bring every device to floor(target) <= slots <= ceil(target), one move at a time.
        A move needs one side outside its interval and the other side inside it after the
        move, so no slot moves only to shuffle rounding. The first pass only redirects slots
        that move anyway."""
        devices = sorted(self.path)
        for attempt in range(_BALANCE_PASSES + 1):
            free_only = attempt == 0
            parts = self.moving_partitions() if free_only else self.order
            moved = False
            for dev in sorted(devices, key=lambda d: (self.excess(d), d)):
                moved |= self._fill_device(dev, parts, free_only)
            for dev in sorted(devices, key=lambda d: (-self.excess(d), d)):
                moved |= self._drain_device(dev, devices, parts, free_only)
            if not moved and not free_only:
                return

    def _low(self, dev: int) -> int:
        return floor_eps(self.target[self.path[dev][-1]])

    def _high(self, dev: int) -> int:
        return ceil_eps(self.target[self.path[dev][-1]])

    def _slots_of(self, dev: int) -> int:
        return self.assigned[self.path[dev][-1]]

    def _fill_device(self, dev: int, parts: list[int], free_only: bool) -> bool:
        """Move slots to `dev` while it is under its floor. False if none moved."""
        moved = False
        for p in parts:
            if self._slots_of(dev) >= self._low(dev):
                break
            moved |= self._swap_into(p, dev, free_only)
        return moved

    def _swap_into(self, p: int, dev: int, free_only: bool) -> bool:
        ids = self.ids(p)
        if dev in ids:
            return False
        counts = self.counts(ids)
        best, best_excess = -1, 0.0
        for slot, old in enumerate(ids):
            exc = self.excess(old)
            if (
                self._slots_of(old) > self._low(old)
                and (best < 0 or exc > best_excess)
                and self.may_move(p, slot, free_only)
                and self._swap_keeps_spread(counts, old, dev)
            ):
                best, best_excess = slot, exc
        if best < 0:
            return False
        self._move(p, best, dev)
        return True

    def _move(self, p: int, slot: int, dev: int) -> None:
        self.unassign(p, slot, voluntary=True)
        self.slots[p * self.width + slot] = dev
        self._add(dev, 1)

    def _drain_device(
        self, dev: int, devices: list[int], parts: list[int], free_only: bool
    ) -> bool:
        """Move slots away from `dev` while it is over its ceiling. False if none moved."""
        moved = False
        for p in parts:
            if self._slots_of(dev) <= self._high(dev):
                break
            ids = self.ids(p)
            if dev not in ids or not self.may_move(p, ids.index(dev), free_only):
                continue
            counts = self.counts(ids)
            room = [
                d for d in devices
                if self._slots_of(d) < self._high(d) and d not in ids
                and self._swap_keeps_spread(counts, dev, d)
            ]
            if room:
                self._move(p, ids.index(dev), min(room, key=lambda d: (self.excess(d), d)))
                moved = True
        return moved

    def _swap_keeps_spread(self, counts: dict[int, int], old: int, new: int) -> bool:
        for a_old, a_new in zip(self.path[old], self.path[new], strict=True):
            if a_old != a_new and (
                counts.get(a_new, 0) + 1 > self.hi[a_new]
                or counts[a_old] - 1 < self.keep_lo[a_old]
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
    for p in work.order:
        work.fill(p)
        work.fix_spread(p)
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
