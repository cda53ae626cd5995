"""What a ring change moves: slots per device and per zone, the moved fraction, the bytes.

Rules: pure. A plan compares two rings of the same shape slot by slot: a slot whose device
changed is one fragment to copy from the old device to the new one. When nodes report the
bytes one fragment slot holds per partition, the plan also says how many bytes will move.
Going from an unbuilt ring (no data anywhere yet) moves nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ring.model import Ring


class PlanError(ValueError):
    """The two rings cannot be compared (different part power or width)."""


@dataclass(frozen=True)
class Flow:
    name: str  # a device id or a zone path
    slots_out: int
    slots_in: int


@dataclass(frozen=True)
class Plan:
    old_version: int
    new_version: int
    slots_total: int
    slots_moved: int
    partitions_moved: int
    most_moved_in_one_partition: int
    devices: tuple[Flow, ...]
    zones: tuple[Flow, ...]
    bytes_moved: int | None  # None when no partition sizes were given

    @property
    def fraction_moved(self) -> float:
        return self.slots_moved / self.slots_total if self.slots_total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "slots_total": self.slots_total,
            "slots_moved": self.slots_moved,
            "fraction_moved": self.fraction_moved,
            "partitions_moved": self.partitions_moved,
            "most_moved_in_one_partition": self.most_moved_in_one_partition,
            "bytes_moved": self.bytes_moved,
            "devices": [_flow_json(f) for f in self.devices],
            "zones": [_flow_json(f) for f in self.zones],
        }


def _flow_json(flow: Flow) -> dict[str, Any]:
    return {"name": flow.name, "slots_out": flow.slots_out, "slots_in": flow.slots_in}


def _flows(out: Counter[str], into: Counter[str]) -> tuple[Flow, ...]:
    names = sorted(set(out) | set(into), key=lambda n: (len(n), n))
    return tuple(Flow(n, out[n], into[n]) for n in names)


def diff(old: Ring, new: Ring, slot_bytes: Mapping[int, int] | None = None) -> Plan:
    """The moves from `old` to `new`. `slot_bytes[p]`: bytes of one slot of partition p."""
    if (old.part_power, old.width) != (new.part_power, new.width):
        raise PlanError("rings differ in part power or width; they cannot be compared")
    w = new.width
    dev_out: Counter[str] = Counter()
    dev_in: Counter[str] = Counter()
    zone_out: Counter[str] = Counter()
    zone_in: Counter[str] = Counter()
    moved = partitions = most = 0
    nbytes = 0
    if old.built and new.built:
        for p in range(new.partitions):
            base = p * w
            here = 0
            for a, b in zip(old.assignment[base : base + w], new.assignment[base : base + w],
                            strict=True):
                if a != b:
                    here += 1
                    dev_out[str(a)] += 1
                    dev_in[str(b)] += 1
                    zone_out[old.device(a).zone] += 1
                    zone_in[new.device(b).zone] += 1
            if here:
                moved += here
                partitions += 1
                most = max(most, here)
                nbytes += here * (slot_bytes.get(p, 0) if slot_bytes else 0)
    return Plan(
        old_version=old.version,
        new_version=new.version,
        slots_total=new.partitions * w,
        slots_moved=moved,
        partitions_moved=partitions,
        most_moved_in_one_partition=most,
        devices=_flows(dev_out, dev_in),
        zones=_flows(zone_out, zone_in),
        bytes_moved=nbytes if slot_bytes is not None else None,
    )
