"""The ring model: devices, and the partition -> slots map that every process looks up.

Rules: pure (no I/O), immutable once built. A key hashes with xxh3_64; its top `part_power`
bits are the partition; the partition's `width` ordered slots name the devices holding
fragment (or replica) 0..width-1. Lookups index a table built once in `__post_init__`, so the
hot path allocates nothing.

Shape of the data (as Swift's `_replica2part2dev`, but partition-major):
  assignment[p * width + i] = id of the device holding slot i of partition p
  previous[p]               = device ids of partition p before the last rebalance, only for
                              partitions that moved and may still have data at the old place
A ring with version 0 has never been rebalanced: no devices, an empty assignment.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import xxhash

from ring import limits


@dataclass(frozen=True)
class Device:
    """One storage device (a directory or mount point) served by the node at `addr`."""

    id: int
    addr: str  # "host:port" of the storage node process that serves it
    weight: float  # capacity, any unit, > 0
    domain: str  # "region/zone/node/device"

    def tiers(self) -> tuple[str, str, str]:
        """The device's region, zone and node as path prefixes ("r", "r/z", "r/z/n")."""
        region, zone, node, _ = self.domain.split("/")
        return region, f"{region}/{zone}", f"{region}/{zone}/{node}"

    @property
    def zone(self) -> str:
        return self.tiers()[1]


def device_problem(dev: Device) -> str | None:
    """Why `dev` cannot be in a ring, or None. Shared by the builder, the file reader, the CLI."""
    if not 0 <= dev.id <= limits.device_id_max:
        return f"device id {dev.id} out of range 0..{limits.device_id_max}"
    if not limits.weight_min_exclusive < dev.weight <= limits.weight_max:
        return f"device {dev.id}: weight {dev.weight} must be > 0 and <= {limits.weight_max:g}"
    if not dev.addr or len(dev.addr) > limits.addr_length_max_chars:
        return f"device {dev.id}: bad address {dev.addr!r}"
    host, sep, port = dev.addr.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return f"device {dev.id}: address {dev.addr!r} is not host:port"
    parts = dev.domain.split("/")
    if len(dev.domain) > limits.domain_length_max_chars or len(parts) != 4 or "" in parts:
        return f"device {dev.id}: domain {dev.domain!r} is not region/zone/node/device"
    return None


def _empty_assignment() -> array[int]:
    return array("H")


@dataclass(frozen=True)
class Ring:
    """An immutable placement map. Build with ring.builder, read with ring.ringfile."""

    version: int
    part_power: int
    width: int
    devices: tuple[Device, ...]
    # Flat, partition-major device ids (see the module docstring). Not hashed: arrays are
    # mutable; nothing may mutate it after construction.
    assignment: array[int] = field(default_factory=_empty_assignment, hash=False)
    previous: Mapping[int, tuple[int, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    # Devices named in `previous` that left the ring: readers still find old data there.
    retired: tuple[Device, ...] = ()

    _shift: int = field(init=False, repr=False, compare=False, hash=False)
    _by_id: Mapping[int, Device] = field(init=False, repr=False, compare=False, hash=False)
    _table: tuple[tuple[Device, ...], ...] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _prev_table: Mapping[int, tuple[Device, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        problem = ring_problem(self)
        if problem is not None:
            raise ValueError(problem)
        by_id = {d.id: d for d in self.retired}
        by_id.update((d.id, d) for d in self.devices)
        devs = [by_id[i] for i in self.assignment]
        w = self.width
        table = tuple(tuple(devs[i : i + w]) for i in range(0, len(devs), w))
        prev = {p: tuple(by_id[i] for i in ids) for p, ids in self.previous.items()}
        setattr_ = object.__setattr__  # frozen dataclass: derived fields set once here
        setattr_(self, "_shift", 64 - self.part_power)
        setattr_(self, "_by_id", MappingProxyType(by_id))
        setattr_(self, "_table", table)
        setattr_(self, "_prev_table", MappingProxyType(prev))
        setattr_(self, "previous", MappingProxyType(dict(self.previous)))

    @property
    def partitions(self) -> int:
        return 1 << self.part_power

    @property
    def built(self) -> bool:
        """False for a ring that was created but never rebalanced (version 0)."""
        return len(self.assignment) > 0

    def partition_of(self, key: bytes) -> int:
        return int(xxhash.xxh3_64_intdigest(key)) >> self._shift

    def slots(self, partition: int) -> tuple[Device, ...]:
        """Devices of `partition` in slot order. IndexError on an unbuilt ring."""
        return self._table[partition]

    def slot_ids(self, partition: int) -> tuple[int, ...]:
        start = partition * self.width
        return tuple(self.assignment[start : start + self.width])

    def previous_slots(self, partition: int) -> tuple[Device, ...] | None:
        """Devices of `partition` before the last rebalance, or None if it did not move."""
        return self._prev_table.get(partition)

    def device(self, device_id: int) -> Device:
        """A device of the ring, or a retired one still named in `previous`. KeyError if not."""
        return self._by_id[device_id]


def ring_problem(ring: Ring) -> str | None:
    """Why `ring`'s fields do not form a ring, or None. Structural checks only."""
    if not limits.part_power_min <= ring.part_power <= limits.part_power_max:
        return f"part power {ring.part_power} out of range"
    if not limits.width_min <= ring.width <= limits.width_max:
        return f"width {ring.width} out of range"
    if ring.version < 0:
        return "negative version"
    ids = [d.id for d in ring.devices] + [d.id for d in ring.retired]
    if len(set(ids)) != len(ids):
        return "duplicate device id"
    for dev in ring.devices + ring.retired:
        problem = device_problem(dev)
        if problem is not None:
            return problem
    return _assignment_problem(ring, {d.id for d in ring.devices}, set(ids))


def _assignment_problem(ring: Ring, live: set[int], known: set[int]) -> str | None:
    n = len(ring.assignment)
    if n not in (0, ring.partitions * ring.width):
        return f"assignment has {n} entries, expected {ring.partitions * ring.width}"
    if n == 0 and (ring.version != 0 or ring.devices or ring.previous):
        return "a ring without assignment must be version 0 with no devices"
    if n and not set(ring.assignment) <= live:
        return "assignment names a device that is not in the ring"
    for p, ids in ring.previous.items():
        if not 0 <= p < ring.partitions or len(ids) != ring.width or not set(ids) <= known:
            return f"bad previous assignment for partition {p}"
    return None
