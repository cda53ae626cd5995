"""The multipart upload record: records written before a field existed still read, and
ListParts / ListMultipartUploads name who initiated an upload apart from who will own it."""

from __future__ import annotations

import msgpack

from gateway.handlers.multipart import _parties
from gateway.manifest import BucketRecord
from gateway.uploads import Upload

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
    by_other = _parties(b, Upload("k", "U", 1, initiator="agency-b"))
    assert by_other == ("<Initiator><ID>agency-b</ID><DisplayName>agency-b</DisplayName>"
                        "</Initiator><Owner><ID>agency-a</ID><DisplayName>agency-a"
                        "</DisplayName></Owner>")
    # Not recorded: the bucket's owner, as such records were always shown.
    assert _parties(b, Upload("k", "U", 1)).count(f"<ID>{OWNER}</ID>") == 2
    # Anonymous: no one to name, the Initiator is left out (it is optional).
    assert _parties(b, Upload("k", "U", 1, initiator="")).startswith("<Owner>")
