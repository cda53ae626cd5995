"""ListObjectVersions: one page of a bucket's versions, newest first within each key.

Two listings of the same shards (gateway/listing.py's list_rows) are merged: the version
records (gateway/versions.py), and the current records, of which only those of objects
never given a version record count (written before the bucket was versioned: each is its
key's null version, the newest, so it sorts just before that key's version records). A
bucket never versioned has only the second kind. Each listing may stop before the page is
full; rows are final only up to the nearest point where one stopped, and a page may then
be shorter than max-keys and still truncated (clients follow IsTruncated and the markers).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gateway import errors, versions
from gateway.catalog import Catalog
from gateway.list_merge import LIST_FIELDS, checksum_of
from gateway.list_xml import checksum_elements, esc, iso8601
from gateway.listing import list_rows
from gateway.manifest import BucketRecord
from gateway.s3xml import HEAD, NS

# Current rows: the listing fields and the manifest's version stamp (absent: never
# versioned). Version rows: the same and whether it is null, whether a delete marker.
_CURRENT_FIELDS = (*LIST_FIELDS, 12)
_VERSION_FIELDS = (*LIST_FIELDS, 12, 13, 14)
# Where those are in a row ([key, *fields]).
_SUMS = len(LIST_FIELDS)
_STAMP, _NULL, _MARKER = _SUMS + 1, _SUMS + 2, _SUMS + 3
_LEGACY = b"\x00"           # after a key: a never-versioned current row sorts here


@dataclass(frozen=True)
class Version:
    key: str
    version_id: str
    latest: bool
    mtime_ms: int
    etag: str
    size: int
    storage_class: str
    marker: bool
    checksum_algorithm: str = ""    # "": none (always so for a delete marker)
    checksum_type: str = ""


@dataclass(frozen=True)
class VersionsPage:
    entries: list[Version]
    prefixes: list[str]
    truncated: bool
    next_key: str | None
    next_version_id: str | None


@dataclass(frozen=True)
class _Row:
    order: bytes                # where it sorts among both listings' rows
    raw: Any                    # the node's row (bytes: a common prefix)
    legacy: bool                # a never-versioned current object


async def versions_page(catalog: Catalog, bucket: BucketRecord, prefix: str,
                        delimiter: str | None, max_keys: int, key_marker: str,
                        version_id_marker: str) -> VersionsPage:
    if version_id_marker and not key_marker:
        raise errors.InvalidArgument(
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker", ArgumentValue=version_id_marker)
    if max_keys == 0:
        return VersionsPage([], [], False, None, None)
    o_start, v_start = await _starts(catalog, bucket, prefix, key_marker, version_id_marker)
    rows: list[_Row] = []
    bounds: list[bytes] = []
    if bucket.versioning:
        # A NUL-holding delimiter matches no key of a versioned bucket, but would cut the
        # version records at their separator.
        v_delim = None if delimiter and "\x00" in delimiter else delimiter
        got = await _list(catalog, bucket, versions.PREFIX + bucket.bucket_id, prefix,
                          v_delim, max_keys, v_start, _VERSION_FIELDS)
        rows += [_Row(_row_key(r), r, False) for r in got[0]]
        if got[1]:
            bounds.append(_row_key(got[0][-1]))
    o_rows, o_bound = await _legacy_rows(catalog, bucket, prefix, delimiter, max_keys,
                                         o_start, min(bounds, default=None))
    rows += o_rows
    if o_bound is not None:
        bounds.append(o_bound)
    mid = None
    if version_id_marker:
        mid = (key_marker, await _latest_id(catalog, bucket, key_marker))
    return _page(rows, min(bounds, default=None), max_keys, mid)


async def _latest_id(catalog: Catalog, bucket: BucketRecord, key: str) -> str | None:
    """The version id of a key's newest version record (None: it has none). A page that
    continues a key's versions past a version-id marker starts with its latest version only
    when the marker's version, and every newer one, was removed since."""
    top = await catalog.versions_of(bucket, key.encode("utf-8", "surrogateescape"), limit=1)
    return top[0][0].version_id if top else None


async def _starts(catalog: Catalog, bucket: BucketRecord, prefix: str, key_marker: str,
                  version_id_marker: str) -> tuple[bytes, bytes]:
    """Where each listing starts: past the marker key (all of it, or past the marker
    version among its versions)."""
    o_base = catalog.record_key_of(bucket, b"")
    v_base = versions.PREFIX + bucket.bucket_id
    if not key_marker:
        return o_base + prefix.encode(), v_base + prefix.encode()
    key = key_marker.encode("utf-8", "surrogateescape")
    o_start = o_base + key + b"\x00"
    if not version_id_marker:
        return o_start, v_base + key + b"\x01"
    stamp = versions.parse_version_id(version_id_marker)
    if stamp is None:   # "null": where the null version is, if it has a record
        nulls = [m for m, _ in await catalog.versions_of(bucket, key) if m.null]
        if not nulls:   # a never-versioned one, listed first: every version record follows
            return o_start, v_base + key + versions.SEPARATOR
        stamp = nulls[0].version
    return o_start, versions.record_key(bucket.bucket_id, key, stamp) + b"\x00"


async def _list(catalog: Catalog, bucket: BucketRecord, base: bytes, prefix: str,
                delimiter: str | None, max_keys: int, start_at: bytes,
                fields: tuple[Any, ...]) -> tuple[list[Any], bool]:
    got = await list_rows(catalog, bucket, base, prefix, delimiter, max_keys, start_at,
                          fields)
    assert got is not None, "only a carried-over listing is ever refused"
    return got[0], got[1]


async def _legacy_rows(catalog: Catalog, bucket: BucketRecord, prefix: str,
                       delimiter: str | None, max_keys: int, start_at: bytes,
                       other_bound: bytes | None) -> tuple[list[_Row], bytes | None]:
    """The current records that are never-versioned objects (and the common prefixes),
    listed on until enough are found or the listing passes `other_bound`; and the bound
    up to which they are complete (None: to the end)."""
    base = catalog.record_key_of(bucket, b"")
    out: list[_Row] = []
    while True:
        rows, truncated = await _list(catalog, bucket, base, prefix, delimiter, max_keys,
                                      start_at, _CURRENT_FIELDS)
        for r in rows:
            if r.__class__ is bytes:
                out.append(_Row(bytes(r), r, False))
            elif _never_versioned(r[_STAMP]):
                out.append(_Row(bytes(r[0]) + _LEGACY, r, True))
        if not truncated:
            return out, None
        last = rows[-1]
        bound = bytes(last) if last.__class__ is bytes else bytes(last[0]) + b"\x00\xff"
        if len(out) >= max_keys or (other_bound is not None and bound >= other_bound):
            return out, bound
        start_at = base + (bytes(last) if last.__class__ is bytes else bytes(last[0])) + \
            b"\x00"


def _never_versioned(stamp: Any) -> bool:
    """Whether a current record's version stamp says it was never versioned: absent, or
    all zero bytes, which is how a manifest writes its version group when only a later
    group (encryption, Object Lock, part checksums) needs the record to go on."""
    return stamp is None or not any(bytes(stamp))


def _row_key(row: Any) -> bytes:
    return bytes(row) if row.__class__ is bytes else bytes(row[0])


def _page(rows: list[_Row], bound: bytes | None, max_keys: int,
          mid: tuple[str, str | None] | None) -> VersionsPage:
    """The final rows (up to `bound`), merged, cut at max_keys; `mid` is the key whose
    versions the page continues and the id of its latest version (its first row here is
    the latest only if it is that one)."""
    rows.sort(key=lambda r: r.order)
    final: list[_Row] = []
    for r in rows:
        if bound is not None and r.order > bound:
            break
        if final and r.raw.__class__ is bytes and final[-1].order == r.order:
            continue    # a common prefix both listings hold
        final.append(r)
    truncated = bound is not None or len(final) > max_keys
    final = final[:max_keys]
    entries: list[Version] = []
    prefixes: list[str] = []
    previous = None if mid is None else mid[0]
    for r in final:
        if r.raw.__class__ is bytes:
            prefixes.append(bytes(r.raw).decode("utf-8", "surrogateescape"))
            previous = None
            continue
        entry = _entry(r, previous)
        if mid is not None and not entries and entry.key == mid[0]:
            entry = dataclasses.replace(entry, latest=entry.version_id == mid[1])
        entries.append(entry)
        previous = entry.key
    nxt_key = nxt_id = None
    if truncated and final:
        last = final[-1]
        if last.raw.__class__ is bytes:
            nxt_key = prefixes[-1]
        else:
            nxt_key, nxt_id = entries[-1].key, entries[-1].version_id
    return VersionsPage(entries, prefixes, truncated, nxt_key, nxt_id)


def _entry(r: _Row, previous: str | None) -> Version:
    raw = r.raw
    size, etag, mtime_ms, storage_class = raw[2], raw[3], raw[4], raw[5]
    if r.legacy:
        key, version_id, marker = bytes(raw[0]), versions.NULL_ID, False
    else:
        key, stamp = versions.split_row_key(bytes(raw[0]))
        version_id, marker = versions.version_id(stamp, bool(raw[_NULL])), bool(raw[_MARKER])
    text = key.decode("utf-8", "surrogateescape")
    alg, kind = checksum_of(raw[_SUMS])
    return Version(text, version_id, text != previous, int(mtime_ms), str(etag), int(size),
                   str(storage_class or "STANDARD"), marker, alg, kind)


def render(bucket: BucketRecord, prefix: str, delimiter: str | None, max_keys: int,
           url: bool, key_marker: str, version_id_marker: str, page: VersionsPage) -> bytes:
    """The ListVersionsResult document, in the element order of AWS's answers."""
    def enc(text: str) -> str:
        return esc(quote(text, safe="/") if url else text)

    name = esc(bucket.owner)
    owner = f"<Owner><ID>{name}</ID><DisplayName>{name}</DisplayName></Owner>"
    items = []
    for e in page.entries:
        head = (f"<Key>{enc(e.key)}</Key><VersionId>{e.version_id}</VersionId>"
                f"<IsLatest>{'true' if e.latest else 'false'}</IsLatest>"
                f"<LastModified>{iso8601(e.mtime_ms)}</LastModified>")
        items.append(f"<DeleteMarker>{head}{owner}</DeleteMarker>" if e.marker else
                     f"<Version>{head}<ETag>{esc(e.etag)}</ETag>"
                     f"{checksum_elements(e.checksum_algorithm, e.checksum_type)}"
                     f"<Size>{e.size}</Size>"
                     f"<StorageClass>{e.storage_class}</StorageClass>{owner}</Version>")
    nxt = ""
    if page.next_key is not None:
        nxt = f"<NextKeyMarker>{enc(page.next_key)}</NextKeyMarker>"
        if page.next_version_id is not None:
            nxt += f"<NextVersionIdMarker>{page.next_version_id}</NextVersionIdMarker>"
    body = (
        f'{HEAD}<ListVersionsResult xmlns="{NS}">'
        f"<Name>{esc(bucket.name)}</Name><Prefix>{enc(prefix)}</Prefix>"
        f"<KeyMarker>{enc(key_marker)}</KeyMarker>"
        f"<VersionIdMarker>{esc(version_id_marker)}</VersionIdMarker>{nxt}"
        f"<MaxKeys>{max_keys}</MaxKeys>"
        + (f"<Delimiter>{enc(delimiter)}</Delimiter>" if delimiter else "")
        + f"<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>"
        + "".join(items)
        + "".join(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>"
                  for p in page.prefixes)
        + ("<EncodingType>url</EncodingType>" if url else "")
        + "</ListVersionsResult>")
    return body.encode()
