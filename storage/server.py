"""The node's aiohttp server: the internal API of wire.py over a Node (and rpc.py's channel).

Rules: bodies are streamed both ways (request.content chunks in, StreamResponse writes out,
both with backpressure); a storage error becomes its status plus a small JSON body; no other
exception reaches the wire as anything but a 500. The first piece of a streamed read is
verified before the status line is sent, so a corrupt record is a clean 422; a later corrupt
piece aborts the connection (the client sees a short body and never gets bad bytes).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import msgpack
from aiohttp import web

from storage import limits, list_pages, rebalancer, rpc, wire
from storage import metrics as node_metrics
from storage.errors import BadRequest, StorageError
from storage.node import Node
from storage.rebalance_units import local_checksum
from storage.rpc_stream import PortSniffer

NODE = web.AppKey("node", Node)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StorageError as e:
        body = json.dumps({"error": type(e).__name__, "reason": e.reason})
        return web.Response(status=e.status, text=body, content_type="application/json")


def _int(text: str | None, name: str, default: int | None = None) -> int:
    if text is None or text == "":
        if default is None:
            raise BadRequest(f"missing {name}")
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"bad {name}") from None


def _hex(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadRequest("bad hex") from None


def _target(request: web.Request) -> tuple[Node, int, int, bytes]:
    info = request.match_info
    try:
        key = wire.key_from_path(info["key"])
    except ValueError:
        raise BadRequest("bad key") from None
    return request.app[NODE], _int(info["dev"], "device"), _int(info["part"], "partition"), key


async def put_fragment(request: web.Request) -> web.StreamResponse:
    node, dev, part, key = _target(request)
    length = request.content_length
    if length is None:
        raise BadRequest("Content-Length required")

    async def body() -> AsyncIterator[bytes]:
        async for piece in request.content.iter_any():
            yield piece

    await node.device(dev).put_fragment(part, key, length, body())
    return web.Response(status=204)


async def head_fragment(request: web.Request) -> web.StreamResponse:
    node, dev, part, key = _target(request)
    entry = await node.device(dev).stat_fragment(part, key)
    return web.Response(status=200, headers={wire.H_SIZE: str(entry.loc.body_len)})


async def get_fragment(request: web.Request) -> web.StreamResponse:
    node, dev, part, key = _target(request)
    q = request.query
    offset = _int(q.get("offset"), "offset", 0)
    length = _int(q["length"], "length") if "length" in q else None
    device = node.device(dev)
    entry = await device.stat_fragment(part, key)
    size = entry.loc.body_len
    pieces = device.iter_fragment(entry, offset, length)
    first = await anext(pieces, b"")  # verified before any byte of the answer is sent
    resp = web.StreamResponse(status=200, headers={wire.H_SIZE: str(size)})
    start = min(offset, size)
    resp.content_length = size - start if length is None else min(length, size - start)
    await resp.prepare(request)
    try:
        if first:
            await resp.write(first)
        async for piece in pieces:
            await resp.write(piece)
    except StorageError:
        # The status line is gone: cut the connection so that the client sees a short body
        # (and raises), rather than an error message spliced into the data.
        if request.transport is not None:
            request.transport.abort()
        return resp
    await resp.write_eof()
    return resp


async def delete_fragment(request: web.Request) -> web.StreamResponse:
    node, dev, part, key = _target(request)
    await node.device(dev).delete_fragment(part, key)
    return web.Response(status=204)


async def list_fragments(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    dev = _int(request.match_info["dev"], "device")
    part = _int(request.match_info["part"], "partition")
    after = _hex(request.query.get("after")) or b""
    limit = _int(request.query.get("limit"), "limit", 1000)
    entries = await node.device(dev).list_fragments(part, after, limit)
    body = msgpack.packb([[e.key, e.loc.body_len] for e in entries])
    return web.Response(body=body, content_type="application/msgpack")


async def put_meta(request: web.Request) -> web.StreamResponse:
    node, dev, part, key = _target(request)
    ts = _int(request.query.get("ts"), "ts")
    tombstone = request.query.get("tombstone") == "1"
    if (request.content_length or 0) > limits.meta_value_size_bytes_max:
        raise BadRequest("metadata value too large")
    value = await request.read()
    applied = await node.device(dev).put_meta(part, key, ts, None if tombstone else value)
    return web.Response(status=204, headers={wire.H_APPLIED: "1" if applied else "0"})


async def get_meta(request: web.Request) -> web.StreamResponse:
    node, dev, part, key = _target(request)
    entry = await node.device(dev).get_meta(part, key)
    if entry is None:
        return web.Response(status=404, text='{"error": "NotFound", "reason": "no record"}')
    headers = {wire.H_TS: str(entry.ts), wire.H_TOMBSTONE: "1" if entry.value is None else "0"}
    return web.Response(status=200, body=entry.value or b"", headers=headers)


async def list_meta(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    dev = _int(request.match_info["dev"], "device")
    part = _int(request.match_info["part"], "partition")
    q = request.query
    entries = await node.device(dev).list_meta(
        part, _hex(q.get("prefix")) or b"", _hex(q.get("start_after")),
        _hex(q.get("start_at")), _int(q.get("limit"), "limit", 1000), _hex(q.get("delimiter")))
    body = msgpack.packb([[e.key, e.ts.to_bytes(16, "big"), e.value] for e in entries])
    return web.Response(body=body, content_type="application/msgpack")


async def list_page(request: web.Request) -> web.StreamResponse:
    """POST a msgpack [prefix, start_at, limit, delimiter, strip, fields, with_rows]
    (storage/list_pages.py); the answer is msgpack [digest, resume, rows, state]."""
    node = request.app[NODE]
    dev = _int(request.match_info["dev"], "device")
    part = _int(request.match_info["part"], "partition")
    if (request.content_length or 0) > limits.meta_value_size_bytes_max:
        raise BadRequest("listing query too large")
    try:
        query, with_rows = list_pages.query_from_wire(msgpack.unpackb(await request.read()),
                                                      limits.list_limit_max)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise BadRequest(f"bad listing query: {e}") from None
    page = await node.device(dev).list_page(part, query, with_rows)
    return web.Response(body=msgpack.packb(list_pages.page_to_wire(page)),
                        content_type="application/msgpack")


async def summary(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    dev = _int(request.match_info["dev"], "device")
    part = _int(request.match_info["part"], "partition")
    return web.json_response(await node.device(dev).partition_summary(part))


async def put_ring(request: web.Request) -> web.StreamResponse:
    if (request.content_length or 0) > limits.ring_file_size_bytes_max:
        raise BadRequest("ring file too large")
    data = await request.read()
    await request.app[NODE].put_ring(request.match_info["name"], data)
    return web.Response(status=204)


async def get_ring(request: web.Request) -> web.StreamResponse:
    data = await request.app[NODE].get_ring(request.match_info["name"])
    return web.Response(body=data, content_type="application/octet-stream")


async def info(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[NODE].info())


# -- rebalancer (storage/rebalancer.py) -------------------------------------------------------
REBALANCER = web.AppKey("rebalancer", rebalancer.Rebalancer)


async def rebalance_status(request: web.Request) -> web.StreamResponse:
    reb = request.app[REBALANCER]
    action = request.match_info.get("action")
    if action == "pause":
        await reb.pause()
    elif action == "resume":
        await reb.resume()
    return web.json_response(reb.status())


async def rebalance_throttle(request: web.Request) -> web.StreamResponse:
    q = request.query
    try:
        rate = float(q["bytes_per_s"]) if "bytes_per_s" in q else None
    except ValueError:
        raise BadRequest("bad bytes_per_s") from None
    conc = _int(q["concurrency"], "concurrency") if "concurrency" in q else None
    if rate is not None and not 0 <= rate < float("inf"):
        raise BadRequest("bytes_per_s must be >= 0 (0: unlimited)")
    if conc is not None and not 1 <= conc <= rebalancer.concurrency_max:
        raise BadRequest(f"concurrency must be 1..{rebalancer.concurrency_max}")
    await request.app[REBALANCER].throttle(rate, conc)
    return web.json_response(request.app[REBALANCER].status())


async def rebalance_sizes(request: web.Request) -> web.StreamResponse:
    return web.json_response({"devices": await request.app[REBALANCER].sizes()})


async def fragment_checksum(request: web.Request) -> web.StreamResponse:
    node, dev, part, key = _target(request)
    device = node.device(dev)
    entry = await device.stat_fragment(part, key)
    return web.json_response({"size": entry.loc.body_len,
                              "xxh3": await local_checksum(device, entry)})


async def live(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


def make_app(node: Node, *, background: bool = True) -> web.Application:
    """The composition root. The node is opened on startup and closed on cleanup."""
    # Metrics outermost: it sees the status that _errors made of a StorageError.
    app = web.Application(middlewares=[node_metrics.middleware, _errors],
                          client_max_size=limits.ring_file_size_bytes_max)
    app[NODE] = node
    frag = "/v1/frag/{dev}/{part}/{key}"
    meta = "/v1/meta/{dev}/{part}/{key}"
    app.router.add_put(frag, put_fragment)
    app.router.add_get(frag, get_fragment, allow_head=False)
    app.router.add_head(frag, head_fragment)
    app.router.add_delete(frag, delete_fragment)
    app.router.add_get("/v1/frags/{dev}/{part}", list_fragments)
    app.router.add_put(meta, put_meta)
    app.router.add_get(meta, get_meta)
    app.router.add_get("/v1/metas/{dev}/{part}", list_meta)
    app.router.add_post("/v1/metapage/{dev}/{part}", list_page)
    app.router.add_get("/v1/summary/{dev}/{part}", summary)
    app.router.add_put("/admin/rings/{name}", put_ring)
    app.router.add_get("/admin/rings/{name}", get_ring)
    app.router.add_get("/admin/info", info)
    app.router.add_get("/health/live", live)
    metrics = node_metrics.install(app, node)  # GET /metrics, GET /health/ready
    rpc.install(app, node, metrics.observe_rpc)
    app.cleanup_ctx.append(_node_lifecycle)
    # After the node's lifecycle: the rebalancer reads its progress from opened devices.
    reb = app[REBALANCER] = rebalancer.Rebalancer(node)
    app[node_metrics.NODE_METRICS].add_status_source("rebalance", reb.status)
    app.router.add_get(wire.REBALANCE_PATH, rebalance_status)
    app.router.add_post(wire.REBALANCE_PATH + "/{action:pause|resume}", rebalance_status)
    app.router.add_post(wire.REBALANCE_PATH + "/throttle", rebalance_throttle)
    app.router.add_get(wire.REBALANCE_PATH + "/sizes", rebalance_sizes)
    app.router.add_get(wire.FRAGSUM_PATH, fragment_checksum)
    app.cleanup_ctx.append(rebalancer.lifecycle(reb, background=background))
    if background:
        app.cleanup_ctx.append(_background_work)
    return app


async def _node_lifecycle(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    await node.open()
    metrics = app[node_metrics.NODE_METRICS]
    for dev in node.devices.values():  # committers exist once the devices are open
        dev.committer.observer = functools.partial(metrics.observe_commit, dev.id)
    yield
    await node.close()


async def _background_work(app: web.Application) -> AsyncIterator[None]:
    from storage.maintenance import Maintenance  # compaction + scrub loops

    work = Maintenance(app[NODE])
    work.start()
    yield
    await work.stop()


async def listen(runner: web.AppRunner, host: str, port: int) -> asyncio.Server:
    """Serve a set-up runner's app on host:port, HTTP and the RPC channel on the one port
    (rpc_stream.PortSniffer tells them apart). Close it before runner.cleanup()."""
    http = runner.server
    assert http is not None, "runner.setup() first"
    rpc_server = runner.app[rpc.RPC_SERVER]
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: PortSniffer(http, rpc_server.channel), host, port,
                                    backlog=1024, reuse_address=True)
