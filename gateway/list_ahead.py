"""Listing read-ahead: while a client reads one page, the gateway lists the next one.

A client that pages through a bucket (boto3's paginator, `aws s3 ls`, rclone, pyarrow)
asks for page N + 1 as soon as it has parsed page N; the shards' work for N + 1 can run
meanwhile. A page listed ahead is only served if it is still the page: each shard's page
came with the running digest of R replicas of its partition (storage/meta_digest.py, all
equal); when the next request comes, R replicas of every partition are asked for their
running digest again (one cheap call each, no scan). Equal digests mean those replicas
hold exactly the records they held when the page was listed, and any write acknowledged
before the request is on one of them (W + R > N), so the page listed ahead is the page a
fresh listing would give. Any difference, failure or missing digest: the page is listed
afresh, as without read-ahead.

Bounded: a few pages per gateway process, each kept a few seconds; a page nobody asks for
is dropped, and its listing cancelled if it still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway import limits
from gateway.list_merge import Leftover
from gateway.s3xml import ListPage

log = logging.getLogger("coffre.listing")

# Which listing a page answers: bucket id, prefix, delimiter, max-keys, start after.
Shape = tuple[bytes, str, str, int, str | None]


@dataclass(frozen=True)
class Listed:
    """A page and the running digest each partition had when it was listed; None when a
    shard's replicas did not agree at once (the page cannot be checked cheaply). With it,
    the rows each partition sent past the page's end, for the next page to start from."""

    page: ListPage
    states: dict[int, bytes] | None
    leftovers: dict[int, Leftover] | None = None


Check = Callable[[dict[int, bytes]], Awaitable[bool]]


class ReadAhead:
    def __init__(self, size: int = limits.list_ahead_pages_max,
                 keep_s: float = limits.list_ahead_keep_s) -> None:
        self._pages: OrderedDict[Shape, tuple[float, asyncio.Task[Listed]]] = OrderedDict()
        self._size = size
        self._keep_s = keep_s
        # Pages served from read-ahead, and pages listed ahead but listed afresh because
        # their digests moved, their listing failed or they waited too long (metrics).
        self.served = 0
        self.stale = 0

    def start(self, shape: Shape, listing: Callable[[], Awaitable[Listed]]) -> None:
        """List `shape` in the background (once: a second start of it is ignored)."""
        if shape in self._pages or self._size == 0:
            return
        task = asyncio.ensure_future(listing())
        task.add_done_callback(_quiet)
        self._pages[shape] = (time.monotonic(), task)
        while len(self._pages) > self._size:
            _, (_, old) = self._pages.popitem(last=False)
            old.cancel()

    async def take(self, shape: Shape, check: Check) -> Listed | None:
        """The page listed ahead for `shape` if there is one and `check` finds it current."""
        entry = self._pages.pop(shape, None)
        if entry is None:
            return None
        started, task = entry
        if time.monotonic() - started > self._keep_s:
            task.cancel()
            self.stale += 1
            return None
        try:
            listed = await asyncio.shield(task)
        except Exception:
            self.stale += 1
            return None
        if listed.states is None or not await check(listed.states):
            self.stale += 1
            return None
        self.served += 1
        return listed

    def close(self) -> None:
        for _, task in self._pages.values():
            task.cancel()
        self._pages.clear()


def _quiet(task: asyncio.Task[Listed]) -> None:
    # A listing ahead that fails is only a page not saved: the request lists afresh.
    if not task.cancelled():
        with contextlib.suppress(Exception):
            if (e := task.exception()) is not None:
                log.debug("listing ahead failed: %s", e)
