"""storage/rpc.py's server side on a real loopback socket: at most
limits.rpc_inflight_per_connection_max calls of one connection run at once, the rest wait
(the socket is not read meanwhile) and all are answered; frames that are not the protocol's
end the connection; stop() lets running calls answer. The node is a stand-in: the ops under
test are replaced for the test (this is a unit test of the channel, not of a node)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import pytest

from storage import limits, rpc
from storage.rpc_client import RpcPool
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
