"""S3 XML documents: rendering responses and parsing request bodies.

Pure. Rendering builds strings directly (the documents are flat and hot on listings);
parsing goes through defusedxml so that no entity is ever expanded and no DTD resolved.
Element names and order follow botocore's service model for each shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from gateway import errors, limits

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def esc(text: str) -> str:
    """Escape for element content; control characters S3 keys may hold become references."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if any(ord(c) < 0x20 for c in out):
        out = "".join(f"&#x{ord(c):X};" if ord(c) < 0x20 else c for c in out)
    return out


def iso8601(ms: int) -> str:
    """S3's timestamp form in XML: 2006-02-03T16:45:09.000Z."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def http_date(ms: int) -> str:
    """RFC 7231 date for Last-Modified headers."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _el(name: str, value: str | int | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{esc(str(value))}</{name}>"


def party(tag: str, tenant: str) -> str:
    """An Owner or Initiator element: a tenant's name is both its ID and its display name."""
    return f"<{tag}><ID>{esc(tenant)}</ID><DisplayName>{esc(tenant)}</DisplayName></{tag}>"


def _owner(owner_id: str, display: str) -> str:
    return f"<Owner><ID>{esc(owner_id)}</ID><DisplayName>{esc(display)}</DisplayName></Owner>"


def list_buckets(owner_id: str, buckets: Iterable[tuple[str, int]], region: str,
                 next_token: str | None = None, prefix: str | None = None) -> bytes:
    items = "".join(
        f"<Bucket><Name>{esc(n)}</Name><CreationDate>{iso8601(ms)}</CreationDate>"
        f"<BucketRegion>{esc(region)}</BucketRegion></Bucket>"
        for n, ms in buckets
    )
    body = (
        f'{HEAD}<ListAllMyBucketsResult xmlns="{NS}"><Buckets>{items}</Buckets>'
        f"{_owner(owner_id, owner_id)}{_el('ContinuationToken', next_token)}"
        f"{_el('Prefix', prefix)}</ListAllMyBucketsResult>"
    )
    return body.encode()


class ListEntry(NamedTuple):
    """One key of a listing (a tuple: a 1000-key page builds 1000 of them)."""

    key: str
    last_modified_ms: int
    etag: str
    size: int
    storage_class: str = "STANDARD"


@dataclass(frozen=True)
class ListPage:
    """One page of a listing, before it is rendered as V1 or V2."""

    entries: Sequence[ListEntry]
    common_prefixes: Sequence[str]
    truncated: bool
    next_key: str | None          # last key or prefix returned, when truncated


def location(region: str) -> bytes:
    # us-east-1 is the empty LocationConstraint, as AWS answers it.
    value = "" if region == "us-east-1" else esc(region)
    return f'{HEAD}<LocationConstraint xmlns="{NS}">{value}</LocationConstraint>'.encode()


def simple(root: str, fields: Sequence[tuple[str, str | int | bool | None]],
           namespace: bool = True) -> bytes:
    """A flat result document: <Root><A>..</A><B>..</B></Root>."""
    inner = "".join(_el(k, v) for k, v in fields)
    ns = f' xmlns="{NS}"' if namespace else ""
    return f'{HEAD}<{root}{ns}>{inner}</{root}>'.encode()


def tagging(tags: Sequence[tuple[str, str]]) -> bytes:
    items = "".join(f"<Tag>{_el('Key', k)}{_el('Value', v)}</Tag>" for k, v in tags)
    return f'{HEAD}<Tagging xmlns="{NS}"><TagSet>{items}</TagSet></Tagging>'.encode()


class Deleted(NamedTuple):
    """One key of a DeleteObjects answer: the version asked for, and whether a delete
    marker was made or removed (then its id)."""

    key: str
    version_id: str | None
    delete_marker: bool
    marker_version_id: str | None


def delete_result(deleted: Sequence[Deleted],
                  failed: Sequence[tuple[str, str | None, str, str]], quiet: bool) -> bytes:
    parts = [] if quiet else [
        f"<Deleted>{_el('Key', d.key)}{_el('VersionId', d.version_id)}"
        + (_el("DeleteMarker", True) if d.delete_marker else "")
        + f"{_el('DeleteMarkerVersionId', d.marker_version_id)}</Deleted>" for d in deleted]
    parts.extend(
        f"<Error>{_el('Key', k)}{_el('VersionId', v)}{_el('Code', c)}{_el('Message', m)}"
        "</Error>" for k, v, c, m in failed
    )
    return f'{HEAD}<DeleteResult xmlns="{NS}">{"".join(parts)}</DeleteResult>'.encode()


# ---- parsing -----------------------------------------------------------------------------


def local_name(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _element(body: bytes) -> Element:
    """A client's XML document, parsed safely (any root)."""
    if len(body) > limits.xml_body_bytes_max:
        raise errors.MalformedXML()
    try:
        elem: Element = safe_et.fromstring(body)
    except (DefusedXmlException, SyntaxError, ValueError):
        raise errors.MalformedXML() from None
    return elem


def parse(body: bytes, root: str) -> Element:
    """Parse a client's XML body safely; its root element must be `root`."""
    elem = _element(body)
    if local_name(elem.tag) != root:
        raise errors.MalformedXML()
    return elem


def children(elem: Element, name: str) -> list[Element]:
    return [c for c in elem if local_name(c.tag) == name]


def child_text(elem: Element, name: str) -> str | None:
    for c in elem:
        if local_name(c.tag) == name:
            return c.text or ""
    return None


def parse_form_tagging(body: bytes) -> list[tuple[str, str]]:
    """A browser form's tagging field: PutObjectTagging's document, except that AWS
    stores the object untagged when the document is well-formed XML with another root
    (LocalStack's validated test_post_object_with_tags[invalid]); not XML is MalformedXML."""
    if local_name(_element(body).tag) != "Tagging":
        return []
    return parse_tagging(body)


def parse_tagging(body: bytes) -> list[tuple[str, str]]:
    root = parse(body, "Tagging")
    tagsets = children(root, "TagSet")
    if not tagsets:         # AWS: a Tagging without a TagSet sets none (clears them)
        return []
    if len(tagsets) != 1:
        raise errors.MalformedXML()
    return tag_list(tagsets[0])


def tag_list(elem: Element) -> list[tuple[str, str]]:
    """The <Tag> children of a TagSet (or of CreateBucketConfiguration's <Tags>)."""
    tags: list[tuple[str, str]] = []
    for tag in children(elem, "Tag"):
        key, value = child_text(tag, "Key"), child_text(tag, "Value")
        if key is None or value is None:
            raise errors.MalformedXML()
        tags.append((key, value))
    return tags
