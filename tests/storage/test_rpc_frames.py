"""storage/rpc_frames.py: frames queued in one loop turn leave as one message, in order,
cut at the size cap; a failed send reaches every frame of its message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgpack
import pytest

from storage.rpc_frames import Outbox, frames
from storage.rpc_stream import Buffer


def _joined(frame: bytes | list[Buffer]) -> bytes:
    """A frame as the bytes it puts on the wire."""
    return frame if isinstance(frame, bytes) else b"".join(frame)


def test_frames_splits_back_to_back_objects_and_refuses_garbage() -> None:
    one = msgpack.packb([1, "mget", "", 3])
    assert list(frames(one)) == [[1, "mget", "", 3]]
    assert list(frames(one + msgpack.packb([2, 200, None]))) == [[1, "mget", "", 3],
                                                                  [2, 200, None]]
    with pytest.raises(ValueError):
        list(frames(one + b"\xc1"))         # 0xc1 is never valid msgpack
    with pytest.raises(ValueError):
        list(frames(one[:-1]))              # cut short


class _Sink:
    """An Outbox's sink that keeps what it is sent; `fail` makes send raise it, `paused`
    holds the frames' futures until `resume()`."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[bytes] = []
        self.fail = fail
        self.write_paused = False
        self._resumed = asyncio.Event()

    def send(self, pieces: Sequence[Buffer]) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(b"".join(pieces))

    async def drain(self) -> None:
        if self.write_paused:
            await self._resumed.wait()

    def resume(self) -> None:
        self.write_paused = False
        self._resumed.set()


async def test_one_message_per_turn_in_order_and_capped() -> None:
    sink = _Sink()
    sent = sink.sent
    box = Outbox(sink, batch_bytes_max=100)
    waits = [box.put(msgpack.packb([i, "x" * 20])) for i in range(8)]   # 24 bytes each
    await asyncio.gather(*waits)
    assert [len(list(frames(m))) for m in sent] == [4, 4]               # cut at the cap
    assert [f[0] for m in sent for f in frames(m)] == list(range(8))
    sent.clear()
    await box.put(msgpack.packb([9, "y" * 300]))      # bigger than the cap: alone
    await box.put(msgpack.packb([10]))                # a later turn: its own message
    assert [len(list(frames(m))) for m in sent] == [1, 1]


async def test_a_full_send_buffer_holds_the_frames_until_it_drains() -> None:
    sink = _Sink()
    sink.write_paused = True
    box = Outbox(sink)
    wait = box.put(b"\x90")
    await asyncio.sleep(0.01)
    assert sink.sent == [b"\x90"] and not wait.done()     # written, not yet drained
    sink.resume()
    await asyncio.wait_for(wait, 1)
    unpaused = box.put(b"\x91")
    await asyncio.sleep(0)
    assert unpaused.done() and sink.sent[-1] == b"\x91"   # done in the flush itself


async def test_a_failed_send_fails_every_frame_of_its_message() -> None:
    box = Outbox(_Sink(fail=ConnectionResetError("gone")))
    waits = [box.put(b"\x90"), box.put(b"\x90")]
    results = await asyncio.gather(*waits, return_exceptions=True)
    assert all(isinstance(r, ConnectionResetError) for r in results)
    box.put(b"\x90")                        # nobody waits: no "never retrieved" warning
    await asyncio.sleep(0.01)


def test_an_answer_of_views_packs_as_the_joined_bytes() -> None:
    """storage/rpc.py packs a fragment read (views of verified chunks) without joining them:
    the pieces written one after another must be what msgpack gives for the joined bytes."""
    from storage.rpc import BinViews, _answer
    for pieces in ([], [b""], [b"abc"], [b"a" * 70_000, b"b" * 3, b"c" * 300]):
        views = BinViews(memoryview(p) for p in pieces)
        assert msgpack.unpackb(_joined(_answer(12, 200, views))) == [12, 200, b"".join(pieces)]
    assert _answer(3, 404, "no such fragment") == msgpack.packb([3, 404, "no such fragment"])


def test_a_big_fragment_answer_is_decoded_as_a_view() -> None:
    """rpc_frames.frames gives a big [call_id, status, bin] answer's payload as a view into
    the message (no copy); anything else decodes as before."""
    from storage.rpc import BinViews, _answer
    from storage.rpc_frames import frames
    body = bytes(range(256)) * 1024
    one = _joined(_answer(300, 200, BinViews([memoryview(body[:1000]),
                                              memoryview(body[1000:])])))
    [(call_id, status, payload)] = list(frames(one))
    assert (call_id, status) == (300, 200)
    assert isinstance(payload, memoryview) and payload == body
    # A big answer followed by another frame, a big non-bin payload, a small bin: as before.
    two = one + msgpack.packb([301, 200, b"x"])
    assert [f[2] for f in frames(two)] == [body, b"x"]
    listed = msgpack.packb([5, 200, [body[:40_000], body[:40_000]]])
    assert list(frames(listed)) == [[5, 200, [body[:40_000], body[:40_000]]]]
    small = msgpack.packb([6, 200, b"abc"])
    assert list(frames(small)) == [[6, 200, b"abc"]]
