"""Presigned URLs and browser POST forms as AWS answers them (LocalStack's AWS-validated
TestS3PresignedUrl / TestS3PresignedPost snapshots, s3-tests' test_post_object_*): the
x-amz-* parameters of a presigned URL act as headers; a form's missing fields, bad storage
class and unusable redirect get AWS's answers."""

from __future__ import annotations

import base64
import hashlib
import http.client
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import boto3
import pytest
from awscrt import checksums as crt
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


# ---------------------------------------------------------------- browser POST forms


def _post(url: str, fields: dict[str, str], data: bytes = b"file content",
          filename: str = "f.txt") -> tuple[int, dict[str, str], bytes]:
    boundary = "coffre-form-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n".encode() for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
                 + data + f"\r\n--{boundary}--\r\n".encode())
    return _send(url, "POST", b"".join(parts),
                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _form(cluster: Cluster, bucket: str, key: str, fields: dict[str, str] | None = None,
          version: str = "s3v4") -> tuple[str, dict[str, str]]:
    """A presigned POST whose policy allows exactly `fields` (besides the bucket)."""
    fields = fields or {}
    post = _client(cluster, version).generate_presigned_post(
        bucket, key, Fields=fields, ExpiresIn=300,
        Conditions=[{"bucket": bucket}, *({k: v} for k, v in fields.items())])
    return post["url"], dict(post["fields"])


def _keys(cluster: Cluster, bucket: str, prefix: str) -> list[str]:
    listed = cluster.s3().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_post_storage_class_is_checked(cluster: Cluster, bucket: str) -> None:
    """LocalStack test_post_object_with_storage_class: an unknown x-amz-storage-class
    field is 400 InvalidStorageClass, as on a PUT (Coffre stored the object, 204); a known
    one is kept."""
    url, fields = _form(cluster, bucket, "sc/fake", {"x-amz-storage-class": "FakeClass"})
    status, _, body = _post(url, fields)
    assert status == 400, body
    assert _error(body) | {"RequestId": "", "HostId": ""} == {
        "Code": "InvalidStorageClass", "Message": "The storage class you specified is not valid",
        "StorageClassRequested": "FakeClass", "RequestId": "", "HostId": ""}
    url, fields = _form(cluster, bucket, "sc/ia", {"x-amz-storage-class": "STANDARD_IA"})
    assert _post(url, fields)[0] == 204
    assert cluster.s3().head_object(Bucket=bucket, Key="sc/ia")["StorageClass"] == "STANDARD_IA"
    assert _keys(cluster, bucket, "sc/") == ["sc/ia"]


def test_post_object_gets_the_default_checksum(cluster: Cluster, bucket: str) -> None:
    """A form sends no checksum: the object gets AWS's default full-object CRC64NVME (AWS's
    data integrity defaults of 2025: PutObject, CopyObject and POST alike)."""
    url, fields = _form(cluster, bucket, "crc/posted")
    data = b"posted bytes " * 1000
    assert _post(url, fields, data)[0] == 204
    head = cluster.s3().head_object(Bucket=bucket, Key="crc/posted", ChecksumMode="ENABLED")
    want = base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()
    assert (head.get("ChecksumCRC64NVME"), head.get("ChecksumType")) == (want, "FULL_OBJECT")


_HINT = "  If it is specified, please check the order of the fields."


@pytest.mark.parametrize(("version", "dropped", "named"), [
    ("s3", ("signature",), "Signature"),
    ("s3", ("AWSAccessKeyId",), "AWSAccessKeyId"),
    ("s3v4", ("x-amz-signature",), "X-Amz-Signature"),
    ("s3v4", ("x-amz-algorithm", "x-amz-credential"), "X-Amz-Algorithm"),
    ("s3v4", ("key",), "key"),
])
def test_post_missing_fields(cluster: Cluster, bucket: str, version: str,
                             dropped: tuple[str, ...], named: str) -> None:
    """LocalStack's validated test_post_request_missing_signature / _missing_fields
    snapshots: 400 InvalidArgument naming the first field missing as AWS spells it, with
    an empty ArgumentValue (Coffre named x-amz-signature or x-amz-credential, lower-cased,
    for all of them); nothing is stored."""
    url, fields = _form(cluster, bucket, f"missing/{version}", version=version)
    status, _, body = _post(url, {k: v for k, v in fields.items() if k not in dropped})
    assert status == 400, body
    assert {k: v for k, v in _error(body).items() if k.startswith(("Code", "Arg", "Mes"))} == {
        "Code": "InvalidArgument", "ArgumentName": named, "ArgumentValue": None,
        "Message": f"Bucket POST must contain a field named '{named}'.{_HINT}"}
    assert _keys(cluster, bucket, "missing/") == []


@pytest.mark.parametrize("version", ["s3", "s3v4"])
def test_post_policy_without_signature_or_malformed(cluster: Cluster, bucket: str,
                                                    version: str) -> None:
    """A policy with no signature fields at all is 403 AccessDenied "Access Denied" (was
    400 InvalidArgument); a truncated policy is SignatureDoesNotMatch showing the
    signature given and the policy as the string to sign (both LocalStack snapshots)."""
    url, fields = _form(cluster, bucket, f"bare/{version}", version=version)
    status, _, body = _post(url, {"key": fields["key"], "policy": fields["policy"]})
    assert (status, _error(body)["Code"], _error(body)["Message"]) == (
        403, "AccessDenied", "Access Denied")
    given = fields["signature" if version == "s3" else "x-amz-signature"]
    status, _, body = _post(url, {**fields, "policy": fields["policy"][:-2]})
    error = _error(body)
    assert (status, error["Code"]) == (403, "SignatureDoesNotMatch")
    assert (error["SignatureProvided"], error["StringToSign"], error["AWSAccessKeyId"]) == (
        given, fields["policy"][:-2], cluster.key.access_key)
    assert _keys(cluster, bucket, "bare/") == []


def test_post_redirect_and_status(cluster: Cluster, bucket: str) -> None:
    """A success_action_redirect S3 cannot use (a relative path) is ignored and the form
    answered per success_action_status (Coffre sent a 303 to it); an absolute one is a 303
    with bucket, key and ETag; a status other than 200, 201, 204 is 204 (s3-tests
    test_post_object_set_invalid_success_code)."""
    for redirect, status_field, want in (("/wrong/redirect/relative", None, 204),
                                         ("wrong-redirect", "201", 201),
                                         ("http:/no-host", "200", 200)):
        fields_in = {"success_action_redirect": redirect}
        if status_field:
            fields_in["success_action_status"] = status_field
        url, fields = _form(cluster, bucket, "redirect/relative", fields_in)
        status, headers, body = _post(url, fields)
        assert status == want, (redirect, body)
        assert headers["location"].endswith(f"/{bucket}/redirect/relative")
    url, fields = _form(cluster, bucket, "redirect/absolute",
                        {"success_action_redirect": "http://localhost.test/random"})
    status, headers, body = _post(url, fields)
    assert (status, body) == (303, b"")
    assert headers["location"].startswith("http://localhost.test/random?bucket=forms&key=")
    url, fields = _form(cluster, bucket, "redirect/status", {"success_action_status": "404"})
    assert _post(url, fields)[:3:2] == (204, b"")


def test_post_tagging_other_root_stores_untagged(cluster: Cluster, bucket: str) -> None:
    """LocalStack test_post_object_with_tags[invalid]: well-formed XML that is no Tagging
    document stores the object untagged (was 400 MalformedXML); text that is not XML is
    400 MalformedXML and stores nothing."""
    url, fields = _form(cluster, bucket, "tags/other",
                        {"tagging": "<InvalidXmlTagging></InvalidXmlTagging>"})
    assert _post(url, fields)[0] == 204
    assert cluster.s3().get_object_tagging(Bucket=bucket, Key="tags/other")["TagSet"] == []
    url, fields = _form(cluster, bucket, "tags/notxml", {"tagging": "not-xml"})
    status, _, body = _post(url, fields)
    assert (status, _error(body)["Code"]) == (400, "MalformedXML")
    assert _keys(cluster, bucket, "tags/") == ["tags/other"]


def test_post_metadata_is_held_to_the_put_limit(cluster: Cluster, bucket: str) -> None:
    """A form's x-amz-meta-* fields are user metadata as a PUT's headers are: over 2 KB
    (names and values) is 400 MetadataTooLarge and stores nothing; at the limit it is kept."""
    big = {"x-amz-meta-big": "v" * (2048 - len("big") + 1)}
    url, fields = _form(cluster, bucket, "meta/big", big)
    status, _, body = _post(url, fields)
    assert (status, _error(body)["Code"]) == (400, "MetadataTooLarge"), body
    assert _keys(cluster, bucket, "meta/") == []
    fits = {"x-amz-meta-big": "v" * (2048 - len("big"))}
    url, fields = _form(cluster, bucket, "meta/fits", fits)
    assert _post(url, fields)[0] == 204
    got = cluster.s3().head_object(Bucket=bucket, Key="meta/fits")["Metadata"]
    assert got == {"big": fits["x-amz-meta-big"]}


def _size_error(status: int, body: bytes) -> tuple[list[str], dict[str, str | None]]:
    """A size error's element names in order, and its elements but the request's ids."""
    assert status == 400, body
    found = _error(body)
    return list(found), {k: v for k, v in found.items() if k not in ("RequestId", "HostId")}


def test_post_outside_content_length_range_names_the_sizes(cluster: Cluster,
                                                           bucket: str) -> None:
    """A file outside the policy's content-length-range is 400 EntityTooSmall /
    EntityTooLarge whose document carries, after the Message, the size proposed and the
    bound it broke (AWS's answer: ProposedSize, MinSizeAllowed / MaxSizeAllowed); a file
    past what the gateway buffers names that limit. Nothing is stored."""
    post = _client(cluster, "s3v4").generate_presigned_post(
        bucket, "range/obj", ExpiresIn=300,
        Conditions=[{"bucket": bucket}, ["content-length-range", 5, 10]])
    small = _size_error(*_post(post["url"], dict(post["fields"]), b"abc")[::2])
    assert small == (
        ["Code", "Message", "ProposedSize", "MinSizeAllowed", "RequestId", "HostId"],
        {"Code": "EntityTooSmall",
         "Message": "Your proposed upload is smaller than the minimum allowed size",
         "ProposedSize": "3", "MinSizeAllowed": "5"})
    large = _size_error(*_post(post["url"], dict(post["fields"]), b"x" * 20)[::2])
    assert large == (
        ["Code", "Message", "ProposedSize", "MaxSizeAllowed", "RequestId", "HostId"],
        {"Code": "EntityTooLarge",
         "Message": "Your proposed upload exceeds the maximum allowed size",
         "ProposedSize": "20", "MaxSizeAllowed": "10"})
    buffered = 64 * 1024 * 1024     # postpolicy.post_upload_bytes_max
    post = _client(cluster, "s3v4").generate_presigned_post(
        bucket, "range/big", ExpiresIn=300,
        Conditions=[{"bucket": bucket}, ["content-length-range", 0, 2 * buffered]])
    _, found = _size_error(*_post(post["url"], dict(post["fields"]),
                                  b"x" * (buffered + 1))[::2])
    assert (found["Code"], found["ProposedSize"], found["MaxSizeAllowed"]) == (
        "EntityTooLarge", str(buffered + 1), str(buffered))
    assert _keys(cluster, bucket, "range/") == []


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_post_checksum_fields_are_verified_and_kept(cluster: Cluster, bucket: str) -> None:
    """A form's x-amz-checksum-<alg> field is a PUT's header: the file is checked against it
    (400 BadDigest, nothing stored, when it differs) and it is the object's checksum;
    x-amz-checksum-algorithm alone has it computed; a Content-MD5 field is checked too."""
    data = b"form file bytes " * 300
    s3 = cluster.s3()

    def post(key: str, declared: dict[str, str]) -> tuple[int, bytes]:
        url, fields = _form(cluster, bucket, key, declared)
        status, _, body = _post(url, fields, data)
        return status, body

    sha256 = _b64(hashlib.sha256(data).digest())
    assert post("sum/sha", {"x-amz-checksum-sha256": sha256})[0] == 204
    head = s3.head_object(Bucket=bucket, Key="sum/sha", ChecksumMode="ENABLED")
    assert (head.get("ChecksumSHA256"), head.get("ChecksumType")) == (sha256, "FULL_OBJECT")
    assert post("sum/c", {"x-amz-checksum-algorithm": "CRC32C"})[0] == 204
    head = s3.head_object(Bucket=bucket, Key="sum/c", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32C") == _b64(crt.crc32c(data).to_bytes(4, "big"))
    refused = {
        "sum/bad": ({"x-amz-checksum-crc32": _b64(zlib.crc32(b"x").to_bytes(4, "big"))},
                    "BadDigest", "The CRC32 you specified did not match the calculated "
                                 "checksum."),
        "sum/md5": ({"Content-MD5": _b64(hashlib.md5(b"x").digest())}, "BadDigest",
                    "The Content-MD5 you specified did not match what we received."),
        "sum/malformed": ({"x-amz-checksum-sha256": "bm9wZQ=="}, "InvalidRequest",
                          "Value for x-amz-checksum-sha256 header is invalid."),
        "sum/two": ({"x-amz-checksum-sha256": sha256,
                     "x-amz-checksum-crc32": _b64(zlib.crc32(data).to_bytes(4, "big"))},
                    "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple "
                                      "checksum Types are not allowed."),
    }
    for key, (declared, code, message) in refused.items():
        status, body = post(key, declared)
        assert (status, _error(body)["Code"], _error(body)["Message"]) == (
            400, code, message), key
    assert _keys(cluster, bucket, "sum/") == ["sum/c", "sum/sha"]
