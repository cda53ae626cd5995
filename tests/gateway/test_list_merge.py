"""Merging shard pages into S3 pages (gateway/list_merge.py) and the listing documents
(gateway/list_xml.py), pure: no cluster."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import pytest

from gateway import list_merge, list_xml, s3xml
from gateway.list_merge import LIST_FIELDS, ShardBuffer
from gateway.manifest import Manifest
from gateway.s3xml import ListEntry, ListPage
from storage.keys import successor
from storage.list_pages import project

BASE = b"O12345678"     # record key prefix of a bucket (stripped from the rows)


def shard_rows(keys: list[bytes], start: bytes, limit: int, delim: bytes | None
               ) -> tuple[list[Any], bytes | None]:
    """What a node would send for one shard (the model of storage/list_pages.py)."""
    rows: list[Any] = []
    for k in sorted(keys):
        if k < start:
            continue
        at = k.find(delim, 0) if delim else -1
        if at >= 0:
            group = k[: at + len(delim or b"")]
            if group < start or (rows and rows[-1] == group):
                continue
            rows.append(group)
        else:
            rows.append([k, 2, 1, '"e"', 0, None])
        if len(rows) == limit:
            last = rows[-1]
            resume = successor(last) if isinstance(last, bytes) else last[0] + b"\x00"
            return rows, BASE + resume
    return rows, None


def list_via_merge(shards: list[list[bytes]], want: int, delim: bytes | None,
                   start: bytes = b"", dup: float = 1.0) -> tuple[list[Any], bool, int]:
    bufs = [ShardBuffer(BASE + start, len(BASE)) for _ in shards]
    fetch = [(i, list_merge.first_ask(want, len(shards), dup)) for i in range(len(shards))]
    rounds = 0
    while True:
        rounds += 1
        assert rounds < 100
        for i, n in fetch:
            resume = bufs[i].resume
            assert resume is not None
            rows, nxt = shard_rows(shards[i], resume[len(BASE):], n, delim)
            bufs[i].add(rows, nxt)
        step = list_merge.merge(bufs, want)
        if step.rows is not None:
            LAST_DUPLICATION[:] = [step.duplication]
            return step.rows, step.truncated, rounds
        assert step.fetch
        fetch = list(step.fetch)


LAST_DUPLICATION: list[float] = []


def expected(all_keys: list[bytes], want: int, delim: bytes | None,
             start: bytes = b"") -> list[bytes]:
    out: list[bytes] = []
    for k in sorted(all_keys):
        if k < start:
            continue
        at = k.find(delim) if delim else -1
        item = k[: at + len(delim or b"")] if at >= 0 else k
        if at >= 0 and item < start:
            continue
        if not out or out[-1] != item:
            out.append(item)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_merge_pages_through_equal_the_sorted_listing(seed: int) -> None:
    rnd = random.Random(seed)
    print("seed", seed)
    nshards = rnd.choice([1, 3, 8])
    keys = sorted({f"d{rnd.randrange(12)}/{rnd.randrange(400)}".encode()
                   if rnd.random() < 0.5 else f"k{rnd.randrange(3000):05d}".encode()
                   for _ in range(rnd.randrange(0, 600))})
    shards: list[list[bytes]] = [[] for _ in range(nshards)]
    for k in keys:
        shards[hash(k) % nshards].append(k)
    for delim in (None, b"/"):
        want = rnd.choice([3, 50, 1000])
        truth = expected(keys, want, delim)
        got: list[bytes] = []
        start = b""
        while True:
            rows, truncated, _ = list_via_merge(shards, want, delim, start)
            page = [list_merge.row_key(r) for r in rows]
            assert len(page) <= want
            got.extend(page)
            if not truncated:
                break
            start = page[-1] + b"\x00"
        assert got == truth


def test_flat_page_takes_one_round_when_shards_are_even() -> None:
    keys = [f"k{i:06d}".encode() for i in range(8000)]
    shards: list[list[bytes]] = [[] for _ in range(8)]
    for i, k in enumerate(keys):
        shards[(i * 7919) % 8].append(k)
    rows, truncated, rounds = list_via_merge(shards, 1000, None)
    assert truncated and rounds == 1 and len(rows) == 1000


def test_prefixes_in_every_shard_are_listed_once_and_refills_grow() -> None:
    shards = [[f"dir{d:04d}/obj{s}".encode() for d in range(1500)] for s in range(8)]
    rows, truncated, rounds = list_via_merge(shards, 1000, b"/")
    assert rows == [f"dir{d:04d}/".encode() for d in range(1000)] and truncated
    assert rounds <= 3      # the duplication seen in round one sizes round two
    assert LAST_DUPLICATION[0] == pytest.approx(8, rel=0.01)
    # The next listing of that shape, told the duplication, takes one round.
    again, truncated, rounds = list_via_merge(shards, 1000, b"/", dup=LAST_DUPLICATION[0])
    assert again == rows and truncated and rounds == 1


def test_duplication_hints_are_per_shape_and_bounded() -> None:
    hints = list_merge.DuplicationHints(size=2)
    assert hints.get(("b", "", "/")) == 1.0
    hints.put(("b", "", "/"), 8.0)
    hints.put(("b", "x/", "/"), 1.5)
    assert hints.get(("b", "", "/")) == 8.0
    hints.put(("c", "", "/"), 2.0)          # the oldest shape is forgotten
    assert hints.get(("b", "", "/")) == 1.0 and hints.get(("c", "", "/")) == 2.0
    assert list_merge.first_ask(1000, 8, 8.0) == 1001
    assert list_merge.first_ask(1000, 8, 50.0) == 1001      # capped by the shard count
    assert list_merge.first_ask(1000, 8) < list_merge.first_ask(1000, 8, 2.0) < 1001


def test_zero_keys_asked() -> None:
    rows, truncated, _ = list_via_merge([[b"a"], []], 0, None)
    assert rows == [] and truncated
    rows, truncated, _ = list_via_merge([[], []], 0, None)
    assert rows == [] and not truncated


def test_list_fields_pick_what_a_listing_shows_from_a_manifest() -> None:
    m = Manifest(12, '"abc"', 1700000000123, {"x-amz-storage-class": "STANDARD_IA",
                                               "Content-Type": "text/plain"}, {"a": "b"},
                 inline=b"x" * 12)
    entry = list_merge.to_entry([b"key/\xc3\xa9", *project(m.encode(), LIST_FIELDS)])
    assert entry == ListEntry("key/é", 1700000000123, '"abc"', 12, "STANDARD_IA")
    plain = Manifest(1, '"e"', 5, {}, {})
    assert list_merge.to_entry([b"k", *project(plain.encode(), LIST_FIELDS)]).storage_class == (
        "STANDARD")
    with pytest.raises(Exception, match="unreadable manifest"):
        list_merge.to_entry([b"k", 99, 1, '"e"', 0, None, {}])


def test_list_fields_carry_the_checksum_algorithm_and_its_type() -> None:
    one = Manifest(3, '"e"', 5, {}, {}, checksums={"CRC64NVME": "AAAAAAAAAAA="})
    entry = list_merge.to_entry([b"k", *project(one.encode(), LIST_FIELDS)])
    assert (entry.checksum_algorithm, entry.checksum_type) == ("CRC64NVME", "FULL_OBJECT")
    parts = Manifest(3, '"e-2"', 5, {}, {}, checksums={"SHA256": "abc=-2"})
    entry = list_merge.to_entry([b"k", *project(parts.encode(), LIST_FIELDS)])
    assert (entry.checksum_algorithm, entry.checksum_type) == ("SHA256", "COMPOSITE")
    none = list_merge.to_entry([b"k", *project(Manifest(1, '"e"', 5).encode(), LIST_FIELDS)])
    assert (none.checksum_algorithm, none.checksum_type) == ("", "")
    page = ListPage([entry, none], [], False, None)
    doc = list_xml.list_objects_v2("b", "", None, 9, page, False, None, None, None, None)
    assert doc.decode().count("<ChecksumAlgorithm>") == 1
    assert ('<ETag>"e-2"</ETag><ChecksumAlgorithm>SHA256</ChecksumAlgorithm>'
            "<ChecksumType>COMPOSITE</ChecksumType><Size>3</Size>") in doc.decode()


def test_list_xml_v2_document() -> None:
    page = ListPage([ListEntry("a&b", 1700000000123, '"e"', 5, "STANDARD")], ["d/"], True,
                    "d/")
    got = list_xml.list_objects_v2("bkt", "", "/", 2, page, False, None, "dG9r", "a", "ten")
    assert got.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="'
        'http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix></Prefix>'
        "<Delimiter>/</Delimiter><MaxKeys>2</MaxKeys><KeyCount>2</KeyCount>"
        "<NextContinuationToken>dG9r</NextContinuationToken><StartAfter>a</StartAfter>"
        "<IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key>"
        '<LastModified>2023-11-14T22:13:20.123Z</LastModified><ETag>"e"</ETag>'
        "<Size>5</Size><Owner><ID>ten</ID><DisplayName>ten</DisplayName></Owner>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        "<CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes></ListBucketResult>")
    v1 = list_xml.list_objects_v1("bkt", "p", "/", 2, page, True, "m", "ten").decode()
    assert "<Marker>m</Marker><NextMarker>d/</NextMarker><MaxKeys>2</MaxKeys>" in v1
    assert "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>" in v1


def test_list_xml_keys_survive_a_parser_in_both_encodings() -> None:
    rnd = random.Random(5)
    alphabet = ["a", "/", "&", "<", ">", "\x01", "é", " ", "%", "+", "\x1f", "'", '"']
    for _ in range(50):
        keys = ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 9)))
                for _ in range(5)]
        ms = rnd.randrange(0, 4_000_000_000_000)
        page = ListPage([ListEntry(k, ms, '"e"', 1) for k in keys], ["p&<\x02/"], False, None)
        for url in (False, True):
            doc = list_xml.list_objects_v2("b", "", None, 9, page, url, None, None, None, None)
            # XML 1.0 has no control characters, even as references; S3 sends them anyway
            root = ElementTree.fromstring(re.sub(rb"&#x(1?[0-9A-F]);", rb"", doc))
            got = [e.text or "" for e in root.iter(f"{{{s3xml.NS}}}Key")]
            want = [re.sub("[\x00-\x1f]", "", quote(k, safe="/") if url else k) for k in keys]
            assert got == want
            stamps = {e.text for e in root.iter(f"{{{s3xml.NS}}}LastModified")}
            when = datetime.fromtimestamp(ms // 1000, UTC)
            assert stamps == {when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"}
