"""storage/committer.py: a small batch commits on the event loop, one whose segments hold
much unsynced data goes to the commit thread; both make the records durable and visible."""

from __future__ import annotations

import threading
from pathlib import Path

from storage import limits
from storage.committer import GroupCommitter
from storage.index import Index, Location, MetaEntry, PutMeta
from storage.kv import MemoryStore
from storage.segments import SegmentStore


def _put(key: bytes, seg: int) -> PutMeta:
    return PutMeta(MetaEntry(0, key, 1, b"v", Location(seg, 0, 10, 1, 65536, 20)))


async def test_small_batches_commit_on_the_loop_and_big_ones_in_the_thread(tmp_path: Path
                                                                           ) -> None:
    segments = SegmentStore(tmp_path / "segments")
    segments.open()
    index = Index(MemoryStore())
    committer = GroupCommitter(index, segments, lambda e: e)
    threads: list[str] = []
    committer.observer = lambda ops, seconds: threads.append(threading.current_thread().name)
    seg, _ = segments.reserve(100, b"x" * 100)
    assert await committer.submit(_put(b"small", seg.id), {seg.id})
    big = b"y" * (limits.commit_inline_bytes_max + 1)
    seg2, _ = segments.reserve(len(big), big)
    assert await committer.submit(_put(b"big", seg2.id), {seg2.id})
    assert await committer.submit(_put(b"after", seg2.id), {seg2.id})  # synced: small again
    loop_thread = threading.current_thread().name
    assert threads[0] == loop_thread
    assert threads[1].startswith("commit")
    assert threads[2] == loop_thread
    assert segments.unsynced_bytes({seg.id, seg2.id}) == 0
    assert [index.get_meta(0, k) is not None for k in (b"small", b"big", b"after")] == [True] * 3
    segments.done_writing(seg)
    segments.done_writing(seg2)
    await committer.close()
    segments.close()
