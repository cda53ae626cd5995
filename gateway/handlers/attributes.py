"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and size at once."""

from __future__ import annotations

from aiohttp import web

from gateway import errors, s3xml
from gateway.checksums import ChecksumType, checksum_type_of
from gateway.handlers.objects import current_object, encryption_headers, version_headers
from gateway.manifest import Manifest
from gateway.numbers import is_decimal
from gateway.state import Ctx

XML = "application/xml"
_KNOWN = {"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"}


def _wanted(raw: str | None) -> set[str]:
    wanted = {a.strip() for a in (raw or "").split(",") if a.strip()}
    if not wanted or not wanted <= _KNOWN:
        raise errors.InvalidArgument("Invalid attribute name specified.",
                                     ArgumentName="x-amz-object-attributes",
                                     ArgumentValue=raw or "")
    return wanted


def _parts_xml(m: Manifest, marker: int, max_parts: int) -> str:
    sizes = list(m.part_sizes)
    shown = [(n, size) for n, size in enumerate(sizes, start=1) if n > marker][:max_parts]
    truncated = bool(shown) and shown[-1][0] < len(sizes)
    # AWS lists the parts of an object with an additional checksum only, each with its own.
    element = "Checksum" + next(iter(m.checksums), "")
    items = "".join(f"<Part><PartNumber>{n}</PartNumber><Size>{size}</Size>"
                    f"<{element}>{s3xml.esc(m.part_checksums[n - 1])}</{element}></Part>"
                    for n, size in shown) if m.part_checksums else ""
    nxt = shown[-1][0] if shown else marker
    # The element is PartsCount on the wire (botocore maps it to TotalPartsCount).
    return (f"<ObjectParts><PartsCount>{len(sizes)}</PartsCount>"
            f"<PartNumberMarker>{marker}</PartNumberMarker>"
            f"<NextPartNumberMarker>{nxt}</NextPartNumberMarker><MaxParts>{max_parts}"
            f"</MaxParts><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            f"{items}</ObjectParts>")


def _checksum_xml(checksums: dict[str, str]) -> str:
    """The Checksum element. A COMPOSITE value is shown without the "-N" part count that
    Complete, HEAD and GET give it (AWS's answers: floci's and moto's captures against S3,
    LocalStack's snapshots); ObjectParts says how many parts there are."""
    kind = checksum_type_of(next(iter(checksums.values())))
    sums = "".join(
        f"<Checksum{a}>{s3xml.esc(v.rsplit('-', 1)[0] if kind is ChecksumType.COMPOSITE else v)}"
        f"</Checksum{a}>" for a, v in checksums.items())
    return f"<Checksum>{sums}<ChecksumType>{kind.value}</ChecksumType></Checksum>"


def _int_header(ctx: Ctx, name: str, default: int) -> int:
    raw = ctx.headers.get(name)
    if raw is None:
        return default
    if not is_decimal(raw):
        raise errors.InvalidArgument(f"Invalid {name}", ArgumentName=name, ArgumentValue=raw)
    return int(raw)


async def get_object_attributes(ctx: Ctx) -> web.StreamResponse:
    wanted = _wanted(ctx.headers.get("x-amz-object-attributes"))
    bucket, _, m = await current_object(ctx)
    encryption_headers(ctx, m)  # an SSE-C object's ETag and checksums: to its key's holder
    parts = []
    if "ETag" in wanted:
        parts.append(f"<ETag>{s3xml.esc(m.etag.strip(chr(34)))}</ETag>")
    if "Checksum" in wanted and m.checksums:
        parts.append(_checksum_xml(m.checksums))
    if "ObjectParts" in wanted and m.part_sizes:
        parts.append(_parts_xml(m, _int_header(ctx, "x-amz-part-number-marker", 0),
                                min(_int_header(ctx, "x-amz-max-parts", 1000), 1000)))
    if "StorageClass" in wanted:
        parts.append(f"<StorageClass>{m.headers.get('x-amz-storage-class', 'STANDARD')}"
                     "</StorageClass>")
    if "ObjectSize" in wanted:
        parts.append(f"<ObjectSize>{m.size}</ObjectSize>")
    body = (f'{s3xml.HEAD}<GetObjectAttributesResponse xmlns="{s3xml.NS}">{"".join(parts)}'
            "</GetObjectAttributesResponse>")
    return web.Response(body=body.encode(), content_type=XML,
                        headers={"Last-Modified": s3xml.http_date(m.mtime_ms),
                                 **version_headers(bucket, m)})
