"""CopyObject and the copy source shared with UploadPartCopy.

A copy reads the source through the normal data path and writes fresh data (a new data id),
so source and destination never share fragments and deleting one never touches the other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway import access, conditions, errors, headers, s3xml, sse, sse_customer, versioned
from gateway.checksums import (
    DEFAULT_ALGORITHM,
    ChecksumAlgorithm,
    Checksummer,
    ChecksumType,
    algorithm_from_aws_name,
    asked_algorithm,
    checksum_type_of,
)
from gateway.datapath import Observer
from gateway.handlers.objects import (
    commit,
    data_key,
    inline_bytes,
    missing_key,
    object_key,
    owned_bucket,
    sealing,
    stream_parts,
    write_conditions,
    write_lock,
    written_version_headers,
)
from gateway.manifest import BucketRecord, DataRef, Manifest
from gateway.names import check_key
from gateway.numbers import is_decimal
from gateway.state import Ctx

XML = "application/xml"


@dataclass(frozen=True)
class CopySource:
    bucket: BucketRecord
    key: bytes
    manifest: Manifest
    version_id: str | None = None     # the version named (x-amz-copy-source's ?versionId=)
    data_key: sse.DataKey = sse.PLAIN  # opened with its customer key (or its KMS key)

    def version_headers(self) -> dict[str, str]:
        """x-amz-copy-source-version-id, once the source bucket has been versioned."""
        if not (self.bucket.versioning or self.manifest.version):
            return {}
        return {"x-amz-copy-source-version-id": self.manifest.version_id}

    async def copy_bytes(self, ctx: Ctx, dest: BucketRecord, start: int, end: int,
                         observe: Observer | Sequence[Observer], dest_key: bytes,
                         dk: sse.DataKey) -> DataRef | None:
        """Write source bytes start..end as new erasure-coded data of the destination,
        encrypted with its data key `dk`."""
        size = end - start + 1
        if size <= 0:
            return None
        m = self.manifest
        if m.inline is not None:
            data = inline_bytes(m, start, end, self.data_key)

            async def one() -> object:
                yield data
            body = one()
        else:
            body = stream_parts(ctx, m, start, end, self.data_key)
        home = ctx.state.catalog.object_home(dest, dest_key) if dest_key else b""
        return await ctx.state.data.write(body, size, dest.k, dest.m,  # type: ignore[arg-type]
                                          observe, home=home, key=dk.key)


def _parse_source(raw: str) -> access.CopySourceName:
    source = access.copy_source_of(raw)
    if source is None:
        raise errors.InvalidArgument("Copy Source must mention the source bucket and key: "
                                     "sourcebucket/sourcekey",
                                     ArgumentName="x-amz-copy-source", ArgumentValue=raw)
    return source


def _copy_conditions(h: object, m: Manifest) -> None:
    """x-amz-copy-source-if-*: the same rules as GET's, but every failure is a 412."""
    get = h.get  # type: ignore[attr-defined]
    mapped = {
        "If-Match": get("x-amz-copy-source-if-match"),
        "If-None-Match": get("x-amz-copy-source-if-none-match"),
        "If-Modified-Since": get("x-amz-copy-source-if-modified-since"),
        "If-Unmodified-Since": get("x-amz-copy-source-if-unmodified-since"),
    }
    given = {k: v for k, v in mapped.items() if v is not None}
    if conditions.in_future(given.get("If-Modified-Since", "")):
        del given["If-Modified-Since"]      # AWS: a future date holds for a copy source
    # AWS names the copy-source header that failed (x-amz-copy-source-If-Match, ...).
    try:
        outcome = conditions.evaluate(given, m.etag, m.mtime_ms)
    except errors.PreconditionFailed as failed:
        raise errors.PreconditionFailed(
            Condition=f"x-amz-copy-source-{failed.extra['Condition']}") from None
    if outcome is conditions.Outcome.NOT_MODIFIED:
        which = "If-None-Match" if "If-None-Match" in given else "If-Modified-Since"
        raise errors.PreconditionFailed(Condition=f"x-amz-copy-source-{which}")


async def open_copy_source(ctx: Ctx) -> CopySource:
    """The source a copy reads. It may be another tenant's than the destination: that the
    requester may read it was settled at dispatch (gateway.access), so a missing key is
    all that is left to tell, to those who may know it."""
    source = _parse_source(ctx.headers["x-amz-copy-source"])
    catalog = ctx.state.catalog
    bucket = await catalog.bucket(source.bucket)
    key_bytes = check_key(source.key)
    version_id = source.version_id
    if version_id is not None:
        try:
            m = await versioned.get_version(catalog, bucket, key_bytes, version_id)
        except errors.MethodNotAllowed:     # AWS: a delete marker is no copy source
            raise errors.InvalidRequest(
                "The source of a copy request may not specifically refer to a delete "
                "marker by version id.") from None
    else:
        found = await catalog.get_object(bucket, key_bytes)
        if found is None:
            raise missing_key(ctx, bucket, source.key)
        m = found[0]
    _copy_conditions(ctx.headers, m)
    return CopySource(bucket, key_bytes, m, version_id,
                      await object_key(ctx, m, copy_source=True))


def copy_source_range(raw: str | None, size: int) -> tuple[int, int] | None:
    """x-amz-copy-source-range: bytes=first-last, both required and inside the object."""
    if raw is None:
        return None
    spec = raw.strip()
    first, sep, last = spec.removeprefix("bytes=").partition("-")
    if not spec.startswith("bytes=") or not sep or not is_decimal(first) or \
            not is_decimal(last) or int(last) < int(first):
        raise errors.InvalidArgument("The x-amz-copy-source-range value must be of the form "
                                     "bytes=first-last where first and last are the "
                                     "zero-based offsets of the first and last bytes to copy",
                                     ArgumentName="x-amz-copy-source-range",
                                     ArgumentValue=raw)
    if int(first) >= size:      # AWS's two answers: nothing of the source is in range,
        raise errors.InvalidRequest("The specified copy range is invalid for the source "
                                    "object size")
    if int(last) >= size:       # or the range runs past its end
        raise errors.InvalidArgument(f"Range specified is not valid for source object of "
                                     f"size: {size}", ArgumentName="x-amz-copy-source-range",
                                     ArgumentValue=raw)
    return int(first), int(last)


def copy_checksummer(asked: ChecksumAlgorithm | None, m: Manifest) -> Checksummer | None:
    """The checksum a copy of `m` computes; None when it keeps the source's. AWS copies a
    source's checksum unless x-amz-checksum-algorithm asks for another, and gives the copy
    its default CRC64NVME when the source has none. A composite ("-N") value describes
    the source's parts, which a copy (one part) does not have: it is computed afresh, of
    the same algorithm, over the whole object."""
    if asked is not None:
        return Checksummer(asked)
    if not m.checksums:
        return Checksummer(DEFAULT_ALGORITHM)
    name, value = next(iter(m.checksums.items()))
    alg = algorithm_from_aws_name(name)
    if alg is not None and checksum_type_of(value) is ChecksumType.COMPOSITE:
        return Checksummer(alg)
    return None


def _result_checksums(sums: dict[str, str]) -> list[tuple[str, str]]:
    """CopyObjectResult's checksum elements, in botocore's order (ChecksumType first)."""
    out = [("ChecksumType", checksum_type_of(v).value) for v in list(sums.values())[:1]]
    return out + [(f"Checksum{alg.aws_name}", sums[alg.name])
                  for alg in ChecksumAlgorithm if alg.name in sums]


async def copy_object(ctx: Ctx) -> web.StreamResponse:
    dest = await owned_bucket(ctx)
    key = check_key(ctx.key)
    lock = write_lock(ctx, dest)    # the destination's (a source's lock is not copied)
    src = await open_copy_source(ctx)
    directive = ctx.headers.get("x-amz-metadata-directive", "COPY").upper()
    tag_directive = ctx.headers.get("x-amz-tagging-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE") or tag_directive not in ("COPY", "REPLACE"):
        raise errors.InvalidArgument("Unknown metadata directive.")
    same = src.bucket.name == dest.name and src.key == key
    dk = await data_key(ctx, dest)     # the copy's own (none of the source's, nor its context)
    reencrypts = sse.HEADER in ctx.headers or sse_customer.named(ctx.headers)
    if same and directive == "COPY" and tag_directive == "COPY" and not reencrypts and \
            "x-amz-storage-class" not in ctx.headers and src.version_id is None:
        raise errors.InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect "
            "location or encryption attributes.")
    m = src.manifest
    stored, meta = (m.headers, m.meta) if directive == "COPY" else (
        headers.stored_headers(ctx.headers), headers.user_metadata(ctx.headers))
    tags = m.tags if tag_directive == "COPY" else headers.tagging_header(ctx.headers)
    summer = copy_checksummer(asked_algorithm(ctx.headers), m)
    # If-None-Match / If-Match name the destination (x-amz-copy-source-if-* the source):
    # checked before any byte is copied, and held again at the commit, as a PUT's are.
    expected = await write_conditions(ctx, dest, key)
    # A copy is one part: its ETag is the MD5 of the bytes (SSE-C, SSE-KMS: DataKey.etag's).
    md5 = hashlib.md5()
    hashes: list[Observer] = [md5.update] if summer is None else [md5.update, summer.update]
    if m.inline is not None:
        plain = inline_bytes(m, 0, m.size - 1, src.data_key)
        for update in hashes:
            update(plain)
        new = Manifest(m.size, dk.etag(f'"{md5.hexdigest()}"'), int(time.time() * 1000),
                       stored, meta, inline=dk.crypt(b"", 0, plain), tags=tags,
                       **sealing(dk))
    else:
        ref = await src.copy_bytes(ctx, dest, 0, m.size - 1, hashes, key, dk)
        new = Manifest(m.size, dk.etag(f'"{md5.hexdigest()}"'), int(time.time() * 1000),
                       stored, meta, parts=(ref,) if ref else (), tags=tags, **sealing(dk))
    sums = m.checksums if summer is None else {summer.alg.name: summer.b64()}
    new = dataclasses.replace(new, checksums=sums)
    new = await commit(ctx, dest, key, new, lock=lock, expected=expected)
    body = s3xml.simple("CopyObjectResult", [("ETag", new.etag),
                                             ("LastModified", s3xml.iso8601(new.mtime_ms)),
                                             *_result_checksums(new.checksums)])
    return web.Response(body=body, content_type=XML,
                        headers={**src.version_headers(), **written_version_headers(dest, new),
                                 **dk.written_headers()})
