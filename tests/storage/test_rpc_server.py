"""storage/rpc.py's server side on a real loopback socket: at most
limits.rpc_inflight_per_connection_max calls of one connection run at once, the rest wait
(the socket is not read meanwhile) and all are answered; frames that are not the protocol's
end the connection; stop() lets running calls answer. The node is a stand-in: the ops under
test are replaced for the test (this is a unit test of the channel, not of a node)."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import pytest

from storage import limits, rpc
from storage.rpc_client import ChannelError, RpcPool
from tests.storage.conftest import rpc_listening


@pytest.fixture
async def served(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"running": 0, "most": 0, "gate": asyncio.Event()}

    async def slow(_node: Any, args: list[Any]) -> rpc.Result:
        state["running"] += 1
        state["most"] = max(state["most"], state["running"])
        await state["gate"].wait()
        state["running"] -= 1
        return 200, args[0]

    monkeypatch.setitem(rpc._OPS, "slow", slow)
    monkeypatch.setattr(limits, "rpc_inflight_per_connection_max", 3)
    server = rpc.RpcServer(node=None, observe=None)  # type: ignore[arg-type]
    state["server"] = server
    async with rpc_listening(server) as addr:
        yield addr, state


async def until(check: Callable[[], bool]) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)


async def test_calls_beyond_the_limit_wait_and_all_are_answered(
        served: tuple[str, dict[str, Any]], pool: RpcPool) -> None:
    addr, state = served
    calls = [asyncio.ensure_future(pool.call(addr, "slow", i)) for i in range(10)]
    await until(lambda: state["running"] == 3)
    await asyncio.sleep(0.1)
    assert state["running"] == 3               # the other seven wait their turn
    state["gate"].set()
    answers = await asyncio.gather(*calls)
    assert answers == [(200, i) for i in range(10)]
    assert state["most"] == 3
    assert await pool.call(addr, "nope") == (400, "unknown op 'nope'")


async def test_a_frame_that_is_not_a_call_ends_the_connection(
        served: tuple[str, dict[str, Any]]) -> None:
    addr, _state = served
    host, port = addr.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = msgpack.packb("not a call")
    writer.write(b"COFFRE-RPC/1\n" + len(body).to_bytes(4, "big") + body)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""    # closed, nothing answered
    writer.close()


async def test_stop_lets_running_calls_answer_then_closes(
        served: tuple[str, dict[str, Any]], pool: RpcPool) -> None:
    addr, state = served
    call = asyncio.ensure_future(pool.call(addr, "slow", "x"))
    await until(lambda: state["running"] == 1)
    stopping = asyncio.ensure_future(state["server"].stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()                  # it waits for the running call
    state["gate"].set()
    assert await call == (200, "x")
    await asyncio.wait_for(stopping, 5)
    conn = pool._conns[addr][0]
    await until(lambda: not conn.alive)         # the node closed the connection
    assert not conn.alive


async def test_inline_ops_answer_beside_running_calls_and_are_counted(
        served: tuple[str, dict[str, Any]], pool: RpcPool) -> None:
    """A ping is answered in the read callback even while the connection's task slots are
    all taken (it needs none; before, it waited for a slot), and is observed like any call."""
    addr, state = served
    seen: list[tuple[str, int]] = []
    state["server"].observe = lambda op, status, *_: seen.append((op, status))
    calls = [asyncio.ensure_future(pool.call(addr, "slow", i)) for i in range(3)]
    await until(lambda: state["running"] == 3)
    assert await asyncio.wait_for(pool.call(addr, "ping"), 5) == (200, None)
    assert seen == [("ping", 200)]
    state["gate"].set()
    assert await asyncio.gather(*calls) == [(200, i) for i in range(3)]
    state["server"].node = types.SimpleNamespace(device=lambda _i: None)
    status, reason = await pool.call(addr, "mget", "not a device", 1, b"k")
    assert (status, reason) == (400, "expected an integer")   # refused inline, as before
    assert seen[-1] == ("mget", 400)


async def test_a_call_nobody_answers_times_out(served: tuple[str, dict[str, Any]]) -> None:
    addr, _state = served
    quick = RpcPool(timeout_s=0.2, connect_timeout_s=2, connections_per_node=1)
    try:
        with pytest.raises(ChannelError, match="timed out"):
            await quick.call(addr, "slow", 1)           # the gate never opens
        assert quick.outstanding(addr) == 0
    finally:
        await quick.close()


async def test_a_lost_connection_fails_sent_calls_and_frees_unsent_ones() -> None:
    """A call whose message left gets ChannelError when the connection dies (it may have
    run); one still queued in the outbox learns it was never sent (safe to send again)."""
    from storage.rpc_client import _Conn, _NotSent

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def writelines(self, pieces: list[bytes]) -> None:
            self.written.append(b"".join(pieces))

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, _name: str) -> None:
            return None

    conn = _Conn()
    conn.channel.connection_made(Transport())  # type: ignore[arg-type]
    sent = asyncio.ensure_future(conn.call("ping", (), 5))
    await until(lambda: bool(conn.channel.transport.written))  # type: ignore[union-attr]
    queued = asyncio.ensure_future(conn.call("ping", (), 5))
    await asyncio.sleep(0)           # queued in the outbox, its flush not yet run
    conn.channel.connection_lost(None)
    with pytest.raises(ChannelError):
        await sent
    with pytest.raises(_NotSent):
        await queued


async def test_calls_of_one_loop_turn_ride_one_connection(
        served: tuple[str, dict[str, Any]]) -> None:
    """With two connections open, calls started in the same loop turn all join the message
    the first of them began, instead of alternating (one send each turn, not two)."""
    addr, state = served
    state["gate"].set()
    two = RpcPool(timeout_s=10, connect_timeout_s=2, connections_per_node=2)
    try:
        for i in range(2):                      # one call at a time opens both connections
            assert await two.call(addr, "slow", i) == (200, i)
        conns = two._conns[addr]
        assert len(conns) == 2
        sends: list[int] = [0, 0]
        for n, c in enumerate(conns):
            original = c.channel.send

            def counted(pieces: Any, n: int = n, original: Any = original) -> None:
                sends[n] += 1
                original(pieces)
            c.channel.send = counted            # type: ignore[method-assign]
        answers = await asyncio.gather(*(two.call(addr, "slow", i) for i in range(8)))
        assert answers == [(200, i) for i in range(8)]
        assert sorted(sends) == [0, 1]
    finally:
        await two.close()
