"""One contract for the index, run against the LMDB store and the in-memory twin."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import keys, limits
from storage.index import (
    DeleteFragment,
    DropSegment,
    FragmentEntry,
    Index,
    Location,
    MetaEntry,
    Op,
    PutFragment,
    PutMeta,
    Quarantine,
    Relocate,
)
from storage.kv import LmdbStore, MemoryStore


@pytest.fixture(params=["lmdb", "memory"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    store = LmdbStore(tmp_path / "index.lmdb") if request.param == "lmdb" else MemoryStore()
    idx = Index(store)
    yield idx
    idx.close()


def loc(seg: int = 1, offset: int = 0, size: int = 100) -> Location:
    return Location(seg, offset, 60, size - 80, 65536, size)


def frag(p: int, key: bytes, seg: int = 1, offset: int = 0, size: int = 100) -> FragmentEntry:
    return FragmentEntry(p, key, 1, loc(seg, offset, size))


def meta(p: int, key: bytes, ts: int, value: bytes | None = b"v", seg: int = 1,
         offset: int = 0) -> MetaEntry:
    return MetaEntry(p, key, ts, value, loc(seg, offset))


def test_fragment_put_get_replace_delete(index: Index) -> None:
    assert index.get_fragment(1, b"a") is None
    assert index.apply([PutFragment(frag(1, b"a", size=100))]) == [True]
    assert index.get_fragment(1, b"a") == frag(1, b"a", size=100)
    assert index.get_fragment(2, b"a") is None  # partitions are separate
    index.apply([PutFragment(frag(1, b"a", seg=2, size=300))])
    assert index.segment_live_bytes() == {1: 0, 2: 300}
    assert index.apply([DeleteFragment(1, b"a"), DeleteFragment(1, b"a")]) == [True, False]
    assert index.get_fragment(1, b"a") is None
    assert index.segment_live_bytes() == {1: 0, 2: 0}
    assert index.apply([DropSegment(1)]) == [True]
    assert index.segment_live_bytes() == {2: 0}


def test_meta_newest_wins_and_tombstones_stay(index: Index) -> None:
    big = 2**128 - 1
    assert index.apply([PutMeta(meta(0, b"k", 5, b"five"))]) == [True]
    assert index.apply([PutMeta(meta(0, b"k", 5, b"again")),
                        PutMeta(meta(0, b"k", 4, b"four"))]) == [False, False]
    got = index.get_meta(0, b"k")
    assert got is not None and got.value == b"five" and got.intact
    assert index.apply([PutMeta(meta(0, b"k", big, None))]) == [True]
    got = index.get_meta(0, b"k")
    assert got is not None and got.value is None and got.ts == big
    assert [m.key for m in index.list_meta(0, b"", None, None, 10)] == [b"k"]


def _long_keys(rng: random.Random) -> list[bytes]:
    base = rng.randbytes(600)
    out = {base[:n] for n in (1, 100, 479, 480, 481, 511, 512, 600)}
    # Keys that differ only past byte 511 (one long-key group), up to 1024 bytes and beyond.
    for _ in range(30):
        out.add(base[:512] + rng.randbytes(rng.randrange(0, limits.key_size_bytes_max - 511)))
    out.add(b"\xff" * 1024)
    out.add(b"\x00" * 1024)
    for _ in range(30):
        out.add(rng.randbytes(rng.randrange(0, 1025)))
    return list(out)


def test_long_keys_list_in_exact_key_order(index: Index) -> None:
    seed = 1234
    print("seed", seed)
    rng = random.Random(seed)
    all_keys = _long_keys(rng)
    ops: list[Op] = []
    for i, k in enumerate(all_keys):
        ops += [PutMeta(meta(9, k, i + 1)), PutFragment(frag(9, k, offset=i))]
    rng.shuffle(ops)
    index.apply(ops)
    want = sorted(all_keys)
    assert [m.key for m in index.list_meta(9, b"", None, None, 10_000)] == want
    assert [f.key for f in index.list_fragments(9, b"", 10_000)] == want
    for k in all_keys:
        f = index.get_fragment(9, k)
        assert f is not None and f.key == k
    # Paging through with every page size gives the same order.
    for page in (1, 7, 50):
        got, after = [], b""
        while batch := index.list_fragments(9, after, page):
            got += [f.key for f in batch]
            after = batch[-1].key
        assert got == want
        got2: list[bytes] = []
        start_after: bytes | None = None
        while batch2 := index.list_meta(9, b"", start_after, None, page):
            got2 += [m.key for m in batch2]
            start_after = batch2[-1].key
        assert got2 == want


def test_meta_prefix_start_after_start_at(index: Index) -> None:
    ks = [b"a", b"ab", b"abc", b"abd", b"b", b"ab" + b"x" * 600, b"ab" + b"x" * 600 + b"y"]
    index.apply([PutMeta(meta(4, k, 1)) for k in ks])
    ab = sorted(k for k in ks if k.startswith(b"ab"))

    def names(prefix: bytes, sa: bytes | None = None, at: bytes | None = None,
              limit: int = 100) -> list[bytes]:
        return [m.key for m in index.list_meta(4, prefix, sa, at, limit)]

    assert names(b"ab") == ab
    assert names(b"ab", sa=b"abc") == [k for k in ab if k > b"abc"]
    assert names(b"ab", at=b"abc") == [k for k in ab if k >= b"abc"]
    assert names(b"ab", at=b"ab" + b"x" * 600) == ab[-2:]
    assert names(b"ab", sa=b"ab" + b"x" * 600) == ab[-1:]
    assert names(b"", limit=2) == [b"a", b"ab"]
    assert names(b"zz") == []
    assert names(b"", sa=b"a", at=b"abd") == [k for k in sorted(ks) if k >= b"abd"]


def test_relocate_is_conditional(index: Index) -> None:
    index.apply([PutFragment(frag(1, b"a", seg=1, offset=0)),
                 PutMeta(meta(1, b"m", 3, seg=1, offset=100))])
    new = loc(seg=5, offset=0)
    assert index.apply([Relocate(False, 1, b"a", loc(1, 0), new)]) == [True]
    assert index.apply([Relocate(False, 1, b"a", loc(1, 0), loc(6, 0))]) == [False]
    got = index.get_fragment(1, b"a")
    assert got is not None and got.loc == new
    assert index.apply([Relocate(True, 1, b"m", loc(1, 100), new)]) == [True]
    m = index.get_meta(1, b"m")
    assert m is not None and m.loc == new and m.ts == 3 and m.value == b"v"
    assert index.segment_live_bytes()[1] == 0


def test_quarantine_moves_entry_and_records_repair(index: Index) -> None:
    index.apply([PutFragment(frag(2, b"bad", seg=3))])
    stale = Quarantine(False, 2, b"bad", loc(seg=9), "old location")
    assert index.apply([stale]) == [False]  # the entry moved on: nothing to quarantine
    q = Quarantine(False, 2, b"bad", loc(seg=3), "checksum mismatch in chunk 0")
    assert index.apply([q]) == [True]
    assert index.get_fragment(2, b"bad") is None
    jobs = index.repair_jobs()
    assert [(j.partition, j.key, j.is_meta) for j in jobs] == [(2, b"bad", False)]
    assert "checksum" in jobs[0].reason
    assert index.counts()["quarantine"] == 1


def test_partition_summary_is_order_independent(index: Index, tmp_path: Path) -> None:
    ops: list[Op] = [PutMeta(meta(7, b"k%d" % i, i + 1)) for i in range(50)]
    ops += [PutFragment(frag(7, b"f%d" % i, size=100 + i)) for i in range(10)]
    other = Index(MemoryStore())
    index.apply(ops)
    other.apply(list(reversed(ops)))
    s1, s2 = index.partition_summary(7), other.partition_summary(7)
    assert s1 == s2 and s1["count"] == 60 and s1["meta_count"] == 50
    other.apply([PutMeta(meta(7, b"k0", 99))])
    assert other.partition_summary(7)["hash"] != s1["hash"]


def test_lmdb_keys_stay_under_the_limit() -> None:
    k = keys.encode(2**32 - 1, b"z" * limits.key_size_bytes_max)
    assert len(k) <= limits.lmdb_key_size_bytes_max


def test_writes_are_atomic(index: Index) -> None:
    index.apply([PutFragment(frag(1, b"a"))])
    with pytest.raises(struct.error):
        index.apply([PutFragment(frag(1, b"b")), PutFragment(frag(1, b"c", seg=-1))])
    assert index.get_fragment(1, b"b") is None  # the failed batch left nothing behind


def test_list_meta_cuts_delimiter_groups_after_first_live(index: Index) -> None:
    """Within a group (prefix ... delimiter) the scan returns tombstones up to the first
    live record and then jumps past the group; keys without the delimiter all come back."""
    rows = [(b"a/1", None), (b"a/2", b"v"), (b"a/3", b"v"), (b"b", b"v"),
            (b"c/x/1", b"v"), (b"c/y", b"v"), (b"d/1", None)]
    index.apply([PutMeta(meta(3, k, ts, v)) for ts, (k, v) in enumerate(rows, start=1)])
    got = [(e.key, e.value is not None)
           for e in index.list_meta(3, b"", None, None, 100, b"/")]
    assert got == [(b"a/1", False), (b"a/2", True), (b"b", True), (b"c/x/1", True),
                   (b"d/1", False)]
    under_c = [e.key for e in index.list_meta(3, b"c/", None, None, 100, b"/")]
    assert under_c == [b"c/x/1", b"c/y"]
    long = b"L" * 600 + b"/"          # groups of long keys (hashed LMDB keys) jump too
    index.apply([PutMeta(meta(3, long + b"%d" % i, 10 + i)) for i in range(5)])
    got_long = [e.key for e in index.list_meta(3, b"L", None, None, 100, b"/")]
    assert got_long == [long + b"0"]
