"""Request bodies: decode the transfer form, and check what the client said about the bytes.

`body_stream` turns an aiohttp request into an async iterator of the object's bytes (plain,
or aws-chunked with its framing and chunk signatures removed). `BodyCheck` hashes those bytes
(MD5 for the ETag, plus whatever the client declared: signed SHA-256, Content-MD5,
x-amz-checksum-*, or else the default checksum an object gets) and, once the body is
complete, refuses it if any value disagrees — before any manifest points at the data.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp
from aiohttp import web

from gateway import errors, limits
from gateway.checksums import (
    ChecksumAlgorithm,
    Checksummer,
    request_checksums,
    verify,
    verify_md5,
)
from gateway.chunked import ChunkedDecoder, Data, Trailers
from gateway.numbers import is_decimal
from gateway.sigv4 import AuthResult, PayloadMode

_READ_BYTES = 256 * 1024
_CONTINUE_OWED = web.RequestKey("coffre.continue_owed", bool)  # a `100 Continue` not sent yet
# Set when a body of unknown length was refused: the answer closes the connection.
_UNFRAMED = web.RequestKey("coffre.unframed", bool)


async def expect_later(request: web.Request) -> None:
    """The S3 route's expect handler: `100 Continue` is owed, and sent when a handler first
    reads the body (BodyReader), so that a request refused before that (signature, access,
    quota, too few nodes for the write) is answered without making the client send it.
    (aiohttp's default handler sends the 100 before the request is even authenticated.)"""
    if request.headers.get("Expect", "").strip().lower() != "100-continue":
        return      # S3 ignores any other expectation (s3-tests: "garbage, but S3 succeeds!")
    if request.content_type == "multipart/form-data":
        # A browser-style POST upload reads its form itself, not through BodyReader.
        await send_continue(request, force=True)
        return
    request[_CONTINUE_OWED] = True


async def send_continue(request: web.Request, force: bool = False) -> None:
    """Send the owed `100 Continue` (once): the handler is about to read the body."""
    if force or request.get(_CONTINUE_OWED):
        request[_CONTINUE_OWED] = False
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def drain(request: web.Request, max_bytes: int, timeout_s: float) -> bool:
    """Read and drop what is left of the body, within the bounds; True if it all came."""
    content = request.content
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    dropped = 0
    try:
        while not content.is_eof() and dropped <= max_bytes:
            chunk = await asyncio.wait_for(content.readany(), max(deadline - loop.time(), 0))
            if not chunk:
                break
            dropped += len(chunk)
    except (TimeoutError, OSError, aiohttp.ClientError, asyncio.IncompleteReadError):
        return False        # the client stalled or left: the body will not complete
    return content.is_eof()


async def finish_body(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: before an answer, settle the request's unread body.

    With `100 Continue` still owed the client has not sent the body and must not: the answer
    closes the connection (the body's bytes would otherwise be read as the next request).
    Otherwise an answer given mid-body (a refusal) first drains what is left if that is
    within the bounds, so the client, done sending, reads it; beyond them the connection is
    closed after the answer."""
    if request.get(_UNFRAMED, False):
        _close_after(response)
        return
    if request.get(_CONTINUE_OWED):
        request[_CONTINUE_OWED] = False
        if request.content_length or request.headers.get("Transfer-Encoding"):
            _close_after(response)
        return
    if request.content.is_eof():
        return
    declared = request.content_length
    left = None if declared is None else declared - request.content.total_bytes
    if left is not None and left > limits.refused_body_drain_bytes_max:
        _close_after(response)
        return
    if not await drain(request, limits.refused_body_drain_bytes_max, limits.refused_body_drain_s):
        _close_after(response)


def _close_after(response: web.StreamResponse) -> None:
    response.force_close()
    # The hook runs after aiohttp chose the headers: say it to the client too.
    response.headers["Connection"] = "close"


def object_size(request: web.Request, auth: AuthResult | None) -> int:
    """declared_size of a body that is an object's bytes (PutObject, UploadPart): a request
    that frames no body at all (neither Content-Length nor Transfer-Encoding) is S3's 411
    MissingContentLength, not an empty object. Bytes it may have sent anyway would read as
    the next request: the answer closes the connection."""
    if request.content_length is None and "Transfer-Encoding" not in request.headers:
        request[_UNFRAMED] = True
        raise errors.MissingContentLength()
    return declared_size(request, auth)


def declared_size(request: web.Request, auth: AuthResult | None) -> int:
    """The object's size: x-amz-decoded-content-length for aws-chunked, else Content-Length."""
    if _is_chunked(request, auth):
        raw = request.headers.get("x-amz-decoded-content-length")
        if raw is None or not is_decimal(raw):
            raise errors.MissingContentLength()
        return int(raw)
    if request.content_length is None:
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise errors.MissingContentLength()
        return 0
    return request.content_length


def _is_chunked(request: web.Request, auth: AuthResult | None) -> bool:
    # A signed request's x-amz-content-sha256 says how its body is framed; Content-Encoding
    # may still name aws-chunked beside a plain body (AWS then just drops it from the
    # object's encodings). Only an anonymous request has nothing else to go by.
    if auth is not None:
        return auth.payload.streaming
    encodings = request.headers.get("Content-Encoding", "").lower().replace(" ", "").split(",")
    return "aws-chunked" in encodings


class BodyCheck:
    """Hashes of a body, and the values the client promised for them. `default`: the
    checksum to compute and store when the client declares none (an object's, AWS's
    CRC64NVME; None for a part, whose upload says what its parts carry)."""

    def __init__(self, headers: Mapping[str, str], auth: AuthResult | None,
                 default: ChecksumAlgorithm | None = None) -> None:
        self.md5 = hashlib.md5()
        self.sha256 = None
        self.want_sha256 = ""
        if auth is not None and auth.payload is PayloadMode.SIGNED and auth.payload_sha256:
            self.sha256 = hashlib.sha256()
            self.want_sha256 = auth.payload_sha256
        self.declared = request_checksums(headers)
        alg = self.declared.algorithm or default
        self.summer = Checksummer(alg) if alg is not None else None
        self.extra: Checksummer | None = None     # compute()'s, beside a declared one

    def updaters(self) -> list[Callable[[bytes | memoryview], None]]:
        """One update function per hash: each must see the bytes in order, but they are
        independent of each other, so large bodies hash in parallel threads."""
        fns: list[Callable[[bytes | memoryview], None]] = [self.md5.update]
        if self.sha256 is not None:
            fns.append(self.sha256.update)
        fns += [s.update for s in (self.summer, self.extra) if s is not None]
        return fns

    def update(self, data: bytes) -> None:
        """Feed body bytes in order (all hashes at once)."""
        self.md5.update(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        for summer in (self.summer, self.extra):
            if summer is not None:
                summer.update(data)

    def compute(self, alg: ChecksumAlgorithm | None) -> None:
        """Compute `alg` too (the checksum a part is stored with): alone when the request
        declares none (nothing to verify), else besides the declared one."""
        if alg is None or (self.summer is not None and self.summer.alg is alg):
            return
        if self.summer is None:
            self.summer = Checksummer(alg)
        else:
            self.extra = Checksummer(alg)

    def finish(self, trailers: Mapping[str, str]) -> dict[str, str]:
        """Check every promise; return the checksums to store (algorithm name -> base64)."""
        if self.sha256 is not None and self.sha256.hexdigest() != self.want_sha256:
            raise errors.XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=self.want_sha256,
                S3ComputedContentSHA256=self.sha256.hexdigest())
        if self.declared.content_md5 is not None:
            verify_md5(self.declared.content_md5, self.md5.digest())
        if self.summer is None:
            return {}
        alg = self.summer.alg
        got = self.summer.b64()
        if self.declared.algorithm is None:
            return {alg.name: got}      # the default: nothing was promised
        extra = {self.extra.alg.name: self.extra.b64()} if self.extra is not None else {}
        want = self.declared.value_b64
        if self.declared.in_trailer:
            want = trailers.get(alg.header_name)
            if want is None:
                raise errors.InvalidRequest(f"The {alg.header_name} trailer is missing")
        if want is not None:
            verify(alg, want, got)
        return {alg.name: got, **extra}

    @property
    def etag(self) -> str:
        return f'"{self.md5.hexdigest()}"'


def _trailer_names(headers: Mapping[str, str]) -> list[str]:
    raw = headers.get("x-amz-trailer", "")
    return [n.strip().lower() for n in raw.split(",") if n.strip()]


class BodyReader:
    """The decoded bytes of a request body; `trailers` holds aws-chunked trailers at the end."""

    def __init__(self, request: web.Request, auth: AuthResult | None, size: int) -> None:
        self.request = request
        self.size = size
        self.trailers: dict[str, str] = {}
        self._decoder: ChunkedDecoder | None = None
        if _is_chunked(request, auth):
            mode = auth.payload if auth is not None else PayloadMode.STREAMING_UNSIGNED_TRAILER
            self._decoder = ChunkedDecoder(mode, auth, _trailer_names(request.headers), size)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await send_continue(self.request)
        content = self.request.content
        received = 0
        while True:
            try:
                chunk = await content.read(_READ_BYTES)
            except (ConnectionError, TimeoutError):
                raise errors.IncompleteBody() from None
            if not chunk:
                break
            if self._decoder is None:
                received += len(chunk)
                yield chunk
                continue
            for event in self._decoder.feed(chunk):
                if isinstance(event, Data):
                    received += len(event.data)
                    yield bytes(event.data)
                elif isinstance(event, Trailers):
                    self.trailers.update(event.headers)
        if self._decoder is not None:
            self._decoder.eof()
        if received != self.size:
            raise errors.IncompleteBody()

    async def read_all(self, limit: int) -> bytes:
        """The whole body, for small objects and XML requests; over `limit` is refused."""
        parts = []
        total = 0
        async for chunk in self:
            total += len(chunk)
            if total > limit:
                raise errors.EntityTooLarge()
            parts.append(chunk)
        return b"".join(parts)
