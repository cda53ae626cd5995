"""The exact fewest slot moves from a ring to any valid assignment, by integer programming.

Test-only (needs scipy, whose milp runs HiGHS). Written apart from the builder on purpose:
it shares nothing with ring/ but the quota rule (ring.tiers.build_tree gives each device its
target; a cap is recomputed by tests/ring/caps.spread_limits).

The program, for the `devices` after a change and the assignment `before`:
  x[p, d] in {0, 1}: partition p holds device d (one slot; a device never holds two)
  every partition holds `width` devices;
  every region, zone and node holds at most its spread cap of each partition (the builder's
  and validate's rule; a domain with no more devices than its cap needs no row);
  every device holds floor(target)..ceil(target) slots, the range the builder balances to;
  minimise the slots that move = width x partitions - sum of x[p, d] over the devices p
  held before (moves counted as sets, as the builder counts them; the builder also keeps a
  staying device in its slot index, so positional and set counts agree).
The per-round limits (max_moves, min_part_hours) only spread moves over rounds: they do not
change the total, so they are not in the program. Sizes: P x D binaries; part power 9 with
~20 devices solves in about a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# No stubs for scipy in the environment (scipy-stubs would be one more test dependency).
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from ring.model import Device, Ring
from ring.tiers import build_tree
from tests.ring.caps import spread_limits

_EPS = 1e-9


@dataclass(frozen=True)
class Optimum:
    moves: int  # fewest slots that move
    assignment: tuple[tuple[int, ...], ...]  # one such assignment: device ids per partition


class _Rows:
    """Sparse constraint rows built one at a time: lower <= sum(coef * x[col]) <= upper."""

    def __init__(self) -> None:
        self.row: list[int] = []
        self.col: list[int] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    def add(self, cols: list[int], lower: float, upper: float) -> None:
        r = len(self.lower)
        self.row.extend([r] * len(cols))
        self.col.extend(cols)
        self.lower.append(lower)
        self.upper.append(upper)

    def constraint(self, n_vars: int) -> LinearConstraint:
        data = np.ones(len(self.row))
        matrix = coo_array((data, (self.row, self.col)), shape=(len(self.lower), n_vars))
        return LinearConstraint(matrix.tocsr(), np.array(self.lower), np.array(self.upper))


def _domains(devices: list[Device], width: int) -> list[tuple[list[int], int]]:
    """(device indexes, cap) of every region, zone and node whose cap binds."""
    limit = spread_limits(devices, width)
    members: dict[str, list[int]] = {}
    for i, dev in enumerate(devices):
        parts = dev.domain.split("/")
        for depth in range(1, 4):
            members.setdefault("/".join(parts[:depth]), []).append(i)
    return [(idx, limit[key]) for key, idx in sorted(members.items()) if limit[key] < len(idx)]


def _ranges(devices: list[Device], width: int, partitions: int) -> list[tuple[int, int]]:
    tree = build_tree(devices, width)
    out = []
    for dev in devices:
        target = tree.quota[tree.leaf_of[dev.id]] * partitions
        out.append((math.floor(target + _EPS), math.ceil(target - _EPS)))
    return out


def fewest_moves(
    before: Ring, devices: list[Device], time_limit_s: float = 120.0,
    counts: dict[int, int] | None = None,
) -> Optimum:
    """The exact optimum (see the module docstring). `counts` (device id -> slots) pins every
    device's total instead of its floor..ceil range: the optimum for the builder's own
    rounding. Raises RuntimeError when the solver does not prove optimality within
    `time_limit_s` or finds no valid assignment."""
    w, parts, n = before.width, before.partitions, len(devices)
    index = {d.id: i for i, d in enumerate(devices)}
    n_vars = parts * n
    rows = _Rows()
    for p in range(parts):
        rows.add([p * n + i for i in range(n)], w, w)
    for members, cap in _domains(devices, w):
        for p in range(parts):
            rows.add([p * n + i for i in members], 0, cap)
    ranges = _ranges(devices, w, parts)
    if counts is not None:
        ranges = [(counts[d.id], counts[d.id]) for d in devices]
    for i, (lo, hi) in enumerate(ranges):
        rows.add([p * n + i for p in range(parts)], lo, hi)
    cost = np.zeros(n_vars)
    for p in range(parts):
        for dev in before.assignment[p * w : (p + 1) * w]:
            if dev in index:
                cost[p * n + index[dev]] = -1.0
    result = milp(
        cost, constraints=rows.constraint(n_vars), integrality=np.ones(n_vars),
        bounds=Bounds(0, 1), options={"time_limit": time_limit_s},
    )
    if result.status != 0 or result.x is None:
        raise RuntimeError(f"no proven optimum: {result.message}")
    x = np.round(result.x).astype(int).reshape(parts, n)
    assignment = tuple(tuple(devices[i].id for i in np.flatnonzero(x[p])) for p in range(parts))
    kept = round(-result.fun)
    return Optimum(parts * w - kept, assignment)
