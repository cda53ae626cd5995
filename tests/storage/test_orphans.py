"""Data ids and the orphan collector's decisions, without a cluster."""

from __future__ import annotations

import random

import pytest
import xxhash

from ring.builder import build_ring
from ring.model import Device as RingDevice
from storage import dataid
from storage.client import MetaRecord
from storage.index import FragmentEntry, Location
from storage.orphans import Answer, OrphanConfig, Strikes, answers, old_enough

HOME = b"coffre:index:" + b"\x01" * 8 + (3).to_bytes(4)


def test_data_id_round_trip() -> None:
    did = dataid.new_data_id(4, 2, HOME, 1_700_000_000_123, rand=b"r" * 11)
    assert len(did) == dataid.id_bytes_v1
    info = dataid.parse(did)
    assert info == dataid.DataIdInfo(4, 2, 1_700_000_000_123, xxhash.xxh3_64_intdigest(HOME))
    assert info.width == 6


def test_home_partition_is_what_the_meta_ring_computes() -> None:
    devices = [RingDevice(i, f"127.0.0.1:{9000 + i}", 1.0, f"r/z/n{i}/d0") for i in range(5)]
    ring = build_ring(devices, part_power=8, width=3)
    for shard in range(50):
        name = HOME[:-4] + shard.to_bytes(4)
        info = dataid.parse(dataid.new_data_id(1, 2, name, 5))
        assert info is not None
        assert dataid.home_partition(info, ring.part_power) == ring.partition_of(name)


def test_other_ids_do_not_parse() -> None:
    assert dataid.parse(bytes(16)) is None  # an id of earlier releases
    assert dataid.parse(b"\x02" + bytes(27)) is None  # unknown version
    assert dataid.parse(b"\x01\x00" + bytes(26)) is None  # k = 0
    info = dataid.parse(dataid.new_data_id(1, 0, b"", 5))
    assert info is not None and dataid.home_partition(info, 6) is None
    with pytest.raises(ValueError):
        dataid.new_data_id(0, 2, HOME, 5)
    with pytest.raises(ValueError):
        dataid.new_data_id(4, 2, HOME, -1)


def _entry(did: bytes, index: int = 0) -> FragmentEntry:
    return FragmentEntry(7, did + bytes([index]), 1, Location(1, 0, 64, 100, 65536, 200))


def test_old_enough_keeps_young_and_homeless_ids() -> None:
    old = dataid.new_data_id(4, 2, HOME, 1_000)
    young = dataid.new_data_id(4, 2, HOME, 9_500)
    homeless = dataid.new_data_id(4, 2, b"", 1_000)
    legacy = bytes(16)
    got = old_enough([_entry(d) for d in (old, young, homeless, legacy)], now_ms=10_000,
                     grace_ms=1_000, meta_part_power=6)
    assert [[e.key[:-1] for e in v] for v in got.values()] == [[old]]
    info = dataid.parse(old)
    assert info is not None and list(got) == [dataid.home_partition(info, 6)]


def test_answers_need_a_quorum_and_find_ids_in_any_replica() -> None:
    a, b = dataid.new_data_id(4, 2, HOME, 1), dataid.new_data_id(4, 2, HOME, 2)
    manifest = MetaRecord(b"Ok", 5, b"\x93" + a + b"tail")
    tomb = MetaRecord(b"Ok", 6, None)
    # One stale replica still naming `a` keeps it: a stale copy only delays collection.
    got = answers([a, b], [[tomb], [manifest], None], need=2)
    assert got == {a: Answer.REFERENCED, b: Answer.UNREFERENCED}
    assert answers([a, b], [[tomb], None, None], need=2) == {a: Answer.UNKNOWN,
                                                            b: Answer.UNKNOWN}


def test_strikes_delete_only_after_two_unreferenced_answers_apart() -> None:
    s = Strikes(confirm_s=10)
    w = (1, 2, b"k")
    assert not s.judge(w, Answer.UNREFERENCED, 100)
    assert not s.judge(w, Answer.UNKNOWN, 105)
    assert not s.judge(w, Answer.UNREFERENCED, 109)
    assert s.judge(w, Answer.UNREFERENCED, 110)
    # A referenced answer in between starts over.
    s = Strikes(confirm_s=10)
    s.judge(w, Answer.UNREFERENCED, 100)
    s.judge(w, Answer.REFERENCED, 105)
    assert not s.judge(w, Answer.UNREFERENCED, 111)
    assert s.judge(w, Answer.UNREFERENCED, 121)
    s.forget_except(set())
    assert not s.first


def test_answers_random_ids_never_false_unreferenced() -> None:
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    ids = [dataid.new_data_id(4, 2, HOME, i, rand=rng.randbytes(11)) for i in range(200)]
    live = set(rng.sample(ids, 80))
    records = [MetaRecord(b"O%d" % i, i, rng.randbytes(rng.randrange(0, 50)) + d
                          + rng.randbytes(rng.randrange(0, 50))) for i, d in enumerate(live)]
    got = answers(ids, [records, records[::2], records[1::2]], need=2)
    assert {d for d, a in got.items() if a is Answer.REFERENCED} == live


def test_config_from_env() -> None:
    cfg = OrphanConfig.from_env({"COFFRE_ORPHAN_GRACE_S": "3", "COFFRE_ORPHAN_CONFIRM_S": "1"})
    assert (cfg.grace_s, cfg.confirm_s, cfg.interval_s) == (3.0, 1.0, OrphanConfig().interval_s)
    with pytest.raises(ValueError):
        OrphanConfig.from_env({"COFFRE_ORPHAN_GRACE_S": "-1"})
