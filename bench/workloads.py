"""The workloads of issue 3: what one operation of each does, and the objects it needs first.

A `Job` has an untimed `prepare()` (create the bucket, write the objects it will read, skipped
when they are already there) and a timed `op(index)`. Keys of objects that are read back hold
the seed and size, so a run with another seed or size never reads bytes it did not write.
Written objects overwrite a small pool of keys (large, multipart) so that a long run does not
fill the disk; put-small writes fresh keys, as S3 PUT benchmarks do.
Rules: no timing here (the runner times `op`); a job keeps its state between rounds, so
`compare` prepares each endpoint once.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from bench import limits
from bench.outcome import OpOutcome, failed
from bench.s3client import S3Client

LARGE_KEY_POOL = 8
LARGE_READ_POOL = 4
MULTIPART_KEY_POOL = 4


class Workload(Enum):
    PUT_SMALL = "put-small"
    GET_SMALL = "get-small"
    MIXED = "mixed"
    PUT_LARGE = "put-large"
    GET_LARGE = "get-large"
    GET_RANGE = "get-range"
    LIST_FLAT = "list-flat"
    LIST_DELIM = "list-delim"
    LIST_ROOT = "list-root"
    MULTIPART = "multipart"


# The concurrency of issue 7's Swift reference figures, and a modest one for the rest.
DEFAULT_CONCURRENCY = {
    Workload.PUT_SMALL: 32,
    Workload.GET_SMALL: 32,
    Workload.MIXED: 32,
    Workload.PUT_LARGE: 4,
    Workload.GET_LARGE: 4,
    Workload.GET_RANGE: 8,
    Workload.LIST_FLAT: 4,
    Workload.LIST_DELIM: 4,
    Workload.LIST_ROOT: 4,
    Workload.MULTIPART: 2,
}


@dataclass(frozen=True)
class Sizes:
    small_bytes: int = limits.SMALL_OBJECT_BYTES
    large_bytes: int = limits.LARGE_OBJECT_BYTES
    range_object_bytes: int = limits.RANGE_OBJECT_BYTES
    range_bytes: int = limits.RANGE_BYTES
    part_bytes: int = limits.PART_BYTES
    parts: int = limits.PARTS_PER_UPLOAD
    list_keys: int = limits.LIST_KEYS
    list_prefixes: int = limits.LIST_PREFIXES
    key_pool: int = limits.SMALL_KEY_POOL


@dataclass(frozen=True)
class JobContext:
    client: S3Client
    bucket: str
    seed: int
    sizes: Sizes


class PrepareError(Exception):
    """Setup could not write the objects a workload reads."""


class Job(Protocol):
    async def prepare(self) -> None: ...

    async def op(self, index: int) -> OpOutcome: ...


async def bounded(items: Sequence[str], fn: Callable[[str], Awaitable[None]]) -> None:
    """Run fn(item) for every item, PREPARE_CONCURRENCY at a time."""
    queue = list(reversed(items))

    async def worker() -> None:
        while queue:
            await fn(queue.pop())

    await asyncio.gather(*(worker() for _ in range(limits.PREPARE_CONCURRENCY)))


async def ensure_objects(ctx: JobContext, bucket: str, keys: Sequence[str], size: int) -> None:
    """Write every key that is missing or has the wrong size."""

    async def one(key: str) -> None:
        if await ctx.client.head_size(bucket, key) == size:
            return
        outcome = await ctx.client.put(bucket, key, size)
        if not outcome.ok:
            raise PrepareError(f"PUT {bucket}/{key}: {outcome.error}")

    await bounded(keys, one)


async def ensure_bucket(ctx: JobContext, bucket: str) -> None:
    outcome = await ctx.client.create_bucket(bucket)
    if not outcome.ok:
        raise PrepareError(f"create bucket {bucket}: {outcome.error}")


class PutSmall:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        # Fresh keys per process run: a time tag keeps rounds from overwriting each other.
        self._prefix = f"ps/{time.time_ns():x}"

    async def prepare(self) -> None:
        await ensure_bucket(self._ctx, self._ctx.bucket)

    async def op(self, index: int) -> OpOutcome:
        key = f"{self._prefix}/{index:08d}"
        return await self._ctx.client.put(self._ctx.bucket, key, self._ctx.sizes.small_bytes)


class GetObjects:
    """Whole-object GETs over a pool of objects of one size, checked byte for byte."""

    def __init__(self, ctx: JobContext, tag: str, size: int, pool: int) -> None:
        self._ctx = ctx
        self._size = size
        self._keys = [f"{tag}/s{ctx.seed}-{size}/{i:05d}" for i in range(pool)]
        self._rng = random.Random(ctx.seed)

    async def prepare(self) -> None:
        await ensure_bucket(self._ctx, self._ctx.bucket)
        await ensure_objects(self._ctx, self._ctx.bucket, self._keys, self._size)

    async def op(self, index: int) -> OpOutcome:
        key = self._keys[self._rng.randrange(len(self._keys))]
        return await self._ctx.client.get(self._ctx.bucket, key, 0, self._size, ranged=False)


class GetRange:
    """Random ranges of one large object."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        sizes = ctx.sizes
        self._key = f"gr/s{ctx.seed}-{sizes.range_object_bytes}/0"
        self._rng = random.Random(ctx.seed)

    async def prepare(self) -> None:
        await ensure_bucket(self._ctx, self._ctx.bucket)
        await ensure_objects(
            self._ctx, self._ctx.bucket, [self._key], self._ctx.sizes.range_object_bytes
        )

    async def op(self, index: int) -> OpOutcome:
        sizes = self._ctx.sizes
        start = self._rng.randrange(sizes.range_object_bytes - sizes.range_bytes + 1)
        return await self._ctx.client.get(
            self._ctx.bucket, self._key, start, sizes.range_bytes, ranged=True
        )


class PutLarge:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    async def prepare(self) -> None:
        await ensure_bucket(self._ctx, self._ctx.bucket)

    async def op(self, index: int) -> OpOutcome:
        key = f"pl/{index % LARGE_KEY_POOL}"
        return await self._ctx.client.put(self._ctx.bucket, key, self._ctx.sizes.large_bytes)


class Multipart:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    async def prepare(self) -> None:
        await ensure_bucket(self._ctx, self._ctx.bucket)

    async def op(self, index: int) -> OpOutcome:
        sizes = self._ctx.sizes
        key = f"mp/{index % MULTIPART_KEY_POOL}"
        return await self._ctx.client.multipart(
            self._ctx.bucket, key, sizes.part_bytes, sizes.parts
        )


def list_bucket(ctx: JobContext) -> str:
    """The listing bucket: its own, so that no other workload's keys change its contents."""
    sizes = ctx.sizes
    return f"{ctx.bucket}-list-{sizes.list_keys}-{sizes.list_prefixes}"


def list_keys(sizes: Sizes) -> list[str]:
    per_prefix = sizes.list_keys // sizes.list_prefixes
    return [f"p{p:03d}/k{k:05d}" for p in range(sizes.list_prefixes) for k in range(per_prefix)]


class Listing:
    """Full listings of a bucket of `list_keys` empty objects in `list_prefixes` prefixes.

    flat: the whole bucket, page after page; delim: one prefix with delimiter '/';
    root: the root with delimiter '/' (one entry per prefix). A listing that does not return
    the expected count is an error: it catches list-after-write faults as well as bad pages.
    """

    def __init__(self, ctx: JobContext, kind: Workload) -> None:
        self._ctx = ctx
        self._kind = kind
        self._bucket = list_bucket(ctx)

    async def prepare(self) -> None:
        ctx = self._ctx
        await ensure_bucket(ctx, self._bucket)
        listed = await ctx.client.list_all(self._bucket, "", "", limits.LIST_PAGE_KEYS)
        if listed.ok and listed.items == ctx.sizes.list_keys:
            return

        async def put(key: str) -> None:
            outcome = await ctx.client.put(self._bucket, key, limits.LIST_OBJECT_BYTES)
            if not outcome.ok:
                raise PrepareError(f"PUT {self._bucket}/{key}: {outcome.error}")

        await bounded(list_keys(ctx.sizes), put)

    def _query(self, index: int) -> tuple[str, str, int]:
        sizes = self._ctx.sizes
        if self._kind is Workload.LIST_FLAT:
            return "", "", sizes.list_keys
        if self._kind is Workload.LIST_ROOT:
            return "", "/", sizes.list_prefixes
        return f"p{index % sizes.list_prefixes:03d}/", "/", sizes.list_keys // sizes.list_prefixes

    async def op(self, index: int) -> OpOutcome:
        prefix, delimiter, expected = self._query(index)
        outcome = await self._ctx.client.list_all(
            self._bucket, prefix, delimiter, limits.LIST_PAGE_KEYS
        )
        if outcome.ok and outcome.items != expected:
            return failed("wrong count")
        return outcome


class Mixed:
    """70% GET, 25% PUT, 5% DELETE over a pool of small objects.

    A key is used by one operation at a time and the job remembers which keys exist, so a
    404 on a GET of a key it wrote is a real error (a lost or stale object), never a race
    of the benchmark with itself.
    """

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        size = ctx.sizes.small_bytes
        self._keys = [f"mx/s{ctx.seed}-{size}/{i:05d}" for i in range(ctx.sizes.key_pool)]
        self._present: set[str] = set()
        self._idle: set[str] = set(self._keys)
        self._rng = random.Random(ctx.seed)

    async def prepare(self) -> None:
        await ensure_bucket(self._ctx, self._ctx.bucket)
        missing = [k for k in self._keys if k not in self._present]
        await ensure_objects(self._ctx, self._ctx.bucket, missing, self._ctx.sizes.small_bytes)
        self._present.update(missing)

    def _pick(self, present: bool) -> str | None:
        # Sampling a few times is cheaper than building the candidate list per operation.
        for _ in range(8):
            key = self._keys[self._rng.randrange(len(self._keys))]
            if key in self._idle and (key in self._present or not present):
                return key
        return None

    async def op(self, index: int) -> OpOutcome:
        roll = self._rng.randrange(100)
        want_present = roll < limits.MIXED_GET_PERCENT or roll >= 100 - limits.MIXED_DELETE_PERCENT
        key = self._pick(want_present)
        if key is None:
            key = self._pick(False)
            roll = limits.MIXED_GET_PERCENT  # nothing to read or delete: write instead
        if key is None:
            return failed("no idle key (key pool smaller than concurrency)")
        self._idle.discard(key)
        try:
            return await self._run(roll, key)
        finally:
            self._idle.add(key)

    async def _run(self, roll: int, key: str) -> OpOutcome:
        client, bucket, size = self._ctx.client, self._ctx.bucket, self._ctx.sizes.small_bytes
        if roll < limits.MIXED_GET_PERCENT:
            return await client.get(bucket, key, 0, size, ranged=False)
        if roll < limits.MIXED_GET_PERCENT + limits.MIXED_PUT_PERCENT:
            outcome = await client.put(bucket, key, size)
            if outcome.ok:
                self._present.add(key)
            return outcome
        # Absent until proven otherwise: a failed DELETE may still have deleted.
        self._present.discard(key)
        return await client.delete(bucket, key)


def make_job(workload: Workload, ctx: JobContext) -> Job:
    sizes = ctx.sizes
    if workload is Workload.GET_SMALL:
        return GetObjects(ctx, "gs", sizes.small_bytes, sizes.key_pool)
    if workload is Workload.GET_LARGE:
        return GetObjects(ctx, "gl", sizes.large_bytes, LARGE_READ_POOL)
    if workload in (Workload.LIST_FLAT, Workload.LIST_DELIM, Workload.LIST_ROOT):
        return Listing(ctx, workload)
    simple: dict[Workload, Callable[[JobContext], Job]] = {
        Workload.PUT_SMALL: PutSmall,
        Workload.PUT_LARGE: PutLarge,
        Workload.GET_RANGE: GetRange,
        Workload.MULTIPART: Multipart,
        Workload.MIXED: Mixed,
    }
    return simple[workload](ctx)
