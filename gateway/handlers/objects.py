"""PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from aiohttp import web

from gateway import (
    access,
    conditions,
    errors,
    headers,
    limits,
    object_lock,
    sse,
    sse_customer,
    sse_kms,
    versioned,
)
from gateway.body import BodyCheck, BodyReader, object_size
from gateway.checksums import DEFAULT_ALGORITHM, checksum_type_of
from gateway.expiry import expiration_headers
from gateway.manifest import BucketRecord, Manifest
from gateway.names import check_key
from gateway.ranges import ByteRange, parse_range, part_range
from gateway.sse_customer import CustomerKey
from gateway.state import Ctx, defer
from gateway.uploads import Upload

CHECKSUM_HEADER = "x-amz-checksum-{}"


async def owned_bucket(ctx: Ctx) -> BucketRecord:
    """The request's bucket, if it exists and belongs to the caller."""
    bucket = await ctx.state.catalog.bucket(ctx.bucket_name)
    if bucket.owner != ctx.tenant:
        raise errors.AccessDenied()
    return bucket


async def receive_object(ctx: Ctx, bucket: BucketRecord, size: int,
                         dk: sse.DataKey) -> Manifest:
    """Read, check and store a request body (encrypted with `dk`); the manifest to commit
    (not yet committed)."""
    req = ctx.request
    if size > limits.put_object_bytes_max:
        raise errors.too_large(size, limits.put_object_bytes_max)
    meta = headers.user_metadata(ctx.headers)
    stored = headers.stored_headers(ctx.headers)
    tags = headers.tagging_header(ctx.headers)
    check = BodyCheck(ctx.headers, ctx.auth, DEFAULT_ALGORITHM)
    body = BodyReader(req, ctx.auth, size)
    state = ctx.state
    if size <= state.config.inline_max_bytes:
        data = await body.read_all(size)
        check.update(data)
        sums = check.finish(body.trailers)
        return Manifest(size, dk.etag(check.etag), now_ms(), stored, meta,
                        inline=dk.crypt(b"", 0, data), tags=tags, checksums=sums,
                        **sealing(dk))
    ref = await state.data.write(body, size, bucket.k, bucket.m, check.updaters(),
                                 home=state.catalog.object_home(bucket, check_key(ctx.key)),
                                 key=dk.key)
    try:
        sums = check.finish(body.trailers)
    except errors.S3Error:
        state.data.forget([ref])
        raise
    return Manifest(size, dk.etag(check.etag), now_ms(), stored, meta, parts=(ref,),
                    tags=tags, checksums=sums, **sealing(dk))


def sealing(dk: sse.DataKey) -> dict[str, Any]:
    """The fields of a Manifest (or Upload) that record how `dk` is sealed."""
    kms = dk.kms or sse_kms.KmsUse("")
    return {"sse": dk.sealed, "sse_customer": dk.by_customer, "sse_kms": kms.arn,
            "sse_kms_context": kms.context, "sse_bucket_key": kms.bucket_key}


def kms_use(rec: Manifest | Upload) -> sse_kms.KmsUse | None:
    """The KMS key a record's data key is sealed under, if any."""
    return sse_kms.KmsUse(rec.sse_kms, rec.sse_kms_context, rec.sse_bucket_key) \
        if rec.sse_kms else None


async def data_key(ctx: Ctx, bucket: BucketRecord,
                   h: Mapping[str, str] | None = None) -> sse.DataKey:
    """The encryption of a new write, as its headers `h` (by default the request's) ask:
    a fresh data key sealed under the customer key they give (SSE-C), else under the
    cluster's or one of the signer's KMS keys when they or the bucket's default ask for
    SSE-S3 or SSE-KMS, else sse.PLAIN."""
    h = ctx.headers if h is None else h
    customer = sse_customer.from_headers(h)
    asked = sse.requested(h, bucket.encryption)
    if customer is not None or (asked is not None and asked.algorithm == sse.AES256):
        return ctx.state.data_keys().new(customer)
    if asked is None:
        return sse.PLAIN
    region = ctx.state.config.region
    key = await ctx.state.kms.for_write(ctx.principal, asked.kms_key, region)
    arn = sse_kms.key_arn(region, key.record.tenant, key.record.key_id)
    return sse.seal_kms(key.material, sse_kms.KmsUse(arn, asked.context, asked.bucket_key))


def _customer_key(ctx: Ctx, by_customer: bool, rules: sse_customer.Rules,
                  copy_source: bool) -> CustomerKey | None:
    """The customer key the request gives (for its copy source's, if `copy_source`): one
    is required exactly when the record was written with one."""
    given = sse_customer.from_headers(ctx.headers, copy_source)
    sse_customer.check(by_customer, given, rules)
    return given


async def stored_key(ctx: Ctx, sealed: bytes, by_customer: bool,
                     kms: sse_kms.KmsUse | None = None,
                     rules: sse_customer.Rules = sse_customer.READ,
                     copy_source: bool = False) -> sse.DataKey:
    """The data key of an object (or upload) the request reads or adds to: opened with the
    customer key the request gives, which must be the record's (SSE-C), or with the KMS key
    the record names, if the requester may use it now (SSE-KMS)."""
    given = _customer_key(ctx, by_customer, rules, copy_source)
    if kms is not None:
        region = ctx.state.config.region
        key = await ctx.state.kms.for_read(ctx.principal, kms, region)
        return sse.open_kms(key.material, sealed, kms)
    return ctx.state.data_keys().stored(sealed, given, rules) if sealed else sse.PLAIN


async def object_key(ctx: Ctx, m: Manifest, copy_source: bool = False) -> sse.DataKey:
    return await stored_key(ctx, m.sse, m.sse_customer, kms_use(m), copy_source=copy_source)


def encryption_headers(ctx: Ctx, m: Manifest) -> dict[str, str]:
    """HEAD's (and GetObjectAttributes') view of an object's encryption. An SSE-C object's
    key must still be given, but a KMS key is not used (AWS's HeadObject needs no
    kms:Decrypt), so a disabled key or another tenant's does not hide the object's head."""
    kms = kms_use(m)
    if kms is not None:
        _customer_key(ctx, False, sse_customer.READ, False)
        return kms.response_headers()
    given = _customer_key(ctx, m.sse_customer, sse_customer.READ, False)
    dk = ctx.state.data_keys().stored(m.sse, given, sse_customer.READ) if m.sse else sse.PLAIN
    return dk.response_headers()


def recorded_headers(m: Manifest) -> dict[str, str]:
    """The encryption headers of a record, with no key opened (CompleteMultipartUpload's
    answer: SSE-S3 or SSE-KMS; AWS's output has no SSE-C ones)."""
    kms = kms_use(m)
    if kms is not None:
        return kms.response_headers()
    return {sse.HEADER: sse.AES256} if m.sse and not m.sse_customer else {}


def inline_bytes(m: Manifest, start: int, end: int, dk: sse.DataKey) -> bytes:
    """Bytes start..end of an inline body, decrypted with its data key."""
    assert m.inline is not None
    return dk.crypt(b"", start, m.inline[start:end + 1])


def checksum_headers(m: Manifest) -> dict[str, str]:
    out = {CHECKSUM_HEADER.format(alg.lower()): v for alg, v in m.checksums.items()}
    for value in m.checksums.values():      # AWS names how the value was made
        out["x-amz-checksum-type"] = checksum_type_of(value).value
    return out


async def put_object(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    size = object_size(ctx.request, ctx.auth)
    lock = write_lock(ctx, bucket)
    dk = await data_key(ctx, bucket)
    expected = await write_conditions(ctx, bucket, key)
    manifest = await receive_object(ctx, bucket, size, dk)
    manifest = await commit(ctx, bucket, key, manifest, lock=lock, expected=expected)
    hdrs = {"ETag": manifest.etag, **checksum_headers(manifest),
            **expiration_headers(bucket, key, manifest),
            **written_version_headers(bucket, manifest), **dk.written_headers()}
    return web.Response(status=200, headers=hdrs)


_UNKNOWN = object()  # commit(): the caller did not read the replaced manifest


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a conditional write's If-None-Match / If-Match held against: the key's
    record as read, whose stamp its commit must still find newest (AWS decides a
    conditional write when it completes, not when it starts)."""
    manifest: Manifest | None       # the live object read (None: none)
    stamp: int                      # its record's stamp, a delete's too (0: never written)


async def checked_write(ctx: Ctx, bucket: BucketRecord, key: bytes) -> Expected:
    """Read the key and check the request's write conditions against it."""
    manifest, stamp = await ctx.state.catalog.get_object_stamped(bucket, key)
    conditions.check_write(ctx.headers, manifest.etag if manifest else None, ctx.key)
    return Expected(manifest, stamp)


async def write_conditions(ctx: Ctx, bucket: BucketRecord, key: bytes) -> Expected | None:
    """checked_write when the request has If-None-Match / If-Match, else None: without
    them nothing is read before the write (the replaced manifest comes back with it)."""
    if not conditions.has_write_conditions(ctx.headers):
        return None
    return await checked_write(ctx, bucket, key)


def write_lock(ctx: Ctx, bucket: BucketRecord) -> object_lock.Lock:
    """The Object Lock a write's headers ask for (checked before its body is read)."""
    return object_lock.for_write(bucket.object_lock, ctx.headers, now_ms())


def now_ms() -> int:
    return int(time.time() * 1000)


async def commit(ctx: Ctx, bucket: BucketRecord, key: bytes, manifest: Manifest,
                 old: Manifest | object | None = _UNKNOWN,
                 lock: object_lock.Lock | None = None,
                 expected: Expected | None = None) -> Manifest:
    """Commit a new manifest; then the replaced object's data can go. Returns the manifest
    as committed (a versioned bucket's gives it its version).

    `old` is the manifest the caller read before (None: no object); by default the write
    itself reports what it replaced. `lock`: the version's Object Lock (default: the
    bucket's default retention, if it has one). `expected`: a conditional write's check
    (it stands for `old`), which must still hold at the commit
    (gateway.catalog.put_object_if_current); in a versioned bucket it is the check alone."""
    state = ctx.state
    if bucket.object_lock is not None:
        retention, hold = lock or object_lock.for_write(bucket.object_lock, {}, now_ms())
        manifest = dataclasses.replace(
            manifest, lock_mode=retention.mode if retention else "",
            retain_until_ms=retention.until_ms if retention else 0, legal_hold=hold)
    if bucket.versioning:
        try:
            outcome = await versioned.write_version(state.catalog, bucket, key, manifest)
        except errors.S3Error:
            state.data.forget(manifest.parts)
            raise
        settle(ctx, bucket, outcome)
        return outcome.manifest
    lost = None
    try:
        if expected is not None:
            old = expected.manifest
            lost = await state.catalog.put_object_if_current(bucket, key, manifest,
                                                             expected.stamp)
        elif old is _UNKNOWN:
            old = await state.catalog.replace_object(bucket, key, manifest)
        else:
            await state.catalog.put_object(bucket, key, manifest)
    except errors.S3Error:
        state.data.forget(manifest.parts)
        raise
    if lost is not None:
        # The record this write left on some replicas may still be read until the winner
        # reaches them: its data is left to the nodes' orphan collector, not deleted.
        raise conditions.overtaken(ctx.headers, lost.manifest.etag if lost.manifest else None,
                                   ctx.key)
    assert old is None or isinstance(old, Manifest)
    if old is not None and old.parts:
        state.data.retire(old.parts)
    defer(ctx.request,
          state.counters.add(bucket, 0 if old else 1, manifest.size - (old.size if old else 0)))
    return manifest


def settle(ctx: Ctx, bucket: BucketRecord, outcome: versioned.Outcome) -> None:
    """After a versioned write or delete: the data no version references goes, and the
    bucket's counters move before the request is answered."""
    counted = outcome.settle(ctx.state.data, ctx.state.counters, bucket)
    if counted is not None:
        defer(ctx.request, counted)


def version_headers(bucket: BucketRecord, m: Manifest) -> dict[str, str]:
    """x-amz-version-id, once the bucket has been versioned (AWS sends none before)."""
    return {"x-amz-version-id": m.version_id} if bucket.versioning or m.version else {}


def written_version_headers(bucket: BucketRecord, m: Manifest) -> dict[str, str]:
    """A write's x-amz-version-id: none for the null version a suspended bucket writes
    (AWS answers such a PUT without one)."""
    return {} if m.null else version_headers(bucket, m)


async def current_object(ctx: Ctx, marker_405: bool = False
                         ) -> tuple[BucketRecord, bytes, Manifest]:
    """The request's bucket, key and live manifest (the version its versionId names, if
    it names one), or NoSuchKey / NoSuchVersion. `marker_405`: a key whose newest version
    is a delete marker is 405 MethodNotAllowed, not NoSuchKey (AWS's object tagging)."""
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    catalog = ctx.state.catalog
    version_id = ctx.request.query.get("versionId")
    if version_id is not None:
        try:
            m = await versioned.get_version(catalog, bucket, key, version_id)
        except errors.MethodNotAllowed as exc:
            exc.extra["Method"] = ctx.request.method
            raise
    else:
        found = await catalog.get_object(bucket, key)
        if found is None:
            err = missing_key(ctx, bucket, ctx.key)
            marker = await versioned.newest_marker(catalog, bucket, key) \
                if isinstance(err, errors.NoSuchKey) else None
            if marker is not None and marker_405:
                raise versioned.marker_refused(marker, ctx.request.method)
            if marker is not None:
                errors.with_headers(err, versioned.marker_headers(marker))
            raise err
        m = found[0]
    if ctx.missing_only:
        raise errors.AccessDenied()
    return bucket, key, m


def missing_key(ctx: Ctx, bucket: BucketRecord, key: str) -> errors.S3Error:
    """NoSuchKey, or AccessDenied for a requester who may not list the bucket: as on AWS,
    whether a key exists is told only to those who could see it in a listing (a copy's
    source is asked about for the requester too, whoever the copy acts for)."""
    if ctx.principal != bucket.owner:
        listing = access.AccessRequest("ListObjects", bucket.name, None, ctx.principal,
                                       ctx.request.remote or "")
        try:
            access.decide(listing, bucket)
        except errors.S3Error:
            return errors.AccessDenied()
    return errors.NoSuchKey(Key=key)


async def head_object(ctx: Ctx) -> web.StreamResponse:
    sse.refuse_on_read(ctx.headers)
    bucket, key, m = await current_object(ctx)
    return head_response(ctx, bucket, key, m, await is_current(ctx, bucket, key, m))


async def is_current(ctx: Ctx, bucket: BucketRecord, key: bytes, m: Manifest) -> bool:
    """Whether the version GET/HEAD read is the key's current one: only that one shows an
    Expiration rule's x-amz-expiration (the rule adds a delete marker on top of it; AWS
    announces no date for older versions). Read only when it can change the answer."""
    if "versionId" not in ctx.request.query or not bucket.lifecycle:
        return True
    found = await ctx.state.catalog.get_object(bucket, key)
    return found is not None and found[0].version == m.version


def head_response(ctx: Ctx, bucket: BucketRecord, key: bytes, m: Manifest,
                  current: bool = True) -> web.Response:
    hdrs = headers.object_headers(m, ctx.request.query)
    if current:
        hdrs.update(expiration_headers(bucket, key, m))
    hdrs.update(version_headers(bucket, m))
    hdrs.update(object_lock.response_headers(m.retention, m.legal_hold))
    hdrs.update(encryption_headers(ctx, m))
    outcome = conditions.evaluate(ctx.headers, m.etag, m.mtime_ms)
    if outcome is conditions.Outcome.NOT_MODIFIED:
        return web.Response(status=304, headers=_not_modified(hdrs))
    rng = _wanted_bytes(ctx, m, hdrs)
    hdrs.update(_shown_checksums(ctx, m, rng))
    return web.Response(status=206 if rng else 200, headers=_length_headers(hdrs, rng, m.size))


def _shown_checksums(ctx: Ctx, m: Manifest, rng: ByteRange | None) -> dict[str, str]:
    """The checksum headers a GET or HEAD with x-amz-checksum-mode ENABLED sends: for
    ?partNumber= of an object whose parts have checksums, that part's own (with the
    object's type), as AWS answers; else the object's, which cover all of it, so only when
    the bytes asked for are all of it (bytes=0-100 of 10 bytes, or a Range it ignores)."""
    if ctx.headers.get("x-amz-checksum-mode", "").upper() != "ENABLED":
        return {}
    whole = checksum_headers(m)
    raw_part = ctx.request.query.get("partNumber")
    if raw_part is not None and m.part_checksums:     # _wanted_bytes has checked it
        return {**whole, CHECKSUM_HEADER.format(next(iter(m.checksums)).lower()):
                m.part_checksums[int(raw_part) - 1]}
    return whole if rng is None or (rng.start, rng.end) == (0, m.size - 1) else {}


def _wanted_bytes(ctx: Ctx, m: Manifest, hdrs: dict[str, str]) -> ByteRange | None:
    """The bytes a GET or HEAD asks for: a Range, a part (?partNumber=, with the object's
    part count in x-amz-mp-parts-count when it has parts), or None for all of them."""
    raw_part = ctx.request.query.get("partNumber")
    if raw_part is None:
        return parse_range(ctx.headers.get("Range"), m.size)
    if m.part_sizes:
        hdrs["x-amz-mp-parts-count"] = str(len(m.part_sizes))
    return part_range(raw_part, m.part_sizes, m.size, ctx.headers.get("Range"))


def _not_modified(hdrs: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in hdrs.items() if k in ("ETag", "Last-Modified")}


def _length_headers(hdrs: dict[str, str], rng: ByteRange | None, size: int) -> dict[str, str]:
    if rng is None:
        hdrs["Content-Length"] = str(size)
    else:
        hdrs["Content-Length"] = str(rng.length)
        hdrs["Content-Range"] = f"bytes {rng.start}-{rng.end}/{size}"
    return hdrs


async def get_object(ctx: Ctx) -> web.StreamResponse:
    sse.refuse_on_read(ctx.headers)
    bucket, key, m = await current_object(ctx)
    return await send_object(ctx, bucket, key, m, current=await is_current(ctx, bucket, key, m))


async def send_object(ctx: Ctx, bucket: BucketRecord, key: bytes, m: Manifest,
                      status: int | None = None, current: bool = True) -> web.StreamResponse:
    """GetObject's answer for a manifest (`current`: the key's current version); `status`
    replaces 200 (a website's error document keeps the error's status)."""
    req = ctx.request
    dk = await object_key(ctx, m)
    hdrs = headers.object_headers(m, req.query)
    if current:
        hdrs.update(expiration_headers(bucket, key, m))
    hdrs.update(version_headers(bucket, m))
    hdrs.update(object_lock.response_headers(m.retention, m.legal_hold))
    hdrs.update(dk.response_headers())
    if conditions.evaluate(ctx.headers, m.etag, m.mtime_ms) is conditions.Outcome.NOT_MODIFIED:
        return web.Response(status=304, headers=_not_modified(hdrs))
    rng = _wanted_bytes(ctx, m, hdrs)
    start, end = (rng.start, rng.end) if rng else (0, m.size - 1)
    hdrs.update(_shown_checksums(ctx, m, rng))
    status = 206 if rng else status or 200
    if m.inline is not None:
        # Returned whole, not streamed: aiohttp then sends the head and the body in one
        # write (prepare() sends the head at once), and the dispatcher adds its headers.
        return web.Response(status=status, body=inline_bytes(m, start, end, dk),
                            headers=_length_headers(hdrs, rng, m.size))
    resp = web.StreamResponse(status=status, headers=_length_headers(hdrs, rng, m.size))
    resp.headers["x-amz-request-id"] = ctx.request_id
    await resp.prepare(req)
    async with aclosing(stream_parts(ctx, m, start, end, dk)) as chunks:
        async for chunk in chunks:
            try:
                await resp.write(chunk)
            except ConnectionError:
                # The client hung up mid-body (a reader that wanted only the head, say):
                # nothing is wrong here and nothing more can be sent. A reset, or, when
                # the write was waiting for the socket to drain, aiohttp's plain
                # ConnectionError. Only the write is guarded: a node's fault is not this.
                return resp
    await resp.write_eof()
    return resp


async def stream_parts(ctx: Ctx, m: Manifest, start: int, end: int, dk: sse.DataKey
                       ) -> AsyncGenerator[memoryview, None]:
    """Bytes start..end of an object stored as one or more erasure-coded parts, decrypted
    with its data key `dk` (every part's)."""
    key = dk.key
    base = 0
    for ref in m.parts:
        lo, hi = max(start, base), min(end, base + ref.size - 1)
        if lo <= hi:
            at = lo - base          # the run's offset of the next chunk
            async for chunk in ctx.state.data.read(ref, at, hi - base):
                if key is None:
                    yield chunk
                else:
                    yield memoryview(sse.crypt(key, ref.data_id, at, chunk))
                at += len(chunk)
        base += ref.size
        if base > end:
            break


async def delete_object(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    if conditions.has_delete_conditions(ctx.headers):
        # Checked, then deleted: a write between the two wins over the condition (AWS
        # makes them one step; here the window is the delete's own round trip).
        _, _, m = await current_object(ctx)
        conditions.check_delete(ctx.headers,
                                None if m.marker else (m.etag, m.mtime_ms, m.size), ctx.key)
    gone = await delete_key(ctx, bucket, key, ctx.request.query.get("versionId"),
                            bypass_governance(ctx, bucket))
    return web.Response(status=204, headers=deleted_headers(bucket, gone))


def deleted_headers(bucket: BucketRecord, gone: Manifest | None) -> dict[str, str]:
    """A versioned delete's answer: the version removed or the delete marker made."""
    out = {} if gone is None else version_headers(bucket, gone)
    if gone is not None and gone.marker:
        out["x-amz-delete-marker"] = "true"
    return out


def bypass_governance(ctx: Ctx, bucket: BucketRecord) -> bool:
    """x-amz-bypass-governance-retention, honoured for the bucket owner (who holds every
    permission, s3:BypassGovernanceRetention included). AWS refuses the header, whatever
    its value, on a bucket without Object Lock."""
    if object_lock.BYPASS_HEADER in ctx.headers and bucket.object_lock is None:
        raise errors.InvalidArgument(
            "x-amz-bypass-governance-retention is only applicable to Object Lock enabled "
            "buckets.", ArgumentName=object_lock.BYPASS_HEADER)
    return ctx.principal == bucket.owner and object_lock.bypasses(ctx.headers)


async def delete_key(ctx: Ctx, bucket: BucketRecord, key: bytes, version_id: str | None = None,
                     bypass: bool = False) -> Manifest | None:
    """Delete a key: tombstone it (a no-op success when it does not exist, as S3 answers);
    in a versioned bucket add a delete marker, or remove the one version named. Returns
    the delete marker made or the version removed, if any."""
    catalog = ctx.state.catalog
    if version_id is not None:
        outcome = await versioned.delete_version(catalog, bucket, key, version_id, bypass)
    elif bucket.versioning:
        outcome = await versioned.write_version(
            catalog, bucket, key, versioned.delete_marker(now_ms()))
    else:
        old = await catalog.get_object(bucket, key)
        if old is None:
            return None
        await catalog.delete_object(bucket, key)
        if old[0].parts:
            ctx.state.data.retire(old[0].parts)
        defer(ctx.request, ctx.state.counters.add(bucket, -1, -old[0].size))
        return None
    if outcome is None:
        return None
    settle(ctx, bucket, outcome)
    return outcome.manifest
