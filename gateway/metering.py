"""Pay-per-use metering: requests, bytes in and out, and stored byte-hours per tenant and bucket.

What is counted: every answered S3 request that someone can be billed for. The bucket's owner
pays for requests on an existing bucket (as on S3, whoever signed them); other requests are
billed to the tenant that signed them; anonymous requests on no bucket are not billed.
Requests fall in four classes (AWS's price tiers): PUT/COPY/POST/LIST, GET/HEAD, DELETE and
other. Bytes in are the request's payload, bytes out the response body.

How it stays exact (the same idea as gateway.counters): each gateway process owns its records
(a random 64-bit writer id in the key), one per tenant, bucket and hour, holding absolute
totals; no two processes ever write the same record, so last-writer-wins loses nothing, and
a total is the sum over writers. A request is answered only once its counts are durable:
concurrent requests share one round (group commit), appended to the gateway's local usage
journal and fdatasync'ed; the journal writes its records to the metadata store every
`usage_flush_s`, and a gateway that finds the journal of a dead one (SIGKILL) writes that
to the store too (gateway.usage_journal). A restarted gateway is a new writer; its
predecessor's records end as they were last acknowledged. Exports lag by up to
`usage_flush_s`.

Stored bytes are sampled every `sample_period_s` from the bucket counters by every gateway
into one record per bucket and period (a sample, not a delta: gateways writing the same
period converge on one value and are never added up). A sample stands for its whole period:
byte_seconds = stored bytes x period. Periods when no gateway ran are not billed.

All of a tenant's records live in one metadata partition, ordered by hour, so an export is
one cursor scan over a key range.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from enum import Enum

import msgpack
from aiohttp import web

from gateway.access import Decision
from gateway.batching import BatchedWriter
from gateway.catalog import Catalog
from gateway.counters import Counters
from gateway.metrics import request_bytes, response_bytes
from gateway.numbers import is_decimal
from gateway.router import Endpoint
from gateway.usage_journal import Put, UsageJournal, write_round

log = logging.getLogger("coffre.metering")

METER_V1 = 1
HOUR_MS = 3_600_000
# Seconds between two stored-bytes samples; divides an hour so periods never straddle one.
# Cluster-wide: gateways with different periods would bill overlapping samples.
sample_period_s = int(os.environ.get("COFFRE_METER_SAMPLE_S", "300"))
sample_retry_s = 5.0          # after a failed sampling round (metadata quorum lost)
assert 1 <= sample_period_s <= 3600 and 3600 % sample_period_s == 0

_PARTITION_PREFIX = b"coffre:usage:"
_PREFIX = b"M"
_REQUESTS = b"R"
_SAMPLE = b"S"


class RequestClass(Enum):
    WRITE = "put_copy_post_list"      # AWS tier 1
    READ = "get_head"                 # AWS tier 2
    DELETE = "delete"
    OTHER = "other"


_CLASSES = tuple(RequestClass)
_WRITE_PREFIXES = ("Put", "Copy", "Create", "Upload", "Complete", "List", "Post", "Restore")


def classify(op: str) -> RequestClass:
    """The price class of a router operation name (AWS's S3 API action names)."""
    if op.startswith("Delete") or op == "AbortMultipartUpload":
        return RequestClass.DELETE
    if op.startswith(("Get", "Head", "Select")):
        return RequestClass.READ
    if op.startswith(_WRITE_PREFIXES):
        return RequestClass.WRITE
    return RequestClass.OTHER


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


# ---- records: keys and values -------------------------------------------------------------


def partition_name(tenant: str) -> bytes:
    return _PARTITION_PREFIX + tenant.encode()


def tenant_prefix(tenant: str) -> bytes:
    # Length-prefixed: two tenants sharing a partition never share a key prefix.
    raw = tenant.encode()
    return _PREFIX + len(raw).to_bytes(1, "big") + raw


def request_key(tenant: str, hour_ms: int, bucket: str, writer: int) -> bytes:
    return (tenant_prefix(tenant) + hour_ms.to_bytes(8, "big") + _REQUESTS + bucket.encode()
            + b"\0" + writer.to_bytes(8, "big"))


def sample_key(tenant: str, period_ms: int, bucket: str) -> bytes:
    return (tenant_prefix(tenant) + hour_of(period_ms).to_bytes(8, "big") + _SAMPLE
            + bucket.encode() + b"\0" + period_ms.to_bytes(8, "big"))


@dataclass(frozen=True)
class Usage:
    """Usage of one tenant's bucket over one hour (or any sum of those)."""

    requests: tuple[int, int, int, int] = (0, 0, 0, 0)   # by RequestClass, in _CLASSES order
    bytes_in: int = 0
    bytes_out: int = 0
    byte_seconds: int = 0          # stored bytes integrated over time

    def __add__(self, other: Usage) -> Usage:
        reqs = tuple(a + b for a, b in zip(self.requests, other.requests, strict=True))
        return Usage((reqs[0], reqs[1], reqs[2], reqs[3]), self.bytes_in + other.bytes_in,
                     self.bytes_out + other.bytes_out, self.byte_seconds + other.byte_seconds)

    def count(self, cls: RequestClass) -> int:
        return self.requests[_CLASSES.index(cls)]

    @property
    def byte_hours(self) -> float:
        return self.byte_seconds / 3600


def encode_requests(u: Usage) -> bytes:
    out: bytes = msgpack.packb([METER_V1, list(u.requests), u.bytes_in, u.bytes_out])
    return out


def encode_sample(stored_bytes: int, period_s: int) -> bytes:
    out: bytes = msgpack.packb([METER_V1, stored_bytes, period_s])
    return out


@dataclass(frozen=True)
class Row:
    """One bucket's usage over one hour, summed over every gateway."""

    bucket: str                    # "" for requests on no bucket (ListBuckets)
    hour_ms: int
    usage: Usage


def decode_record(prefix_len: int, key: bytes, value: bytes) -> Row:
    """A stored record as a Row (one writer's counts, or one sample)."""
    rest = key[prefix_len:]
    hour_ms = int.from_bytes(rest[:8], "big")
    kind, body = rest[8:9], rest[9:]
    bucket = body[:-9].decode()       # then b"\0" and 8 bytes of writer id or period
    fields = msgpack.unpackb(value)
    if fields[0] != METER_V1:
        raise ValueError(f"unknown metering record version {fields[0]}")
    if kind == _REQUESTS:
        r = fields[1]
        return Row(bucket, hour_ms, Usage((r[0], r[1], r[2], r[3]), fields[2], fields[3]))
    if kind == _SAMPLE:
        return Row(bucket, hour_ms, Usage(byte_seconds=fields[1] * fields[2]))
    raise ValueError(f"unknown metering record kind {kind!r}")


def merge_rows(rows: Iterable[Row]) -> list[Row]:
    """Sum rows per (bucket, hour), ordered by hour then bucket."""
    sums: dict[tuple[int, str], Usage] = {}
    for row in rows:
        k = (row.hour_ms, row.bucket)
        sums[k] = sums.get(k, Usage()) + row.usage
    return [Row(b, h, u) for (h, b), u in sorted(sums.items())]


def total(rows: Iterable[Row]) -> Usage:
    out = Usage()
    for row in rows:
        out = out + row.usage
    return out


# ---- counting on the request path ---------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    """Who pays for one request, and for what."""

    tenant: str
    bucket: str
    op: str


def bill_for(op: str, endpoint: Endpoint | None, decision: Decision | None,
             principal: str | None) -> Bill | None:
    if decision is not None and decision.bucket is not None:
        return Bill(decision.bucket.owner, decision.bucket.name, op)
    tenant = decision.acting_tenant if decision is not None else None
    tenant = tenant or principal
    if tenant is None:
        return None
    bucket = endpoint.bucket if endpoint is not None and endpoint.bucket else ""
    return Bill(tenant, bucket, op)


def payload_bytes_in(request: web.Request) -> int:
    """The request's payload: its decoded length for aws-chunked bodies (the wire bytes
    carry chunk signatures too), never more than what was received."""
    received = request_bytes(request)
    decoded = request.headers.get("x-amz-decoded-content-length", "")
    return min(received, int(decoded)) if is_decimal(decoded) else received


_BILL = web.RequestKey("metering_bill", Bill)
_DONE = web.RequestKey("metering_done", bool)


@dataclass
class _Tally:
    """This writer's absolute totals for one (tenant, bucket, hour): mutable, in memory."""

    requests: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    bytes_in: int = 0
    bytes_out: int = 0

    def frozen(self) -> Usage:
        r = self.requests
        return Usage((r[0], r[1], r[2], r[3]), self.bytes_in, self.bytes_out)


_TallyKey = tuple[str, str, int]     # tenant, bucket, hour_ms


class Meter:
    """One gateway process's metering: counts requests durably, samples stored bytes."""

    def __init__(self, catalog: Catalog, counters: Counters, writer_id: int | None = None,
                 wall_ms: Callable[[], int] | None = None,
                 journal: UsageJournal | None = None) -> None:
        self.catalog, self.counters = catalog, counters
        self.writer = secrets.randbits(64) if writer_id is None else writer_id
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._mine: dict[_TallyKey, _Tally] = {}
        self._writer: BatchedWriter[_TallyKey] = BatchedWriter(self._write_round,
                                                               self._forget_old)
        # With a journal, a round is durable in a local file and reaches the store later
        # (gateway.usage_journal); without one, each round is a quorum write.
        self.journal = journal
        self._hour = 0                  # the newest hour counted into

    # -- the dispatcher's calls --

    def bind(self, request: web.Request, op: str, endpoint: Endpoint | None,
             decision: Decision | None, principal: str | None) -> None:
        """Remember who pays, once authorized, so that a response the handler streams
        itself is counted before its first byte leaves (on_prepare)."""
        bill = bill_for(op, endpoint, decision, principal)
        if bill is not None:
            request[_BILL] = bill

    async def answer(self, request: web.Request, response: web.StreamResponse, op: str,
                     endpoint: Endpoint | None, decision: Decision | None,
                     principal: str | None) -> None:
        """Count an answered request (unless on_prepare already did); returns once durable."""
        bill = request.get(_BILL) or bill_for(op, endpoint, decision, principal)
        await self._count(request, response, bill)

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: counts a streamed response before its headers go out."""
        await self._count(request, response, request.get(_BILL))

    async def _count(self, request: web.Request, response: web.StreamResponse,
                     bill: Bill | None) -> None:
        # A metadata outage is logged, not answered: the counts stay queued for the next
        # flush (lost only if this process dies before the store is back), and a count
        # never turns an answered request into an error.
        if bill is None or request.get(_DONE):
            return
        request[_DONE] = True
        try:
            await self.add(bill, payload_bytes_in(request), response_bytes(request, response))
        except Exception as exc:
            log.warning("metering flush failed, will retry: %s", exc)

    # -- group commit --

    async def add(self, bill: Bill, bytes_in: int, bytes_out: int) -> None:
        """Count one request; returns once durable (batched with concurrent callers)."""
        # The hour never goes back (wall clock steps): a forgotten past hour's tally must
        # not restart from zero and overwrite its durable record.
        self._hour = max(self._hour, hour_of(self._wall_ms()))
        key = (bill.tenant, bill.bucket, self._hour)
        tally = self._mine.setdefault(key, _Tally())
        tally.requests[_CLASSES.index(classify(bill.op))] += 1
        tally.bytes_in += bytes_in
        tally.bytes_out += bytes_out
        await self._writer.changed(key)

    def _put(self, key: _TallyKey) -> Put:
        tenant, bucket, hour_ms = key
        return Put(self.catalog.store.partition(partition_name(tenant)),
                   request_key(tenant, hour_ms, bucket, self.writer),
                   encode_requests(self._mine[key].frozen()))

    async def _write_round(self, keys: Collection[_TallyKey]) -> None:
        await write_round([self._put(k) for k in keys], self.journal,
                          self.catalog.store)

    def _forget_old(self) -> None:
        # A past hour's tally, once durable, is never written again: free its memory.
        for key in [k for k in self._mine if k[2] < self._hour and k not in self._writer.dirty]:
            del self._mine[key]

    async def retry(self) -> None:
        """Flush counts left dirty by a failed round (called by the sampler loop)."""
        await self._writer.retry()

    async def cleanup_ctx(self, _app: web.Application) -> AsyncIterator[None]:
        """For make_app's cleanup_ctx: the sampler runs while the app does."""
        task = asyncio.create_task(self.run_sampler())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # -- stored bytes --

    async def sample(self) -> int:
        """Write this period's stored-bytes sample of every bucket; return how many."""
        period_ms = sample_period_s * 1000
        now = self._wall_ms()
        start = now - now % period_ms
        buckets = await self.catalog.list_buckets()
        for b in buckets:
            used = await self.counters.usage(b)
            await self.catalog.store.put(self.catalog.store.partition(partition_name(b.owner)),
                                         sample_key(b.owner, start, b.name),
                                         encode_sample(used.bytes, sample_period_s))
        return len(buckets)

    async def run_sampler(self) -> None:
        """Sample once per period, near its start; retry queued counts."""
        period_ms = sample_period_s * 1000
        while True:
            try:
                await self.retry()
                await self.sample()
                now = self._wall_ms()
                await asyncio.sleep((period_ms - now % period_ms) / 1000 + 0.05)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("metering sample failed, will retry: %s", exc)
                await asyncio.sleep(sample_retry_s)



async def read_usage(catalog: Catalog, tenant: str, from_ms: int, to_ms: int,
                     bucket: str | None = None) -> list[Row]:
    """A tenant's usage per bucket and hour, for hours starting in [from_ms, to_ms)."""
    prefix = tenant_prefix(tenant)
    first = hour_of(from_ms) if from_ms % HOUR_MS == 0 else hour_of(from_ms) + HOUR_MS
    start_after = prefix + first.to_bytes(8, "big")    # sorts before every key of that hour
    store = catalog.store
    cursor = store.cursor(store.partition(partition_name(tenant)), prefix, start_after)
    rows = []
    while (rec := await cursor.pop()) is not None:
        if rec.value is None:
            continue
        row = decode_record(len(prefix), rec.key, rec.value)
        if row.hour_ms >= to_ms:
            break
        if bucket is None or row.bucket == bucket:
            rows.append(row)
    return merge_rows(rows)
