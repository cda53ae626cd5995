"""Compact listing pages cut on the node (storage/list_pages.py), against a naive model."""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import xxhash

from storage import list_pages
from storage.index import Index, Location, MetaEntry, PutMeta
from storage.keys import successor
from storage.kv import LmdbStore, MemoryStore
from storage.list_pages import PageQuery
from tests.storage.test_index_contract import index

# The `index` fixture of the contract tests: each test below runs on LMDB and in memory.
STORES = index

Model = dict[bytes, tuple[int, bytes | None]]     # key -> (ts, value or None = tombstone)


def _loc() -> Location:
    return Location(1, 0, 60, 20, 65536, 100)


def load(index: Index, model: Model, partition: int = 3) -> None:
    index.apply([PutMeta(MetaEntry(partition, k, ts, v, _loc())) for k, (ts, v) in model.items()])


def value(i: int) -> bytes:
    return msgpack.packb([2, i, f'"etag{i}"', 1000 + i, {"x-amz-storage-class": "COLD"}])


def naive(model: Model, q: PageQuery) -> list[object]:
    """Every row of the listing from start_at on, computed the obvious way."""
    rows: list[object] = []
    for key in sorted(model):
        v = model[key][1]
        if v is None or not key.startswith(q.prefix) or key < q.start_at:
            continue
        at = key.find(q.delimiter, len(q.prefix)) if q.delimiter else -1
        if at >= 0:
            group = key[: at + len(q.delimiter or b"")]
            if group >= q.start_at and group[q.strip:] not in rows:
                rows.append(group[q.strip:])
            continue
        rows.append([key[q.strip:], *list_pages.project(v, q.fields)])
    return rows


def page_through(index: Index, q: PageQuery, partition: int = 3) -> list[object]:
    out: list[object] = []
    start = q.start_at
    for _ in range(10_000):
        page = index.list_page(partition, PageQuery(q.prefix, start, q.limit, q.delimiter,
                                                    q.strip, q.fields, q.scan_max), True)
        assert len(page.rows) <= q.limit
        out.extend(page.rows)
        if page.resume is None:
            return out
        assert page.resume > start, "a page always makes progress"
        start = page.resume
    raise AssertionError("no end")


def random_model(rnd: random.Random, n: int) -> Model:
    model: Model = {}
    # long keys sharing their first 480 bytes form a hashed group: two groups side by side
    heads = [b"L" * 485, b"L" * 479 + b"M" * 6]
    for i in range(n):
        shape = rnd.randrange(5)
        if shape == 0:
            key = f"f{rnd.randrange(8)}/x{rnd.randrange(30)}".encode()
        elif shape == 1:
            key = f"f{rnd.randrange(8)}/sub{rnd.randrange(3)}/y{rnd.randrange(20)}".encode()
        elif shape == 2:
            key = rnd.choice(heads) + f"/{rnd.randrange(40)}".encode()
        else:
            key = f"k{rnd.randrange(200):03d}".encode()
        model[key] = (i + 1, None if rnd.random() < 0.3 else value(i))
    return model


@pytest.mark.parametrize("seed", range(6))
def test_pages_equal_the_naive_listing(index: Index, seed: int) -> None:
    rnd = random.Random(seed)
    print("seed", seed)
    model = random_model(rnd, 300)
    load(index, model)
    fields = (0, 1, 2, 3, (4, "x-amz-storage-class"))
    for prefix in (b"", b"f", b"f3/", b"L" * 100, b"k1"):
        for delimiter in (None, b"/", b"sub"):
            for start_at in (prefix, prefix + b"f3/", prefix + b"k050\x00"):
                q = PageQuery(prefix, start_at, rnd.choice([1, 2, 7, 1000]), delimiter,
                              rnd.choice([0, 1]), fields, scan_max=rnd.choice([3, 10_000]))
                assert page_through(index, q) == naive(model, q), (prefix, delimiter, start_at)


def test_projection_of_fields_and_missing_parts() -> None:
    doc = value(7)
    assert list_pages.project(doc, (1, 3, (4, "x-amz-storage-class"), (4, "nope"), 9)) == [
        7, 1007, "COLD", None, None]
    assert list_pages.project(b"\xc1 not msgpack", (0, 1)) == [None, None]
    assert list_pages.project(msgpack.packb({"a": 1}), (0,)) == [None]


def _digest(index: Index, q: PageQuery) -> bytes:
    return index.list_page(3, q, False).digest


def test_digest_equal_for_equal_data_and_rows_match_digest_only(tmp_path: Path) -> None:
    a, b = Index(MemoryStore()), Index(LmdbStore(tmp_path / "b"))
    model = random_model(random.Random(11), 200)
    load(a, model)
    load(b, model)
    for delimiter in (None, b"/"):
        q = PageQuery(b"", b"", 50, delimiter)
        full = a.list_page(3, q, True)
        assert _digest(b, q) == full.digest and _digest(a, q) == full.digest
        assert a.list_page(3, q, False).rows == []


def test_digest_sees_a_newer_stamp_a_delete_and_a_hidden_delete_in_a_group() -> None:
    base: Model = {b"a/1": (5, value(1)), b"b": (5, value(2))}
    variants: list[Model] = [
        {**base, b"b": (6, value(2))},                      # newer write of a key
        {**base, b"b": (6, None)},                          # deleted on this replica
        # a group listed through a different live key: the other replica may hold a
        # newer delete of it, so the prefix alone must not make the digests equal
        {b"a/1": (6, None), b"a/2": (7, value(3)), b"b": (5, value(2))},
    ]
    q = PageQuery(b"", b"", 10, b"/")
    one = Index(MemoryStore())
    load(one, base)
    for model in variants:
        other = Index(MemoryStore())
        load(other, model)
        assert _digest(one, q) != _digest(other, q), model


def test_long_tombstone_run_stops_at_scan_budget_and_resumes(index: Index) -> None:
    model: Model = {f"t{i:04d}".encode(): (i + 1, None) for i in range(50)}
    model[b"z"] = (99, value(1))
    load(index, model)
    page = index.list_page(3, PageQuery(b"", b"", 10, scan_max=20), True)
    assert page.rows == [] and page.resume == b"t0019\x00"
    assert page_through(index, PageQuery(b"", b"", 10, scan_max=20)) == [[b"z"]]


def test_group_of_only_tombstones_is_not_listed_and_group_before_start_is_skipped(
        index: Index) -> None:
    model: Model = {b"a/1": (1, None), b"a/2": (2, None), b"b/1": (3, value(1)),
                    b"c/9": (4, value(2))}
    load(index, model)
    page = index.list_page(3, PageQuery(b"", b"", 10, b"/"), True)
    assert page.rows == [b"b/", b"c/"] and page.resume is None
    # start-after "b/0" (start_at "b/0\0") is inside group b/: already listed, skipped
    later = index.list_page(3, PageQuery(b"", b"b/0\x00", 10, b"/"), True)
    assert later.rows == [b"c/"]
    first = index.list_page(3, PageQuery(b"", b"", 1, b"/"), True)
    assert first.rows == [b"b/"] and first.resume == successor(b"b/")


def test_corrupt_value_is_reported_not_listed(index: Index) -> None:
    load(index, {b"k1": (1, value(1))})
    good = MetaEntry(3, b"k2", 2, value(2), _loc())
    index.apply([PutMeta(good)])
    with index._kv.write() as txn:      # flip a byte of k2's stored value
        from storage import keys
        raw = bytearray(txn.get("meta", keys.encode(3, b"k2")) or b"")
        raw[-1] ^= 0xFF
        txn.put("meta", keys.encode(3, b"k2"), bytes(raw))
    page = index.list_page(3, PageQuery(b"", b"", 10), True)
    assert page.rows == [[b"k1"]] and page.corrupt == (b"k2",)


def test_wire_round_trip_and_malformed_queries() -> None:
    q = PageQuery(b"p", b"p1", 20, b"/", 1, (0, (4, "x")))
    assert list_pages.query_from_wire(list_pages.query_to_wire(q, True), 1000) == (q, True)
    capped, _ = list_pages.query_from_wire(list_pages.query_to_wire(q, False), 5)
    assert capped.limit == 5
    bad = [
        [b"p", "text", 20, None, 0, [], True],
        [b"p", b"", 0, None, 0, [], True],
        [b"p", b"", 5, None, 0, [True], True],
        [b"p", b"", 5, None, 0, [[1, 2]], True],
        [b"p", b"", 5, None, 0, []],
    ]
    for raw in bad:
        with pytest.raises((ValueError, TypeError)):
            list_pages.query_from_wire(raw, 1000)


def _rows_source(model: Model) -> tuple[list_pages.Seek, list_pages.First]:
    """A pure record source over a model, as the index gives it (checksums included)."""
    rows = [(k, ts.to_bytes(16, "big"), v is None, v or b"",
             xxhash.xxh3_64_digest(v or b"")) for k, (ts, v) in sorted(model.items())]
    keys = [r[0] for r in rows]

    def seek(low: bytes) -> Iterator[list_pages.Row]:
        return iter(rows[bisect.bisect_left(keys, low):])

    def first(low: bytes) -> list_pages.Head | None:
        at = bisect.bisect_left(keys, low)
        return rows[at][:3] if at < len(rows) else None

    return seek, first


@pytest.mark.parametrize("seed", range(4))
def test_group_hops_give_the_pages_of_the_plain_scan(seed: int) -> None:
    """build() with `first` (one seek per group) must give the same rows, resume and digest
    as the scan alone, page after page."""
    rnd = random.Random(seed)
    print("seed", seed)
    model = random_model(rnd, 400)
    seek, first = _rows_source(model)
    for prefix in (b"", b"f", b"f2/"):
        for delimiter in (b"/", b"sub", b"x"):
            start: bytes | None = prefix
            while start is not None:
                q = PageQuery(prefix, start, rnd.choice([1, 3, 50]), delimiter, 0, (1,))
                plain = list_pages.build(seek, q, True)
                hopped = list_pages.build(seek, q, True, first)
                assert hopped == plain, (prefix, delimiter, start)
                start = plain.resume


def test_group_hop_stops_at_a_group_whose_first_key_is_deleted() -> None:
    model: Model = {b"a/1": (1, value(1)), b"b/1": (2, None), b"b/2": (3, value(2)),
                    b"c/1": (4, None), b"d": (5, value(3)), b"e/1": (6, value(4))}
    seek, first = _rows_source(model)
    asked: list[bytes] = []

    def counting_first(low: bytes) -> list_pages.Head | None:
        asked.append(low)
        return first(low)

    q = PageQuery(b"", b"", 10, b"/")
    page = list_pages.build(seek, q, True, counting_first)
    assert page.rows == [b"a/", b"b/", [b"d"], b"e/"] and page.resume is None
    assert page == list_pages.build(seek, q, True)
    assert asked and asked[0] == successor(b"a/")
