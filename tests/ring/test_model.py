"""The lookup API: partition_of, slots, previous_slots, device."""

from __future__ import annotations

from array import array

import pytest
import xxhash

from ring.builder import build_ring
from ring.model import Device, Ring, device_problem
from tests.ring.clusters import cluster


@pytest.fixture(scope="module")
def ring() -> Ring:
    return build_ring(cluster(1, 3, 2, 2), part_power=8, width=6, seed=7)


def test_partition_is_top_bits_of_xxh3(ring: Ring) -> None:
    for key in (b"", b"a", b"bucket/object", bytes(range(256))):
        assert ring.partition_of(key) == xxhash.xxh3_64_intdigest(key) >> (64 - 8)
        assert 0 <= ring.partition_of(key) < ring.partitions


def test_part_power_zero_has_one_partition() -> None:
    r = build_ring(cluster(1, 1, 1, 3), part_power=0, width=3)
    assert r.partitions == 1
    assert r.partition_of(b"anything") == 0
    assert {d.id for d in r.slots(0)} == {0, 1, 2}


def test_slots_match_assignment_and_do_not_allocate(ring: Ring) -> None:
    for p in range(ring.partitions):
        devs = ring.slots(p)
        assert tuple(d.id for d in devs) == ring.slot_ids(p)
        assert devs is ring.slots(p)  # a prebuilt tuple, not a new one per call
        assert len({d.id for d in devs}) == ring.width


def test_device_lookup(ring: Ring) -> None:
    for dev in ring.devices:
        assert ring.device(dev.id) is dev
    with pytest.raises(KeyError):
        ring.device(999)


def test_fresh_ring_has_no_previous(ring: Ring) -> None:
    assert all(ring.previous_slots(p) is None for p in range(ring.partitions))


def test_ring_rejects_unknown_device_in_assignment() -> None:
    devs = tuple(cluster(1, 1, 1, 3))
    with pytest.raises(ValueError, match="not in the ring"):
        Ring(1, 0, 3, devs, array("H", [0, 1, 9]))
    with pytest.raises(ValueError, match="entries"):
        Ring(1, 1, 3, devs, array("H", [0, 1, 2]))


@pytest.mark.parametrize(
    ("dev", "why"),
    [
        (Device(1, "h:1", 0.0, "r/z/n/d"), "weight"),
        (Device(1, "h:1", -2.0, "r/z/n/d"), "weight"),
        (Device(-1, "h:1", 1.0, "r/z/n/d"), "out of range"),
        (Device(1, "h", 1.0, "r/z/n/d"), "host:port"),
        (Device(1, "h:99999", 1.0, "r/z/n/d"), "host:port"),
        (Device(1, "h:1", 1.0, "r/z/n"), "domain"),
        (Device(1, "h:1", 1.0, "r//n/d"), "domain"),
    ],
)
def test_device_problems(dev: Device, why: str) -> None:
    problem = device_problem(dev)
    assert problem is not None and why in problem
    assert device_problem(Device(1, "h:1", 1.0, "r/z/n/d")) is None
