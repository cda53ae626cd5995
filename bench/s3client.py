"""A compact S3 client for the load generator: one aiohttp session, SigV4, path-style URLs.

It does only what the workloads need (PUT, ranged GET, HEAD, DELETE, ListObjectsV2,
multipart upload) and keeps the per-request work small: no XML parser on the hot path
(listings are counted with `bytes.count`), bodies streamed from `BodySource` and checked as
they arrive, payload hashes cached per (key, range) because bodies are a function of the key.
Rules: every call returns an `OpOutcome` for an HTTP answer, good or bad; transport errors
(connection refused, timeouts) are raised and counted by the runner.
"""

import hashlib
import html
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
from yarl import URL

from bench.bodies import BodySource, Checker
from bench.outcome import OpOutcome, failed, http_error
from bench.signer import UNSIGNED_PAYLOAD, Signer

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Bodies up to this size are sent and read whole; larger ones are streamed.
SMALL_BODY_BYTES = 64 * 1024
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]*)</UploadId>")
_CODE = re.compile(rb"<Code>([^<]*)</Code>")


def _encode(value: str, keep_slash: bool) -> str:
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def _query_string(query: dict[str, str]) -> str:
    # Sorted and fully encoded, so that the string signed is the string sent, byte for byte.
    return "&".join(f"{_encode(k, False)}={_encode(v, False)}" for k, v in sorted(query.items()))


def _error_code(body: bytes) -> str:
    match = _CODE.search(body)
    return match.group(1).decode(errors="replace") if match else ""


class S3Client:
    """Path-style requests to one endpoint and bucket, signed by *signer*."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        signer: Signer,
        source: BodySource,
        signed_payload: bool,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._signer = signer
        self._source = source
        self._signed_payload = signed_payload
        self._sha_cache: dict[tuple[str, int, int], str] = {}

    def _url(self, bucket: str, key: str, query: dict[str, str] | None) -> str:
        url = f"{self._endpoint}/{bucket}"
        if key:
            url = f"{url}/{_encode(key, True)}"
        if query:
            url = f"{url}?{_query_string(query)}"
        return url

    def _payload_hash(self, key: str, start: int, length: int) -> str:
        if not self._signed_payload:
            return UNSIGNED_PAYLOAD
        cache_key = (key, start, length)
        digest = self._sha_cache.get(cache_key)
        if digest is None:
            hasher = hashlib.sha256()
            for piece in self._source.chunks(key, start, length):
                hasher.update(piece)
            digest = self._sha_cache[cache_key] = hasher.hexdigest()
        return digest

    def _request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | AsyncIterator[memoryview] | None = None,
        payload_sha256: str = EMPTY_SHA256,
    ) -> "aiohttp.client._RequestContextManager":
        url = self._url(bucket, key, query)
        signed = self._signer.sign(method, url, headers or {}, payload_sha256)
        return self._session.request(method, URL(url, encoded=True), headers=signed, data=data)

    async def _stream(self, key: str, start: int, length: int) -> AsyncIterator[memoryview]:
        for piece in self._source.chunks(key, start, length):
            yield piece

    def _body(self, key: str, start: int, length: int) -> bytes | AsyncIterator[memoryview]:
        # Small bodies go as one bytes object: an async iterator costs a task switch per piece.
        if length <= SMALL_BODY_BYTES:
            return b"".join(self._source.chunks(key, start, length))
        return self._stream(key, start, length)

    async def create_bucket(self, bucket: str) -> OpOutcome:
        async with self._request("PUT", bucket) as resp:
            body = await resp.read()
            if resp.status == 200 or _error_code(body) == "BucketAlreadyOwnedByYou":
                return OpOutcome(ok=True)
            return http_error(resp.status)

    async def put(self, bucket: str, key: str, size: int) -> OpOutcome:
        """PUT object *key* with its seeded body of *size* bytes."""
        headers = {"Content-Length": str(size)}
        async with self._request(
            "PUT", bucket, key, headers=headers, data=self._body(key, 0, size),
            payload_sha256=self._payload_hash(key, 0, size),
        ) as resp:
            await resp.read()
            if resp.status != 200:
                return http_error(resp.status)
            return OpOutcome(ok=True, payload_bytes=size)

    async def get(self, bucket: str, key: str, start: int, length: int, ranged: bool) -> OpOutcome:
        """GET *length* bytes of *key* from *start* (a Range request if *ranged*) and check
        every byte against the seeded body."""
        headers = {"Range": f"bytes={start}-{start + length - 1}"} if ranged else {}
        async with self._request("GET", bucket, key, headers=headers) as resp:
            if resp.status != (206 if ranged else 200):
                await resp.read()
                return http_error(resp.status)
            checker = Checker(self._source, key, start)
            if length <= SMALL_BODY_BYTES:
                checker.feed(await resp.read())  # one await instead of one per piece
            else:
                # iter_chunks hands over the received buffers; iter_any joins them (a copy).
                async for data, _ in resp.content.iter_chunks():
                    checker.feed(data)
        if not checker.ok:
            return failed("bad bytes")
        if checker.received_bytes != length:
            return failed("wrong length")
        return OpOutcome(ok=True, payload_bytes=length)

    async def head_size(self, bucket: str, key: str) -> int | None:
        """The object's Content-Length, or None if it does not exist."""
        async with self._request("HEAD", bucket, key) as resp:
            if resp.status != 200:
                return None
            return resp.content_length

    async def delete(self, bucket: str, key: str) -> OpOutcome:
        async with self._request("DELETE", bucket, key) as resp:
            await resp.read()
            if resp.status not in (200, 204):
                return http_error(resp.status)
            return OpOutcome(ok=True)

    async def list_all(self, bucket: str, prefix: str, delimiter: str, page_keys: int) -> OpOutcome:
        """Every page of a ListObjectsV2; `items` counts keys plus common prefixes."""
        query = {"list-type": "2", "max-keys": str(page_keys), "prefix": prefix}
        if delimiter:
            query["delimiter"] = delimiter
        items = 0
        received = 0
        while True:
            async with self._request("GET", bucket, query=query) as resp:
                body = await resp.read()
                if resp.status != 200:
                    return http_error(resp.status)
            received += len(body)
            items += body.count(b"<Contents>") + body.count(b"<CommonPrefixes>")
            if b"<IsTruncated>true</IsTruncated>" not in body:
                return OpOutcome(ok=True, payload_bytes=received, items=items)
            token = _TOKEN.search(body)
            if token is None:
                return failed("truncated listing without a token")
            query["continuation-token"] = html.unescape(token.group(1).decode())

    async def multipart(self, bucket: str, key: str, part_bytes: int, parts: int) -> OpOutcome:
        """Create, upload *parts* parts one after the other, complete."""
        async with self._request("POST", bucket, key, query={"uploads": ""}) as resp:
            body = await resp.read()
            match = _UPLOAD_ID.search(body)
            if resp.status != 200 or match is None:
                return http_error(resp.status)
        upload_id = html.unescape(match.group(1).decode())
        etags: list[str] = []
        for number in range(1, parts + 1):
            etag = await self._upload_part(bucket, key, upload_id, number, part_bytes)
            if isinstance(etag, OpOutcome):
                return etag
            etags.append(etag)
        return await self._complete(bucket, key, upload_id, etags, part_bytes * parts)

    async def _upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, part_bytes: int
    ) -> str | OpOutcome:
        start = (number - 1) * part_bytes
        query = {"partNumber": str(number), "uploadId": upload_id}
        async with self._request(
            "PUT", bucket, key, query=query, headers={"Content-Length": str(part_bytes)},
            data=self._body(key, start, part_bytes),
            payload_sha256=self._payload_hash(key, start, part_bytes),
        ) as resp:
            await resp.read()
            etag = resp.headers.get("ETag")
            if resp.status != 200 or etag is None:
                return http_error(resp.status)
            return etag

    async def _complete(
        self, bucket: str, key: str, upload_id: str, etags: list[str], size: int
    ) -> OpOutcome:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{html.escape(e)}</ETag></Part>"
            for n, e in enumerate(etags, start=1)
        )
        xml = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        async with self._request(
            "POST", bucket, key, query={"uploadId": upload_id},
            headers={"Content-Length": str(len(xml))}, data=xml,
            payload_sha256=hashlib.sha256(xml).hexdigest(),
        ) as resp:
            body = await resp.read()
            # S3 may answer 200 and put the error in the body, once the upload took long.
            if resp.status != 200 or b"<Error>" in body:
                return failed(f"complete: HTTP {resp.status} {_error_code(body)}".strip())
            return OpOutcome(ok=True, payload_bytes=size)
