"""NodeClient: what the gateway (and the rebalancer) call to talk to storage nodes.

Rules: small calls go over the framed RPC channel (rpc_client.py: many calls in flight per
connection, several times cheaper per call); a fragment PUT above limits.rpc_put_body_bytes_max
streams its body over an RPC connection of its own (rpc_frames.STREAM_PUT); stream_fragment, reads
larger than limits.rpc_read_bytes_max and admin calls use plain HTTP (one aiohttp ClientSession
with a keep-alive connector shared by every node). transport="http" sends everything over
HTTP. Bodies are streamed both ways; every failure becomes a NodeError subclass that names the
node (`addr`, "host:port") and the reason, so a quorum failure can list each node's reason. A
stream cut short by the node (a corrupt piece after the first, or a crash) raises
NodeUnavailable: no caller ever gets a short body silently.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import msgpack

from storage import limits, wire
from storage.list_pages import Page, PageQuery, Want, page_from_wire, query_to_wire
from storage.metrics import REQUEST_ID, REQUEST_ID_HEADER
from storage.rpc_client import ChannelError, RpcPool
from storage.rpc_frames import STREAM_PUT


class NodeError(Exception):
    def __init__(self, addr: str, reason: str) -> None:
        super().__init__(f"{addr}: {reason}")
        self.addr = addr
        self.reason = reason


class FragmentNotFound(NodeError):
    """404: the node does not hold this fragment or record."""


class FragmentCorrupt(NodeError):
    """422: checksum mismatch; the node quarantined the record and recorded a repair job."""


class DeviceFull(NodeError):
    """507: the device is out of space; retry elsewhere or later."""


class NodeUnavailable(NodeError):
    """Connection refused, timeout, device failed (503), any 5xx, or a cut stream."""


class NodeRequestError(NodeError):
    """400/416: the request itself was refused (a bug in the caller, or a bad range)."""


@dataclass(frozen=True)
class MetaRecord:
    key: bytes
    ts: int
    value: bytes | None  # None = tombstone


_SMALL_BODY_BYTES = 256 * 1024  # below this a PUT body is sent in one piece (fewer syscalls)


class NodeClient:
    def __init__(self, *, connect_timeout_s: float = 2.0, request_timeout_s: float = 60.0,
                 connections_per_node: int = 64, transport: str = "rpc") -> None:
        if transport not in ("rpc", "http"):
            raise ValueError("transport must be 'rpc' or 'http'")
        self._connector_args = {"limit": 0, "limit_per_host": connections_per_node,
                                "keepalive_timeout": 60.0}
        # sock_read bounds each wait for bytes, not the whole transfer: a 1 GiB fragment may
        # take longer than request_timeout_s, a stalled node may not.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s,
                                              sock_read=request_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._rpc = RpcPool(timeout_s=request_timeout_s,
                            connect_timeout_s=connect_timeout_s) if transport == "rpc" else None

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(**self._connector_args)  # type: ignore[arg-type]
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, read_bufsize=1 << 20,
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    def outstanding(self, addr: str) -> int:
        """RPC calls to `addr` awaiting their answer (0 on the HTTP transport, which does
        not count them)."""
        return self._rpc.outstanding(addr) if self._rpc is not None else 0

    def drop_connections(self, addr: str) -> None:
        """Open new RPC connections to `addr` from now on (see RpcPool.drop)."""
        if self._rpc is not None:
            self._rpc.drop(addr)

    async def close(self) -> None:
        if self._rpc is not None:
            await self._rpc.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- plumbing ------------------------------------------------------------------------
    async def _request(self, method: str, addr: str, path: str, *, params: dict[str, str]
                       | None = None, data: Any = None, headers: dict[str, str] | None = None,
                       ok: tuple[int, ...] = (200, 204)) -> tuple[int, dict[str, str], bytes]:
        try:
            async with self._s().request(method, f"http://{addr}{path}", params=params,
                                         data=data, headers=_tagged(headers)) as resp:
                body = await resp.read()
                if resp.status not in ok:
                    _raise_for(addr, resp.status, body)
                return resp.status, dict(resp.headers), body
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise NodeUnavailable(addr, f"{type(e).__name__}: {e}") from e

    async def _call(self, addr: str, op: str, *args: Any) -> Any:
        """One RPC call; _TOO_BIG when the node wants it over HTTP instead."""
        assert self._rpc is not None
        try:
            status, payload = await self._rpc.call(addr, op, *args)
        except ChannelError as e:
            raise NodeUnavailable(addr, e.reason) from e
        if status == 413:
            return _TOO_BIG
        if status >= 400:
            _raise_status(addr, status, f"{status} {payload}")
        return payload

    # -- fragments -----------------------------------------------------------------------
    async def put_fragment(self, addr: str, device: int, partition: int, key: bytes,
                           length: int, body: AsyncIterable[bytes | memoryview]) -> None:
        """Returns once the node made the fragment durable."""
        counted = _exact(body, length, addr)
        data: Any
        if self._rpc is not None and length <= limits.rpc_put_body_bytes_max:
            whole = b"".join([piece async for piece in counted])
            await self._call(addr, "fput", device, partition, key, whole)
            return
        if self._rpc is not None:
            try:
                status, payload = await self._rpc.stream(addr, STREAM_PUT,
                                                         (device, partition, key, length),
                                                         counted)
            except ChannelError as e:
                raise NodeUnavailable(addr, e.reason) from e
            if status >= 400:
                _raise_status(addr, status, f"{status} {payload}")
            return
        if length <= _SMALL_BODY_BYTES:
            data = b"".join([piece async for piece in counted])
        else:
            data = counted
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        await self._request("PUT", addr, wire.frag_path(device, partition, key), data=data,
                            headers=headers)

    async def read_fragment(self, addr: str, device: int, partition: int, key: bytes,
                            offset: int = 0, length: int | None = None) -> bytes:
        return bytes(await self.read_fragment_view(addr, device, partition, key, offset,
                                                   length))

    async def read_fragment_view(self, addr: str, device: int, partition: int, key: bytes,
                                 offset: int = 0, length: int | None = None
                                 ) -> bytes | memoryview:
        """read_fragment, as a view into the answer when it came in one big RPC message
        (storage/rpc_frames.py decodes those without copying): for readers that only
        slice it, like the gateway's GET."""
        if self._rpc is not None:
            got = await self._call(addr, "fget", device, partition, key, offset, length)
            if got is not _TOO_BIG:
                return got if isinstance(got, bytes | memoryview) else bytes(got)
        params = _range(offset, length)
        _, _, body = await self._request("GET", addr,
                                               wire.frag_path(device, partition, key),
                                               params=params)
        return body

    async def stream_fragment(self, addr: str, device: int, partition: int, key: bytes,
                              offset: int = 0, length: int | None = None
                              ) -> AsyncIterator[bytes]:
        url = f"http://{addr}{wire.frag_path(device, partition, key)}"
        try:
            async with self._s().get(url, params=_range(offset, length),
                                     headers=_tagged(None)) as resp:
                if resp.status != 200:
                    _raise_for(addr, resp.status, await resp.read())
                got = 0
                async for piece in resp.content.iter_any():
                    got += len(piece)
                    yield piece
                if resp.content_length is not None and got != resp.content_length:
                    raise NodeUnavailable(addr, "stream cut short")
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise NodeUnavailable(addr, f"{type(e).__name__}: {e}") from e

    async def fragment_size(self, addr: str, device: int, partition: int, key: bytes) -> int:
        if self._rpc is not None:
            return int(await self._call(addr, "fsize", device, partition, key))
        _, headers, _ = await self._request("HEAD", addr, wire.frag_path(device, partition, key))
        return int(headers[wire.H_SIZE])

    async def delete_fragment(self, addr: str, device: int, partition: int, key: bytes) -> None:
        if self._rpc is not None:
            await self._call(addr, "fdel", device, partition, key)
            return
        await self._request("DELETE", addr, wire.frag_path(device, partition, key))

    async def list_fragments(self, addr: str, device: int, partition: int, after: bytes = b"",
                             limit: int = 1000) -> list[tuple[bytes, int]]:
        if self._rpc is not None:
            rows = await self._call(addr, "flist", device, partition, after, limit)
            return [(bytes(k), int(n)) for k, n in rows]
        params = {"after": after.hex(), "limit": str(limit)}
        _, _, body = await self._request("GET", addr, f"/v1/frags/{device}/{partition}",
                                         params=params)
        return [(bytes(k), int(n)) for k, n in msgpack.unpackb(body)]

    async def partition_summary(self, addr: str, device: int, partition: int
                                ) -> dict[str, int | str]:
        if self._rpc is not None:
            summary: dict[str, int | str] = await self._call(addr, "summary", device, partition)
            return summary
        _, _, body = await self._request("GET", addr, f"/v1/summary/{device}/{partition}")
        out: dict[str, int | str] = json.loads(body)
        return out

    # -- metadata ------------------------------------------------------------------------
    async def put_meta(self, addr: str, device: int, partition: int, key: bytes, ts: int,
                       value: bytes | None) -> None:
        """Durable on return; an older-or-equal ts is a silent no-op (the newest wins)."""
        if self._rpc is not None:
            await self._call(addr, "mput", device, partition, key, ts.to_bytes(16, "big"), value)
            return
        params = {"ts": str(ts)}
        if value is None:
            params["tombstone"] = "1"
        await self._request("PUT", addr, wire.meta_path(device, partition, key), params=params,
                            data=value or b"")

    async def put_meta_previous(self, addr: str, device: int, partition: int, key: bytes,
                                ts: int, value: bytes | None) -> MetaRecord | None:
        """put_meta that returns the record the node held before (None if none)."""
        if self._rpc is None:   # plain HTTP has no such call: read, then write
            previous = await self.get_meta(addr, device, partition, key)
            await self.put_meta(addr, device, partition, key, ts, value)
            return previous
        _, prev = await self._call(addr, "mputp", device, partition, key, ts.to_bytes(16, "big"),
                                   value)
        if prev is None:
            return None
        return MetaRecord(key, int.from_bytes(prev[0], "big"), prev[1])

    async def get_meta(self, addr: str, device: int, partition: int, key: bytes
                       ) -> MetaRecord | None:
        if self._rpc is not None:
            try:
                ts_bytes, value = await self._call(addr, "mget", device, partition, key)
            except FragmentNotFound:
                return None
            return MetaRecord(key, int.from_bytes(ts_bytes, "big"), value)
        status, headers, body = await self._request(
            "GET", addr, wire.meta_path(device, partition, key), ok=(200, 404))
        if status == 404:
            if b"NotFound" in body:
                return None
            _raise_for(addr, status, body)
        value = None if headers.get(wire.H_TOMBSTONE) == "1" else body
        return MetaRecord(key, int(headers[wire.H_TS]), value)

    async def list_meta(self, addr: str, device: int, partition: int, prefix: bytes,
                        start_after: bytes | None = None, start_at: bytes | None = None,
                        limit: int = 1000, delimiter: bytes | None = None
                        ) -> list[MetaRecord]:
        """Records under prefix in key order; with a delimiter, each group of keys sharing
        prefix...delimiter ends at its first live record (see Index.list_meta)."""
        if self._rpc is not None:
            rows = await self._call(addr, "mlist", device, partition, prefix, start_after,
                                    start_at, limit, delimiter)
            return [MetaRecord(bytes(k), int.from_bytes(ts, "big"), v) for k, ts, v in rows]
        params = {"prefix": prefix.hex(), "limit": str(limit)}
        if start_after is not None:
            params["start_after"] = start_after.hex()
        if start_at is not None:
            params["start_at"] = start_at.hex()
        if delimiter:
            params["delimiter"] = delimiter.hex()
        _, _, body = await self._request("GET", addr, f"/v1/metas/{device}/{partition}",
                                         params=params)
        return [MetaRecord(bytes(k), int.from_bytes(ts, "big"), None if v is None else bytes(v))
                for k, ts, v in msgpack.unpackb(body)]

    async def list_page(self, addr: str, device: int, partition: int, query: PageQuery,
                        with_rows: Want) -> Page:
        """A compact listing page, or only its digest when with_rows is DIGEST, or only the
        partition's running digest (STATE_ONLY; storage/list_pages.py says what a page holds)."""
        wire_query = query_to_wire(query, with_rows)
        if self._rpc is not None:
            raw = await self._call(addr, "mpage", device, partition, *wire_query)
        else:
            _, _, body = await self._request("POST", addr, f"/v1/metapage/{device}/{partition}",
                                             data=msgpack.packb(wire_query))
            raw = msgpack.unpackb(body)
        try:
            return page_from_wire(raw)
        except (ValueError, TypeError) as e:
            raise NodeUnavailable(addr, f"bad listing page: {e}") from None

    async def list_pages(self, addr: str, asks: list[tuple[int, int, PageQuery, Want]]
                         ) -> list[Page | NodeError]:
        """Several list_page calls to one node, (device, partition, query, with_rows)
        each, in one message over RPC; each answer is its page or its own error."""
        if self._rpc is None:
            got = await asyncio.gather(*(self.list_page(addr, d, p, q, w) for d, p, q, w in asks),
                                       return_exceptions=True)
            return [_page_or_error(addr, g) for g in got]
        items = [[d, p, *query_to_wire(q, w)] for d, p, q, w in asks]
        answers = await self._call(addr, "mpages", *items)
        if not isinstance(answers, list) or len(answers) != len(asks):
            raise NodeUnavailable(addr, "bad listing pages answer")
        out: list[Page | NodeError] = []
        for status, payload in answers:
            try:
                if status >= 400:
                    _raise_status(addr, status, f"{status} {payload}")
                out.append(page_from_wire(payload))
            except NodeError as e:
                out.append(e)
            except (ValueError, TypeError) as e:
                out.append(NodeUnavailable(addr, f"bad listing page: {e}"))
        return out

    # -- admin ---------------------------------------------------------------------------
    async def ping(self, addr: str) -> None:
        """A round trip that touches no disk (RPC channel, or GET /health/live over HTTP)."""
        if self._rpc is not None:
            await self._call(addr, "ping")
            return
        await self._request("GET", addr, "/health/live")

    async def put_ring(self, addr: str, name: str, data: bytes) -> None:
        await self._request("PUT", addr, f"/admin/rings/{name}", data=data)

    async def get_ring(self, addr: str, name: str) -> bytes:
        return (await self._request("GET", addr, f"/admin/rings/{name}"))[2]

    async def info(self, addr: str) -> dict[str, object]:
        _, _, body = await self._request("GET", addr, "/admin/info")
        out: dict[str, object] = json.loads(body)
        return out

    async def fragment_checksum(self, addr: str, device: int, partition: int, key: bytes
                                ) -> tuple[int, str] | None:
        """(size, xxh3_64 hex) of a stored fragment, computed on the node; None if absent.
        The rebalancer checks a pushed fragment with it before deleting its own copy."""
        status, _, body = await self._request(
            "GET", addr, wire.fragsum_path(device, partition, key), ok=(200, 404))
        if status == 404:
            if b"NotFound" in body:
                return None
            _raise_for(addr, status, body)
        doc = json.loads(body)
        return int(doc["size"]), str(doc["xxh3"])


def _tagged(headers: dict[str, str] | None) -> dict[str, str] | None:
    """The headers plus the current S3 request's id, so the node logs under the same id."""
    request_id = REQUEST_ID.get()
    if not request_id:
        return headers
    return {**(headers or {}), REQUEST_ID_HEADER: request_id}


def _range(offset: int, length: int | None) -> dict[str, str]:
    params = {"offset": str(offset)}
    if length is not None:
        params["length"] = str(length)
    return params


async def _exact(body: AsyncIterable[bytes | memoryview], length: int,
                 addr: str) -> AsyncIterator[bytes | memoryview]:
    """Pass the body through, raising (and so aborting the PUT) unless it is `length` bytes."""
    sent = 0
    async for piece in body:
        sent += len(piece)
        if sent > length:
            raise NodeRequestError(addr, f"body longer than the declared {length} bytes")
        yield piece
    if sent != length:
        raise NodeRequestError(addr, f"body of {sent} bytes, {length} declared")


_TOO_BIG = object()  # the RPC channel refused the call as too large: use HTTP


def _page_or_error(addr: str, got: Page | BaseException) -> Page | NodeError:
    if isinstance(got, Page | NodeError):
        return got
    raise got


def _raise_for(addr: str, status: int, body: bytes) -> NoReturn:
    try:
        reason = str(json.loads(body).get("reason", ""))
    except (ValueError, AttributeError):
        reason = body[:200].decode("utf-8", "replace")
    _raise_status(addr, status, f"HTTP {status} {reason}".strip())


def _raise_status(addr: str, status: int, reason: str) -> NoReturn:
    if status == 404:
        raise FragmentNotFound(addr, reason)
    if status in (409, 422):
        raise FragmentCorrupt(addr, reason)
    if status == 507:
        raise DeviceFull(addr, reason)
    if status in (400, 411, 413, 416):
        raise NodeRequestError(addr, reason)
    raise NodeUnavailable(addr, reason)
