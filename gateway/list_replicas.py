"""One shard's listing page, read from a read quorum of its replicas at the cost of one.

The read quorum is R replicas (W + R > N: together they hold every acknowledged write).
Merging R full pages per shard was the main cost of a listing, so instead:
- one replica (the primary, rotating with the shard so that the load spreads) sends the
  compact page (storage/list_pages.py) with its partition's running digest
  (storage/meta_digest.py, one LMDB get), the R - 1 others send only their running digest,
  all in parallel, one round trip. Equal running digests mean the R replicas hold the same
  records: the primary's page is the page of each of them, exactly what the merge of
  theirs would produce;
- when the running digests differ (a write landed on some replicas only, in flight or
  missed), the page is asked again: the R - 1 others send the digest of the page they would
  send for the same request (a scan of the page's range). Equal page digests mean the R
  replicas list the same rows with the same timestamps up to the same resume point. That
  holds for common prefixes too: the digest of a prefix carries the live key that made the
  replica list it, and a key that R replicas hold live at the same timestamp is live (any
  newer acknowledged write or delete reached at least one of them);
- a mismatch again falls back to the exact merge: every record of the R replicas,
  tombstones included, with no cutting on the nodes (a node that cuts a group at its first
  live key would hide the rest of the group from the merge), rolled up here. Slower, but
  rare, and never wrong.
A replica that fails is replaced by a spare, as for reads. The calls of one round (every
shard's primary and digests) leave as one message per node (PageBatch), not one per call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gateway import errors, limits
from gateway.metastore import MetaStore
from ring.model import Device
from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.keys import successor
from storage.list_pages import DIGEST, ROWS, STATE_ONLY, Page, PageQuery, Want, project

log = logging.getLogger("coffre.listing")


class PageBatch:
    """Gathers the list_page calls made in one turn of the event loop and sends them as one
    message per node (NodeClient.list_pages); each caller gets its own page or error."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client
        self._queued: dict[str, list[tuple[int, int, PageQuery, Want,
                                           asyncio.Future[Page]]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def page(self, dev: Device, partition: int, query: PageQuery,
                   with_rows: Want) -> Page:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Page] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.setdefault(dev.addr, []).append((dev.id, partition, query, with_rows,
                                                      future))
        return await future

    def _flush(self) -> None:
        queued, self._queued = self._queued, {}
        for addr, items in queued.items():
            task = asyncio.ensure_future(self._send(addr, items))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, addr: str, items: list[Any]) -> None:
        try:
            answers = await self._client.list_pages(addr, [i[:4] for i in items])
        except NodeError as e:
            answers = [e] * len(items)
        except Exception as e:      # every waiter must hear of it
            answers = [NodeUnavailable(addr, f"{type(e).__name__}: {e}")] * len(items)
        for item, answer in zip(items, answers, strict=True):
            future = item[4]
            if future.done():
                continue
            if isinstance(answer, Page):
                future.set_result(answer)
            else:
                future.set_exception(answer)


def pick_primaries(replicas: Sequence[Sequence[Device]]) -> list[Device]:
    """The replica that sends each partition's page, spread over the nodes: a listing's
    time is that of its busiest node, and taking every shard's first replica put half of a
    root listing's pages on one node of six (47 ms of its CPU against ~8 ms on the others).
    Greedy: each partition goes to the node with the fewest pages so far among those that
    hold a replica; ties go round-robin with the partition's position, so that the first
    replicas of the ring are not always preferred."""
    load: dict[str, int] = {}
    out: list[Device] = []
    for i, devices in enumerate(replicas):
        turned = [*devices[i % len(devices):], *devices[:i % len(devices)]]
        best = min(turned, key=lambda d: load.get(d.addr, 0))
        load[best.addr] = load.get(best.addr, 0) + 1
        out.append(best)
    return out


async def shard_page(store: MetaStore, batch: PageBatch, partition: int, query: PageQuery,
                     sender: Device) -> Page:
    """The page of one shard's partition (rows always included; digest left empty when it
    came from the fallback merge), sent by `sender` if it is still one of its replicas.
    Its `state` is the running digest R replicas agreed on, or b"" when they did not."""
    devices = store.replicas(partition)
    read = min(store.quorum.read, len(devices))
    order = [*(d for d in devices if d == sender), *(d for d in devices if d != sender)]
    (holder, primary), states = await _ask_quorum(batch, partition, query, order, read,
                                                  STATE_ONLY)
    if primary.state and all(d.state == primary.state for d in states):
        return primary
    # The page stands; R - 1 replicas other than its holder say whether they list it too.
    others = [d for d in order if d is not holder]
    _, digests = await _ask_quorum(batch, partition, query, others, read, DIGEST,
                                   primary=(holder, primary))
    if all(d.digest == primary.digest for d in digests):
        return dataclasses.replace(primary, state=b"")
    log.info("listing: replicas of partition %d differ from %r on, merging them",
             partition, query.start_at)
    return await merged_page(store, partition, query)


async def states_unchanged(store: MetaStore, batch: PageBatch, prefix: bytes,
                           states: dict[int, bytes]) -> bool:
    """Whether R replicas of every partition still have the running digest in `states`
    for the records under `prefix` (False as well when not enough of them answer)."""
    query = PageQuery(prefix, prefix, 1)    # a STATE_ONLY call reads no range
    answers = await asyncio.gather(*(_quorum_states(store, batch, p, query) for p in states))
    return all(got is not None and all(s == states[p] for s in got)
               for p, got in zip(states, answers, strict=True))


async def _quorum_states(store: MetaStore, batch: PageBatch, partition: int,
                         query: PageQuery) -> list[bytes] | None:
    devices = store.replicas(partition)
    ask = _asker(batch, partition, query, devices, [])
    got = await asyncio.gather(*(ask(STATE_ONLY) for _ in range(
        min(store.quorum.read, len(devices)))))
    return None if any(a is None for a in got) else [a[1].state for a in got if a is not None]


Ask = Callable[[Want], Awaitable[tuple[Device, Page] | None]]


def _asker(batch: PageBatch, partition: int, query: PageQuery, order: Sequence[Device],
           reasons: list[str]) -> Ask:
    """ask(want): the next replica of `order` that answers (which, and its page); a replica
    that fails is skipped for the next one, its reason kept; None when none is left. Tasks
    that call it start in order, so concurrent callers take order[0], order[1], ..."""
    pool = list(order)

    async def ask(with_rows: Want) -> tuple[Device, Page] | None:
        while pool:
            dev = pool.pop(0)
            try:
                return dev, await batch.page(dev, partition, query, with_rows)
            except NodeError as e:
                reasons.append(str(e))
        return None

    return ask


async def _ask_quorum(batch: PageBatch, partition: int, query: PageQuery,
                      order: list[Device], read: int, others: Want,
                      primary: tuple[Device, Page] | None = None
                      ) -> tuple[tuple[Device, Page], list[Page]]:
    """The primary's page (rows and digests) with the replica that sent it, and what `others`
    says the R - 1 others send; `primary` when the page was read already (then `order`
    holds the other replicas only)."""
    reasons: list[str] = []
    ask = _asker(batch, partition, query, order, reasons)

    async def given() -> tuple[Device, Page] | None:
        return primary

    # Tasks start in argument order, so the primary takes order[0], the digests the next.
    answers = await asyncio.gather(given() if primary is not None else ask(ROWS),
                                   *(ask(others) for _ in range(read - 1)))
    first, digests = answers[0], [a[1] for a in answers[1:] if a is not None]
    if first is None or len(digests) < read - 1:
        raise errors.ServiceUnavailable(
            "listing: not enough replicas answered: " + "; ".join(reasons))
    return first, digests


async def merged_page(store: MetaStore, partition: int, query: PageQuery) -> Page:
    """The exact page: merge every record of R replicas (newest wins), roll up here."""
    q = query
    cursor = store.cursor(partition, q.prefix, None, limits.list_fallback_page_records)
    cursor.seek(max(q.prefix, q.start_at))
    rows: list[object] = []
    resume = q.start_at
    while len(rows) < q.limit:
        rec = await cursor.peek()
        if rec is None:
            return Page(b"", None, rows)
        if rec.value is None:
            await cursor.pop()
            continue
        group = _group_of(rec.key, q)
        if group is not None:
            after = successor(group)
            if group >= q.start_at:
                rows.append(group[q.strip:])
            cursor.seek(after)
            resume = after
            continue
        await cursor.pop()
        rows.append([rec.key[q.strip:], *project(rec.value, q.fields)])
        resume = rec.key + b"\x00"
    return Page(b"", resume, rows)


def _group_of(key: bytes, q: PageQuery) -> bytes | None:
    if not q.delimiter:
        return None
    at = key.find(q.delimiter, len(q.prefix))
    return None if at < 0 else key[: at + len(q.delimiter)]
