"""The multipart upload record: records written before a field existed still read, and
ListParts / ListMultipartUploads name who initiated an upload apart from who will own it."""

from __future__ import annotations

from xml.etree import ElementTree

import botocore.session
import msgpack

from gateway.manifest import BucketRecord
from gateway.multipart_checksums import DEFAULT_UPLOAD
from gateway.s3xml import NS
from gateway.upload_xml import (
    PartsPage,
    UploadsPage,
    UploadsQuery,
    list_parts,
    list_uploads,
    parties,
)
from gateway.uploads import Part, Upload

OWNER = "agency-a"

# An upload record exactly as the gateway wrote it before the initiator was kept.
UPLOAD_BEFORE_INITIATOR_HEX = (
    "9c01ac646174612f6269672e62696ea55550494431cf0000018bcfe5680081ac636f6e74656e742d74797065"
    "b86170706c69636174696f6e2f6f637465742d73747265616d81a377686fa26d659192a161a162a5435243"
    "3332a9434f4d504f534954459080c400")


def _bucket() -> BucketRecord:
    return BucketRecord("shared", b"\x02" * 8, OWNER, 1_700_000_000_000, 4, 2, 8)


def test_a_record_from_before_the_initiator_still_reads() -> None:
    raw = bytes.fromhex(UPLOAD_BEFORE_INITIATOR_HEX)
    assert len(msgpack.unpackb(raw)) == 12
    up = Upload.decode(raw)
    assert (up.key, up.upload_id, up.checksum_alg, up.meta) == (
        "data/big.bin", "UPID1", "CRC32", {"who": "me"})
    assert up.initiator is None


def test_the_initiator_round_trips() -> None:
    for who in ("agency-b", ""):
        up = Upload("k", "UPID2", 1, initiator=who)
        assert Upload.decode(up.encode()) == up


def test_initiator_and_owner_are_told_apart() -> None:
    b = _bucket()
    by_other = parties(b.owner, Upload("k", "U", 1, initiator="agency-b"))
    assert by_other == ("<Initiator><ID>agency-b</ID><DisplayName>agency-b</DisplayName>"
                        "</Initiator><Owner><ID>agency-a</ID><DisplayName>agency-a"
                        "</DisplayName></Owner>")
    # Not recorded: the bucket's owner, as such records were always shown.
    assert parties(b.owner, Upload("k", "U", 1)).count(f"<ID>{OWNER}</ID>") == 2
    # Anonymous: no one to name, the Initiator is left out (it is optional).
    assert parties(b.owner, Upload("k", "U", 1, initiator="")).startswith("<Owner>")


def _model_order(shape: str) -> list[str]:
    model = botocore.session.get_session().get_service_model("s3")
    members = model.shape_for(shape).members
    return [m.serialization.get("name", n) for n, m in members.items()
            if m.serialization.get("location") is None]


def _child_order(body: bytes) -> list[str]:
    names = [c.tag.rsplit("}", 1)[-1] for c in ElementTree.fromstring(body)]
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]   # runs as one


def test_list_parts_follows_the_model_order_and_shows_checksums() -> None:
    up = Upload("k", "U", 1, checksum_alg="SHA256", checksum_type="COMPOSITE")
    parts = [Part(1, '"e"', 5, 1, None, "c1"), Part(2, '"e"', 5, 1, None, "c2")]
    body = list_parts("b", OWNER, up, PartsPage(parts, 0, 1000, False))
    order = _child_order(body)
    model = _model_order("ListPartsOutput")
    assert order == [n for n in model if n in order] and "ChecksumType" in order
    part = ElementTree.fromstring(body).find(f"{{{NS}}}Part")
    assert part is not None
    assert [c.tag.rsplit("}", 1)[-1] for c in part] == [
        "PartNumber", "LastModified", "ETag", "Size", "ChecksumSHA256"]


def test_list_uploads_follows_the_model_order() -> None:
    q = UploadsQuery("p", "/", "", "", 1000, True)
    page = UploadsPage([Upload("p1", "U", 1, checksum_alg="CRC32",
                               checksum_type="FULL_OBJECT")], ["p/"], False)
    order = _child_order(list_uploads("b", OWNER, q, page))
    assert order == [n for n in _model_order("ListMultipartUploadsOutput") if n in order]
    assert {"NextKeyMarker", "NextUploadIdMarker", "EncodingType"} <= set(order)


def test_the_completes_claim_round_trips_and_old_records_are_unclaimed() -> None:
    up = Upload("k", "U", 1, completing_ms=1_700_000_000_123)
    raw = up.encode()
    assert Upload.decode(raw) == up and len(msgpack.unpackb(raw)) == 19
    assert Upload.decode(msgpack.packb(msgpack.unpackb(raw)[:17])).completing_ms == 0


def test_the_default_checksum_flag_round_trips_and_old_records_have_none() -> None:
    up = Upload("k", "U", 1, checksum_default=True)
    assert Upload.decode(up.encode()).checksum == DEFAULT_UPLOAD
    old = Upload.decode(msgpack.packb(msgpack.unpackb(up.encode())[:18]))
    assert not old.checksum_default and old.checksum.algorithm is None


def test_list_parts_of_a_defaulted_upload_shows_no_checksum() -> None:
    up = Upload("k", "U", 1, checksum_default=True)
    body = list_parts("b", OWNER, up, PartsPage([Part(1, '"e"', 5, 1, None, "c1")], 0, 1000,
                                                False))
    names = [c.tag.rsplit("}", 1)[-1] for c in ElementTree.fromstring(body).iter()]
    assert not [n for n in names if n.startswith("Checksum")]
