"""Authentication and header edge cases that Ceph's s3-tests (test_headers.py, test_s3.py)
found answered unlike AWS, each now answered as AWS does, through boto3 (with s3-tests' own
trick of a before-call hook for the headers boto3 will not send) or raw HTTP."""

from __future__ import annotations

import email.header
import http.client
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import boto3
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from gateway import sigv4_client
from tests.cluster.harness import Cluster

PRIVATE, OPEN = "edges", "edges-open"


@pytest.fixture(scope="module")
def buckets(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket=PRIVATE)
    s3.create_bucket(Bucket=OPEN)
    s3.put_bucket_acl(Bucket=OPEN, ACL="public-read-write")


def _v2(cluster: Cluster) -> Any:
    """boto3 signing with SigV2, path-style: what s3-tests' get_v2_client() makes."""
    return boto3.client(
        "s3", endpoint_url=cluster.endpoint, region_name=cluster.config.region,
        aws_access_key_id=cluster.key.access_key, aws_secret_access_key=cluster.key.secret_key,
        config=BotoConfig(signature_version="s3", s3={"addressing_style": "path"},
                          retries={"max_attempts": 1}))


def _with_headers(client: Any, op: str, headers: dict[str, str | None]) -> Any:
    """The client, sending `headers` on `op` (None: the header removed), as s3-tests do."""
    def edit(params: dict[str, Any], **_: Any) -> None:
        for name, value in headers.items():
            if value is None:
                params["headers"].pop(name, None)
            else:
                params["headers"][name] = value

    client.meta.events.register(f"before-call.s3.{op}", edit)
    return client


def _error(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def _raw(cluster: Cluster, method: str, path: str, headers: dict[str, str | bytes],
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (no Content-Length unless given)."""
    host, port = cluster.config.listen.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def _signed(cluster: Cluster, method: str, path: str,
            headers: dict[str, str] | None = None) -> dict[str, str | bytes]:
    sent = sigv4_client.sign_request(method, cluster.endpoint + path, headers or {},
                                     cluster.key.access_key, cluster.key.secret_key,
                                     cluster.config.region, datetime.now(UTC))
    # A value holding a surrogate stands for a byte that is not UTF-8: send that byte.
    return {k: v.encode("utf-8", "surrogateescape") for k, v in sent.items()}


def _code(body: bytes) -> str:
    return ElementTree.fromstring(body).findtext("Code") or ""


def _rfc2047(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


def _exists(cluster: Cluster, bucket: str, key: str) -> bool:
    try:
        cluster.s3().head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


# ---------------------------------------------------------------- header bytes


def test_metadata_byte_that_is_not_utf8_is_stored(cluster: Cluster, buckets: None) -> None:
    """x-amz-meta-meta1: Hello World + a raw ISO-8859-1 0xE9, anonymous (public-read-write)
    and signed: was a 500; S3 reads the byte as 'é' and returns it RFC 2047-encoded."""
    raw = b"Hello World\xe9"
    status, _, body = _raw(cluster, "PUT", f"/{OPEN}/anon", {
        "Host": cluster.config.listen, "Content-Length": "3", "x-amz-meta-meta1": raw}, b"bar")
    assert status == 200, body
    headers = _signed(cluster, "PUT", f"/{OPEN}/signed", {
        "Content-Length": "3", "x-amz-meta-meta1": raw.decode("utf-8", "surrogateescape"),
        "Content-Disposition": "attachment; filename=\udce9.txt"})
    status, _, body = _raw(cluster, "PUT", f"/{OPEN}/signed", headers, b"bar")
    assert status == 200, body
    got = cluster.s3().head_object(Bucket=OPEN, Key="signed")
    assert got["Metadata"] == {"meta1": "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="}
    assert _rfc2047(got["Metadata"]["meta1"]) == "Hello World\xe9"
    # http.client reads header bytes as ISO-8859-1: 'é' went back as its UTF-8 bytes.
    assert got["ContentDisposition"] == "attachment; filename=\xc3\xa9.txt"


@pytest.mark.parametrize("v2", [False, True])
def test_non_ascii_metadata_from_boto3(cluster: Cluster, buckets: None, v2: bool) -> None:
    """boto3 sends 'Hello World\\xe9' as UTF-8 and signs those bytes (SigV4: was
    SignatureDoesNotMatch). S3 stores each byte as a character (AWS's own example in
    UsingMetadata does so) and answers RFC 2047-encoded; an RFC 2047 value sent is decoded
    before it is stored, and no decoded CR LF can break the answer's headers."""
    client = _v2(cluster) if v2 else cluster.s3()
    key = f"boto3-{v2}"
    _with_headers(client, "PutObject", {"x-amz-meta-meta1": "Hello World\xe9",
                                        "x-amz-meta-words": "=?UTF-8?Q?a=0D=0Ab?="})
    client.put_object(Bucket=PRIVATE, Key=key, Body=b"bar")
    meta = client.head_object(Bucket=PRIVATE, Key=key)["Metadata"]
    assert meta["meta1"] == "=?UTF-8?B?SGVsbG8gV29ybGTDg8Kp?="
    assert _rfc2047(meta["meta1"]) == "Hello World\xc3\xa9"    # as AWS answers it
    assert _rfc2047(meta["words"]) == "a\r\nb"
    assert client.get_object(Bucket=PRIVATE, Key=key)["Metadata"] == meta


def test_response_override_that_breaks_http_is_refused(cluster: Cluster,
                                                       buckets: None) -> None:
    """?response-content-disposition=...%0D%0A... dropped the connection (aiohttp refused
    the header it was asked to send); now a 400 InvalidArgument, as S3 answers an override
    it cannot send."""
    cluster.s3().put_object(Bucket=PRIVATE, Key="override", Body=b"x")
    for query in ("response-content-disposition=a%0D%0ASet-Cookie:%20x",
                  "response-content-type=%00", "response-content-disposition=%E6%97%A5"):
        path = f"/{PRIVATE}/override?{query}"
        status, _, body = _raw(cluster, "GET", path, _signed(cluster, "GET", path))
        assert (status, _code(body)) == (400, "InvalidArgument"), query
    path = f"/{PRIVATE}/override?response-content-disposition=attachment"
    status, headers, _ = _raw(cluster, "GET", path, _signed(cluster, "GET", path))
    assert (status, headers["content-disposition"]) == (200, "attachment")


# ---------------------------------------------------------------- SigV2


def test_sigv2_path_style_bucket_calls(cluster: Cluster, buckets: None) -> None:
    """botocore signs /bucket/ for a path-style bucket call sent to /bucket: every
    bucket-level SigV2 call was SignatureDoesNotMatch."""
    v2 = _v2(cluster)
    v2.create_bucket(Bucket="edges-v2")
    v2.head_bucket(Bucket="edges-v2")
    v2.put_object(Bucket="edges-v2", Key="k", Body=b"v2")
    assert [o["Key"] for o in v2.list_objects(Bucket="edges-v2")["Contents"]] == ["k"]
    assert v2.list_objects_v2(Bucket="edges-v2")["KeyCount"] == 1
    assert v2.get_bucket_acl(Bucket="edges-v2")["Grants"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::edges-v2/*"}]}
    v2.put_bucket_policy(Bucket="edges-v2", Policy=json.dumps(policy))
    assert json.loads(v2.get_bucket_policy(Bucket="edges-v2")["Policy"]) == policy
    assert v2.get_object(Bucket="edges-v2", Key="k")["Body"].read() == b"v2"


def test_authorization_header_edges(cluster: Cluster, buckets: None) -> None:
    """An empty Authorization is an anonymous request (was 400 "Unsupported Authorization
    Type"); "AWS HAHAHA" is 400 InvalidArgument (was 403 AccessDenied)."""
    for method, path in (("GET", f"/{PRIVATE}"), ("PUT", "/edges-empty-auth")):
        status, _, body = _raw(cluster, method, path, {
            "Host": cluster.config.listen, "Authorization": "", "Content-Length": "0"})
        assert (status, _code(body)) == (403, "AccessDenied"), method
    for path in (f"/{PRIVATE}/hahaha", "/edges-hahaha"):
        status, _, body = _raw(cluster, "PUT", path, {
            "Host": cluster.config.listen, "Authorization": "AWS HAHAHA", "Date": "x",
            "Content-Length": "3"}, b"bar")
        assert (status, _code(body)) == (400, "InvalidArgument"), path
        assert b"Expected AwsAccessKeyId:signature" in body
    assert not _exists(cluster, PRIVATE, "hahaha")


@pytest.mark.parametrize(("amz_date", "want"), [
    ("", (403, "AccessDenied")),
    ("Bad Date", (403, "AccessDenied")),
    ("Tue, 07 Jul 1950 21:53:04 GMT", (403, "AccessDenied")),
    ("Tue, 07 Jul 2010 21:53:04 GMT", (403, "RequestTimeTooSkewed")),
    ("Tue, 07 Jul 9999 21:53:04 GMT", (403, "RequestTimeTooSkewed")),
])
def test_sigv2_bad_x_amz_date(cluster: Cluster, buckets: None, amz_date: str,
                              want: tuple[int, str]) -> None:
    """s3-tests' *_date_*_aws2: an empty x-amz-date was SignatureDoesNotMatch (Date used for
    the check, not for the signature) and one before 1970 RequestTimeTooSkewed."""
    v2 = _with_headers(_v2(cluster), "PutObject", {"x-amz-date": amz_date})
    assert _error(lambda: v2.put_object(Bucket=PRIVATE, Key="dated", Body=b"bar")) == want
    assert not _exists(cluster, PRIVATE, "dated")


# ---------------------------------------------------------------- presigned SigV4


def test_presigned_expires_zero_and_negative(cluster: Cluster, buckets: None) -> None:
    """X-Amz-Expires=0 is valid and already expired (was 400 "must be non-negative");
    a negative one is 400 "must be non-negative" (was "should be a number")."""
    cluster.s3().put_object(Bucket=PRIVATE, Key="presigned", Body=b"x")
    answers = []
    for expires in (0, -5):
        request = AWSRequest(method="GET", url=f"{cluster.endpoint}/{PRIVATE}/presigned")
        creds = Credentials(cluster.key.access_key, cluster.key.secret_key)
        S3SigV4QueryAuth(creds, "s3", cluster.config.region, expires=expires).add_auth(request)
        url = urlsplit(request.url)
        status, _, body = _raw(cluster, "GET", f"{url.path}?{url.query}",
                               {"Host": cluster.config.listen})
        root = ElementTree.fromstring(body)
        answers.append((status, root.findtext("Code"), root.findtext("Message")))
    assert answers == [(403, "AccessDenied", "Request has expired"),
                       (400, "AuthorizationQueryParametersError",
                        "X-Amz-Expires must be non-negative")]


# ---------------------------------------------------------------- framing and Expect


def test_put_without_content_length_is_411(cluster: Cluster, buckets: None) -> None:
    """A PutObject or UploadPart framing no body (no Content-Length, no Transfer-Encoding)
    stored an empty object; S3 answers 411 MissingContentLength. The connection closes
    after it (bytes sent later would read as the next request). Bucket-level PUTs without
    a body still work."""
    path = f"/{PRIVATE}/unframed"
    status, headers, body = _raw(cluster, "PUT", path, _signed(cluster, "PUT", path))
    assert (status, _code(body)) == (411, "MissingContentLength")
    assert headers["connection"] == "close"
    assert not _exists(cluster, PRIVATE, "unframed")
    upload = cluster.s3().create_multipart_upload(Bucket=PRIVATE, Key="unframed-mpu")
    path = f"/{PRIVATE}/unframed-mpu?partNumber=1&uploadId={upload['UploadId']}"
    status, _, body = _raw(cluster, "PUT", path, _signed(cluster, "PUT", path))
    assert (status, _code(body)) == (411, "MissingContentLength")
    parts = cluster.s3().list_parts(Bucket=PRIVATE, Key="unframed-mpu",
                                    UploadId=upload["UploadId"])
    assert parts.get("Parts", []) == []
    s3 = _with_headers(cluster.s3(), "CreateBucket", {"Content-Length": None})
    s3.create_bucket(Bucket="edges-no-length")
    s3 = _with_headers(cluster.s3(), "PutObjectAcl", {"Content-Length": None})
    cluster.s3().put_object(Bucket=PRIVATE, Key="acl", Body=b"bar")
    s3.put_object_acl(Bucket=PRIVATE, Key="acl", ACL="public-read")


def test_unknown_expect_is_ignored(cluster: Cluster, buckets: None) -> None:
    """s3-tests' test_*_bad_expect_mismatch ("garbage, but S3 succeeds!"): aiohttp's 417
    "Unknown Expect" in text/plain came from the gateway's own expect handler."""
    s3 = _with_headers(cluster.s3(), "PutObject", {"Expect": "200"})
    s3.put_object(Bucket=PRIVATE, Key="expect", Body=b"bar")
    _with_headers(cluster.s3(), "CreateBucket", {"Expect": "200"}).create_bucket(
        Bucket="edges-expect")
    path = f"/{PRIVATE}/expect-raw"
    headers = _signed(cluster, "PUT", path, {"Content-Length": "3", "Expect": "garbage"})
    status, _, body = _raw(cluster, "PUT", path, headers, b"bar")
    assert status == 200, body
    assert cluster.s3().get_object(Bucket=PRIVATE, Key="expect-raw")["Body"].read() == b"bar"


# ---- found by LocalStack's AWS-validated tests (their snapshots hold AWS's answers) ------


def test_tag_rules_as_aws(cluster: Cluster, buckets: None) -> None:
    s3 = cluster.s3()
    s3.put_object(Bucket=PRIVATE, Key="tagged", Body=b"t")
    for bad in ([{"Key": "Key1,Key2", "Value": "v"}], [{"Key": "aws:x", "Value": "v"}],
                [{"Key": "k", "Value": "Val1,Val2"}]):
        assert _error(partial(s3.put_object_tagging, Bucket=PRIVATE, Key="tagged",
                              Tagging={"TagSet": bad})) == (400, "InvalidTag")
        assert _error(partial(s3.put_bucket_tagging, Bucket=PRIVATE,
                              Tagging={"TagSet": bad})) == (400, "InvalidTag")
    for header in ("key1=val1&key1=val2", "key1=val1,key2=val2"):
        assert _error(partial(s3.put_object, Bucket=PRIVATE, Key="t2", Body=b"x",
                              Tagging=header)) == (400, "InvalidArgument")
    assert not _exists(cluster, PRIVATE, "t2")
    s3.put_bucket_tagging(Bucket=PRIVATE, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    loose = boto3.client(       # botocore then sends <Tagging/> without a TagSet: none set
        "s3", endpoint_url=cluster.endpoint, region_name=cluster.config.region,
        aws_access_key_id=cluster.key.access_key, aws_secret_access_key=cluster.key.secret_key,
        config=BotoConfig(parameter_validation=False, s3={"addressing_style": "path"}))
    loose.put_bucket_tagging(Bucket=PRIVATE, Tagging={"TagSet": None})
    assert _error(lambda: s3.get_bucket_tagging(Bucket=PRIVATE)) == (404, "NoSuchTagSet")


def test_conditional_delete_and_write_headers(cluster: Cluster, buckets: None) -> None:
    s3 = cluster.s3()
    etag = s3.put_object(Bucket=PRIVATE, Key="cond", Body=b"0123456789")["ETag"]
    assert _error(lambda: s3.delete_object(Bucket=PRIVATE, Key="cond", IfMatch='"bad"')) == (
        412, "PreconditionFailed")
    assert _error(lambda: s3.delete_object(Bucket=PRIVATE, Key="cond", IfMatchSize=11)) == (
        412, "PreconditionFailed")
    assert _exists(cluster, PRIVATE, "cond")
    s3.delete_object(Bucket=PRIVATE, Key="cond", IfMatch=etag, IfMatchSize=10)
    assert not _exists(cluster, PRIVATE, "cond")
    assert _error(lambda: s3.delete_object(Bucket=PRIVATE, Key="cond", IfMatch=etag)) == (
        404, "NoSuchKey")
    # Bypassing governance where there is no Object Lock: refused, nothing deleted.
    s3.put_object(Bucket=PRIVATE, Key="nolock", Body=b"x")
    assert _error(lambda: s3.delete_object(Bucket=PRIVATE, Key="nolock",
                                           BypassGovernanceRetention=True)) == (
        400, "InvalidArgument")
    assert _exists(cluster, PRIVATE, "nolock")
    # Write conditions S3 does not take are NotImplemented (AWS), not a lookup's 404.
    assert _error(lambda: s3.put_object(Bucket=PRIVATE, Key="new", Body=b"x",
                                        IfMatch="*")) == (501, "NotImplemented")
    assert _error(lambda: s3.put_object(Bucket=PRIVATE, Key="new", Body=b"x", IfMatch=etag,
                                        IfNoneMatch="*")) == (501, "NotImplemented")


def test_copy_ranges_versioning_config_and_ranges(cluster: Cluster, buckets: None) -> None:
    s3 = cluster.s3()
    s3.put_object(Bucket=PRIVATE, Key="ten", Body=b"0123456789")
    uid = s3.create_multipart_upload(Bucket=PRIVATE, Key="parts")["UploadId"]

    def part_copy(rng: str, **kw: Any) -> object:
        return s3.upload_part_copy(Bucket=PRIVATE, Key="parts", UploadId=uid, PartNumber=1,
                                   CopySource={"Bucket": PRIVATE, "Key": "ten"},
                                   CopySourceRange=rng, **kw)
    assert _error(lambda: part_copy("bytes=0-100")) == (400, "InvalidArgument")
    assert _error(lambda: part_copy("bytes=100-200")) == (400, "InvalidRequest")
    future = datetime(2100, 1, 1, tzinfo=UTC)       # a future date is no condition (HTTP)
    part_copy("bytes=0-1", CopySourceIfModifiedSince=future)
    s3.abort_multipart_upload(Bucket=PRIVATE, Key="parts", UploadId=uid)
    assert _error(lambda: s3.put_bucket_versioning(
        Bucket=PRIVATE, VersioningConfiguration={})) == (
        400, "IllegalVersioningConfigurationException")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=PRIVATE, Key="ten", Range="bytes=100-200")
    assert caught.value.response["Error"]["RangeRequested"] == "bytes=100-200"


# ---- found by a second round of Ceph's s3-tests -------------------------------------------

def test_versions_list_encrypted_objects_of_an_unversioned_bucket(cluster: Cluster) -> None:
    """An object whose manifest carries encryption (SSE-S3, SSE-C) is still the null version
    of its key in a bucket never versioned, and in one versioned after it was written:
    ListObjectVersions showed none of them (s3-tests' cleanup then met BucketNotEmpty)."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="edges-sse-versions")
    customer = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
    s3.put_object(Bucket="edges-sse-versions", Key="plain", Body=b"a")
    s3.put_object(Bucket="edges-sse-versions", Key="s3", Body=b"b",
                  ServerSideEncryption="AES256")
    s3.put_object(Bucket="edges-sse-versions", Key="customer", Body=b"c", **customer)

    def listed() -> list[tuple[str, str, bool]]:
        page = s3.list_object_versions(Bucket="edges-sse-versions")
        return [(v["Key"], v["VersionId"], v["IsLatest"]) for v in page.get("Versions", [])]

    every = [("customer", "null", True), ("plain", "null", True), ("s3", "null", True)]
    assert listed() == every
    s3.put_bucket_versioning(Bucket="edges-sse-versions",
                             VersioningConfiguration={"Status": "Enabled"})
    assert listed() == every
    for key in ("plain", "s3", "customer"):
        s3.delete_object(Bucket="edges-sse-versions", Key=key, VersionId="null")
    s3.delete_bucket(Bucket="edges-sse-versions")


def test_preflight_to_a_presigned_url_is_not_authenticated(cluster: Cluster) -> None:
    """A browser's OPTIONS to a presigned URL carries the URL's query, which signs GET or PUT:
    the preflight is answered as any other (400 without Origin, the bucket's CORS rule
    with one), not checked as a signature (was 403 SignatureDoesNotMatch)."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="edges-cors-signed")
    s3.put_object(Bucket="edges-cors-signed", Key="foo", Body=b"bar")
    for method, op in (("GET", "get_object"), ("PUT", "put_object")):
        url = urlsplit(s3.generate_presigned_url(
            op, Params={"Bucket": "edges-cors-signed", "Key": "foo"}, ExpiresIn=600))
        path = f"{url.path}?{url.query}"
        status, _, body = _raw(cluster, "OPTIONS", path, {"Host": url.netloc})
        assert status == 400 and b"Origin request header needed" in body, body
        s3.put_bucket_cors(Bucket="edges-cors-signed", CORSConfiguration={"CORSRules": [
            {"AllowedMethods": [method], "AllowedOrigins": ["example"]}]})
        status, headers, body = _raw(cluster, "OPTIONS", path, {
            "Host": url.netloc, "Origin": "example", "Access-Control-Request-Method": method})
        assert status == 200, body
        assert headers["access-control-allow-origin"] == "example"
        assert headers["access-control-allow-methods"] == method
        s3.delete_bucket_cors(Bucket="edges-cors-signed")


def test_expected_bucket_owner_names_the_owning_account(cluster: Cluster) -> None:
    """x-amz-expected-bucket-owner (and x-amz-source-expected-bucket-owner on a copy) that
    names another account than the bucket's owner: 403 AccessDenied and nothing done, as on
    AWS; the owner's own id passes. The headers were ignored."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="edges-expected-owner")
    owner = s3.get_bucket_acl(Bucket="edges-expected-owner")["Owner"]["ID"]
    s3.put_object(Bucket="edges-expected-owner", Key="mine", Body=b"x",
                  ExpectedBucketOwner=owner)
    other = owner + "foo"
    assert _error(lambda: s3.list_objects(Bucket="edges-expected-owner",
                                          ExpectedBucketOwner=other)) == (403, "AccessDenied")
    assert _error(lambda: s3.put_object(Bucket="edges-expected-owner", Key="not", Body=b"y",
                                        ExpectedBucketOwner=other)) == (403, "AccessDenied")
    assert not _exists(cluster, "edges-expected-owner", "not")
    source = {"Bucket": "edges-expected-owner", "Key": "mine"}
    assert _error(lambda: s3.copy_object(Bucket="edges-expected-owner", Key="copy",
                                         CopySource=source, ExpectedSourceBucketOwner=other)
                  ) == (403, "AccessDenied")
    s3.copy_object(Bucket="edges-expected-owner", Key="copy", CopySource=source,
                   ExpectedSourceBucketOwner=owner, ExpectedBucketOwner=owner)
    assert _exists(cluster, "edges-expected-owner", "copy")


def test_complete_retried_after_success_answers_again(cluster: Cluster) -> None:
    """A Complete retried after it succeeded (its answer lost, say) is answered as the first
    was, while the object it made is the key's current one, as AWS does; it was 404
    NoSuchUpload. An upload that never made the current object stays NoSuchUpload."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="edges-complete-twice")
    where = {"Bucket": "edges-complete-twice", "Key": "mp"}
    upload_id = s3.create_multipart_upload(**where, ChecksumAlgorithm="CRC32")["UploadId"]
    part = s3.upload_part(**where, UploadId=upload_id, PartNumber=1, Body=b"x",
                          ChecksumAlgorithm="CRC32")
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"],
                        "ChecksumCRC32": part["ChecksumCRC32"]}]}
    first = s3.complete_multipart_upload(**where, UploadId=upload_id, MultipartUpload=parts)
    again = s3.complete_multipart_upload(**where, UploadId=upload_id, MultipartUpload=parts)
    for field in ("ETag", "ChecksumCRC32", "ChecksumType", "Key", "Bucket"):
        assert again[field] == first[field], field
    assert s3.get_object(**where)["Body"].read() == b"x"
    other = s3.create_multipart_upload(**where)["UploadId"]
    s3.abort_multipart_upload(**where, UploadId=other)
    assert _error(lambda: s3.complete_multipart_upload(
        **where, UploadId=other, MultipartUpload=parts)) == (404, "NoSuchUpload")
    s3.put_object(**where, Body=b"replaced")
    assert _error(lambda: s3.complete_multipart_upload(
        **where, UploadId=upload_id, MultipartUpload=parts)) == (404, "NoSuchUpload")
    s3.delete_object(**where)
    s3.delete_bucket(Bucket="edges-complete-twice")


def test_aws_chunked_named_beside_a_plain_signed_body(cluster: Cluster) -> None:
    """Content-Encoding naming aws-chunked on a request whose x-amz-content-sha256 signs a
    plain body: the body is the object, and aws-chunked is dropped from its encodings, as
    AWS does; it was decoded as aws-chunked framing (411 MissingContentLength)."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="edges-chunked-named")
    where = {"Bucket": "edges-chunked-named", "Key": "enc"}
    for sent, kept in (("gzip, aws-chunked", "gzip"), ("aws-chunked, gzip", "gzip"),
                       ("aws-chunked", None), ("aws-chunked, aws-chunked", None)):
        s3.put_object(**where, Body=b"body", ContentEncoding=sent)
        got = s3.get_object(**where)
        assert got["Body"].read() == b"body"
        assert got.get("ContentEncoding") == kept, sent
    s3.delete_object(**where)
    s3.delete_bucket(Bucket="edges-chunked-named")
