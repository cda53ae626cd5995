"""storage/meta_digest.py through the index: the running digest of a partition always
equals the digest recomputed from the records it holds, whatever the order of the writes,
and an index written before digests existed computes the same ones when opened."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage import meta_digest
from storage.index import _DIGESTS_READY, Index, Location, MetaEntry, PutMeta, Quarantine
from storage.kv import LmdbStore, MemoryStore
from storage.list_pages import PageQuery

LOC = Location(1, 0, 60, 20, 65536, 100)


def recomputed(records: dict[bytes, int]) -> bytes:
    """The digest of a partition holding these keys at these stamps, from scratch."""
    acc = 0
    for key, ts in records.items():
        acc ^= meta_digest.term(key, ts.to_bytes(16, "big"))
    return meta_digest.fold(None, acc, len(records)) if records else meta_digest.EMPTY


# (partition, key, stamp, tombstone?) writes; a drop quarantines whatever the key holds.
writes = st.lists(st.tuples(st.integers(0, 2),
                            st.sampled_from([b"a", b"b", b"a/x", b"k" * 600, b"bucket001/a",
                                             b"bucket001/b", b"bucket002/a"]),
                            st.integers(1, 6), st.booleans(), st.booleans()), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ops=writes)
def test_running_digest_equals_the_recomputed_one(ops: list[tuple[int, bytes, int, bool, bool]]
                                                  ) -> None:
    index = Index(MemoryStore())
    model: dict[int, dict[bytes, int]] = {0: {}, 1: {}, 2: {}}
    for part, key, ts, tomb, drop in ops:
        if drop:
            e = index.get_meta(part, key)
            if e is not None:
                index.apply([Quarantine(True, part, key, e.loc, "test")])
                del model[part][key]
            continue
        index.apply([PutMeta(MetaEntry(part, key, ts, None if tomb else b"v", LOC))])
        if ts > model[part].get(key, 0):
            model[part][key] = ts
    for part, records in model.items():
        assert index.meta_digest(part) == recomputed(records)
        for group in {k[:9] for k in records} | {b"bucket001", b"nothing.."}:
            assert index.meta_digest(part, group) == recomputed(
                {k: ts for k, ts in records.items() if k[:9] == group}), group
    shuffled = Index(MemoryStore())         # the same records written in another order
    final = [(p, k, ts) for p, recs in model.items() for k, ts in recs.items()]
    random.Random(len(ops)).shuffle(final)
    for p, k, ts in final:
        shuffled.apply([PutMeta(MetaEntry(p, k, ts, b"v", LOC))])
    assert all(shuffled.meta_digest(p) == index.meta_digest(p) for p in model)
    assert all(shuffled.meta_digest(p, b"bucket001") == index.meta_digest(p, b"bucket001")
               for p in model)


def test_a_differing_record_changes_the_digest() -> None:
    one, two = Index(MemoryStore()), Index(MemoryStore())
    for idx in (one, two):
        idx.apply([PutMeta(MetaEntry(0, b"a", 1, b"v", LOC)),
                   PutMeta(MetaEntry(0, b"b", 1, b"v", LOC))])
    assert one.meta_digest(0) == two.meta_digest(0) != meta_digest.EMPTY
    two.apply([PutMeta(MetaEntry(0, b"b", 2, None, LOC))])      # a newer tombstone
    assert one.meta_digest(0) != two.meta_digest(0)
    one.apply([PutMeta(MetaEntry(0, b"b", 2, None, LOC))])
    assert one.meta_digest(0) == two.meta_digest(0)
    page = one.list_page(0, PageQuery(b"", b"", 10), True)
    assert page.state == one.meta_digest(0)     # the page carries its snapshot's digest


def test_an_index_from_before_digests_computes_them_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "index.lmdb"
    idx = Index(LmdbStore(path))
    idx.apply([PutMeta(MetaEntry(p, bytes([65 + i]) * (1 + i * 100), 10 + i, b"v", LOC))
               for p in range(3) for i in range(5)])
    groups = [b"A", b"B" * 9, b"C" * 9]
    want = [idx.meta_digest(p, g) for p in range(3) for g in [b"", *groups]]
    with idx._kv.write() as txn:            # as an index written by a previous version
        for k, _ in list(txn.scan("mdig", b"", None)):
            txn.delete("mdig", k)
        txn.delete("state", _DIGESTS_READY)
    assert idx.meta_digest(0) == meta_digest.EMPTY
    idx.close()
    reopened = Index(LmdbStore(path))
    assert [reopened.meta_digest(p, g) for p in range(3) for g in [b"", *groups]] == want
    assert all(d != meta_digest.EMPTY for d in want)
    reopened.close()
