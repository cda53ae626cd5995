"""Unit tests of the gateway's pure modules: routing, ranges, stripes, conditions, names,
XML, clocks and manifests."""

from __future__ import annotations

import dataclasses
import itertools

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import errors
from gateway.conditions import (
    IF_MATCH_SIZE,
    IF_MATCH_TIME,
    Outcome,
    check_delete,
    check_write,
    evaluate,
    overtaken,
)
from gateway.hlc import Clock, wall_ms
from gateway.manifest import BucketRecord, DataRef, Manifest
from gateway.metastore import least_busy_first
from gateway.names import check_bucket_name, check_key
from gateway.object_lock import LockConfig
from gateway.ranges import ByteRange, Layout, parse_range, part_range
from gateway.router import route, split_host
from gateway.s3xml import parse, parse_tagging
from ring.model import Device
from storage.keys import successor


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "op", "bucket", "key"),
    [
        ("GET", "/", {}, {}, "ListBuckets", None, None),
        ("PUT", "/b", {}, {}, "CreateBucket", "b", None),
        ("GET", "/b", {"list-type": "2"}, {}, "ListObjectsV2", "b", None),
        ("GET", "/b/", {}, {}, "ListObjects", "b", None),
        ("GET", "/b", {"location": ""}, {}, "GetBucketLocation", "b", None),
        ("PUT", "/b/k/with/slashes", {}, {}, "PutObject", "b", "k/with/slashes"),
        ("PUT", "/b/k", {}, {"x-amz-copy-source": "/a/b"}, "CopyObject", "b", "k"),
        ("PUT", "/b/k", {"partNumber": "1", "uploadId": "u"}, {}, "UploadPart", "b", "k"),
        ("POST", "/b/k", {"uploads": ""}, {}, "CreateMultipartUpload", "b", "k"),
        ("POST", "/b", {"delete": ""}, {}, "DeleteObjects", "b", None),
        ("GET", "/b/a%20b%2Fc", {}, {}, "GetObject", "b", "a b/c"),
        ("DELETE", "/b/k", {"tagging": ""}, {}, "DeleteObjectTagging", "b", "k"),
    ],
)
def test_route(method: str, path: str, query: dict[str, str], headers: dict[str, str],
               op: str, bucket: str | None, key: str | None) -> None:
    ep = route(method, path, query, headers)
    assert (ep.op, ep.bucket, ep.key) == (op, bucket, key)


def test_route_virtual_host_and_unknown() -> None:
    assert split_host("photos.s3.local:9000", "s3.local") == "photos"
    assert split_host("127.0.0.1:9000", "s3.local") is None
    ep = route("GET", "/a/b", {}, {}, host_bucket="photos")
    assert (ep.bucket, ep.key) == ("photos", "a/b")
    with pytest.raises(errors.S3Error) as exc:
        route("PUT", "/b", {"replication": ""}, {})
    assert exc.value.status == 501
    with pytest.raises(errors.S3Error) as exc:
        route("PATCH", "/b/k", {}, {})
    assert exc.value.status == 405


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-4", 10) == ByteRange(0, 4)
    assert parse_range("bytes=5-", 10) == ByteRange(5, 9)
    assert parse_range("bytes=-3", 10) == ByteRange(7, 9)
    assert parse_range("bytes=-30", 10) == ByteRange(0, 9)
    assert parse_range("bytes=2-100", 10) == ByteRange(2, 9)
    assert parse_range("bytes=5-2", 10) is None          # invalid: ignored, as S3 does
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=0-1,3-4", 10) is None
    for bad in ("bytes=10-", "bytes=-0", "bytes=10-20"):
        with pytest.raises(errors.S3Error) as exc:
            parse_range(bad, 10)
        assert exc.value.status == 416
        assert exc.value.headers["Content-Range"] == "bytes */10"


def test_part_range() -> None:
    """GetObject/HeadObject ?partNumber= as AWS answers it (Swift's s3api tests against AWS)."""
    sizes = (5, 5, 2)
    assert part_range("1", sizes, 12, None) == ByteRange(0, 4)
    assert part_range("3", sizes, 12, None) == ByteRange(10, 11)
    assert part_range("1", (), 14, None) == ByteRange(0, 13)   # not multipart: one part
    assert part_range("1", (), 0, None) is None                 # empty: no Content-Range
    cases = [("4", sizes, 12, None, 416, "InvalidPartNumber"),
             ("2", (), 14, None, 416, "InvalidPartNumber"),
             ("2", (5, 0), 5, None, 416, "InvalidPartNumber"),  # empty last part
             ("0", sizes, 12, None, 400, "InvalidArgument"),
             ("-1", sizes, 12, None, 400, "InvalidArgument"),
             ("10001", sizes, 12, None, 400, "InvalidArgument"),
             ("x", sizes, 12, None, 400, "InvalidArgument"),
             ("0", sizes, 12, "bytes=1-2", 400, "InvalidRequest")]   # the Range error first
    for raw, parts, size, header, status, code in cases:
        with pytest.raises(errors.S3Error) as exc:
            part_range(raw, parts, size, header)
        assert (exc.value.status, exc.value.code) == (status, code), raw


@given(size=st.integers(0, 5000), k=st.integers(1, 10), block=st.integers(1, 64))
def test_layout_covers_every_byte(size: int, k: int, block: int) -> None:
    lay = Layout(size, k, block)
    assert sum(lay.data_len(s) for s in range(lay.stripes)) == size
    assert sum(lay.block_len(s) for s in range(lay.stripes)) == lay.fragment_bytes
    for s in range(lay.stripes):
        assert 0 < lay.data_len(s) <= k * lay.block_len(s)


@given(size=st.integers(1, 5000), k=st.integers(1, 10), block=st.integers(1, 64),
       data=st.data())
def test_data_pieces_find_a_range_in_the_fragments(size: int, k: int, block: int,
                                                   data: st.DataObject) -> None:
    """Cut an object into fragments as the PUT path does (block i of every stripe goes to
    fragment i, the last stripe zero-padded); data_pieces must point at the range's bytes,
    in order, one contiguous span per fragment."""
    lay = Layout(size, k, block)
    body = bytes(i % 251 for i in range(size))
    frags = [bytearray() for _ in range(k)]
    for s in range(lay.stripes):
        blen, at = lay.block_len(s), s * lay.stripe_bytes
        stripe = body[at:at + lay.data_len(s)].ljust(k * blen, b"\0")
        for i in range(k):
            frags[i] += stripe[i * blen:(i + 1) * blen]
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start, size - 1))
    pieces = lay.data_pieces(start, end)
    assert b"".join(frags[i][off:off + n] for i, off, n in pieces) == body[start:end + 1]
    for i in {i for i, _, _ in pieces}:
        mine = [(off, n) for j, off, n in pieces if j == i]
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(mine))


def test_conditions() -> None:
    etag, mtime = '"abc"', 1_700_000_000_000
    old, new = "Tue, 14 Nov 2023 22:00:00 GMT", "Wed, 15 Nov 2023 00:00:00 GMT"
    assert evaluate({}, etag, mtime) is Outcome.PROCEED
    assert evaluate({"If-None-Match": '"abc"'}, etag, mtime) is Outcome.NOT_MODIFIED
    assert evaluate({"If-Modified-Since": new}, etag, mtime) is Outcome.NOT_MODIFIED
    # A true If-None-Match wins over a false If-Modified-Since.
    assert evaluate({"If-None-Match": '"x"', "If-Modified-Since": new}, etag,
                    mtime) is Outcome.PROCEED
    # A true If-Match wins over a false If-Unmodified-Since.
    assert evaluate({"If-Match": "abc", "If-Unmodified-Since": old}, etag,
                    mtime) is Outcome.PROCEED
    for hdrs in ({"If-Match": '"x"'}, {"If-Unmodified-Since": old}):
        with pytest.raises(errors.S3Error) as exc:
            evaluate(hdrs, etag, mtime)
        assert exc.value.status == 412
    check_write({"If-None-Match": "*"}, None, "k")
    with pytest.raises(errors.S3Error):
        check_write({"If-None-Match": "*"}, etag, "k")
    with pytest.raises(errors.S3Error) as exc:
        check_write({"If-Match": etag}, None, "k")
    assert exc.value.code == "NoSuchKey" and exc.value.extra["Key"] == "k"
    # What S3 does not take on writes is NotImplemented naming the header (AWS's answers).
    for hdrs, named in (({"If-None-Match": etag}, "If-None-Match"),
                        ({"If-Match": "*"}, "If-Match"),
                        ({"If-Match": etag, "If-None-Match": "*"}, "If-Match,If-None-Match")):
        with pytest.raises(errors.S3Error) as exc:
            check_write(hdrs, etag, "k")
        assert exc.value.status == 501 and exc.value.extra["Header"] == named


def test_a_conditional_write_overtaken_at_its_commit() -> None:
    """What won decides (AWS: first to finish wins): a condition that fails against it is
    412 naming the header; a delete that won, or a winner the condition holds for, 409."""
    for hdrs, winner, code in (
            ({"If-None-Match": "*"}, '"w"', "PreconditionFailed"),
            ({"If-None-Match": "*"}, None, "ConditionalRequestConflict"),
            ({"If-Match": '"a"'}, '"w"', "PreconditionFailed"),
            ({"If-Match": '"a"'}, '"a"', "ConditionalRequestConflict"),
            ({"If-Match": '"a"'}, None, "ConditionalRequestConflict")):
        err = overtaken(hdrs, winner, "k")
        assert err.code == code, (hdrs, winner)
        if code == "PreconditionFailed":
            assert err.extra["Condition"] == next(iter(hdrs))


def test_delete_conditions() -> None:
    etag, mtime, size = '"abc"', 1_700_000_000_123, 10
    when = "Tue, 14 Nov 2023 22:13:20 GMT"      # 1_700_000_000 s
    current = (etag, mtime, size)
    check_delete({"If-Match": etag, IF_MATCH_TIME: when, IF_MATCH_SIZE: "10"}, current, "k")
    for hdrs in ({"If-Match": '"other"'}, {IF_MATCH_TIME: "Wed, 15 Nov 2023 00:00:00 GMT"},
                 {IF_MATCH_TIME: "not a date"}, {IF_MATCH_SIZE: "11"}):
        with pytest.raises(errors.S3Error) as exc:
            check_delete(hdrs, current, "k")
        assert exc.value.status == 412, hdrs
    with pytest.raises(errors.NoSuchKey):
        check_delete({"If-Match": etag}, None, "k")


@pytest.mark.parametrize("name", ["ab", "-abc", "abc-", "a..b", "ABC", "192.168.1.1",
                                  "xn--abc", "a" * 64, "a_b", "abc-s3alias"])
def test_bad_bucket_names(name: str) -> None:
    with pytest.raises(errors.S3Error) as exc:
        check_bucket_name(name)
    assert exc.value.code == "InvalidBucketName"


def test_good_names_and_keys() -> None:
    for name in ("abc", "my.bucket-1", "a" * 63):
        check_bucket_name(name)
    assert check_key("../etc/passwd") == b"../etc/passwd"   # opaque, never a path
    with pytest.raises(errors.S3Error):
        check_key("x" * 1025)
    with pytest.raises(errors.S3Error):
        check_key("")


@given(st.binary(min_size=1, max_size=8), st.binary(max_size=4))
def test_successor_bounds_every_extension(prefix: bytes, tail: bytes) -> None:
    nxt = successor(prefix)
    assert nxt > prefix + tail or prefix.endswith(b"\xff")
    if prefix.rstrip(b"\xff") != b"":
        assert nxt > prefix + tail


def test_xml_is_parsed_safely() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
            b"<Tagging><TagSet><Tag><Key>&b;</Key><Value>v</Value></Tag></TagSet></Tagging>")
    with pytest.raises(errors.S3Error) as exc:
        parse_tagging(bomb)
    assert exc.value.code == "MalformedXML"
    with pytest.raises(errors.S3Error):
        parse(b"<a><b></a>", "a")
    tags = parse_tagging(b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                         b"<TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>")
    assert tags == [("k", "v")]


def test_hlc_is_monotonic_and_orders_writers() -> None:
    wall = [1000]
    clock = Clock(writer_id=7, wall_ms=lambda: wall[0])
    a = clock.now()
    wall[0] = 900                   # the wall clock steps back
    b = clock.now()
    assert b > a and wall_ms(b) == 1000
    other = Clock(writer_id=9, wall_ms=lambda: 1000)
    clock.observe(other.now() + (5 << 32))
    assert clock.now() > other.now()


def test_records_round_trip() -> None:
    ref = DataRef(b"x" * 16, 10, 4, 2, 256, '"e"', (1, 2))
    m = Manifest(10, '"e"', 5, {"Content-Type": "a/b"}, {"k": "v"}, None, (ref,),
                 (("t", "v"),), {"CRC32": "AAAAAA=="}, (10,))
    assert Manifest.decode(m.encode()) == m
    b = BucketRecord("b", b"12345678", "admin", 1, 4, 2, 8, (("a", "b"),))
    assert BucketRecord.decode(b.encode()) == b
    with pytest.raises(errors.S3Error):
        Manifest.decode(b"\x93\x02\x00\x00")
    # Versions, delete markers, Object Lock: the records grow only when they are used.
    stamp = (1 << 89) + 12345
    for extra in ({"version": stamp, "null": True}, {"version": stamp, "marker": True},
                  {"lock_mode": "COMPLIANCE", "retain_until_ms": 99, "legal_hold": True},
                  {"version": stamp, "legal_hold": True}):
        v = dataclasses.replace(m, **extra)
        assert Manifest.decode(v.encode()) == v and len(v.encode()) > len(m.encode())
    # A legal hold put OFF is kept apart from one never set (None); the records written
    # before that kept False for both, and read as OFF.
    off = dataclasses.replace(m, legal_hold=False)
    assert Manifest.decode(off.encode()) == off and m.legal_hold is None
    retained = dataclasses.replace(m, lock_mode="GOVERNANCE", retain_until_ms=99)
    assert Manifest.decode(retained.encode()).legal_hold is None
    before = msgpack.packb([*msgpack.unpackb(retained.encode())[:17], False])
    assert Manifest.decode(before).legal_hold is False
    locked = dataclasses.replace(b, versioning="Enabled",
                                 object_lock=LockConfig("GOVERNANCE", days=3))
    assert BucketRecord.decode(locked.encode()) == locked


# ---- metadata reads: which replicas are asked first ----------------------------------------

def _devices(n: int) -> list[Device]:
    return [Device(i, f"127.0.0.1:{9100 + i}", 1.0, f"r/z/n{i}/d0") for i in range(n)]


def test_reads_ask_the_least_busy_replicas_first() -> None:
    devs = _devices(5)
    busy = {devs[0].addr: 4, devs[1].addr: 0, devs[2].addr: 9, devs[3].addr: 1,
            devs[4].addr: 0}
    order = least_busy_first(devs, lambda a: busy[a], turn=0)
    assert [d.id for d in order] == [1, 4, 3, 0, 2]
    # Ties go in turn, so idle replicas share the reads instead of the first R taking all.
    assert [d.id for d in least_busy_first(devs, lambda a: busy[a], turn=2)][:2] == [4, 1]


@given(st.lists(st.integers(0, 5), min_size=1, max_size=8), st.integers(0, 1000))
def test_read_order_is_a_permutation_sorted_by_load(loads: list[int], turn: int) -> None:
    devs = _devices(len(loads))
    load_of = {d.addr: load for d, load in zip(devs, loads, strict=True)}
    order = least_busy_first(devs, load_of.__getitem__, turn)
    assert sorted(d.id for d in order) == list(range(len(loads)))
    assert [loads[d.id] for d in order] == sorted(loads)


def test_idle_replicas_take_turns() -> None:
    devs = _devices(5)
    firsts = [least_busy_first(devs, lambda a: 0, t)[:3] for t in range(5)]
    assert {d.id for first in firsts for d in first} == set(range(5))
