"""Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts,
ListMultipartUploads.

Each part is stored as its own erasure-coded data; Complete writes one manifest that lists
the parts in order, so a GET streams across part boundaries and nothing is copied.
"""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import time
from dataclasses import dataclass

from aiohttp import web

from gateway import (
    acl,
    errors,
    headers,
    limits,
    multipart_checksums,
    object_lock,
    s3xml,
    sse,
    sse_customer,
    upload_xml,
)
from gateway.body import BodyCheck, BodyReader, object_size
from gateway.checksums import (
    ChecksumAlgorithm,
    Checksummer,
    checksum_type_of,
    request_checksums,
)
from gateway.expiry import abort_headers, expiration_headers
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.copy import copy_source_range, open_copy_source
from gateway.handlers.listing import encoding_param
from gateway.handlers.objects import (
    commit,
    data_key,
    kms_use,
    now_ms,
    owned_bucket,
    recorded_headers,
    sealing,
    stored_key,
    write_conditions,
    write_lock,
    written_version_headers,
)
from gateway.manifest import BucketRecord, Manifest
from gateway.names import check_key
from gateway.numbers import is_decimal
from gateway.ranges import parse_part_number
from gateway.state import Ctx
from gateway.uploads import Part, Upload, Uploads, new_upload_id

XML = "application/xml"


def _uploads(ctx: Ctx) -> Uploads:
    return Uploads(ctx.state.catalog)


def _part_number(ctx: Ctx) -> int:
    return parse_part_number(ctx.request.query.get("partNumber", ""))


async def create_multipart_upload(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    declared = request_checksums(ctx.headers)
    write_lock(ctx, bucket)     # refused now, not at Complete; kept as asked until then
    dk = await data_key(ctx, bucket)      # every part is encrypted with it
    checksum = multipart_checksums.at_create(declared, dk.by_customer)
    upload = Upload(ctx.key, new_upload_id(), int(time.time() * 1000),
                    headers.stored_headers(ctx.headers), headers.user_metadata(ctx.headers),
                    headers.tagging_header(ctx.headers),
                    checksum.asked.aws_name if checksum.asked else "",
                    checksum.kind.value if checksum.asked and checksum.kind else "",
                    # Checked at dispatch (access_ops.check_acl_headers); the object gets
                    # it when the upload completes, as on AWS.
                    acl.from_headers(ctx.headers, bucket.owner) or (),
                    object_lock.lock_headers(ctx.headers),
                    # The signer, not the tenant it acts as: AWS lists who initiated it.
                    initiator=ctx.principal or "", checksum_default=checksum.default,
                    **sealing(dk))
    await _uploads(ctx).create(bucket, key, upload)
    body = s3xml.simple("InitiateMultipartUploadResult",
                        [("Bucket", bucket.name), ("Key", ctx.key),
                         ("UploadId", upload.upload_id)])
    hdrs = abort_headers(bucket, upload.key, upload.initiated_ms)
    hdrs.update(dk.written_headers())
    if upload.checksum_alg:
        hdrs.update({"x-amz-checksum-algorithm": upload.checksum_alg,
                     "x-amz-checksum-type": upload.checksum_type})
    return web.Response(body=body, content_type=XML, headers=hdrs)


async def _upload_of(ctx: Ctx) -> tuple[BucketRecord, bytes, Upload]:
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    upload_id = ctx.request.query.get("uploadId", "")
    return bucket, key, await _uploads(ctx).get(bucket, key, upload_id)


async def _store_part(ctx: Ctx, bucket: BucketRecord, key: bytes, upload: Upload,
                      part: Part) -> None:
    uploads = _uploads(ctx)
    replaced = await uploads.put_part(bucket, key, upload.upload_id, part)
    # A Complete that claimed the upload meanwhile may be committing the part this one
    # replaced: then its data is left to the nodes' orphan collector.
    if replaced is not None and replaced.data is not None and \
            await uploads.is_open(bucket, key, upload.upload_id):
        ctx.state.data.forget([replaced.data])


async def upload_part(ctx: Ctx) -> web.StreamResponse:
    number = _part_number(ctx)
    bucket, key, upload = await _upload_of(ctx)
    size = object_size(ctx.request, ctx.auth)
    if size > limits.put_object_bytes_max:
        raise errors.too_large(size, limits.put_object_bytes_max)
    dk = await _part_key(ctx, upload)
    check = BodyCheck(ctx.headers, ctx.auth)
    stored_alg = multipart_checksums.part_algorithm(upload.checksum, check.declared.algorithm)
    check.compute(stored_alg)
    body = BodyReader(ctx.request, ctx.auth, size)
    state = ctx.state
    ref = None
    if size:
        ref = await state.data.write(body, size, bucket.k, bucket.m, check.updaters(),
                                     home=state.catalog.object_home(bucket, key),
                                     key=dk.key)
    else:
        await body.read_all(0)
    try:
        sums = check.finish(body.trailers)
    except errors.S3Error:
        if ref is not None:
            state.data.forget([ref])
        raise
    part = Part(number, dk.etag(check.etag), size, int(time.time() * 1000), ref,
                sums.get(stored_alg.name, "") if stored_alg is not None else "")
    await _store_part(ctx, bucket, key, upload, part)
    hdrs = {"ETag": part.etag, **dk.response_headers()}
    # The checksum the part declared, else the one computed for it.
    shown = list(sums.items())[:1]
    hdrs.update({f"x-amz-checksum-{a.lower()}": v for a, v in shown})
    return web.Response(status=200, headers=hdrs)


async def _part_key(ctx: Ctx, upload: Upload) -> sse.DataKey:
    """The data key of the upload's parts, opened with the customer key the request gives
    (which must be the upload's, if it has one), or with its KMS key."""
    return await stored_key(ctx, upload.sse, upload.sse_customer, kms_use(upload),
                            sse_customer.PART)


async def upload_part_copy(ctx: Ctx) -> web.StreamResponse:
    number = _part_number(ctx)
    bucket, key, upload = await _upload_of(ctx)
    dk = await _part_key(ctx, upload)
    src = await open_copy_source(ctx)
    rng = copy_source_range(ctx.headers.get("x-amz-copy-source-range"),
                            src.manifest.size)
    start, end = rng if rng else (0, src.manifest.size - 1)
    md5 = hashlib.md5()
    # A part of an upload with a checksum has one, however its bytes came (AWS: computed).
    alg = upload.checksum.algorithm
    summer = Checksummer(alg) if alg is not None else None
    observers = [md5.update] + ([summer.update] if summer is not None else [])
    ref = await src.copy_bytes(ctx, bucket, start, end, observers, key, dk)
    part = Part(number, dk.etag(f'"{md5.hexdigest()}"'), end - start + 1,
                int(time.time() * 1000), ref, summer.b64() if summer is not None else "")
    await _store_part(ctx, bucket, key, upload, part)
    fields: list[tuple[str, str | int | bool | None]] = [
        ("ETag", part.etag), ("LastModified", s3xml.iso8601(part.mtime_ms))]
    if alg is not None:
        fields.append(("Checksum" + alg.aws_name, part.checksum))
    body = s3xml.simple("CopyPartResult", fields)
    return web.Response(body=body, content_type=XML,
                        headers={**src.version_headers(), **dk.response_headers()})


@dataclass(frozen=True)
class _Requested:
    number: int
    etag: str
    checksum: multipart_checksums.Listed | None     # the part's Checksum* element


def _requested_parts(body: bytes) -> list[_Requested]:
    root = s3xml.parse(body, "CompleteMultipartUpload")
    out = []
    for el in s3xml.children(root, "Part"):
        num, etag = s3xml.child_text(el, "PartNumber"), s3xml.child_text(el, "ETag")
        if num is None or etag is None or not is_decimal(num.strip()):
            raise errors.MalformedXML()
        sums = {a: v.strip() for a in ChecksumAlgorithm
                if (v := s3xml.child_text(el, "Checksum" + a.aws_name)) is not None}
        out.append(_Requested(int(num), etag.strip(), multipart_checksums.listed(sums)))
    if not out:
        raise errors.MalformedXML()
    return out


def _multipart_etag(parts: list[Part]) -> str:
    digest = hashlib.md5()
    for p in parts:
        try:
            digest.update(binascii.unhexlify(p.etag.strip('"')))
        except binascii.Error:
            raise errors.InvalidPart() from None
    return f'"{digest.hexdigest()}-{len(parts)}"'


def _chosen_parts(requested: list[_Requested], stored: dict[int, Part],
                  upload: Upload) -> list[Part]:
    chosen: list[Part] = []
    for i, req in enumerate(requested):
        if i and req.number <= requested[i - 1].number:
            raise errors.InvalidPartOrder(UploadId=upload.upload_id)
        part = stored.get(req.number)
        if part is None or part.etag.strip('"') != req.etag.strip('"') or \
                not multipart_checksums.check_part(upload.checksum, req.number, req.checksum,
                                                   part.checksum):
            raise errors.InvalidPart(UploadId=upload.upload_id, PartNumber=str(req.number),
                                     ETag=req.etag.strip('"'))
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < limits.part_bytes_min:
            raise errors.too_small(part.size, limits.part_bytes_min,
                                   PartNumber=str(part.number), ETag=part.etag.strip('"'))
    return chosen


def _object_checksum(ctx: Ctx, upload: Upload, requested: list[_Requested],
                     stored: dict[int, Part]) -> tuple[list[Part], dict[str, str]]:
    """The parts a Complete names, checked, and the object's checksum from theirs; an
    object checksum the request declares must match it. AWS compares a composite one with
    the checksum of the listed part checksums before it looks at the parts."""
    checksum = upload.checksum
    declared = multipart_checksums.declared_object_checksum(ctx.headers, checksum)
    listed = multipart_checksums.composite_of_listed(checksum,
                                                     [r.checksum for r in requested])
    if listed is not None:
        multipart_checksums.check_declared(checksum, declared, listed)
    chosen = _chosen_parts(requested, stored, upload)
    sums = multipart_checksums.object_checksum(checksum, [(p.checksum, p.size)
                                                          for p in chosen])
    multipart_checksums.check_declared(checksum, declared, "".join(sums.values()))
    return chosen, sums


def _manifest(upload: Upload, chosen: list[Part], sums: dict[str, str]) -> Manifest:
    return Manifest(
        size=sum(p.size for p in chosen), etag=_multipart_etag(chosen),
        mtime_ms=now_ms(), headers=upload.headers, meta=upload.meta,
        parts=tuple(p.data for p in chosen if p.data is not None), tags=upload.tags,
        checksums=sums, part_sizes=tuple(p.size for p in chosen), acl=upload.acl,
        # The default's part checksums are the gateway's own, not the object's to show.
        part_checksums=tuple(p.checksum for p in chosen)
        if sums and not upload.checksum.default else (),
        sse=upload.sse, sse_customer=upload.sse_customer, sse_kms=upload.sse_kms,
        sse_kms_context=upload.sse_kms_context, sse_bucket_key=upload.sse_bucket_key,
        upload_id=upload.upload_id)


async def _claim(uploads: Uploads, bucket: BucketRecord, key: bytes, upload: Upload,
                 seen: int, stored: dict[int, Part]) -> None:
    """Claim the upload for this Complete (gateway/uploads.py). The parts it checked must
    still be the upload's: when an UploadPart replaced one meanwhile, the claim is given
    back and the Complete is a conflict."""
    claimed = await uploads.claim(bucket, key, upload, seen,
                                  dataclasses.replace(upload, completing_ms=now_ms()))
    now = {p.number: p for p in await uploads.parts(bucket, key, upload.upload_id)}
    if now != stored:
        await uploads.release(bucket, key, upload, claimed)
        raise errors.ConditionalRequestConflict()


async def _completed_before(ctx: Ctx, bucket: BucketRecord, key: bytes,
                            upload_id: str) -> Manifest:
    """The object a finished upload made, while it is still the key's current one: a
    client that lost the answer to its Complete retries it, and AWS answers that retry as
    it answered the first. Otherwise the upload is gone (NoSuchUpload)."""
    found = await ctx.state.catalog.get_object(bucket, key)
    if found is None or not upload_id or found[0].upload_id != upload_id:
        raise errors.NoSuchUpload(UploadId=upload_id)
    await read_xml_body(ctx)
    return found[0]


def _completed(ctx: Ctx, bucket: BucketRecord, key: bytes,
               manifest: Manifest) -> web.StreamResponse:
    fields: list[tuple[str, str | int | bool | None]] = [
        ("Location", f"/{bucket.name}/{ctx.key}"), ("Bucket", bucket.name), ("Key", ctx.key),
        ("ETag", manifest.etag)]
    fields += [("Checksum" + alg, value) for alg, value in manifest.checksums.items()]
    kinds = {checksum_type_of(value).value for value in manifest.checksums.values()}
    fields += [("ChecksumType", kind) for kind in kinds]     # the upload's one algorithm
    body = s3xml.simple("CompleteMultipartUploadResult", fields)
    return web.Response(body=body, content_type=XML,
                        headers={**expiration_headers(bucket, key, manifest),
                                 **written_version_headers(bucket, manifest),
                                 **recorded_headers(manifest)})


async def complete_multipart_upload(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    uploads = _uploads(ctx)
    upload_id = ctx.request.query.get("uploadId", "")
    try:
        upload, seen = await uploads.get_stamped(bucket, key, upload_id)
    except errors.NoSuchUpload:
        return _completed(ctx, bucket, key,
                          await _completed_before(ctx, bucket, key, upload_id))
    if upload.completing_ms:
        # Another Complete has it; AWS: on a 409, start again with a new upload.
        raise errors.ConditionalRequestConflict()
    if sse_customer.named(ctx.headers):
        await _part_key(ctx, upload)    # optional here (AWS), but when given, the upload's
    requested = _requested_parts(await read_xml_body(ctx))
    stored = {p.number: p for p in await uploads.parts(bucket, key, upload.upload_id)}
    chosen, sums = _object_checksum(ctx, upload, requested, stored)
    # With If-None-Match / If-Match, the check holds to the commit (a PutObject of the key
    # landing in between overtakes this Complete: 412 or 409, as on AWS).
    expected = await write_conditions(ctx, bucket, key)
    lock = object_lock.for_write(bucket.object_lock, upload.lock, now_ms(),
                                 asked_ms=upload.initiated_ms)
    await _claim(uploads, bucket, key, upload, seen, stored)
    # From here on the upload is this request's: a failed commit leaves it claimed (its
    # parts' data may be gone with it), and a retry is a conflict, as on AWS.
    manifest = await commit(ctx, bucket, key, _manifest(upload, chosen, sums),
                            lock=lock, expected=expected)
    used = {p.number for p in chosen}
    unused = [p.data for p in stored.values() if p.number not in used and p.data is not None]
    ctx.state.data.forget(unused)
    await uploads.finish(bucket, key, upload.upload_id, list(stored.values()))
    return _completed(ctx, bucket, key, manifest)


async def abort_multipart_upload(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    upload_id = ctx.request.query.get("uploadId", "")
    ctx.state.data.forget(await _uploads(ctx).drop(bucket, key, upload_id, now_ms()))
    return web.Response(status=204)


def _int_param(ctx: Ctx, name: str, default: int, cap: int) -> int:
    raw = ctx.request.query.get(name)
    if raw is None:
        return default
    if not is_decimal(raw):
        raise errors.InvalidArgument(f"Provided {name} not an integer or within integer range",
                                     ArgumentName=name, ArgumentValue=raw)
    return min(int(raw), cap)


async def list_parts(ctx: Ctx) -> web.StreamResponse:
    bucket, key, upload = await _upload_of(ctx)
    max_parts = _int_param(ctx, "max-parts", 1000, 1000)
    marker = _int_param(ctx, "part-number-marker", 0, limits.part_number_max)
    cursor = _uploads(ctx).part_cursor(bucket, key, upload.upload_id, marker)
    parts: list[Part] = []
    truncated = False
    while (rec := await cursor.pop()) is not None:
        if rec.value is None:
            continue
        if len(parts) >= max_parts:
            truncated = True
            break
        parts.append(Part.decode(rec.value))
    body = upload_xml.list_parts(bucket.name, bucket.owner, upload,
                                 upload_xml.PartsPage(parts, marker, max_parts, truncated))
    return web.Response(body=body, content_type=XML)


async def list_multipart_uploads(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    q = ctx.request.query
    url = encoding_param(q.get("encoding-type"))
    given_prefix = q.get("prefix")
    prefix = given_prefix or ""
    delimiter = q.get("delimiter") or None
    max_uploads = _int_param(ctx, "max-uploads", 1000, 1000)
    key_marker = q.get("key-marker", "")
    # Without a key marker, AWS ignores the upload id marker (and echoes it empty).
    id_marker = q.get("upload-id-marker", "") if key_marker else ""
    after = None
    if key_marker:
        after = key_marker.encode() + (b"\x00" + id_marker.encode() if id_marker else b"\xff")
    cursor = _uploads(ctx).upload_cursor(bucket, prefix.encode(), after)
    uploads: list[Upload] = []
    prefixes: list[str] = []
    truncated = False
    while (rec := await cursor.pop()) is not None:
        if rec.value is None:
            continue
        up = Upload.decode(rec.value)
        rolled = None
        if delimiter:
            at = up.key.find(delimiter, len(prefix))
            rolled = up.key[: at + len(delimiter)] if at >= 0 else None
        if rolled is not None and prefixes and prefixes[-1] == rolled:
            continue
        if len(uploads) + len(prefixes) >= max_uploads:
            truncated = True
            break
        if rolled is not None:
            prefixes.append(rolled)
        else:
            uploads.append(up)
    query = upload_xml.UploadsQuery(given_prefix, delimiter, key_marker, id_marker,
                                    max_uploads, url)
    body = upload_xml.list_uploads(bucket.name, bucket.owner, query,
                                   upload_xml.UploadsPage(uploads, prefixes, truncated))
    return web.Response(body=body, content_type=XML)
