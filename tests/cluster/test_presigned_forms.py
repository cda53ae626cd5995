"""Presigned URLs and browser POST forms as AWS answers them (LocalStack's AWS-validated
TestS3PresignedUrl / TestS3PresignedPost snapshots, s3-tests' test_post_object_*): the
x-amz-* parameters of a presigned URL act as headers; a form's missing fields, bad storage
class and unusable redirect get AWS's answers."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import boto3
import pytest
from botocore.config import Config as BotoConfig

from gateway import sigv4_client
from tests.cluster.harness import Cluster

BUCKET = "forms"


@pytest.fixture(scope="module")
def bucket(cluster: Cluster) -> Iterator[str]:
    cluster.s3().create_bucket(Bucket=BUCKET)
    yield BUCKET


def _client(cluster: Cluster, version: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=cluster.endpoint, region_name=cluster.config.region,
        aws_access_key_id=cluster.key.access_key, aws_secret_access_key=cluster.key.secret_key,
        config=BotoConfig(signature_version=version, s3={"addressing_style": "path"},
                          retries={"max_attempts": 1}))


def _send(url: str, method: str, body: bytes = b"",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=30)
    conn.request(method, f"{parts.path}?{parts.query}" if parts.query else parts.path,
                 body=body, headers=headers or {})
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def _error(body: bytes) -> dict[str, str | None]:
    return {child.tag: child.text for child in ElementTree.fromstring(body)}


# ---------------------------------------------------------------- presigned URLs


def test_sigv2_presigned_put_keeps_query_metadata(cluster: Cluster, bucket: str) -> None:
    """LocalStack test_put_url_metadata_with_sig_s3: boto3's SigV2 presigner puts
    Metadata in the query (signed as amz headers); AWS stores it. Coffre dropped it. A
    header the URL did not sign still breaks the signature and changes nothing."""
    url = _client(cluster, "s3").generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "v2-meta", "Metadata": {"foo": "bar"},
                              "ACL": "public-read", "Tagging": "team=geo"})
    assert "x-amz-meta-foo=bar" in url
    status, _, body = _send(url, "PUT", b"content 123")
    assert (status, body) == (200, b"")
    s3 = cluster.s3()
    assert s3.head_object(Bucket=bucket, Key="v2-meta")["Metadata"] == {"foo": "bar"}
    assert s3.get_object_tagging(Bucket=bucket, Key="v2-meta")["TagSet"] == [
        {"Key": "team", "Value": "geo"}]
    grants = s3.get_object_acl(Bucket=bucket, Key="v2-meta")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)
    status, _, body = _send(url, "PUT", b"other", {"x-amz-meta-wrong": "wrong"})
    assert (status, _error(body)["Code"]) == (403, "SignatureDoesNotMatch")
    assert s3.head_object(Bucket=bucket, Key="v2-meta")["Metadata"] == {"foo": "bar"}


def test_sigv4_presigned_put_with_metadata_in_query(cluster: Cluster, bucket: str) -> None:
    """A SigV4 URL may carry x-amz-meta-* in its (signed) query, as SDKs that hoist
    headers make it: AWS stores it as metadata. botocore's own URL signs it as a header,
    which must then be sent (LocalStack test_put_url_metadata_with_sig_s3v4)."""
    url = sigv4_client.presign_url(
        "PUT", f"{cluster.endpoint}/{bucket}/v4-meta?x-amz-meta-city=paris",
        cluster.key.access_key, cluster.key.secret_key, cluster.config.region,
        datetime.now(UTC), 300)
    status, _, body = _send(url, "PUT", b"v4")
    assert (status, body) == (200, b"")
    s3 = cluster.s3()
    assert s3.head_object(Bucket=bucket, Key="v4-meta")["Metadata"] == {"city": "paris"}
    # An x-amz-* header the URL did not sign is refused, as on AWS (HeadersNotSigned).
    status, _, body = _send(url, "PUT", b"v4", {"x-amz-meta-city": "lyon"})
    assert (status, _error(body).get("HeadersNotSigned")) == (403, "x-amz-meta-city")
    signed = _client(cluster, "s3v4").generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "v4-header", "Metadata": {"a": "b"}})
    assert "x-amz-meta-a=" not in signed
    status, _, body = _send(signed, "PUT", b"x")
    assert status == 403, body
    assert _send(signed, "PUT", b"x", {"x-amz-meta-a": "b"})[0] == 200
    assert s3.head_object(Bucket=bucket, Key="v4-header")["Metadata"] == {"a": "b"}


def test_sigv2_presigned_copy_copies(cluster: Cluster, bucket: str) -> None:
    """LocalStack test_s3_copy_md5: a SigV2 presigned CopyObject names its source in the
    query (x-amz-copy-source). Coffre routed it as a PutObject and stored an empty object
    under the destination (200); AWS copies."""
    s3 = cluster.s3()
    s3.put_object(Bucket=bucket, Key="src", Body=b"something")
    url = _client(cluster, "s3").generate_presigned_url(
        "copy_object", Params={"Bucket": bucket, "Key": "dest",
                               "CopySource": {"Bucket": bucket, "Key": "src"}})
    assert "x-amz-copy-source=" in url
    status, _, body = _send(url, "PUT")
    assert status == 200, body
    assert ElementTree.fromstring(body).tag.endswith("CopyObjectResult")
    assert s3.get_object(Bucket=bucket, Key="dest")["Body"].read() == b"something"
