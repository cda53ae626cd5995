"""The erasure-coded data path: stream a body into k+m fragments, and stream it back.

PUT: the body arrives in chunks; each stripe of k*block bytes is hashed and encoded in a
worker thread (hashlib and zfec release the GIL), and block i goes into a small bounded queue
that feeds the streaming upload of fragment i to the device in slot i. Memory is bounded by
the process's budget, whatever the objects' sizes and number: a stripe is held in it until
every upload has written its block. The write succeeds when k + extra
fragments are durable.

GET: only the stripes that overlap the requested range are fetched, a batch at a time, with
the next batch in flight while the current one is sent. The k data fragments are read
directly (the code is systematic); a fragment that errors, is missing or fails its checksum
is replaced by parity and the stripe decoded, invisibly to the client.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from gateway import errors, limits, sse
from gateway.budget import Budget
from gateway.fragment_uploads import Block, Claim, Item, Sink, durable_quorum
from gateway.manifest import DataRef
from gateway.ranges import Layout
from gateway.retire import Retirement
from ring.model import Device, Ring
from storage import dataid
from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.erasure import Codec


class DataRings(Protocol):
    def data(self, width: int) -> Ring: ...


# A fragment piece as read: bytes, or a view into the RPC message that carried it.
Buffer = bytes | memoryview


def fragment_key(data_id: bytes, index: int) -> bytes:
    return data_id + bytes([index])


Observer = Callable[[Block], None]     # a hash's update, fed each stripe in order
Seal = Callable[[int, Block], bytes]   # encrypts the stripe at an offset (gateway/sse.py)


async def _after(before: asyncio.Future[None] | None, fn: Observer,
                 data: Block) -> None:
    """Run fn(data) in a worker thread once `before` is done (keeps hashing in order)."""
    if before is not None:
        await before
    await asyncio.to_thread(fn, data)


class _Suspects:
    """Nodes whose last call failed. Before a write reads its body, its slots are counted: if
    a write quorum cannot be reached the request is refused at once (503 SlowDown, and with
    `Expect: 100-continue` before the client sends a byte) instead of after the whole body
    has crossed the network. Healthy clusters pay nothing: suspects are pinged only when they
    would decide the quorum, and a suspect that answers any call is cleared."""

    def __init__(self, client: NodeClient) -> None:
        self.client = client
        self._failed: set[str] = set()

    def failed(self, addr: str) -> None:
        self._failed.add(addr)

    def answered(self, addr: str) -> None:
        self._failed.discard(addr)

    async def reachable(self, addrs: Sequence[str], need: int) -> int:
        """How many of `addrs` (one per slot; repeats count) are reachable, at least as far
        as deciding whether `need` is met."""
        suspects = sorted(self._failed.intersection(addrs))
        trusted = sum(a not in self._failed for a in addrs)
        if trusted >= need or not suspects:
            return trusted
        alive = await asyncio.gather(*(self._probe(a) for a in suspects))
        down = {a for a, ok in zip(suspects, alive, strict=True) if not ok}
        return len(addrs) - sum(a in down for a in addrs)

    async def _probe(self, addr: str) -> bool:
        try:
            await asyncio.wait_for(self.client.ping(addr), limits.suspect_probe_timeout_s)
        except (NodeError, TimeoutError):
            self.failed(addr)
            # A connection that lived through a network cut may be stuck in TCP back-off:
            # the next probe must not wait behind it.
            self.client.drop_connections(addr)
            return False
        self.answered(addr)
        return True


class DataPath:
    def __init__(self, rings: DataRings, client: NodeClient, write_extra: int = 1,
                 budget: Budget | None = None,
                 retire_after_s: float = limits.retire_after_s) -> None:
        self.rings, self.client, self.write_extra = rings, client, write_extra
        # Shared by every request of the process: memory stays bounded however many run.
        self.budget = budget or Budget(limits.inflight_object_bytes_max)
        self._codecs: dict[tuple[int, int], Codec] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.suspects = _Suspects(client)
        self.retirement: Retirement[DataRef] = Retirement(
            self.forget, retire_after_s, limits.retire_pending_max)

    def codec(self, k: int, m: int) -> Codec:
        codec = self._codecs.get((k, m))
        if codec is None:
            codec = self._codecs[(k, m)] = Codec(k, m)
        return codec

    # ---- write -----------------------------------------------------------------------

    async def write(self, body: AsyncIterable[bytes], size: int, k: int, m: int,
                    observe: Observer | Sequence[Observer],
                    home: bytes = b"", key: bytes | None = None) -> DataRef:
        """Store `size` bytes from `body`.

        Each of `observe` (hash updates) sees every stripe in order, in a worker thread;
        several observers run in parallel with each other (MD5 beside SHA-256). `home` names
        the metadata partition whose records will reference the data (Catalog.object_home):
        the data id carries it, so that nodes can collect the data if nothing does. `key`:
        a data key (gateway/sse.py) each stripe is encrypted with after it is hashed and
        before it is encoded, in the same worker thread.
        """
        observers = [observe] if callable(observe) else list(observe)
        data_id = dataid.new_data_id(k, m, home, int(time.time() * 1000))
        ring = self.rings.data(k + m)
        partition = ring.partition_of(data_id)
        devices = ring.slots(partition)
        need = min(k + self.write_extra, k + m)
        # Refuse before the first body byte is read when the quorum is out of reach.
        reachable = await self.suspects.reachable([d.addr for d in devices], need)
        if reachable < need:
            raise errors.SlowDown(f"only {reachable} of {k + m} fragment slots reachable, "
                                  f"{need} needed")
        layout = Layout(size, k, limits.stripe_block_bytes)
        sinks = [self._open_sink(d, partition, fragment_key(data_id, i), layout.fragment_bytes)
                 for i, d in enumerate(devices)]
        try:
            seal = None if key is None else functools.partial(sse.crypt, key, data_id)
            await self._pump(body, layout, self.codec(k, m), sinks, observers, need, seal)
        except BaseException:
            for s in sinks:
                s.task.cancel()
            self._spawn(self._delete_fragments(devices, partition, data_id))
            raise
        durable, reasons = await durable_quorum([s.task for s in sinks], need)
        if durable < need:
            self._spawn(self._delete_fragments(devices, partition, data_id))
            raise errors.SlowDown(f"only {durable} of {need} fragments stored: "
                                  + "; ".join(reasons))
        return DataRef(data_id, size, k, m, limits.stripe_block_bytes)

    def _open_sink(self, dev: Device, partition: int, key: bytes, length: int) -> Sink:
        return Sink(limits.fragment_queue_blocks,
                     lambda blocks: self._put_fragment(dev, partition, key, length, blocks))

    async def _put_fragment(self, dev: Device, partition: int, key: bytes, length: int,
                            blocks: AsyncIterator[Block]) -> None:
        try:
            await self.client.put_fragment(dev.addr, dev.id, partition, key, length, blocks)
        except NodeUnavailable:
            self.suspects.failed(dev.addr)
            raise
        self.suspects.answered(dev.addr)

    async def _pump(self, body: AsyncIterable[bytes], layout: Layout, codec: Codec,
                    sinks: Sequence[Sink], observers: Sequence[Observer],
                    need: int, seal: Seal | None = None) -> None:
        """Cut the body into stripes and keep up to two of them in flight.

        Per stripe, hashing (ordered: MD5 is a chain) and encoding (independent) run in
        worker threads while the loop reads the next stripe, so the two cores each take a
        share; blocks leave for the nodes strictly in stripe order.
        """
        pending: list[bytes] = []
        pending_len = 0
        stripe = 0
        received = 0
        hashes: list[asyncio.Future[None] | None] = [None] * len(observers)
        prev_send: asyncio.Future[None] | None = None
        inflight: deque[asyncio.Future[list[None]]] = deque()

        async def launch(data: Block) -> None:
            nonlocal stripe, prev_send
            cost = len(data) * (codec.k + codec.m) // codec.k      # the data and its blocks
            await self.budget.acquire(cost)
            for i, fn in enumerate(observers):
                hashes[i] = asyncio.ensure_future(_after(hashes[i], fn, data))
            claim = Claim(len(sinks))
            sealed = None if seal is None else functools.partial(
                seal, stripe * layout.stripe_bytes)
            prev_send = asyncio.ensure_future(self._stripe(
                data, layout.block_len(stripe), codec, sinks, claim, prev_send, sealed))
            # A stripe is done once every upload has written its block *and* it is hashed:
            # with only the send awaited, a hash slower than the nodes (SHA-256 of a signed
            # payload) held every stripe behind it, and a 1 GiB PUT took the gateway to 326
            # MiB of RSS.
            done = asyncio.gather(prev_send, claim.done,
                                  *(h for h in hashes if h is not None))
            done.add_done_callback(lambda _f: self.budget.release(cost))
            inflight.append(done)
            stripe += 1

        try:
            async for chunk in body:
                received += len(chunk)
                if received > layout.size:
                    raise errors.InvalidRequest("body longer than its declared length")
                if sum(not s.failed for s in sinks) < need:
                    # Nodes went down since the check: refuse now, not after the whole body.
                    raise errors.SlowDown(f"fewer than {need} fragment uploads left")
                pending.append(chunk)
                pending_len += len(chunk)
                while pending_len >= layout.stripe_bytes and stripe < layout.stripes - 1:
                    # One copy per body byte: the stripe is a view of the joined chunks (a
                    # slice would copy it again), the rest (under one chunk) is copied out.
                    joined = memoryview(b"".join(pending))
                    await launch(joined[: layout.stripe_bytes])
                    rest = bytes(joined[layout.stripe_bytes:])
                    pending, pending_len = ([rest] if rest else []), len(rest)
                    while len(inflight) > 1:
                        await inflight.popleft()
            if received != layout.size:
                raise errors.IncompleteBody()
            if layout.stripes:
                await launch(b"".join(pending))
            for fut in (*inflight, *hashes):
                if fut is not None:
                    await fut
        except BaseException:
            for fut in (*inflight, *hashes):
                if fut is not None:
                    fut.cancel()
            raise
        for s in sinks:
            await s.send(None)

    async def _stripe(self, data: Block, block_len: int, codec: Codec, sinks: Sequence[Sink],
                      claim: Claim, before: asyncio.Future[None] | None,
                      seal: Callable[[Block], bytes] | None = None) -> None:
        def encode() -> list[Block]:
            return codec.encode(codec.split(data if seal is None else seal(data), block_len))
        blocks = await asyncio.to_thread(encode)
        if before is not None:
            await before
        items: list[Item] = [(b, functools.partial(claim.let_go, i))
                              for i, b in enumerate(blocks)]
        pairs = list(zip(sinks, items, strict=True))
        taken = await asyncio.gather(*(s.send(it, limits.write_straggler_s) for s, it in pairs))
        late = [(s, it) for (s, it), ok in zip(pairs, taken, strict=True) if not ok]
        if not late:
            return
        # A node that stopped taking blocks must not stall the upload: drop its fragment
        # (repair rebuilds it) as long as enough fragments remain for the write quorum.
        need = min(codec.k + self.write_extra, codec.k + codec.m)
        if sum(s.alive for s in sinks) - len(late) >= need:
            for s, (_, let_go) in late:
                s.task.cancel()
                let_go()            # never queued: the sink's end cannot let it go
            return
        await asyncio.gather(*(s.send(it) for s, it in late))

    # ---- read ------------------------------------------------------------------------

    async def read(self, ref: DataRef, start: int, end: int) -> AsyncIterator[memoryview]:
        """Yield object bytes start..end (inclusive) of one erasure-coded run, as views."""
        if ref.size == 0 or end < start:
            return
        layout = Layout(ref.size, ref.k, ref.block)
        first, last = start // layout.stripe_bytes, end // layout.stripe_bytes
        reader = _StripeReader(self, ref, layout)
        # A batch never asks for more than the whole budget (which would let it overdraw).
        fits = self.budget.capacity_bytes // layout.stripe_bytes
        step = max(1, min(limits.read_batch_fragment_bytes // ref.block, fits))
        if last - first < step:
            direct = await self._held(end - start + 1, lambda: reader.direct(start, end))
            if direct is not None:
                pieces, cost = direct
                try:
                    for piece in pieces:
                        yield piece
                finally:
                    self.budget.release(cost)
                return
        later = max(1, min(limits.read_batch_fragment_bytes_later // ref.block, fits))
        batches = _batches(first, last, step, later)
        nxt: asyncio.Task[tuple[list[memoryview], int]] | None = asyncio.ensure_future(
            self._held_batch(reader, *batches[0]))
        try:
            for i, (s0, _s1) in enumerate(batches):
                assert nxt is not None
                pieces, cost = await nxt
                nxt = (asyncio.ensure_future(self._held_batch(reader, *batches[i + 1]))
                       if i + 1 < len(batches) else None)
                try:
                    pos = s0 * layout.stripe_bytes     # object offset of the first piece
                    for piece in pieces:
                        lo, hi = max(start - pos, 0), min(end + 1 - pos, len(piece))
                        if lo < hi:
                            yield piece[lo:hi]
                        pos += len(piece)
                finally:
                    self.budget.release(cost)
        finally:
            if nxt is not None:
                if not nxt.done():
                    nxt.cancel()    # it gives its reservation back itself
                elif not nxt.cancelled() and nxt.exception() is None:
                    self.budget.release(nxt.result()[1])

    async def _held(self, cost: int, read: Callable[[], Awaitable[list[memoryview] | None]]
                    ) -> tuple[list[memoryview], int] | None:
        """What `read` gives and the `cost` of budget it holds (released by the caller when
        done); None (nothing held) when it gives None."""
        await self.budget.acquire(cost)
        try:
            got = await read()
        except BaseException:
            self.budget.release(cost)
            raise
        if got is None:
            self.budget.release(cost)
            return None
        return got, cost

    async def _held_batch(self, reader: _StripeReader, s0: int, s1: int
                          ) -> tuple[list[memoryview], int]:
        """A batch of stripes and the budget it holds (released by the caller when done)."""
        held = await self._held((s1 - s0 + 1) * reader.layout.stripe_bytes,
                                lambda: reader.batch(s0, s1))
        assert held is not None       # batch() never gives None: it raises
        return held

    # ---- delete ----------------------------------------------------------------------

    def retire(self, refs: Sequence[DataRef]) -> None:
        """Remove, a while from now, the data of an object just replaced or deleted: GETs
        that read its manifest before still stream it (gateway.retire)."""
        self.retirement.add(refs)

    def forget(self, refs: Sequence[DataRef]) -> None:
        """Remove the fragments of data no manifest points at any more, and no reader ever
        saw (in the background)."""
        for ref in refs:
            ring = self.rings.data(ref.k + ref.m)
            partition = ring.partition_of(ref.data_id)
            self._spawn(self._delete_fragments(ring.slots(partition), partition, ref.data_id))

    async def _delete_fragments(self, devices: Sequence[Device], partition: int,
                                data_id: bytes) -> None:
        async def one(i: int, d: Device) -> None:
            try:
                await self.client.delete_fragment(d.addr, d.id, partition,
                                                  fragment_key(data_id, i))
            except NodeError:
                pass    # an orphan: the collector removes it later
        await asyncio.gather(*(one(i, d) for i, d in enumerate(devices)))

    def _spawn(self, coro: AsyncIterator[None] | object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _batches(first: int, last: int, step: int, later: int) -> list[tuple[int, int]]:
    """Stripes first..last cut into (s0, s1) batches: `step` stripes, then `later` each."""
    out = [(first, min(first + step - 1, last))]
    while out[-1][1] < last:
        s0 = out[-1][1] + 1
        out.append((s0, min(s0 + later - 1, last)))
    return out


class _StripeReader:
    """Reads one DataRef: a short range straight from the data fragments that hold it, or
    batches of whole stripes, falling back to parity on errors."""

    def __init__(self, path: DataPath, ref: DataRef, layout: Layout) -> None:
        self.path, self.ref, self.layout = path, ref, layout
        self.codec = path.codec(ref.k, ref.m)
        ring = path.rings.data(ref.k + ref.m)
        self.partition = ring.partition_of(ref.data_id)
        self.devices = ring.slots(self.partition)
        self.previous = ring.previous_slots(self.partition)
        self.bad: set[int] = set()      # fragments that failed once: not asked again

    async def batch(self, s0: int, s1: int) -> list[memoryview]:
        """Stripes s0..s1 from any k fragments: the data ones first; parity replaces a
        fragment that fails, and is asked in parallel (a hedge) when one is slow."""
        offset = self.layout.fragment_offset(s0)
        length = sum(self.layout.block_len(s) for s in range(s0, s1 + 1))
        k = self.ref.k
        order = [i for i in range(k + self.ref.m) if i not in self.bad]
        spares = order[k:]
        running: dict[asyncio.Task[Buffer | None], int] = {}
        got: dict[int, Buffer] = {}

        def start(i: int) -> None:
            running[asyncio.ensure_future(self._fetch(i, offset, length))] = i

        for i in order[:k]:
            start(i)
        hedged = False
        try:
            while len(got) < k:
                if not running:
                    raise errors.ServiceUnavailable(
                        f"only {len(got)} of {k} fragments readable")
                done, _ = await asyncio.wait(
                    running, timeout=None if hedged else limits.read_hedge_after_s,
                    return_when=asyncio.FIRST_COMPLETED)
                if not done:                    # slow fragments: ask parity beside them
                    hedged = True
                    for _ in range(min(len(running), len(spares))):
                        start(spares.pop(0))
                    continue
                for task in done:
                    i = running.pop(task)
                    res = task.result()
                    if res is None or len(res) != length:
                        self.bad.add(i)
                        if spares:
                            start(spares.pop(0))
                    else:
                        got[i] = res
        finally:
            for task in running:
                task.cancel()
        if all(i in got for i in range(k)):
            return self._interleave(got, s0, s1)
        return await asyncio.to_thread(self._decode, got, s0, s1)

    async def direct(self, start: int, end: int) -> list[memoryview] | None:
        """Object bytes start..end read from only the data fragments that hold them, one
        read each: a range within a few stripes costs its own size, not its stripes' (a
        100 KiB Parquet footer read was a whole 1 MiB stripe). None when one of them fails
        or is slow: the caller then reads whole stripes, with parity and hedging."""
        pieces = self.layout.data_pieces(start, end)
        spans: dict[int, tuple[int, int]] = {}
        for i, off, n in pieces:
            lo, hi = spans.get(i, (off, off + n))
            spans[i] = (min(lo, off), max(hi, off + n))
        tasks = {i: asyncio.ensure_future(self._fetch(i, lo, hi - lo))
                 for i, (lo, hi) in spans.items()}
        _, slow = await asyncio.wait(tasks.values(), timeout=limits.read_hedge_after_s)
        if slow:
            # Slow fragments are left out of the stripe read that follows: it starts on
            # parity at once instead of waiting for them a second time.
            for i, task in tasks.items():
                if task in slow:
                    task.cancel()
                    self.bad.add(i)
            return None
        got: dict[int, memoryview] = {}
        for i, task in tasks.items():
            res = task.result()
            lo, hi = spans[i]
            if res is None or len(res) != hi - lo:
                self.bad.add(i)
                return None
            got[i] = memoryview(res)
        return [got[i][off - spans[i][0]:off - spans[i][0] + n] for i, off, n in pieces]

    async def _fetch(self, index: int, offset: int, length: int) -> Buffer | None:
        key = fragment_key(self.ref.data_id, index)
        places = [self.devices[index]]
        if self.previous is not None and self.previous[index].id != self.devices[index].id:
            places.append(self.previous[index])
        for dev in places:
            try:
                data = await self.path.client.read_fragment_view(
                    dev.addr, dev.id, self.partition, key, offset, length)
                self.path.suspects.answered(dev.addr)
                return data
            except NodeUnavailable:
                self.path.suspects.failed(dev.addr)
            except NodeError:
                continue
        return None

    def _interleave(self, got: dict[int, Buffer], s0: int, s1: int) -> list[memoryview]:
        """Stripe by stripe, the data blocks as views (the last stripe's pad dropped)."""
        views = {i: memoryview(b) for i, b in got.items()}
        out: list[memoryview] = []
        pos = 0
        for s in range(s0, s1 + 1):
            blen = self.layout.block_len(s)
            left = self.layout.data_len(s)
            for i in range(self.ref.k):
                take = min(blen, left)
                if take <= 0:
                    break
                out.append(views[i][pos:pos + take])
                left -= take
            pos += blen
        return out

    def _decode(self, got: dict[int, Buffer], s0: int, s1: int) -> list[memoryview]:
        out: list[memoryview] = []
        pos = 0
        for s in range(s0, s1 + 1):
            blen = self.layout.block_len(s)
            blocks = self.codec.decode({i: memoryview(b)[pos:pos + blen]
                                        for i, b in got.items()})
            left = self.layout.data_len(s)
            for b in blocks:
                take = min(blen, left)
                if take <= 0:
                    break
                out.append(memoryview(b)[:take])
                left -= take
            pos += blen
        return out
