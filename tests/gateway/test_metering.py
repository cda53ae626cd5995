"""Pure and in-memory parts of gateway.metering: request classes, record keys and values,
group commit over a fake metadata store, exact totals across writers, restarts and store
outages (a hypothesis property), stored-bytes samples, and the usage CLI's formats."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import metering, usage_cli
from gateway.access import Basis, Decision
from gateway.catalog import Catalog
from gateway.counters import Counters
from gateway.counters import Usage as Stored
from gateway.manifest import BucketRecord
from gateway.metering import (
    HOUR_MS,
    Bill,
    Meter,
    RequestClass,
    Row,
    Usage,
    bill_for,
    classify,
    read_usage,
    total,
)
from gateway.router import Endpoint
from gateway.usage_journal import UsageJournal
from storage.client import MetaRecord

T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS     # an hour start, epoch ms


# ---- a metadata store in a dict -----------------------------------------------------------


class StoreDown(Exception):
    pass


@dataclass
class FakeCursor:
    records: list[MetaRecord]

    async def pop(self) -> MetaRecord | None:
        return self.records.pop(0) if self.records else None


@dataclass
class FakeStore:
    data: dict[tuple[int, bytes], bytes] = field(default_factory=dict)
    puts: int = 0
    down: bool = False

    def partition(self, name: bytes) -> int:
        return len(name) % 4            # several tenants share a partition, on purpose

    async def put(self, partition: int, key: bytes, value: bytes | None) -> int:
        await asyncio.sleep(0)          # let concurrent callers join the batch
        if self.down:
            raise StoreDown("quorum not reached")
        self.puts += 1
        assert value is not None
        self.data[(partition, key)] = value
        return 0

    def cursor(self, partition: int, prefix: bytes, start_after: bytes | None) -> FakeCursor:
        keys = sorted(k for p, k in self.data if p == partition and k.startswith(prefix)
                      and (start_after is None or k > start_after))
        return FakeCursor([MetaRecord(k, 1, self.data[(partition, k)]) for k in keys])


@dataclass
class FakeCatalog:
    store: FakeStore
    buckets: list[BucketRecord] = field(default_factory=list)

    async def list_buckets(self) -> list[BucketRecord]:
        return list(self.buckets)


@dataclass
class FakeCounters:
    stored: dict[str, int] = field(default_factory=dict)

    async def usage(self, bucket: BucketRecord) -> Stored:
        return Stored(1, self.stored.get(bucket.name, 0))


def catalog_of(store: FakeStore, buckets: list[BucketRecord] | None = None) -> Catalog:
    return cast(Catalog, FakeCatalog(store, buckets or []))


def meter(store: FakeStore, writer: int, now: list[int], **kw: Any) -> Meter:
    counters = cast(Counters, kw.get("counters", FakeCounters()))
    return Meter(catalog_of(store, kw.get("buckets")), counters, writer, lambda: now[0])


def bucket(name: str, owner: str) -> BucketRecord:
    return BucketRecord(name, b"\0" * 8, owner, 0, 4, 2, 8)


# ---- classes, bills, records --------------------------------------------------------------


@pytest.mark.parametrize(("op", "cls"), [
    ("PutObject", RequestClass.WRITE), ("CopyObject", RequestClass.WRITE),
    ("PostObject", RequestClass.WRITE), ("ListObjects", RequestClass.WRITE),
    ("ListBuckets", RequestClass.WRITE), ("UploadPart", RequestClass.WRITE),
    ("CreateMultipartUpload", RequestClass.WRITE), ("CompleteMultipartUpload",
                                                    RequestClass.WRITE),
    ("GetObject", RequestClass.READ), ("HeadObject", RequestClass.READ),
    ("HeadBucket", RequestClass.READ), ("GetBucketAcl", RequestClass.READ),
    ("DeleteObject", RequestClass.DELETE), ("DeleteObjects", RequestClass.DELETE),
    ("DeleteBucket", RequestClass.DELETE), ("AbortMultipartUpload", RequestClass.DELETE),
    ("Unknown", RequestClass.OTHER), ("CORSPreflight", RequestClass.OTHER),
])
def test_classify(op: str, cls: RequestClass) -> None:
    assert classify(op) is cls


def test_the_bucket_owner_pays_else_the_signer_else_nobody() -> None:
    owned = bucket("data", "owner")
    shared = Decision("owner", Basis.POLICY, owned)
    assert bill_for("GetObject", Endpoint("GetObject", "data", "k"), shared, "reader") == \
        Bill("owner", "data", "GetObject")
    anonymous = Decision(None, Basis.FORM, owned)
    assert bill_for("PostObject", None, anonymous, None) == Bill("owner", "data", "PostObject")
    missing = Decision("me", Basis.SIGNED, None)
    assert bill_for("GetObject", Endpoint("GetObject", "nope", "k"), missing, "me") == \
        Bill("me", "nope", "GetObject")
    assert bill_for("ListBuckets", Endpoint("ListBuckets", None, None), None, "me") == \
        Bill("me", "", "ListBuckets")
    assert bill_for("GetObject", Endpoint("GetObject", "x", "k"), None, None) is None


def test_record_round_trip_with_zero_bytes_in_the_writer_id() -> None:
    prefix = metering.tenant_prefix("agency")
    u = Usage((1, 2, 3, 4), 500, 600)
    for writer in (0, 1 << 8, 2**64 - 1):
        key = metering.request_key("agency", T0, "my-bucket", writer)
        assert metering.decode_record(len(prefix), key, metering.encode_requests(u)) == \
            Row("my-bucket", T0, u)
    key = metering.sample_key("agency", T0 + 600_000, "b")
    row = metering.decode_record(len(prefix), key, metering.encode_sample(1000, 300))
    assert row == Row("b", T0, Usage(byte_seconds=300_000))


def test_tenant_prefixes_never_overlap() -> None:
    a, ab = metering.tenant_prefix("a"), metering.tenant_prefix("ab")
    assert not ab.startswith(a) and not a.startswith(ab)


def test_merge_rows_sums_per_bucket_and_hour_in_order() -> None:
    rows = [Row("b", T0 + HOUR_MS, Usage(bytes_in=1)), Row("a", T0, Usage(bytes_in=2)),
            Row("b", T0 + HOUR_MS, Usage(bytes_out=5)), Row("b", T0, Usage(bytes_in=3))]
    assert metering.merge_rows(rows) == [
        Row("a", T0, Usage(bytes_in=2)), Row("b", T0, Usage(bytes_in=3)),
        Row("b", T0 + HOUR_MS, Usage(bytes_in=1, bytes_out=5))]


# ---- counting: group commit, outages, writers ---------------------------------------------


async def test_concurrent_requests_share_writes_and_land_durably() -> None:
    store, now = FakeStore(), [T0 + 5]
    m = meter(store, 7, now)
    bills = [Bill("t", "b", op) for op in ("PutObject", "GetObject", "DeleteObject")] * 30
    await asyncio.gather(*(m.add(b, 10, 20) for b in bills))
    assert store.puts < len(bills) // 4          # batched, not one write per request
    rows = await read_usage(catalog_of(store), "t", T0, T0 + HOUR_MS)
    assert rows == [Row("b", T0, Usage((30, 30, 30, 0), 900, 1800))]


async def test_a_store_outage_keeps_counts_queued_until_a_retry() -> None:
    store, now = FakeStore(), [T0]
    m = meter(store, 1, now)
    await m.add(Bill("t", "b", "GetObject"), 0, 5)
    store.down = True
    with pytest.raises(StoreDown):
        await m.add(Bill("t", "b", "GetObject"), 0, 7)
    store.down = False
    await m.retry()
    rows = await read_usage(catalog_of(store), "t", T0, T0 + HOUR_MS)
    assert rows[0].usage == Usage((0, 2, 0, 0), 0, 12)


async def test_past_hours_are_forgotten_once_durable() -> None:
    store, now = FakeStore(), [T0]
    m = meter(store, 1, now)
    await m.add(Bill("t", "b", "GetObject"), 0, 1)
    now[0] = T0 + HOUR_MS
    await m.add(Bill("t", "b", "GetObject"), 0, 1)
    assert [k[2] for k in m._mine] == [T0 + HOUR_MS]
    rows = await read_usage(catalog_of(store), "t", T0, T0 + 2 * HOUR_MS)
    assert [(r.hour_ms, r.usage.bytes_out) for r in rows] == [(T0, 1), (T0 + HOUR_MS, 1)]


async def test_read_usage_keeps_hours_starting_in_the_range_and_one_bucket() -> None:
    store, now = FakeStore(), [T0]
    m = meter(store, 1, now)
    for hour in range(4):
        now[0] = T0 + hour * HOUR_MS + 10
        await m.add(Bill("t", "x", "GetObject"), 0, 1)
        await m.add(Bill("t", "y", "GetObject"), 0, 1)
        await m.add(Bill("other", "x", "GetObject"), 0, 1)
    cat = catalog_of(store)
    rows = await read_usage(cat, "t", T0 + 1, T0 + 3 * HOUR_MS, "x")   # hours 1 and 2
    assert [(r.bucket, r.hour_ms) for r in rows] == [("x", T0 + HOUR_MS),
                                                    ("x", T0 + 2 * HOUR_MS)]
    assert metering.total(await read_usage(cat, "t", T0, T0 + 4 * HOUR_MS)).count(
        RequestClass.READ) == 8


@dataclass(frozen=True)
class Step:
    gateway: int
    op: str
    bytes_in: int
    bytes_out: int
    hour: int
    store_down: bool
    restart_after: bool


steps = st.lists(st.builds(
    Step, st.integers(0, 2), st.sampled_from(["PutObject", "GetObject", "DeleteObject",
                                              "Unknown"]),
    st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 2),
    st.sampled_from([False, False, False, True]),     # the store is down: 1 in 4
    st.sampled_from([False, False, False, False, True])), max_size=40)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_totals_are_exact_across_gateways_restarts_and_outages(plan: list[Step]) -> None:
    """Acknowledged counts (add() returned) always appear in the export; a gateway that
    restarts is a new writer and loses nothing it acknowledged."""
    asyncio.run(_replay(plan))


async def _replay(plan: list[Step]) -> None:
    store, now, writers = FakeStore(), [T0], itertools.count(1)
    gateways = [meter(store, next(writers), now) for _ in range(3)]
    acked = Usage()
    for s in plan:
        now[0] = T0 + s.hour * HOUR_MS
        store.down = s.store_down
        try:
            await gateways[s.gateway].add(Bill("t", "b", s.op), s.bytes_in, s.bytes_out)
            reqs = [0, 0, 0, 0]
            reqs[list(RequestClass).index(classify(s.op))] = 1
            acked = acked + Usage((reqs[0], reqs[1], reqs[2], reqs[3]), s.bytes_in,
                                  s.bytes_out)
        except StoreDown:
            pass        # not acknowledged: the client got no answer it could bill on
        store.down = False
        if s.restart_after:     # a SIGKILL: what was in memory is gone
            gateways[s.gateway] = meter(store, next(writers), now)
    got = metering.total(await read_usage(catalog_of(store), "t", T0, T0 + 3 * HOUR_MS))
    # Unacknowledged requests may be counted later by a retry (the count was real work);
    # acknowledged ones are never lost or double counted.
    assert all(g >= a for g, a in zip(got.requests, acked.requests, strict=True))
    assert got.bytes_in >= acked.bytes_in and got.bytes_out >= acked.bytes_out
    if not any(s.store_down for s in plan):
        assert got == acked


# ---- samples and the request hooks --------------------------------------------------------


async def test_samples_are_one_record_per_bucket_and_period() -> None:
    store, now = FakeStore(), [T0 + 1000]
    buckets = [bucket("a", "t"), bucket("b", "t")]
    counters = FakeCounters({"a": 100, "b": 7})
    one = meter(store, 1, now, counters=counters, buckets=buckets)
    two = meter(store, 2, now, counters=counters, buckets=buckets)
    assert await one.sample() == 2
    await two.sample()                  # the same period: overwrites, never adds
    now[0] += metering.sample_period_s * 1000
    counters.stored["a"] = 200
    await one.sample()
    rows = await read_usage(catalog_of(store), "t", T0, T0 + HOUR_MS)
    p = metering.sample_period_s
    assert {r.bucket: r.usage.byte_seconds for r in rows} == {"a": 300 * p, "b": 14 * p}


async def test_a_request_is_counted_once_whether_streamed_or_not() -> None:
    store, now = FakeStore(), [T0]
    m = meter(store, 1, now)
    owned = Decision("t", Basis.OWNER, bucket("b", "t"))
    endpoint = Endpoint("GetObject", "b", "k")
    streamed = make_mocked_request("GET", "/b/k")
    m.bind(streamed, "GetObject", endpoint, owned, "t")
    response = web.StreamResponse(headers={"Content-Length": "123"})
    response.content_length = 123
    await m.on_prepare(streamed, response)          # the handler prepared it
    await m.answer(streamed, response, "GetObject", endpoint, owned, "t")
    plain = make_mocked_request("HEAD", "/b/k")
    await m.answer(plain, web.Response(body=b"xyz"), "HeadObject", endpoint, owned, "t")
    await m.on_prepare(plain, web.Response(body=b"xyz"))   # aiohttp prepares it after
    rows = await read_usage(catalog_of(store), "t", T0, T0 + HOUR_MS)
    assert rows == [Row("b", T0, Usage((0, 2, 0, 0), 0, 123))]


# ---- the CLI's formats --------------------------------------------------------------------


def test_export_formats_agree() -> None:
    rows = [Row("a", T0, Usage((1, 2, 3, 4), 10, 20, 7200)), Row("", T0, Usage((1, 0, 0, 0)))]
    doc = usage_cli.export_doc("t", T0, T0 + HOUR_MS, None, rows)
    assert doc["total"]["requests"] == {"put_copy_post_list": 2, "get_head": 2,
                                        "delete": 3, "other": 4}
    assert doc["total"]["byte_hours"] == 2.0 and doc["rows"][0]["hour"].endswith(":00:00Z")
    lines = usage_cli.csv_rows("t", rows)
    assert lines[0] == list(usage_cli.CSV_FIELDS) and lines[-1][2] == "total"
    assert lines[-1][3:7] == ["2", "2", "3", "4"]


def test_parse_time() -> None:
    assert usage_cli.parse_time("2023-11-14T22:00:00Z") == 1_700_000_000_000 - 800_000
    assert usage_cli.parse_time("2023-11-14T22:00:00") == 1_700_000_000_000 - 800_000
    with pytest.raises(ValueError):
        usage_cli.parse_time("yesterday")


def test_version_1_values_still_decode() -> None:
    """Fixtures of the stored v1 values: a reader must keep decoding them."""
    prefix = metering.tenant_prefix("t")
    counts = bytes.fromhex("940194010203040506")     # [1, [1, 2, 3, 4], 5, 6]
    assert metering.decode_record(len(prefix), metering.request_key("t", T0, "b", 9),
                                  counts).usage == Usage((1, 2, 3, 4), 5, 6)
    sample = bytes.fromhex("9301cd03e8cd012c")       # [1, 1000, 300]
    assert metering.decode_record(len(prefix), metering.sample_key("t", T0, "b"),
                                  sample).usage == Usage(byte_seconds=300_000)
    with pytest.raises(ValueError):
        metering.decode_record(len(prefix), metering.sample_key("t", T0, "b"),
                               bytes.fromhex("9302cd03e8cd012c"))


# ---- through the local usage journal ------------------------------------------------------


@dataclass
class ShardedCatalog(FakeCatalog):
    def shard_partition(self, bucket: BucketRecord, shard: int) -> int:
        return 2


async def test_journaled_counts_are_answered_before_the_store_and_flushed_exactly(
        tmp_path: Path) -> None:
    store = FakeStore()
    catalog = cast(Catalog, ShardedCatalog(store))
    journal = UsageJournal(tmp_path, 7, cast(Any, store))
    m = Meter(catalog, cast(Counters, FakeCounters()), 7, lambda: T0, journal=journal)
    await asyncio.gather(*(m.add(Bill("acme", "data", "GetObject"), 0, 10) for _ in range(5)))
    assert store.puts == 0                      # durable in the journal, not yet stored
    await journal.flush()
    assert total(await read_usage(catalog, "acme", T0, T0 + HOUR_MS)) == \
        Usage((0, 5, 0, 0), 0, 50)
    await journal.close()


async def test_journaled_counters_read_their_own_totals_from_memory(tmp_path: Path) -> None:
    store = FakeStore()
    catalog = cast(Catalog, ShardedCatalog(store))
    b = bucket("data", "acme")
    other = Counters(catalog, 1)                # another gateway, writing to the store
    await other.add(b, 2, 200)
    journal = UsageJournal(tmp_path, 9, cast(Any, store))
    mine = Counters(catalog, 9, journal)
    await mine.add(b, 1, 100)
    assert await mine.usage(b) == Stored(3, 300)        # before any flush
    await journal.flush()
    await mine.add(b, -1, -100)
    assert await mine.usage(b) == Stored(2, 200)        # the stored own record is stale
    assert await other.usage(b) == Stored(3, 300)       # others see the last flush
    await journal.close()
    assert await other.usage(b) == Stored(2, 200)
