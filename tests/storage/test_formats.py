"""Fixtures of every persisted format version the node can still read: segment records (v1)
and index values (v1). A format change must keep these passing or add a new version."""

from __future__ import annotations

from pathlib import Path

from storage import keys
from storage.index import FragmentEntry, Location, MetaEntry, _frag_entry, _meta_entry
from storage.record import ParsedRecord, RecordFlag, RecordKind, RecordParser

FIXTURES = Path(__file__).parent / "fixtures"


def test_segment_v1_fixture_parses() -> None:
    data = (FIXTURES / "segment_v1.seg").read_bytes()
    parser = RecordParser()
    events = parser.feed(data) + parser.finish()
    assert all(isinstance(e, ParsedRecord) and e.intact for e in events)
    recs = [e for e in events if isinstance(e, ParsedRecord)]
    assert [(r.head.kind, r.head.partition, r.head.key, r.head.ts) for r in recs] == [
        (RecordKind.FRAGMENT, 5, b"frag-key", 1700000000000000000),
        (RecordKind.FRAGMENT_DELETE, 5, b"frag-key", 1700000000000000001),
        (RecordKind.META, 9, b"bucket/obj", 2**100 + 7),
        (RecordKind.META, 9, b"bucket/gone", 2**127),
    ]
    assert recs[1].body == (1).to_bytes(4, "big")
    assert recs[2].body == b"hello world"
    assert recs[3].head.flags & RecordFlag.TOMBSTONE and recs[3].body == b""
    assert recs[0].head.body_len == 100 and recs[0].head.chunk_size == 32


LOC = Location(3, 4096, 70, 100, 65536, 202)
FRAG_V1 = bytes.fromhex(
    "01000000000000000017979cfe362a00000000000300000000000010000000004600000000000000"
    "640001000000000000000000ca")
META_V1 = bytes.fromhex(
    "01000000001000000000000000000000000700000003000000000000100000000046000000000000"
    "00640001000000000000000000cad447b1ea40e6988b000a6275636b65742f6f626a68656c6c6f20"
    "776f726c64")


def test_index_values_v1() -> None:
    assert _frag_entry(keys.encode(5, b"frag-key"), FRAG_V1) == FragmentEntry(
        5, b"frag-key", 1700000000000000000, LOC)
    assert _meta_entry(9, META_V1) == MetaEntry(9, b"bucket/obj", 2**100 + 7, b"hello world",
                                                LOC)
