"""Builder state: what the CLI edits between two rebalances, and the edits themselves.

Rules: pure. The state holds the ring as last rebalanced (what processes use) plus the pending
device list that the next rebalance will place, the devices marked failed (their data is gone,
so readers must not be sent there), and the per-partition time of the last move that
`min_part_hours` is checked against. Every edit returns a new state or raises RingInputError
with a one-line message; the state it was given is never changed.
"""

from __future__ import annotations

import dataclasses
from array import array
from dataclasses import dataclass, field

from ring import limits
from ring.model import Device, Ring, device_problem


class RingInputError(ValueError):
    """Bad operator input: unknown or duplicate device, weight <= 0, part power out of range."""


def _no_moves() -> array[int]:
    return array("I")


@dataclass(frozen=True)
class BuilderState:
    ring: Ring
    devices: tuple[Device, ...]  # pending: the devices the next rebalance places
    failed: frozenset[int] = frozenset()  # ids whose data is gone (no reads there any more)
    min_part_hours: int = 1
    # m: slots of one partition that may move in one rebalance (its parity count), so that
    # at least k fragments stay in place and every object stays readable while data moves.
    max_moves: int = 1
    seed: int = 0
    # Per partition, epoch seconds of its last move; 0 = never moved. Empty before the first
    # rebalance.
    last_moved: array[int] = field(default_factory=_no_moves, hash=False)

    @property
    def dirty(self) -> bool:
        """True when the pending devices differ from the ring's: a rebalance has work."""
        return self.devices != self.ring.devices


def default_max_moves(width: int) -> int:
    """m for a width: 2 of 6 (EC 4+2), 1 of 3 (3 replicas), a third of the slots in general."""
    return max(1, width - (2 * width + 2) // 3)


def new_state(
    part_power: int,
    width: int,
    min_part_hours: int = 1,
    seed: int = 0,
    max_moves: int | None = None,
) -> BuilderState:
    if not limits.part_power_min <= part_power <= limits.part_power_max:
        raise RingInputError(
            f"part power {part_power} out of range "
            f"{limits.part_power_min}..{limits.part_power_max}"
        )
    if not limits.width_min <= width <= limits.width_max:
        raise RingInputError(f"width {width} out of range {limits.width_min}..{limits.width_max}")
    if not 0 <= min_part_hours <= limits.min_part_hours_max:
        raise RingInputError(f"min part hours {min_part_hours} out of range")
    moves = default_max_moves(width) if max_moves is None else max_moves
    if not 1 <= moves <= width:
        raise RingInputError(f"max moves {moves} out of range 1..{width}")
    if not 0 <= seed < 2**63:
        raise RingInputError(f"seed {seed} out of range")
    ring = Ring(version=0, part_power=part_power, width=width, devices=())
    return BuilderState(ring, (), frozenset(), min_part_hours, moves, seed)


def _find(state: BuilderState, device_id: int) -> Device:
    for dev in state.devices:
        if dev.id == device_id:
            return dev
    raise RingInputError(f"unknown device {device_id}")


def add_device(state: BuilderState, dev: Device) -> BuilderState:
    problem = device_problem(dev)
    if problem is not None:
        raise RingInputError(problem)
    if any(d.id == dev.id for d in state.devices):
        raise RingInputError(f"duplicate device id {dev.id}")
    # An id still named by readers' previous assignment must keep meaning the old device.
    if any(d.id == dev.id for d in state.ring.retired) or dev.id in state.failed:
        raise RingInputError(f"device id {dev.id} was used by a removed device; pick another")
    if any(d.id == dev.id for d in state.ring.devices):
        raise RingInputError(f"device id {dev.id} is being removed; rebalance or pick another")
    if len(state.devices) >= limits.devices_count_max:
        raise RingInputError(f"too many devices (max {limits.devices_count_max})")
    devices = tuple(sorted((*state.devices, dev), key=lambda d: d.id))
    return dataclasses.replace(state, devices=devices)


def remove_device(state: BuilderState, device_id: int) -> BuilderState:
    _find(state, device_id)
    devices = tuple(d for d in state.devices if d.id != device_id)
    return dataclasses.replace(state, devices=devices)


def fail_device(state: BuilderState, device_id: int) -> BuilderState:
    """Remove a device whose data is lost: readers will not look for old data there."""
    after = remove_device(state, device_id)
    return dataclasses.replace(after, failed=state.failed | {device_id})


def set_weight(state: BuilderState, device_id: int, weight: float) -> BuilderState:
    dev = dataclasses.replace(_find(state, device_id), weight=weight)
    problem = device_problem(dev)
    if problem is not None:
        raise RingInputError(problem)
    devices = tuple(dev if d.id == device_id else d for d in state.devices)
    return dataclasses.replace(state, devices=devices)
