"""ListParts and ListMultipartUploads result documents.

Pure. Element names and order follow botocore's service model (the order of AWS's API
reference), and what AWS leaves in or out follows its answers (LocalStack's snapshots):
- an upload with a checksum algorithm shows it and its type, and each of its parts shows
  its checksum; an upload created without one shows none, not even the default CRC64NVME
  its parts carry (AWS's answers, LocalStack's and versitygw's: the API reference's Part
  says otherwise, but Complete refuses a checksum listed for such a part, so a client that
  completed from ListParts would fail);
- NextKeyMarker and NextUploadIdMarker are always there: the last upload the page lists,
  "" when it lists none (a page of common prefixes only, or an empty one);
- Prefix and Delimiter appear when the request gave them; UploadIdMarker only counts with
  a KeyMarker;
- with encoding-type=url, Key, Prefix, Delimiter, KeyMarker and NextKeyMarker are
  URL-encoded (as ListObjects encodes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from gateway import s3xml
from gateway.uploads import Part, Upload


def parties(bucket_owner: str, upload: Upload) -> str:
    """Initiator and Owner of an upload: who created it (no one to name if that was an
    anonymous request; the bucket's owner for a record that predates the field), and the
    bucket's owner, whose the object will be."""
    initiator = bucket_owner if upload.initiator is None else upload.initiator
    return (s3xml.party("Initiator", initiator) if initiator else "") + \
        s3xml.party("Owner", bucket_owner)


def _checksum_kind(upload: Upload) -> str:
    checksum = upload.checksum
    if checksum.asked is None or checksum.kind is None:
        return ""       # none asked at Create (the default's is not the upload's own)
    return (f"<ChecksumAlgorithm>{checksum.asked.aws_name}</ChecksumAlgorithm>"
            f"<ChecksumType>{checksum.kind.value}</ChecksumType>")


def _part(p: Part, checksum_element: str | None) -> str:
    value = f"<{checksum_element}>{s3xml.esc(p.checksum)}</{checksum_element}>" \
        if checksum_element and p.checksum else ""
    return (f"<Part><PartNumber>{p.number}</PartNumber>"
            f"<LastModified>{s3xml.iso8601(p.mtime_ms)}</LastModified>"
            f"<ETag>{s3xml.esc(p.etag)}</ETag><Size>{p.size}</Size>{value}</Part>")


@dataclass(frozen=True)
class PartsPage:
    parts: Sequence[Part]
    marker: int                 # part-number-marker asked for
    max_parts: int
    truncated: bool


def list_parts(bucket: str, bucket_owner: str, upload: Upload, page: PartsPage) -> bytes:
    alg = upload.checksum.asked
    element = "Checksum" + alg.aws_name if alg is not None else None
    nxt = page.parts[-1].number if page.parts else 0
    body = (
        f'{s3xml.HEAD}<ListPartsResult xmlns="{s3xml.NS}"><Bucket>{s3xml.esc(bucket)}'
        f"</Bucket><Key>{s3xml.esc(upload.key)}</Key><UploadId>{upload.upload_id}</UploadId>"
        f"<PartNumberMarker>{page.marker}</PartNumberMarker>"
        f"<NextPartNumberMarker>{nxt}</NextPartNumberMarker>"
        f"<MaxParts>{page.max_parts}</MaxParts>"
        f"<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>"
        + "".join(_part(p, element) for p in page.parts)
        + f"{parties(bucket_owner, upload)}<StorageClass>STANDARD</StorageClass>"
        f"{_checksum_kind(upload)}</ListPartsResult>")
    return body.encode()


@dataclass(frozen=True)
class UploadsQuery:
    """What a ListMultipartUploads request asked for (None: a parameter not given)."""

    prefix: str | None
    delimiter: str | None
    key_marker: str
    id_marker: str              # "" unless a key marker goes with it
    max_uploads: int
    url: bool                   # encoding-type=url


@dataclass(frozen=True)
class UploadsPage:
    uploads: Sequence[Upload]
    prefixes: Sequence[str]
    truncated: bool


def list_uploads(bucket: str, bucket_owner: str, q: UploadsQuery, page: UploadsPage
                 ) -> bytes:
    def key(text: str) -> str:
        return quote(text, safe="/") if q.url else s3xml.esc(text)

    last = page.uploads[-1] if page.uploads else None
    items = "".join(
        f"<Upload><Key>{key(u.key)}</Key><UploadId>{u.upload_id}</UploadId>"
        f"{parties(bucket_owner, u)}<StorageClass>STANDARD</StorageClass>"
        f"<Initiated>{s3xml.iso8601(u.initiated_ms)}</Initiated>{_checksum_kind(u)}</Upload>"
        for u in page.uploads)
    items += "".join(f"<CommonPrefixes><Prefix>{key(p)}</Prefix></CommonPrefixes>"
                     for p in page.prefixes)
    body = (
        f'{s3xml.HEAD}<ListMultipartUploadsResult xmlns="{s3xml.NS}">'
        f"<Bucket>{s3xml.esc(bucket)}</Bucket><KeyMarker>{key(q.key_marker)}</KeyMarker>"
        f"<UploadIdMarker>{s3xml.esc(q.id_marker)}</UploadIdMarker>"
        f"<NextKeyMarker>{key(last.key) if last else ''}</NextKeyMarker>"
        + (f"<Prefix>{key(q.prefix)}</Prefix>" if q.prefix is not None else "")
        + (f"<Delimiter>{key(q.delimiter)}</Delimiter>" if q.delimiter else "")
        + f"<NextUploadIdMarker>{last.upload_id if last else ''}</NextUploadIdMarker>"
        f"<MaxUploads>{q.max_uploads}</MaxUploads>"
        f"<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>{items}"
        + ("<EncodingType>url</EncodingType>" if q.url else "")
        + "</ListMultipartUploadsResult>")
    return body.encode()
