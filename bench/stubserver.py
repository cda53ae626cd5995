"""A trivial in-memory S3 stand-in: the load generator's own ceiling and its unit tests.

It stores no bodies: it remembers each object's size and regenerates its bytes from the
seed (`BodySource`), the way the load generator derives them, so even 256 MiB objects cost no
memory. It answers just the calls the load generator makes (bucket PUT, object PUT/GET/HEAD/
DELETE with ranges, ListObjectsV2, multipart) and checks no signature. Knobs for tests:
`check_puts` compares every PUT body with the seeded bytes (400 BadDigest if wrong) and
`corrupt_reads` flips one byte of every GET body. Not a model of S3: never a test target for
the gateway. Rules: 127.0.0.1 only.
"""

import argparse
import asyncio
import bisect
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import uvloop
from aiohttp import web

from bench.bodies import BodySource


@dataclass
class Upload:
    key: str
    part_sizes: dict[int, int] = field(default_factory=dict)


@dataclass
class StubState:
    source: BodySource
    check_puts: bool = False
    corrupt_reads: bool = False
    buckets: dict[str, dict[str, int]] = field(default_factory=dict)
    sorted_keys: dict[str, list[str]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    uploads_started: int = 0


STATE = web.AppKey("state", StubState)


def _error(status: int, code: str) -> web.Response:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


def _store(state: StubState, bucket: str, key: str, size: int) -> None:
    objects = state.buckets[bucket]
    if key not in objects:
        bisect.insort(state.sorted_keys[bucket], key)
    objects[key] = size


async def _read_checked(request: web.Request, state: StubState, key: str, start: int) -> int:
    """Read the request body; -1 if `check_puts` is on and a byte differs from the seed's."""
    size = 0
    good = True
    async for data in request.content.iter_any():
        if state.check_puts and good:
            good = state.source.matches(key, start + size, data)
        size += len(data)
    return size if good else -1


async def put_object(request: web.Request) -> web.Response:
    state = request.app[STATE]
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    if bucket not in state.buckets:
        return _error(404, "NoSuchBucket")
    upload_id = request.query.get("uploadId")
    if upload_id is not None:
        return await _put_part(request, state, upload_id)
    size = await _read_checked(request, state, key, 0)
    if size < 0:
        return _error(400, "BadDigest")
    _store(state, bucket, key, size)
    return web.Response(headers={"ETag": f'"{size:032x}"'})


async def _put_part(request: web.Request, state: StubState, upload_id: str) -> web.Response:
    upload = state.uploads.get(upload_id)
    if upload is None:
        return _error(404, "NoSuchUpload")
    number = int(request.query["partNumber"])
    # Parts are the object's bytes at the offset of equal-sized parts before them.
    start = (number - 1) * (request.content_length or 0)
    size = await _read_checked(request, state, upload.key, start)
    if size < 0:
        return _error(400, "BadDigest")
    upload.part_sizes[number] = size
    return web.Response(headers={"ETag": f'"{number:032x}"'})


def _pieces(state: StubState, key: str, start: int, length: int) -> list[bytes | memoryview]:
    pieces: list[bytes | memoryview] = list(state.source.chunks(key, start, length))
    if state.corrupt_reads and pieces:
        first = bytes(pieces[0])
        pieces[0] = bytes([first[0] ^ 0xFF]) + first[1:]
    return pieces


async def get_object(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    size = state.buckets.get(bucket, {}).get(key)
    if size is None:
        return _error(404, "NoSuchKey")
    if request.method == "HEAD":
        return web.Response(headers={"Content-Length": str(size)})
    start, end, status = 0, size, 200
    if request.http_range.start is not None:
        start = request.http_range.start
        end = min(request.http_range.stop or size, size)
        status = 206
    response = web.StreamResponse(status=status)
    response.content_length = end - start
    await response.prepare(request)
    for piece in _pieces(state, key, start, end - start):
        await response.write(piece)
    await response.write_eof()
    return response


async def delete_object(request: web.Request) -> web.Response:
    state = request.app[STATE]
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    objects = state.buckets.get(bucket, {})
    if objects.pop(key, None) is not None:
        state.sorted_keys[bucket].remove(key)
    return web.Response(status=204)


async def post_object(request: web.Request) -> web.Response:
    state = request.app[STATE]
    bucket, key = request.match_info["bucket"], request.match_info["key"]
    if "uploads" in request.query:
        state.uploads_started += 1
        upload_id = f"u{state.uploads_started}"
        state.uploads[upload_id] = Upload(key)
        return web.Response(text=f"<R><UploadId>{upload_id}</UploadId></R>")
    upload = state.uploads.pop(request.query.get("uploadId", ""), None)
    if upload is None:
        return _error(404, "NoSuchUpload")
    await request.read()
    _store(state, bucket, key, sum(upload.part_sizes.values()))
    return web.Response(text="<CompleteMultipartUploadResult/>")


async def put_bucket(request: web.Request) -> web.Response:
    state = request.app[STATE]
    bucket = request.match_info["bucket"]
    state.buckets.setdefault(bucket, {})
    state.sorted_keys.setdefault(bucket, [])
    return web.Response()


def _list_page(keys: list[str], query: dict[str, str]) -> tuple[list[str], list[str], str]:
    """Keys and common prefixes of one ListObjectsV2 page, and the next token ('' at end)."""
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    max_keys = int(query.get("max-keys", "1000"))
    at = bisect.bisect_right(keys, query["continuation-token"]) if (
        "continuation-token" in query) else bisect.bisect_left(keys, prefix)
    contents: list[str] = []
    prefixes: list[str] = []
    last = ""
    while at < len(keys) and keys[at].startswith(prefix):
        if len(contents) + len(prefixes) == max_keys:
            return contents, prefixes, last
        cut = keys[at].find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            last = keys[at]
            contents.append(last)
            at += 1
            continue
        last = keys[at][: cut + len(delimiter)]
        prefixes.append(last)
        # Skip every key under this common prefix: "\U0010ffff" sorts after them all.
        at = bisect.bisect_left(keys, last + "\U0010ffff")
    return contents, prefixes, ""


async def get_bucket(request: web.Request) -> web.Response:
    state = request.app[STATE]
    keys = state.sorted_keys.get(request.match_info["bucket"])
    if keys is None:
        return _error(404, "NoSuchBucket")
    contents, prefixes, token = _list_page(keys, dict(request.query))
    parts = ["<ListBucketResult>"]
    parts += [f"<Contents><Key>{escape(k)}</Key></Contents>" for k in contents]
    parts += [f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes]
    truncated = "true" if token else "false"
    parts.append(f"<IsTruncated>{truncated}</IsTruncated>")
    if token:
        parts.append(f"<NextContinuationToken>{escape(token)}</NextContinuationToken>")
    parts.append("</ListBucketResult>")
    return web.Response(text="".join(parts), content_type="application/xml")


def make_app(seed: int, check_puts: bool = False, corrupt_reads: bool = False) -> web.Application:
    app = web.Application(client_max_size=1 << 40)
    app[STATE] = StubState(BodySource(seed), check_puts, corrupt_reads)
    app.router.add_put("/{bucket}", put_bucket)
    app.router.add_get("/{bucket}", get_bucket)
    app.router.add_put("/{bucket}/{key:.+}", put_object)
    app.router.add_get("/{bucket}/{key:.+}", get_object)  # also answers HEAD
    app.router.add_delete("/{bucket}/{key:.+}", delete_object)
    app.router.add_post("/{bucket}/{key:.+}", post_object)
    return app


async def serve(port: int, seed: int) -> None:
    runner = web.AppRunner(make_app(seed), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    # The parent reads this line to learn the port.
    print(f"listening 127.0.0.1:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="trivial S3 stand-in (load generator ceiling)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.seed))


if __name__ == "__main__":
    main()
