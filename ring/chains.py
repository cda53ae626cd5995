"""Chains of moves: fix the device counts that single moves cannot, at the fewest moves.

Rules: pure and deterministic; works on a ring.work.Work during a rebalance. A chain is a path
of devices s -> d1 -> ... -> t where each step x -> y replaces x by y in one partition (never
two steps in one partition), so only s loses a slot and only t gains one. A step costs what
Work.cost says: nothing when x is a newcomer of this rebalance (its slot moves anyway) or y
comes back to a partition it left, one move otherwise (and then the partition must be
movable: budget left, not moved less than min_part_hours ago).

Why: a single move needs a donor and a taker that fit the same partition's domain caps. On
tight clusters (a partition uses a large part of all devices) or after a removal in uneven
domains, the device that must give and the one that must take often share no such
partition; a direct balance then takes from some third device and pays a second move to make
up for it. A chain through a device that lost or gained a slot in this rebalance pays at most
the one move that the count needs, and often none. On tight clusters a device may get into
most partitions only after a domain-mate made room (its node, zone and region caps all bind
at once): a chain of two paid moves, the fewest that such a slot needs.

A greedy sequence of chains can leave detours: a device that left one partition and came
into another where a newcomer of the first could have gone instead. cancel_detours undoes
them at the end (a cycle of moves of negative cost: one move saved each, counts unchanged).

The search is a breadth-first search by cost, from the takers backwards: first every device
that can reach a taker at no cost, then those one move away, and so on, until a device that
may give is found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ring.work import Work

# Moves one chain may cost. A count that needs more than this is left to the next
# rebalance round (and is reported by validate as off balance). With 1, a device added to a
# tight cluster stayed 2-9 % under its floor (no chain of one move was left); compared with
# the exact optimum (tests/ring/optimum.py), 2 reaches balance within 2 % of the fewest
# moves there, and finds the same chains as 1 elsewhere (cheapest first).
_CHAIN_COST_MAX = 2


@dataclass(frozen=True)
class Step:
    partition: int
    old: int  # the device that leaves the partition
    new: int  # the device that takes its slot


class _Search:
    """One backward search: `via[x]` is the step from x towards a taker; `cost[x]` its chain
    cost."""

    def __init__(self, work: Work, takers: Sequence[int]) -> None:
        self.work = work
        self.cost = dict.fromkeys(takers, 0)
        self.via: dict[int, Step] = {}

    def used(self, dev: int) -> set[int]:
        """Partitions already on the chain from `dev` to its taker."""
        out = set()
        while dev in self.via:
            step = self.via[dev]
            out.add(step.partition)
            dev = step.new
        return out

    def reach(self, step: Step, cost: int) -> None:
        self.cost[step.old] = cost
        self.via[step.old] = step

    def chain(self, dev: int) -> list[Step]:
        out = []
        while dev in self.via:
            out.append(self.via[dev])
            dev = self.via[dev].new
        return out


def _free_steps_into(work: Work, search: _Search, y: int) -> Iterator[Step]:
    """Steps x -> y that cost nothing, from devices not reached yet."""
    used = search.used(y)
    for p in work.touched:
        ids = work.ids(p)
        if y in ids or p in used:
            continue
        orig = work.original_ids(p)
        back = y in orig
        counts: dict[int, int] | None = None
        for x in ids:
            if x in search.cost or (x in orig) - back > 0:
                continue
            counts = counts if counts is not None else work.counts(ids)
            if work.swap_keeps_spread(counts, x, y):
                yield Step(p, x, y)


def _paid_steps_into(work: Work, search: _Search, layer: list[int]) -> Iterator[Step]:
    """Steps x -> y (y in `layer`) that cost one move, from devices not reached yet."""
    used = {y: search.used(y) for y in layer}
    for p in work.order:
        if not work.movable(p):
            continue
        ids = work.ids(p)
        takers = [y for y in layer if y not in ids and p not in used[y]]
        if not takers:
            continue
        orig = work.original_ids(p)
        counts = work.counts(ids)
        for x in ids:
            if x in search.cost or x not in orig:
                continue
            for y in takers:
                if y not in orig and work.swap_keeps_spread(counts, x, y):
                    yield Step(p, x, y)
                    break


def cheapest_chain(
    work: Work, takers: Sequence[int], gives: Callable[[int], bool], cost_max: int
) -> list[Step] | None:
    """The cheapest chain (at most `cost_max` moves) from a device for which `gives` is true
    to one of `takers`, steps in order from the giver; None if there is none."""
    search = _Search(work, takers)
    frontier = list(takers)
    for cost in range(cost_max + 1):
        layer: list[int] = []
        while frontier:
            y = frontier.pop()
            layer.append(y)
            if gives(y) and y not in takers:
                return search.chain(y)
            for step in _free_steps_into(work, search, y):
                if step.old not in search.cost:
                    search.reach(step, cost)
                    frontier.append(step.old)
        if cost == cost_max:
            return None
        for step in _paid_steps_into(work, search, layer):
            if step.old not in search.cost:
                search.reach(step, cost + 1)
                if gives(step.old):
                    return search.chain(step.old)
                frontier.append(step.old)
        if not frontier:
            return None
    return None


def apply(work: Work, chain: list[Step]) -> None:
    for step in chain:
        ids = work.ids(step.partition)
        work.move(step.partition, ids.index(step.old), step.new)


def fill_short(work: Work, devices: Sequence[int], cost_max: int = _CHAIN_COST_MAX) -> bool:
    """Bring devices under their floor up by chains of at most `cost_max` moves each, from
    devices above their floor. False if nothing moved."""
    moved = False
    for dev in sorted(devices, key=lambda d: (work.excess(d), d)):
        while work.slots_of(dev) < work.low(dev):
            chain = cheapest_chain(
                work, [dev], lambda d: work.slots_of(d) > work.low(d), cost_max
            )
            if chain is None:
                break
            apply(work, chain)
            moved = True
    return moved


def drain_over(work: Work, devices: Sequence[int], cost_max: int = _CHAIN_COST_MAX) -> bool:
    """Bring devices over their ceiling down by chains of at most `cost_max` moves each, to
    devices under their ceiling. False if nothing moved."""
    moved = False
    for dev in sorted(devices, key=lambda d: (-work.excess(d), d)):
        while work.slots_of(dev) > work.high(dev):
            takers = [d for d in devices if work.slots_of(d) < work.high(d)]
            chain = cheapest_chain(work, takers, dev.__eq__, cost_max)
            if chain is None:
                break
            apply(work, chain)
            moved = True
    return moved


def _swap_partner(work: Work, p: int, q: int, dev: int) -> int | None:
    """A newcomer of `p` that may take the place of `dev` in `q` while `dev` goes back to
    `p`, which it left; None if there is none."""
    p_ids, q_ids = work.ids(p), work.ids(q)
    if dev in p_ids or dev not in q_ids:  # the lists of cancel_detours may be stale
        return None
    orig = work.original_ids(p)
    p_counts: dict[int, int] | None = None
    q_counts: dict[int, int] | None = None
    for other in p_ids:
        if other in orig or other in q_ids:
            continue
        p_counts = p_counts if p_counts is not None else work.counts(p_ids)
        q_counts = q_counts if q_counts is not None else work.counts(q_ids)
        if work.swap_keeps_spread(p_counts, other, dev) and work.swap_keeps_spread(
            q_counts, dev, other
        ):
            return other
    return None


def _undo_detour(work: Work, dev: int, left: list[int], came: list[int]) -> bool:
    for p in left:
        for q in came:
            other = _swap_partner(work, p, q, dev)
            if other is not None:
                work.move(q, work.ids(q).index(dev), other)
                work.move(p, work.ids(p).index(other), dev)
                return True
    return False


def cancel_detours(work: Work) -> bool:
    """Undo detours: a device that left a partition p and came into another q has moved
    twice where a newcomer y of p could take its place in q instead. Putting it back in p
    and y in q keeps every device's count and saves one move (a cycle of negative cost in
    the chain graph). Greedy until none is left; False if none was found."""
    found = False
    progress = True
    while progress:
        progress = False
        came: dict[int, list[int]] = {}
        left: dict[int, list[int]] = {}
        for p in work.touched:
            ids = work.ids(p)
            orig = work.original_ids(p)
            for dev in ids:
                if dev not in orig:
                    came.setdefault(dev, []).append(p)
            for dev in orig:
                if dev not in ids and dev in work.path:
                    left.setdefault(dev, []).append(p)
        for dev in sorted(came.keys() & left.keys()):
            if _undo_detour(work, dev, left[dev], came[dev]):
                progress = found = True
    return found
