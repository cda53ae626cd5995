"""gateway/sse_customer.py: the SSE-C headers as boto3 sends them, each faulty set refused
with AWS's code and message, and when a request must name a key."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway import errors, sse_customer
from gateway.sse_customer import ALGORITHM, KEY, KEY_MD5, CustomerKey
from tests.gateway.botocore_offline import offline_client

RAW = bytes(range(32))
B64 = base64.b64encode(RAW).decode()
MD5 = base64.b64encode(hashlib.md5(RAW).digest()).decode()
GOOD = {ALGORITHM: "AES256", KEY: B64, KEY_MD5: MD5}


def test_boto3s_headers_give_the_key() -> None:
    sent: list[dict[str, str]] = []
    client = offline_client("PutObject", b"", [], headers_seen=sent)
    client.put_object(Bucket="b", Key="k", Body=b"x", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=RAW)
    h = {k.lower(): v for k, v in sent[0].items()}
    assert sse_customer.from_headers(h) == CustomerKey(RAW, MD5)
    assert sse_customer.named(h) and not sse_customer.named({"x-amz-meta-a": "b"})
    assert sse_customer.from_headers({}) is None
    assert sse_customer.from_headers(GOOD, copy_source=True) is None
    source = {"x-amz-copy-source-server-side-encryption-customer-algorithm": "AES256",
              "x-amz-copy-source-server-side-encryption-customer-key": B64,
              "x-amz-copy-source-server-side-encryption-customer-key-md5": MD5}
    assert sse_customer.from_headers(source, copy_source=True) == CustomerKey(RAW, MD5)
    assert sse_customer.from_headers(source) is None
    assert repr(RAW) not in repr(sse_customer.from_headers(GOOD))     # never in a log line


@pytest.mark.parametrize(("change", "code", "message"), [
    ({ALGORITHM: None}, "InvalidArgument", "must provide a valid encryption algorithm."),
    ({ALGORITHM: "AES128"}, "InvalidEncryptionAlgorithmError", "The valid value is AES256."),
    ({KEY: None}, "InvalidArgument", "must provide an appropriate secret key."),
    ({KEY: base64.b64encode(RAW[:16]).decode()}, "InvalidArgument",
     "The secret key was invalid for the specified algorithm."),
    ({KEY: "not base64!"}, "InvalidArgument", "The secret key was invalid"),
    ({KEY_MD5: None}, "InvalidArgument", "the client calculated MD5 of the secret key."),
    ({KEY_MD5: "AAAAAAAAAAAAAAAAAAAAAA=="}, "InvalidArgument",
     "The calculated MD5 hash of the key did not match the hash that was provided."),
    ({KEY_MD5: "???"}, "InvalidArgument", "did not match"),
    ({ALGORITHM: None, KEY: None}, "InvalidArgument", "valid encryption algorithm"),
])
def test_faulty_sets_are_refused(change: dict[str, str | None], code: str,
                                 message: str) -> None:
    h = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(errors.S3Error) as exc:
        sse_customer.from_headers(h)
    assert (exc.value.status, exc.value.code) == (400, code)
    assert message in exc.value.message
    assert B64 not in exc.value.to_xml("rid").decode()    # the key is never echoed


@pytest.mark.parametrize("rules", [sse_customer.READ, sse_customer.PART])
def test_a_key_is_needed_exactly_for_what_has_one(rules: sse_customer.Rules) -> None:
    given = CustomerKey(RAW, MD5)
    sse_customer.check(True, given, rules)
    sse_customer.check(False, None, rules)
    with pytest.raises(errors.InvalidRequest) as exc:
        sse_customer.check(True, None, rules)
    assert exc.value.message == rules.missing
    with pytest.raises(errors.InvalidRequest) as exc:
        sse_customer.check(False, given, rules)
    assert exc.value.message == sse_customer.NOT_APPLICABLE


def test_a_wrong_key_is_403_on_reads_and_400_on_parts() -> None:
    assert (sse_customer.READ.wrong().status, sse_customer.READ.wrong().code) == \
        (403, "AccessDenied")
    assert (sse_customer.PART.wrong().status, sse_customer.PART.wrong().code) == \
        (400, "InvalidArgument")
