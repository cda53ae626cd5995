"""Abuse limits of the S3 port: header size, XML body size, concurrency, slow clients.

What each limit stops, and where it acts:
- header line/field size and header count: aiohttp's parser refuses past them with 400
  (`runner_kwargs`, passed to the AppRunner);
- XML body size: a request whose operation takes an XML body (DeleteObjects, Complete-
  MultipartUpload, tagging, CORS, ACL...) and declares more than the cap is refused before a
  byte of it is read (MalformedXML, as AWS answers); the parsers keep their own hard cap;
- requests in flight, globally and per client address: past either, 503 SlowDown, which
  every SDK retries with backoff. The per-client cap is what keeps a flood from one client
  from starving the others; set it to 0 behind a proxy that hides client addresses;
- slow clients (slowloris): every connection must deliver a request's headers within
  `header_timeout_s` of being opened (or of its previous response), and a request body may
  not stall longer than `body_idle_timeout_s` while the gateway is reading it. A stall
  while the gateway has paused reading (its own backpressure) does not count.

The slow-client guard wraps aiohttp's protocol objects (`GuardedSite`), so it sees bytes as
they arrive without parsing HTTP: a blank line (CRLF CRLF) ends a header section.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, cast

from aiohttp import web

from gateway import errors, request_ids, router
from gateway.config import AbuseLimits

_HEADER_END = b"\r\n\r\n"
# Operations whose request body is an XML document the gateway parses.
XML_OPS = frozenset({
    "DeleteObjects", "CompleteMultipartUpload", "PutObjectTagging", "PutBucketTagging",
    "PutBucketCors", "PutBucketAcl", "PutObjectAcl", "CreateBucket",
    "PutPublicAccessBlock", "PutBucketVersioning", "PutBucketLifecycleConfiguration",
    "PutBucketWebsite", "PutBucketOwnershipControls", "PutBucketLogging",
    "PutBucketAccelerateConfiguration",
})


def runner_kwargs(limits: AbuseLimits) -> dict[str, Any]:
    """The aiohttp AppRunner arguments that carry the parser limits and keep-alive.

    `auto_decompress` is off: S3 stores a body as sent, and Content-Encoding (gzip, br…)
    is object metadata handed back on GET, not a transfer form for the server to undo."""
    return {
        "auto_decompress": False,
        "max_line_size": limits.header_line_bytes_max,
        "max_field_size": limits.header_line_bytes_max,
        "max_headers": limits.headers_count_max,
        "keepalive_timeout": limits.keepalive_timeout_s,
    }


# ---------------------------------------------------------------- concurrency


@dataclass
class Abuse:
    """Per-process counters of requests in flight, and the slow-client guards' registry."""

    limits: AbuseLimits
    in_flight: int = 0
    refused: int = 0

    def __post_init__(self) -> None:
        self.per_client: dict[str, int] = {}
        self.guards: dict[int, _Guard] = {}        # id(transport) -> its guard

    def admit(self, client: str) -> bool:
        lim = self.limits
        if lim.requests_in_flight_max and self.in_flight >= lim.requests_in_flight_max:
            return False
        mine = self.per_client.get(client, 0)
        if lim.requests_in_flight_per_client_max and mine >= lim.requests_in_flight_per_client_max:
            return False
        self.in_flight += 1
        self.per_client[client] = mine + 1
        return True

    def release(self, client: str) -> None:
        self.in_flight -= 1
        left = self.per_client[client] - 1
        if left:
            self.per_client[client] = left
        else:
            del self.per_client[client]            # keeps the table as small as the load


ABUSE = web.AppKey("abuse", Abuse)


def _refuse(request: web.Request, err: errors.S3Error) -> web.Response:
    request_id = request_ids.new_request_id()
    headers = {"Retry-After": "1"}
    request_ids.stamp(headers, request_id)
    body = None if request.method == "HEAD" else err.to_xml(request_id)
    return web.Response(status=err.status, body=body, headers=headers,
                        content_type="application/xml")


def _xml_too_large(request: web.Request, cap_bytes: int) -> bool:
    declared = request.content_length
    if declared is None or declared <= cap_bytes:
        return False
    try:
        path = request.raw_path.partition("?")[0]
        op = router.route(request.method, path, request.query, request.headers).op
    except (errors.S3Error, UnicodeDecodeError):
        return False                               # dispatch answers these properly
    return op in XML_OPS


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    abuse = request.app[ABUSE]
    guard = abuse.guards.get(id(request.transport))
    if guard is not None:
        guard.request_started()
    if _xml_too_large(request, abuse.limits.xml_body_bytes_max):
        return _refuse(request, errors.MalformedXML())
    client = request.remote or ""
    if not abuse.admit(client):
        abuse.refused += 1
        return _refuse(request, errors.SlowDown())
    try:
        return await handler(request)
    finally:
        abuse.release(client)


async def _on_prepare(request: web.Request, _response: web.StreamResponse) -> None:
    guard = request.app[ABUSE].guards.get(id(request.transport))
    if guard is not None:
        guard.responding()


def install(app: web.Application, limits: AbuseLimits) -> None:
    """Add the limits to an app: call from make_app, before the app is frozen."""
    app[ABUSE] = Abuse(limits)
    app.middlewares.append(middleware)
    app.on_response_prepare.append(_on_prepare)


# ---------------------------------------------------------------- slow clients


class _Phase(Enum):
    HEADERS = auto()      # waiting for a header section to end (deadline running)
    BODY = auto()         # the handler runs; the client must not stall a body read
    RESPONDING = auto()   # the gateway writes; the client owes nothing


class _Guard(asyncio.Protocol):
    """Stands between the transport and aiohttp's protocol; forwards every call."""

    def __init__(self, inner: asyncio.Protocol, abuse: Abuse) -> None:
        self._inner = inner
        self._abuse = abuse
        self._limits = abuse.limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._phase = _Phase.HEADERS
        self._tail = b""                 # last bytes seen, for a CRLFCRLF split across reads
        self._since = self._loop.time()  # start of the header wait, or the last body byte
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._abuse.guards[id(transport)] = self
        self._arm(self._limits.header_timeout_s)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        if self._phase is _Phase.RESPONDING:          # a next (pipelined) request begins
            self._phase, self._since, self._tail = _Phase.HEADERS, now, b""
        if self._phase is _Phase.HEADERS:
            if _HEADER_END in self._tail + data:
                self._phase = _Phase.BODY
            else:
                self._tail = (self._tail + data)[-3:]
        if self._phase is _Phase.BODY:
            self._since = now
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._abuse.guards.pop(id(self._transport), None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    # -- hooks from the middleware
    def request_started(self) -> None:
        if self._phase is _Phase.HEADERS:             # a header end we could not see
            self._phase = _Phase.BODY
        self._since = self._loop.time()

    def responding(self) -> None:
        self._phase = _Phase.RESPONDING

    # -- the deadline
    def _arm(self, delay_s: float) -> None:
        self._timer = self._loop.call_later(max(0.05, delay_s), self._check)

    def _check(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        now = self._loop.time()
        if self._phase is _Phase.HEADERS:
            limit = self._limits.header_timeout_s
        elif self._phase is _Phase.BODY and transport.is_reading():
            limit = self._limits.body_idle_timeout_s
        else:
            self._since = now                          # our own pause: restart the clock
            self._arm(min(self._limits.header_timeout_s, self._limits.body_idle_timeout_s))
            return
        if now - self._since >= limit:
            transport.abort()                          # no response: the client is gone
            return
        self._arm(self._since + limit - now)


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections go through the slow-client guard."""

    def __init__(self, runner: web.AppRunner, abuse: Abuse, host: str, port: int,
                 **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._abuse = abuse
        self._args = (host, port, kwargs)

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        abuse = self._abuse

        def factory() -> asyncio.Protocol:
            return _Guard(server(), abuse)

        host, port, kwargs = self._args
        self._server = await asyncio.get_running_loop().create_server(
            factory, host, port, backlog=kwargs.get("backlog", 128),
            reuse_port=kwargs.get("reuse_port"))
