"""Transfer Acceleration's configuration (gateway/accelerate.py) and its slot in the bucket
record: AWS's validation, Get's empty answer, old records still read."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from gateway import accelerate, errors, sse
from gateway.manifest import BucketRecord

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def _body(inner: str) -> bytes:
    return f"<AccelerateConfiguration {NS}>{inner}</AccelerateConfiguration>".encode()


def test_status_is_enabled_or_suspended() -> None:
    assert accelerate.parse(_body("<Status>Enabled</Status>")) == "Enabled"
    assert accelerate.parse(_body("<Status>Suspended</Status>")) == "Suspended"
    for bad in (_body("<Status>enabled</Status>"), _body(""), _body("<Status></Status>"),
                b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"):
        with pytest.raises(errors.S3Error) as exc:
            accelerate.parse(bad)
        assert exc.value.code == "MalformedXML"


def test_a_dotted_bucket_is_refused() -> None:
    accelerate.check_bucket("plain-name")
    with pytest.raises(errors.S3Error) as exc:
        accelerate.check_bucket("www.example.com")
    assert (exc.value.code, exc.value.status) == ("InvalidRequest", 400)
    assert exc.value.message == ("S3 Transfer Acceleration is not supported for buckets "
                                 "with periods (.) in their names")


def test_render_names_the_status_only_once_set() -> None:
    assert accelerate.render("").endswith(f"<AccelerateConfiguration {NS}>"
                                          "</AccelerateConfiguration>".encode())
    assert b"<Status>Suspended</Status>" in accelerate.render("Suspended")


# A bucket record as the gateway wrote it before the accelerate slot ([22]): versioned,
# SSE-KMS default encryption, 22 elements.
BUCKET_BEFORE_ACCELERATE_HEX = (
    "dc001602a86f6c642d73697465c4080101010101010101a86167656e63792d61cf0000018bcfe5680004"
    "02089090a090c090c0a0a7456e61626c6564c0a76177733a6b6d73c0a7616c6961732f6bc3")


def test_records_before_the_slot_read_as_never_set() -> None:
    raw = bytes.fromhex(BUCKET_BEFORE_ACCELERATE_HEX)
    assert len(msgpack.unpackb(raw)) == 22
    b = BucketRecord.decode(raw)
    assert (b.name, b.owner, b.versioning, b.accelerate) == ("old-site", "agency-a",
                                                             "Enabled", "")
    assert b.encryption == sse.BucketDefault(sse.KMS, "alias/k", True)
    now = dataclasses.replace(b, accelerate="Enabled")
    assert len(msgpack.unpackb(now.encode())) == 23     # one slot added at the end
    assert BucketRecord.decode(now.encode()) == now
