"""gateway/sse.py: AES-CTR from any offset equals the slice of the whole; data keys sealed
under one master key open only under it; what writes ask for; the bucket configuration as
botocore writes it."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors, sse
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


def test_data_keys_open_only_under_their_master() -> None:
    keys = sse.Keys(os.urandom(32))
    key, sealed = keys.new()
    assert keys.open(sealed) == key and key not in sealed
    assert keys.new()[0] != key
    with pytest.raises(errors.InternalError):
        sse.Keys(os.urandom(32)).open(sealed)
    with pytest.raises(errors.InternalError):
        keys.open(sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_what_a_write_asks_for() -> None:
    assert sse.requested({}, "") is False
    assert sse.requested({}, sse.AES256) is True
    assert sse.requested({sse.HEADER: "AES256"}, "") is True
    with pytest.raises(errors.NotImplementedError_):
        sse.requested({sse.HEADER: "aws:kms"}, "")
    with pytest.raises(errors.NotImplementedError_):
        sse.requested({"x-amz-server-side-encryption-customer-algorithm": "AES256"}, "")
    with pytest.raises(errors.InvalidArgument):
        sse.requested({sse.HEADER: "ROT13"}, "")


@pytest.mark.parametrize("h", [
    {sse.KMS_KEY_ID: "k1"},                                 # a KMS key without aws:kms
    {sse.HEADER: "AES256", sse.KMS_KEY_ID: "k1"},
    {"x-amz-server-side-encryption-customer-key-md5": "DWygnHRtgiJ77HCm+1rvHw=="},
    {"x-amz-server-side-encryption-customer-key": "a2V5"},
    {"x-amz-server-side-encryption-customer-algorithm": "AES256", sse.HEADER: "AES256"},
    {"x-amz-server-side-encryption-customer-algorithm": "AES256", sse.HEADER: "aws:kms"},
])
def test_partial_or_conflicting_encryption_is_invalid_argument(h: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidArgument):
        sse.requested(h, sse.AES256)


def test_kms_with_its_key_is_still_not_offered() -> None:
    with pytest.raises(errors.NotImplementedError_):
        sse.requested({sse.HEADER: "aws:kms", sse.KMS_KEY_ID: "k1"}, "")


def test_reads_name_no_encryption() -> None:
    sse.refuse_on_read({"Range": "bytes=0-1"})
    for h in ({sse.HEADER: "AES256"}, {sse.HEADER: "aws:kms"}, {sse.KMS_KEY_ID: "k1"}):
        with pytest.raises(errors.InvalidArgument):
            sse.refuse_on_read(h)


def test_bucket_configuration_as_botocore_writes_it() -> None:
    seen: list[bytes] = []
    offline_client("PutBucketEncryption", b"", seen).put_bucket_encryption(
        Bucket="b", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
             "BucketKeyEnabled": True}]})
    assert sse.parse_configuration(seen[0]) == sse.AES256
    assert sse.parse_configuration(sse.render_configuration(sse.AES256)) == sse.AES256
    got = offline_client("GetBucketEncryption", sse.render_configuration(sse.AES256),
                         []).get_bucket_encryption(Bucket="b")
    rule = got["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    seen.clear()
    offline_client("PutBucketEncryption", b"", seen).put_bucket_encryption(
        Bucket="b", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    with pytest.raises(errors.NotImplementedError_):
        sse.parse_configuration(seen[0])
