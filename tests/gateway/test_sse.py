"""gateway/sse.py: AES-CTR from any offset equals the slice of the whole; data keys sealed
under one master key (or one customer key) open only under it; SSE-C ETags; what writes
ask for; records that carry the SSE-C flag, and older ones; the bucket configuration as
botocore writes it."""

from __future__ import annotations

import dataclasses
import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors, sse, sse_customer
from gateway.manifest import Manifest
from gateway.sse_customer import CustomerKey
from gateway.uploads import Upload
from tests.gateway.botocore_offline import offline_client

KEY = bytes(range(32))
PLAIN = os.urandom(5000)
WHOLE = sse.crypt(KEY, b"data-id", 0, PLAIN)


@settings(max_examples=200)
@given(st.integers(0, len(PLAIN)), st.integers(0, len(PLAIN)))
def test_any_range_decrypts_alone(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    assert sse.crypt(KEY, b"data-id", lo, WHOLE[lo:hi]) == PLAIN[lo:hi]


def test_runs_and_keys_never_share_a_keystream() -> None:
    assert WHOLE != PLAIN
    assert sse.crypt(KEY, b"other-id", 0, PLAIN) != WHOLE
    assert sse.crypt(bytes(32), b"data-id", 0, PLAIN) != WHOLE
    assert sse.crypt(KEY, b"", 0, PLAIN) not in (WHOLE, PLAIN)


def _flip(sealed: bytes) -> bytes:
    return sealed[:-1] + bytes([sealed[-1] ^ 1])


def test_data_keys_open_only_under_their_master() -> None:
    keys = sse.Keys(os.urandom(32))
    dk = keys.new()
    assert dk.key is not None and not dk.by_customer
    assert keys.open(dk.sealed) == dk and dk.key not in dk.sealed
    assert keys.new().key != dk.key
    assert sse.Keys(os.urandom(32)).open(dk.sealed) is None
    assert keys.open(_flip(dk.sealed)) is None
    with pytest.raises(errors.InternalError):      # never served as garbage
        keys.stored(_flip(dk.sealed), None, sse_customer.READ)


def test_customer_keys_seal_what_only_they_open() -> None:
    master = os.urandom(32)
    keys = sse.Keys(master)
    alice, bob = CustomerKey(os.urandom(32), "a"), CustomerKey(os.urandom(32), "b")
    dk = keys.new(alice)
    assert dk.by_customer and dk.key is not None and alice.key not in dk.sealed
    assert keys.open(dk.sealed, alice) == dk
    assert sse.Keys(master).stored(dk.sealed, alice, sse_customer.READ).key == dk.key
    assert keys.open(dk.sealed) is None                 # not the cluster's key
    assert keys.open(dk.sealed, bob) is None
    assert sse.Keys(os.urandom(32)).open(dk.sealed, alice) is None  # salted by the master
    assert keys.open(keys.new().sealed, alice) is None   # an SSE-S3 key stays the cluster's
    with pytest.raises(errors.AccessDenied):
        keys.stored(dk.sealed, bob, sse_customer.READ)
    with pytest.raises(errors.InvalidArgument):
        keys.stored(dk.sealed, bob, sse_customer.PART)


def test_only_sse_c_etags_hide_the_md5() -> None:
    md5 = '"' + "ab" * 16 + '"'
    keys = sse.Keys(os.urandom(32))
    assert sse.PLAIN.etag(md5) == md5 and keys.new().etag(md5) == md5
    customer = CustomerKey(os.urandom(32), "m")
    dk = keys.new(customer)
    hidden = dk.etag(md5)
    assert hidden != md5 and len(hidden) == 34 and int(hidden.strip('"'), 16) >= 0
    assert keys.stored(dk.sealed, customer, sse_customer.READ).etag(md5) == hidden  # stable
    assert keys.new(customer).etag(md5) != hidden                 # another object's differs


def test_answers_name_the_encryption() -> None:
    customer = CustomerKey(bytes(32), "md5==")
    keys = sse.Keys(os.urandom(32))
    assert sse.PLAIN.response_headers() == {}
    assert keys.new().response_headers() == {sse.HEADER: sse.AES256}
    assert keys.new(customer).response_headers() == {
        sse_customer.ALGORITHM: "AES256",
        "x-amz-server-side-encryption-customer-key-MD5": "md5=="}
    assert sse.PLAIN.crypt(b"id", 5, b"abc") == b"abc"


S3_DEFAULT = sse.BucketDefault(sse.AES256)


def test_what_a_write_asks_for() -> None:
    assert sse.requested({}, None) is None
    assert sse.requested({}, S3_DEFAULT) == sse.Asked(sse.AES256)
    assert sse.requested({sse.HEADER: "AES256"}, None) == sse.Asked(sse.AES256)
    with pytest.raises(errors.NotImplementedError_):
        sse.requested({sse.HEADER: "aws:kms:dsse"}, None)
    assert sse.requested({sse_customer.ALGORITHM: "AES256"}, None) is None  # SSE-C's own
    with pytest.raises(errors.InvalidArgument):
        sse.requested({sse.HEADER: "ROT13"}, None)


@pytest.mark.parametrize("h", [
    {sse.KMS_KEY_ID: "k1"},                                 # a KMS key without aws:kms
    {sse.HEADER: "AES256", sse.KMS_KEY_ID: "k1"},
    {sse_customer.ALGORITHM: "AES256", sse.HEADER: "AES256"},
    {sse_customer.KEY_MD5: "DWygnHRtgiJ77HCm+1rvHw==", sse.HEADER: "AES256"},
    {sse_customer.ALGORITHM: "AES256", sse.HEADER: "aws:kms"},
])
def test_conflicting_encryption_is_invalid_argument(h: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidArgument):
        sse.requested(h, S3_DEFAULT)


def test_reads_name_no_encryption() -> None:
    sse.refuse_on_read({"Range": "bytes=0-1"})
    for h in ({sse.HEADER: "AES256"}, {sse.HEADER: "aws:kms"}, {sse.KMS_KEY_ID: "k1"}):
        with pytest.raises(errors.InvalidArgument):
            sse.refuse_on_read(h)


def test_records_keep_the_customer_flag_and_old_ones_still_load() -> None:
    m = Manifest(3, '"e"', 5, inline=b"abc", sse=b"s" * 60)
    body = msgpack.unpackb(m.encode())
    assert len(body) == 19          # an SSE-S3 record is laid out as before the flag
    assert Manifest.decode(m.encode()) == m
    sealed_c = dataclasses.replace(m, sse_customer=True)
    assert Manifest.decode(sealed_c.encode()) == sealed_c and len(msgpack.unpackb(
        sealed_c.encode())) == 20
    up = Upload("k", "id", 1, sse=b"s" * 60, sse_customer=True)
    assert Upload.decode(up.encode()) == up
    old = msgpack.unpackb(up.encode())[:12]     # as written before the flag
    assert Upload.decode(msgpack.packb(old)) == dataclasses.replace(up, sse_customer=False)


def test_bucket_configuration_as_botocore_writes_it() -> None:
    seen: list[bytes] = []
    offline_client("PutBucketEncryption", b"", seen).put_bucket_encryption(
        Bucket="b", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
             "BucketKeyEnabled": True}]})
    asked = sse.BucketDefault(sse.AES256, bucket_key=True)
    assert sse.parse_configuration(seen[0]) == asked
    assert sse.parse_configuration(sse.render_configuration(asked)) == asked
    got = offline_client("GetBucketEncryption", sse.render_configuration(S3_DEFAULT),
                         []).get_bucket_encryption(Bucket="b")
    rule = got["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert rule["BucketKeyEnabled"] is False
    seen.clear()
    offline_client("PutBucketEncryption", b"", seen).put_bucket_encryption(
        Bucket="b", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}]})
    with pytest.raises(errors.NotImplementedError_):
        sse.parse_configuration(seen[0])
