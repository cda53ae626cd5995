"""PostObject: a browser's multipart/form-data upload, authorized by its signed POST policy.

Dispatch lets PostObject through unauthenticated (the HTTP request carries no signature);
this handler reads the form, verifies the policy's signature and conditions
(gateway.postpolicy), then asks gateway.access whether the signer (or, for an unsigned
form, anyone) may PutObject that key, exactly as for a PUT. The file part is buffered,
within post_upload_bytes_max, because its size is known only at its end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import BodyPartReader, web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway import (
    access,
    acl,
    condition_keys,
    errors,
    headers,
    limits,
    ownership,
    postpolicy,
    s3xml,
    sse,
    tags,
)
from gateway.access import PublicAccessBlock
from gateway.checksums import (
    CHECKSUM_HEADER_PREFIX,
    DEFAULT_ALGORITHM,
    checksum_b64,
    request_checksums,
    verify,
    verify_md5,
)
from gateway.condition_keys import RequestFacts
from gateway.handlers.objects import commit, data_key, sealing, written_version_headers
from gateway.header_text import has_control
from gateway.manifest import BucketRecord, Manifest
from gateway.names import check_key
from gateway.state import Ctx


class MalformedPOSTRequest(errors.S3Error):
    code = "MalformedPOSTRequest"
    status = 400
    default_message = "The body of your POST request is not well-formed multipart/form-data."


_STATUSES = {"200": 200, "201": 201, "204": 204}


async def _read_part(part: BodyPartReader, limit: int, too_big: errors.S3Error) -> bytes:
    out = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        out += chunk
        if len(out) > limit:
            raise too_big
    return bytes(out)


async def _read_file(part: BodyPartReader) -> tuple[bytes | None, int]:
    """The file's bytes (None past post_upload_bytes_max) and its size: a file too big to
    buffer is still read to its end, unkept, so that the error can name its size (AWS's
    EntityTooLarge carries ProposedSize) and the policy's own limit can answer first. The
    form is not yet authorized: past the most any one upload may be, reading stops (the
    size named is then what was read)."""
    out = bytearray()
    size = 0
    while size <= limits.put_object_bytes_max and (chunk := await part.read_chunk(64 * 1024)):
        size += len(chunk)
        if size <= postpolicy.post_upload_bytes_max:
            out += chunk
        elif out:
            out = bytearray()
    return (bytes(out) if size <= postpolicy.post_upload_bytes_max else None), size


async def _read_form(ctx: Ctx) -> tuple[dict[str, str], bytes | None, int, str]:
    """Form fields (names lower-cased), the file's bytes (None: too big to keep), its size
    and its filename."""
    try:
        reader = await ctx.request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise errors.InvalidArgument("POST requires multipart/form-data") from None
    fields: dict[str, str] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise MalformedPOSTRequest()
        name = part.name.lower()
        if name == "file":
            data, size = await _read_file(part)
            return fields, data, size, part.filename or ""
        raw = await _read_part(part, postpolicy.post_field_bytes_max,
                               errors.InvalidArgument("A form field is too large"))
        if len(fields) >= postpolicy.post_fields_max:
            raise errors.InvalidArgument("Too many form fields")
        fields[name] = raw.decode("utf-8", "replace")
    raise errors.InvalidArgument("Bucket POST must contain a file field.",
                                 ArgumentName="file")


def _authorize(ctx: Ctx, bucket: BucketRecord, fields: dict[str, str], size: int,
               filename: str) -> tuple[str, str | None]:
    """Check signature, policy and permission; return the key to write and the signer."""
    state = ctx.state
    if "key" not in fields:             # AWS asks for the key before the signature
        raise postpolicy.missing_field("key")
    access_key = postpolicy.verify_signature(fields, state.secret_of, state.config.region)
    principal = state.keys.tenant_of(access_key) if access_key is not None else None
    # The policy's conditions, as the permission, speak of the key written (AWS: a
    # starts-with on $key holds for key=${filename} and a file named to match).
    key = fields["key"].replace("${filename}", filename)
    checked = {**fields, "bucket": bucket.name, "key": key}
    if access_key is not None:
        policy = postpolicy.parse_policy(fields["policy"])
        postpolicy.check_policy(policy, checked, size, datetime.now(UTC))
    request = access.AccessRequest(access.POST_OBJECT_OP, bucket.name, key, principal,
                                   ctx.request.remote or "",
                                   facts=_facts(ctx, fields, access_key is not None))
    access.decide(request, bucket)
    return key, principal


def _form_tags(fields: dict[str, str]) -> list[tuple[str, str]] | None:
    """The tags the form's tagging document asks for; None: the form has none."""
    return s3xml.parse_form_tagging(fields["tagging"].encode()) if fields.get("tagging") \
        else None


def _facts(ctx: Ctx, fields: dict[str, str], signed: bool) -> RequestFacts:
    """The form as the bucket policy's condition keys see it: its fields say what a PUT's
    headers would (acl is x-amz-acl; x-amz-* fields are themselves), its tagging document
    the tags asked for."""
    hdrs = {f: v for f, v in fields.items() if f.startswith("x-amz-")}
    if "acl" in fields:
        hdrs["x-amz-acl"] = fields["acl"]
    for name in ("user-agent", "referer"):
        if name in ctx.headers:
            hdrs[name] = ctx.headers[name]
    asked = _form_tags(fields)
    version = None
    if signed:
        version = condition_keys.SIGV2 if "awsaccesskeyid" in fields else condition_keys.SIGV4
    return RequestFacts(hdrs, ctx.request.query, ctx.request.secure, version,
                        condition_keys.AUTH_POST if signed else None, body_tags=asked)


def _manifest(fields: dict[str, str], data: bytes, owner: str,
              bucket: BucketRecord) -> Manifest:
    # The fields that stand for a PUT's content headers, x-amz-storage-class and
    # x-amz-website-redirect-location are kept (and refused) as the PUT's are.
    stored = headers.stored_headers(CIMultiDictProxy(CIMultiDict(fields)))
    # Form fields are UTF-8 text already (not a header's ISO-8859-1): only the size is checked.
    meta = headers.checked_metadata(
        {k[len("x-amz-meta-"):]: v for k, v in fields.items() if k.startswith("x-amz-meta-")})
    grants: acl.Grants = ()
    if "acl" in fields:
        if bucket.ownership == ownership.ENFORCED and \
                ownership.sets_acl({"x-amz-acl": fields["acl"]}):
            raise errors.AccessControlListNotSupported()
        grants = acl.canned(fields["acl"], owner)
        if PublicAccessBlock.of(bucket).block_public_acls and acl.is_public(grants):
            raise errors.AccessDenied("Access Denied: public ACLs are blocked on this bucket")
    asked = _form_tags(fields)
    form_tags = tags.check(asked) if asked is not None else ()
    md5 = hashlib.md5(data)
    return Manifest(len(data), f'"{md5.hexdigest()}"', int(time.time() * 1000), stored, meta,
                    acl=grants, tags=form_tags, checksums=_checksums(fields, data, md5.digest()))


def _checksums(fields: dict[str, str], data: bytes, md5: bytes) -> dict[str, str]:
    """The checksum to store: the one the form's fields declare (x-amz-checksum-<alg>, or
    x-amz-checksum-algorithm alone to have it computed), verified against the file, else
    AWS's default; a Content-MD5 field is verified too. The fields speak as a PUT's headers
    do, with the same errors (BadDigest for a mismatch, InvalidRequest / InvalidDigest for
    a malformed or doubled one), all before anything is stored."""
    declared = request_checksums({name: value for name, value in fields.items()
                                  if name.startswith(CHECKSUM_HEADER_PREFIX)
                                  or name == "content-md5"})
    if declared.content_md5 is not None:
        verify_md5(declared.content_md5, md5)
    # The default costs ~1/15 of the MD5 already taken here.
    alg = declared.algorithm or DEFAULT_ALGORITHM
    got = checksum_b64(alg, data)
    if declared.value_b64 is not None:
        verify(alg, declared.value_b64, got)
    return {alg.name: got}


async def _store(ctx: Ctx, bucket: BucketRecord, key: bytes, m: Manifest,
                 data: bytes, dk: sse.DataKey) -> Manifest:
    state = ctx.state
    m = dataclasses.replace(m, etag=dk.etag(m.etag), **sealing(dk))
    if len(data) <= state.config.inline_max_bytes:
        return dataclasses.replace(m, inline=dk.crypt(b"", 0, data))

    async def body() -> AsyncIterator[bytes]:
        yield data
    ref = await state.data.write(body(), len(data), bucket.k, bucket.m, lambda _b: None,
                                 home=state.catalog.object_home(bucket, key), key=dk.key)
    return dataclasses.replace(m, parts=(ref,))


def _location(request: web.Request, bucket: str, key: str) -> str:
    """The new object's URL, in the addressing style the form was posted with."""
    path_style = request.path.rstrip("/") == f"/{bucket}"
    return f"{request.url.origin()}{'/' + bucket if path_style else ''}/{quote(key)}"


def _redirect(fields: dict[str, str]) -> str | None:
    """Where the form asks the browser to go, if S3 can use it: an absolute http(s) URL.
    AWS ignores one it cannot interpret (a relative path, say) and answers as if the
    field were absent (RESTObjectPOST; LocalStack test_s3_presigned_post_success_action_
    redirect); a control character could not go in a Location header anyway."""
    url = fields.get("success_action_redirect") or fields.get("redirect")
    if not url or has_control(url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def _answer(request: web.Request, fields: dict[str, str], bucket: str, key: str, etag: str,
            more: dict[str, str]) -> web.Response:
    """The answer the form asks for; `more`: headers beside the ETag (a version id)."""
    location = _location(request, bucket, key)
    hdrs = {"ETag": etag, **more}
    redirect = _redirect(fields)
    if redirect is not None:
        query = urlencode({"bucket": bucket, "key": key, "etag": etag})
        sep = "&" if "?" in redirect else "?"
        return web.Response(status=303, headers={"Location": f"{redirect}{sep}{query}",
                                                 **hdrs})
    status = _STATUSES.get(fields.get("success_action_status", "204"), 204)
    hdrs["Location"] = location
    if status != 201:
        return web.Response(status=status, headers=hdrs)
    # AWS's PostResponse document carries no namespace (clients find <Key> unqualified).
    body = s3xml.simple("PostResponse", [("Location", location), ("Bucket", bucket),
                                         ("Key", key), ("ETag", etag)], namespace=False)
    return web.Response(status=201, body=body, content_type="application/xml", headers=hdrs)


async def post_object(ctx: Ctx) -> web.StreamResponse:
    bucket = await ctx.state.catalog.bucket(ctx.bucket_name)
    fields, data, size, filename = await _read_form(ctx)
    key_text, signer = _authorize(ctx, bucket, fields, size, filename)
    if data is None:        # within the policy's range, past what the gateway buffers
        raise errors.too_large(size, postpolicy.post_upload_bytes_max)
    key = check_key(key_text)
    manifest = _manifest(fields, data, bucket.owner, bucket)
    if ctx.state.quotas is not None:
        await ctx.state.quotas.check(bucket, len(data), key)
    old = await ctx.state.catalog.get_object(bucket, key)
    # A form names its encryption as fields (x-amz-server-side-encryption, the KMS key and
    # context, the SSE-C three), else the bucket's default applies; `fields` names are
    # lower-cased. A KMS key is the form's signer's, as a PUT's is its signer's.
    dk = await data_key(dataclasses.replace(ctx, principal=signer), bucket, fields)
    stored = await _store(ctx, bucket, key, manifest, data, dk)
    stored = await commit(ctx, bucket, key, stored, old[0] if old else None)
    return _answer(ctx.request, fields, bucket.name, key_text, stored.etag,
                   {**written_version_headers(bucket, stored), **dk.written_headers()})
