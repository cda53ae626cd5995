"""Tenants, keys and access control against a real cluster: tenants made with the admin
CLI, isolation across every S3 operation, global bucket names, anonymous reads of public
data (boto3 UNSIGNED and plain urllib), Deny over Allow, revocation on every gateway within
seconds, CORS preflight. Also the pure parts of tenants.py (records, sealing)."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from gateway import tenants
from gateway.tenants import KeyRecord, KeyStatus, SecretBox, TenantRecord
from tests.cluster.harness import Cluster

KEY_WAIT_S = 15.0          # a bound for the tests, far above the 2 s refresh period


# ---- pure: records and sealing -----------------------------------------------------------


def test_secret_sealing_binds_key_id_and_master() -> None:
    box = SecretBox(b"\x07" * 32)
    nonce, sealed = box.seal("CFKEY1", "s3cr3t")
    rec = KeyRecord("CFKEY1", "t", 1, KeyStatus.ACTIVE, nonce, sealed)
    assert box.open(rec) == "s3cr3t"
    assert b"s3cr3t" not in rec.encode()
    moved = KeyRecord("CFKEY2", "t", 1, KeyStatus.ACTIVE, nonce, sealed)
    assert box.open(moved) is None                      # copied onto another key id
    assert SecretBox(b"\x08" * 32).open(rec) is None    # another cluster's master key
    assert KeyRecord.decode(rec.encode()) == rec
    t = TenantRecord("agency-a", 5, admin=True)
    assert TenantRecord.decode(t.encode()) == t


def test_master_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tenants.MASTER_KEY_ENV, raising=False)
    with pytest.raises(FileNotFoundError):
        tenants.load_master_key(tmp_path, create=False)
    key = tenants.load_master_key(tmp_path)
    path = tmp_path / tenants.MASTER_KEY_FILE
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert tenants.load_master_key(tmp_path, create=False) == key
    monkeypatch.setenv(tenants.MASTER_KEY_ENV, base64.b64encode(b"\x01" * 32).decode())
    assert tenants.load_master_key(tmp_path) == b"\x01" * 32
    monkeypatch.setenv(tenants.MASTER_KEY_ENV, "short")
    with pytest.raises(ValueError):
        tenants.load_master_key(tmp_path)


# ---- helpers -----------------------------------------------------------------------------


def admin(cluster: Cluster, *args: str, ok: bool = True) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.admin_cli", *args, "--config",
         str(cluster.config_path), "--data", str(cluster.root), "--json"],
        capture_output=True, text=True, timeout=60)
    if ok:
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    assert out.returncode != 0
    return out.stderr


def client(endpoint: str, key: dict[str, str] | None) -> Any:
    cfg = BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                     signature_version=UNSIGNED if key is None else "s3v4")
    creds = {} if key is None else {"aws_access_key_id": key["access_key"],
                                     "aws_secret_access_key": key["secret_key"]}
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=cfg,
                        **creds)


def wait_until(check: Callable[[], bool], what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < KEY_WAIT_S:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {KEY_WAIT_S} s")


def works(s3: Any) -> bool:
    try:
        s3.list_buckets()
        return True
    except ClientError:
        return False


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def new_tenant(cluster: Cluster, name: str) -> tuple[dict[str, str], Any]:
    admin(cluster, "tenant", "create", name)
    key = admin(cluster, "key", "create", "--tenant", name)
    assert set(key) >= {"access_key", "secret_key", "tenant"} and key["tenant"] == name
    s3 = client(cluster.endpoint, key)
    wait_until(lambda: works(s3), f"key of {name} usable")
    return key, s3


@pytest.fixture(scope="module")
def two(cluster: Cluster) -> dict[str, Any]:
    ka, alpha = new_tenant(cluster, "alpha")
    kb, beta = new_tenant(cluster, "beta")
    alpha.create_bucket(Bucket="alpha-data")
    alpha.put_object(Bucket="alpha-data", Key="report.csv", Body=b"a,b\n1,2\n")
    beta.create_bucket(Bucket="beta-data")
    beta.put_object(Bucket="beta-data", Key="mine", Body=b"beta")
    return {"alpha": alpha, "beta": beta, "ka": ka, "kb": kb}


# ---- isolation ---------------------------------------------------------------------------


_XML_ACL = {"Owner": {"ID": "beta"}, "Grants": []}
_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::alpha-data/*"}]})


def _cross_tenant_calls(upload_id: str) -> dict[str, Callable[[Any], Any]]:
    b, k = "alpha-data", "report.csv"
    return {
        "GetObject": lambda s: s.get_object(Bucket=b, Key=k),
        "HeadObject": lambda s: s.head_object(Bucket=b, Key=k),
        "PutObject": lambda s: s.put_object(Bucket=b, Key=k, Body=b"overwritten"),
        "PutObjectNew": lambda s: s.put_object(Bucket=b, Key="new", Body=b"x"),
        "DeleteObject": lambda s: s.delete_object(Bucket=b, Key=k),
        "DeleteObjects": lambda s: s.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k}]}),
        "ListObjectsV2": lambda s: s.list_objects_v2(Bucket=b),
        "ListObjects": lambda s: s.list_objects(Bucket=b),
        "HeadBucket": lambda s: s.head_bucket(Bucket=b),
        "DeleteBucket": lambda s: s.delete_bucket(Bucket=b),
        "GetBucketLocation": lambda s: s.get_bucket_location(Bucket=b),
        "CopyIntoOther": lambda s: s.copy_object(Bucket=b, Key="c",
                                                 CopySource={"Bucket": "beta-data",
                                                             "Key": "mine"}),
        "CopyOutOfOther": lambda s: s.copy_object(Bucket="beta-data", Key="stolen",
                                                  CopySource={"Bucket": b, "Key": k}),
        "GetObjectTagging": lambda s: s.get_object_tagging(Bucket=b, Key=k),
        "PutObjectTagging": lambda s: s.put_object_tagging(
            Bucket=b, Key=k, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        "DeleteObjectTagging": lambda s: s.delete_object_tagging(Bucket=b, Key=k),
        "GetBucketTagging": lambda s: s.get_bucket_tagging(Bucket=b),
        "PutBucketTagging": lambda s: s.put_bucket_tagging(
            Bucket=b, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        "GetBucketAcl": lambda s: s.get_bucket_acl(Bucket=b),
        "PutBucketAcl": lambda s: s.put_bucket_acl(Bucket=b, ACL="public-read"),
        "GetObjectAcl": lambda s: s.get_object_acl(Bucket=b, Key=k),
        "PutObjectAcl": lambda s: s.put_object_acl(Bucket=b, Key=k, ACL="public-read"),
        "GetBucketPolicy": lambda s: s.get_bucket_policy(Bucket=b),
        "PutBucketPolicy": lambda s: s.put_bucket_policy(Bucket=b, Policy=_POLICY),
        "DeleteBucketPolicy": lambda s: s.delete_bucket_policy(Bucket=b),
        "GetBucketCors": lambda s: s.get_bucket_cors(Bucket=b),
        "PutBucketCors": lambda s: s.put_bucket_cors(Bucket=b, CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}),
        "PutPublicAccessBlock": lambda s: s.put_public_access_block(
            Bucket=b, PublicAccessBlockConfiguration={"BlockPublicAcls": False}),
        "CreateMultipartUpload": lambda s: s.create_multipart_upload(Bucket=b, Key="mp"),
        "UploadPart": lambda s: s.upload_part(Bucket=b, Key="mp", UploadId=upload_id,
                                              PartNumber=1, Body=b"x"),
        "ListParts": lambda s: s.list_parts(Bucket=b, Key="mp", UploadId=upload_id),
        "ListMultipartUploads": lambda s: s.list_multipart_uploads(Bucket=b),
        "CompleteMultipartUpload": lambda s: s.complete_multipart_upload(
            Bucket=b, Key="mp", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}),
        "AbortMultipartUpload": lambda s: s.abort_multipart_upload(Bucket=b, Key="mp",
                                                                   UploadId=upload_id),
    }


def test_tenants_cannot_touch_each_others_data(two: dict[str, Any]) -> None:
    alpha, beta = two["alpha"], two["beta"]
    upload_id = alpha.create_multipart_upload(Bucket="alpha-data", Key="mp")["UploadId"]
    alpha.upload_part(Bucket="alpha-data", Key="mp", UploadId=upload_id, PartNumber=1,
                      Body=b"part")
    anonymous = client(alpha.meta.endpoint_url, None)
    for name, call in _cross_tenant_calls(upload_id).items():
        for who, s3 in (("beta", beta), ("anonymous", anonymous)):
            with pytest.raises(ClientError) as exc:
                call(s3)
            status = exc.value.response["ResponseMetadata"]["HTTPStatusCode"]
            assert status == 403, f"{who} {name}: {exc.value}"
    # Nothing changed for alpha.
    got = alpha.get_object(Bucket="alpha-data", Key="report.csv")
    assert got["Body"].read() == b"a,b\n1,2\n"
    keys = [o["Key"] for o in alpha.list_objects_v2(Bucket="alpha-data")["Contents"]]
    assert keys == ["report.csv"]
    assert alpha.list_parts(Bucket="alpha-data", Key="mp", UploadId=upload_id)["Parts"]
    assert alpha.get_bucket_policy_status  # the client knows the operation
    with pytest.raises(ClientError) as exc:
        alpha.get_bucket_policy(Bucket="alpha-data")
    assert code(exc) == "NoSuchBucketPolicy"
    assert [b["Name"] for b in beta.list_buckets()["Buckets"]] == ["beta-data"]
    assert [b["Name"] for b in alpha.list_buckets()["Buckets"]] == ["alpha-data"]
    alpha.abort_multipart_upload(Bucket="alpha-data", Key="mp", UploadId=upload_id)


def test_bucket_names_are_global(two: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        two["beta"].create_bucket(Bucket="alpha-data")
    assert code(exc) == "BucketAlreadyExists"
    two["alpha"].create_bucket(Bucket="alpha-data")     # its owner's: 200 in us-east-1


# ---- public data -------------------------------------------------------------------------


def _anon_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_public_read_by_policy(cluster: Cluster, two: dict[str, Any]) -> None:
    alpha = two["alpha"]
    alpha.create_bucket(Bucket="census")
    alpha.put_object(Bucket="census", Key="2024/pop.csv", Body=b"region,pop\n")
    url = f"{cluster.endpoint}/census/2024/pop.csv"
    assert _anon_get(url)[0] == 403
    alpha.put_bucket_policy(Bucket="census", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "OpenData", "Effect": "Allow", "Principal": "*",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::census", "arn:aws:s3:::census/*"]}]}))
    assert alpha.get_bucket_policy_status(Bucket="census")["PolicyStatus"]["IsPublic"]
    anonymous = client(cluster.endpoint, None)
    wait_until(lambda: _anon_get(url)[0] == 200, "public policy in force")
    assert _anon_get(url) == (200, b"region,pop\n")
    got = anonymous.get_object(Bucket="census", Key="2024/pop.csv")
    assert got["Body"].read() == b"region,pop\n"
    listed = anonymous.list_objects_v2(Bucket="census")
    assert [o["Key"] for o in listed["Contents"]] == ["2024/pop.csv"]
    assert two["beta"].get_object(Bucket="census", Key="2024/pop.csv")["Body"].read()
    write: Callable[[Any], object]
    for write in (lambda s: s.put_object(Bucket="census", Key="x", Body=b"x"),
                  lambda s: s.delete_object(Bucket="census", Key="2024/pop.csv")):
        for s3 in (anonymous, two["beta"]):
            with pytest.raises(ClientError) as exc:
                write(s3)
            assert code(exc) == "AccessDenied"
    # Blocking public policies refuses a new one; restricting hides the current one.
    alpha.put_public_access_block(Bucket="census", PublicAccessBlockConfiguration={
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    wait_until(lambda: _anon_get(url)[0] == 403, "RestrictPublicBuckets in force")
    assert alpha.get_public_access_block(Bucket="census")[
        "PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    with pytest.raises(ClientError) as exc:
        alpha.put_bucket_policy(Bucket="census", Policy=alpha.get_bucket_policy(
            Bucket="census")["Policy"])
    assert code(exc) == "AccessDenied"
    alpha.delete_public_access_block(Bucket="census")
    wait_until(lambda: _anon_get(url)[0] == 200, "public again")


def test_a_missing_key_is_told_only_to_who_may_list(cluster: Cluster,
                                                   two: dict[str, Any]) -> None:
    """As on AWS: without s3:ListBucket a missing key is AccessDenied, not NoSuchKey, so
    that a reader cannot probe which keys exist."""
    alpha, anonymous = two["alpha"], client(cluster.endpoint, None)
    alpha.create_bucket(Bucket="probe")
    alpha.put_object(Bucket="probe", Key="there", Body=b"x")

    def policy(actions: list[str]) -> None:
        alpha.put_bucket_policy(Bucket="probe", Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": "*", "Action": actions,
                "Resource": ["arn:aws:s3:::probe", "arn:aws:s3:::probe/*"]}]}))

    def missing(s3: Any) -> str:
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket="probe", Key="not-there")
        return code(exc)

    policy(["s3:GetObject"])
    wait_until(lambda: _anon_get(f"{cluster.endpoint}/probe/there")[0] == 200, "policy")
    assert missing(anonymous) == "AccessDenied"
    assert missing(two["beta"]) == "AccessDenied"
    assert missing(alpha) == "NoSuchKey"            # the owner may always list
    policy(["s3:GetObject", "s3:ListBucket"])
    wait_until(lambda: _anon_get(f"{cluster.endpoint}/probe/not-there")[0] == 404, "list")
    assert missing(anonymous) == "NoSuchKey"


def test_public_read_by_acl(cluster: Cluster, two: dict[str, Any]) -> None:
    alpha = two["alpha"]
    alpha.create_bucket(Bucket="open-acl", ACL="public-read")
    alpha.put_object(Bucket="open-acl", Key="open.txt", Body=b"open", ACL="public-read")
    alpha.put_object(Bucket="open-acl", Key="closed.txt", Body=b"closed")
    grants = alpha.get_bucket_acl(Bucket="open-acl")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    anonymous = client(cluster.endpoint, None)
    wait_until(lambda: works_list(anonymous, "open-acl"), "bucket ACL in force")
    assert anonymous.get_object(Bucket="open-acl", Key="open.txt")["Body"].read() == b"open"
    assert _anon_get(f"{cluster.endpoint}/open-acl/open.txt") == (200, b"open")
    assert _anon_get(f"{cluster.endpoint}/open-acl/closed.txt")[0] == 403
    alpha.put_object_acl(Bucket="open-acl", Key="closed.txt", ACL="public-read")
    assert _anon_get(f"{cluster.endpoint}/open-acl/closed.txt") == (200, b"closed")
    alpha.put_object_acl(Bucket="open-acl", Key="closed.txt", ACL="private")
    assert _anon_get(f"{cluster.endpoint}/open-acl/closed.txt")[0] == 403
    obj_grants = alpha.get_object_acl(Bucket="open-acl", Key="open.txt")["Grants"]
    assert {g["Permission"] for g in obj_grants} == {"FULL_CONTROL", "READ"}
    # The bucket's READ grant lets anyone list it, so a missing key is NoSuchKey to them
    # (as on AWS), where a bucket they may not list answers AccessDenied (test above).
    status, body = _anon_get(f"{cluster.endpoint}/open-acl/not-there")
    assert status == 404 and b"<Code>NoSuchKey</Code>" in body
    with pytest.raises(ClientError) as exc:
        two["beta"].head_object(Bucket="open-acl", Key="not-there")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def works_list(s3: Any, bucket: str) -> bool:
    try:
        s3.list_objects_v2(Bucket=bucket)
        return True
    except ClientError:
        return False


def test_deny_overrides_allow(cluster: Cluster, two: dict[str, Any]) -> None:
    alpha = two["alpha"]
    alpha.create_bucket(Bucket="mixed")
    for key in ("pub/a", "embargo/b"):
        alpha.put_object(Bucket="mixed", Key=key, Body=key.encode())
    alpha.put_bucket_policy(Bucket="mixed", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::mixed/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::mixed/embargo/*"}]}))
    url = f"{cluster.endpoint}/mixed/"
    wait_until(lambda: _anon_get(url + "pub/a")[0] == 200, "policy in force")
    assert _anon_get(url + "embargo/b")[0] == 403
    with pytest.raises(ClientError) as exc:
        alpha.get_object(Bucket="mixed", Key="embargo/b")     # the owner too
    assert code(exc) == "AccessDenied"
    alpha.delete_bucket_policy(Bucket="mixed")
    assert alpha.get_object(Bucket="mixed", Key="embargo/b")["Body"].read() == b"embargo/b"


def test_malformed_policy_refused(two: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        two["alpha"].put_bucket_policy(Bucket="alpha-data", Policy='{"Statement": 3}')
    assert code(exc) == "MalformedPolicy"


# ---- keys --------------------------------------------------------------------------------


def test_revoked_key_fails_on_every_gateway(cluster: Cluster, two: dict[str, Any]) -> None:
    second = cluster.add_gateway("gateway-b")
    cluster.start("gateway-b")
    key = admin(cluster, "key", "create", "--tenant", "alpha")
    clients = [client(cluster.endpoint, key), client(second, key)]
    for s3 in clients:
        wait_until(partial(works, s3), "new key usable")
    listed = admin(cluster, "key", "list", "--tenant", "alpha")
    assert key["access_key"] in [k["access_key"] for k in listed]
    assert all("secret_key" not in k for k in listed)
    revoked = admin(cluster, "key", "revoke", key["access_key"])
    assert revoked["status"] == "revoked"
    for s3 in clients:
        def refused(s3: Any = s3) -> bool:
            return not works(s3)

        took = wait_until(refused, "revoked key refused")
        print(f"revoked key refused after {took:.2f} s")
    with pytest.raises(ClientError) as exc:
        clients[1].list_buckets()
    assert code(exc) == "InvalidAccessKeyId"
    assert works(two["alpha"])     # the tenant's other key is untouched


def test_admin_cli(cluster: Cluster, two: dict[str, Any]) -> None:
    names = {t["tenant"] for t in admin(cluster, "tenant", "list")}
    assert {"admin", "alpha", "beta"} <= names
    assert "already exists" in admin(cluster, "tenant", "create", "alpha", ok=False)
    assert "owns buckets" in admin(cluster, "tenant", "delete", "beta", ok=False)
    assert "invalid tenant name" in admin(cluster, "tenant", "create", "Bad Name", ok=False)
    key, s3 = new_tenant(cluster, "short-lived")
    done = admin(cluster, "tenant", "delete", "short-lived")
    assert done["revoked_keys"] == [key["access_key"]]
    wait_until(lambda: not works(s3), "deleted tenant's key refused")


# ---- CORS --------------------------------------------------------------------------------


def _options(cluster: Cluster, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    host, port = cluster.config.listen.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("OPTIONS", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def test_cors_preflight(cluster: Cluster, two: dict[str, Any]) -> None:
    alpha = two["alpha"]
    alpha.create_bucket(Bucket="portal")
    alpha.put_object(Bucket="portal", Key="data.json", Body=b"{}", ACL="public-read")
    origin = "https://portal.example.org"
    ask = {"Origin": origin, "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "range"}
    assert _options(cluster, "/portal/data.json", ask)[0] == 403     # no CORS yet
    alpha.put_bucket_cors(Bucket="portal", CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [origin], "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["range", "x-amz-*"], "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 300}]})
    assert alpha.get_bucket_cors(Bucket="portal")["CORSRules"][0]["AllowedOrigins"] == \
        [origin]
    status, hdrs = _options(cluster, "/portal/data.json", ask)
    assert status == 200, hdrs
    assert hdrs["access-control-allow-origin"] == origin
    assert "GET" in hdrs["access-control-allow-methods"]
    assert hdrs["access-control-max-age"] == "300"
    assert _options(cluster, "/portal/data.json", {**ask, "Origin": "https://evil.example"}
                    )[0] == 403
    assert _options(cluster, "/portal/data.json",
                    {**ask, "Access-Control-Request-Method": "DELETE"})[0] == 403
    # The actual cross-origin GET carries the headers a browser needs.
    req = urllib.request.Request(f"{cluster.endpoint}/portal/data.json",
                                 headers={"Origin": origin})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert r.headers["Access-Control-Expose-Headers"] == "ETag"
    # A refused one too (a private object): the browser must see the 403, not a CORS error.
    alpha.put_object(Bucket="portal", Key="private.json", Body=b"{}")
    req = urllib.request.Request(f"{cluster.endpoint}/portal/private.json",
                                 headers={"Origin": origin})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 403
    assert refused.value.headers["Access-Control-Allow-Origin"] == origin
    alpha.delete_bucket_cors(Bucket="portal")
    with pytest.raises(ClientError) as exc:
        alpha.get_bucket_cors(Bucket="portal")
    assert code(exc) == "NoSuchCORSConfiguration"


# ---- browser POST uploads ----------------------------------------------------------------


def _post_form(url: str, fields: dict[str, str], filename: str, data: bytes
               ) -> tuple[int, bytes]:
    boundary = "----coffre-test-boundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
                 + data + f"\r\n--{boundary}--\r\n".encode())
    req = urllib.request.Request(url, data=b"".join(parts), method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_browser_post_upload(cluster: Cluster, two: dict[str, Any], version: str) -> None:
    alpha = two["alpha"]
    # "s3" is the older POST signature (HMAC-SHA1) boto3 makes unless told s3v4.
    signer = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                          aws_access_key_id=two["ka"]["access_key"],
                          aws_secret_access_key=two["ka"]["secret_key"],
                          config=BotoConfig(signature_version=version,
                                            s3={"addressing_style": "path"}))
    bucket = f"drop-{version}"
    alpha.create_bucket(Bucket=bucket)
    post = signer.generate_presigned_post(
        bucket, "uploads/${filename}", Fields={"acl": "public-read"},
        Conditions=[["starts-with", "$key", "uploads/"], {"acl": "public-read"},
                    ["content-length-range", 1, 1000]], ExpiresIn=300)
    fields = dict(post["fields"])
    status, body = _post_form(post["url"], fields, "hello.txt", b"hello form")
    assert status == 204, body
    got = alpha.get_object(Bucket=bucket, Key="uploads/hello.txt")
    assert got["Body"].read() == b"hello form"
    assert _anon_get(f"{cluster.endpoint}/{bucket}/uploads/hello.txt") == (200, b"hello form")
    # A tampered form: a key outside the policy, an edited policy, a file too large.
    assert _post_form(post["url"], {**fields, "key": "elsewhere/x"}, "x", b"x")[0] == 403
    policy_doc = json.loads(base64.b64decode(fields["policy"]))
    policy_doc["conditions"] = [c for c in policy_doc["conditions"]
                                if not (isinstance(c, list) and c[0] == "starts-with")]
    forged = base64.b64encode(json.dumps(policy_doc).encode()).decode()
    status, body = _post_form(post["url"], {**fields, "policy": forged}, "y", b"y")
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert _post_form(post["url"], fields, "big.txt", b"z" * 2000)[0] == 400
    # The conditions hold for the key written, ${filename} replaced (as AWS); a 201 answers
    # AWS's PostResponse (no namespace, Location a URL); the form's tagging is kept.
    named = signer.generate_presigned_post(
        bucket, "${filename}", Fields={"success_action_status": "201"},
        Conditions=[["starts-with", "$key", "report"], {"success_action_status": "201"},
                    ["starts-with", "$tagging", ""]], ExpiresIn=300)
    tagging = ("<Tagging><TagSet><Tag><Key>unit</Key><Value>stats</Value></Tag></TagSet>"
               "</Tagging>")
    form = {**named["fields"], "tagging": tagging}
    assert _post_form(named["url"], form, "other.txt", b"o")[0] == 403
    status, body = _post_form(named["url"], form, "report.csv", b"r,1\n")
    assert status == 201, body
    answer = ElementTree.fromstring(body)
    assert answer.tag == "PostResponse" and answer.findtext("Key") == "report.csv"
    assert answer.findtext("Location") == f"{cluster.endpoint}/{bucket}/report.csv"
    assert alpha.get_object_tagging(Bucket=bucket, Key="report.csv")["TagSet"] == [
        {"Key": "unit", "Value": "stats"}]
    # No signature at all: an anonymous write to a private bucket.
    assert _post_form(post["url"], {"key": "uploads/anon"}, "a", b"a")[0] == 403
    keys = [o["Key"] for o in alpha.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["report.csv", "uploads/hello.txt"]
    expired = signer.generate_presigned_post(bucket, "late", ExpiresIn=-10)
    status, body = _post_form(expired["url"], dict(expired["fields"]), "l", b"l")
    assert status == 403 and b"expired" in body
    # With ACLs off (Object Ownership), a form that sets a public ACL is refused.
    alpha.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    status, body = _post_form(post["url"], fields, "acl.txt", b"acl")
    assert status == 400 and b"AccessControlListNotSupported" in body


# ---- quotas ------------------------------------------------------------------------------


def test_quotas_refuse_writes_and_store_nothing(cluster: Cluster, two: dict[str, Any]) -> None:
    alpha = two["alpha"]
    alpha.create_bucket(Bucket="capped")
    admin(cluster, "quota", "set", "--bucket", "capped", "--bytes", "100", "--objects", "2")
    assert admin(cluster, "quota", "get", "--bucket", "capped")["bytes_max"] == 100
    alpha.put_object(Bucket="capped", Key="a", Body=b"x" * 60)
    with pytest.raises(ClientError) as exc:
        alpha.put_object(Bucket="capped", Key="b", Body=b"y" * 60)
    assert code(exc) == "QuotaExceeded"
    assert "Bucket quota" in exc.value.response["Error"]["Message"]
    alpha.put_object(Bucket="capped", Key="b", Body=b"y" * 30)
    with pytest.raises(ClientError) as exc:               # a third object
        alpha.put_object(Bucket="capped", Key="c", Body=b"z")
    assert code(exc) == "QuotaExceeded"
    alpha.put_object(Bucket="capped", Key="b", Body=b"y" * 10)   # an overwrite is no object
    with pytest.raises(ClientError) as exc:
        alpha.copy_object(Bucket="capped", Key="c", CopySource={"Bucket": "capped", "Key": "a"})
    assert code(exc) == "QuotaExceeded"
    keys = [(o["Key"], o["Size"]) for o in alpha.list_objects_v2(Bucket="capped")["Contents"]]
    assert keys == [("a", 60), ("b", 10)]
    # The admin CLI reads the store, which the gateway's usage journal reaches every
    # usage_flush_s (1 s); the gateway itself already counted (the quotas above).
    want = {"tenant": "alpha", "bucket": "capped", "objects": 2, "bytes": 70}
    deadline = time.monotonic() + 15
    while want not in (stored := admin(cluster, "stored", "--tenant", "alpha")) and \
            time.monotonic() < deadline:
        time.sleep(0.3)
    assert want in stored
    # A tenant quota spans its buckets.
    _, gamma = new_tenant(cluster, "gamma")
    admin(cluster, "quota", "set", "--tenant", "gamma", "--bytes", "50")
    gamma.create_bucket(Bucket="gamma-1")
    gamma.create_bucket(Bucket="gamma-2")
    gamma.put_object(Bucket="gamma-1", Key="k", Body=b"g" * 40)
    with pytest.raises(ClientError) as exc:
        gamma.put_object(Bucket="gamma-2", Key="k", Body=b"g" * 20)
    assert code(exc) == "QuotaExceeded" and "Tenant quota" in \
        exc.value.response["Error"]["Message"]
    assert gamma.list_objects_v2(Bucket="gamma-2").get("Contents", []) == []


# ---- audit log ---------------------------------------------------------------------------


def _audit_lines(cluster: Cluster) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((cluster.root / "audit").glob("audit-*.jsonl*")):
        lines += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return lines


def test_audit_log_lines_without_secrets(cluster: Cluster, two: dict[str, Any]) -> None:
    alpha, ka = two["alpha"], two["ka"]
    put = alpha.put_object(Bucket="alpha-data", Key="audited", Body=b"12345")
    put_id = put["ResponseMetadata"]["RequestId"]
    url = alpha.generate_presigned_url("get_object", Params={"Bucket": "alpha-data",
                                                             "Key": "audited"})
    with urllib.request.urlopen(url, timeout=10) as r:
        get_id = r.headers["x-amz-request-id"]
        assert r.read() == b"12345"
    status, _ = _anon_get(f"{cluster.endpoint}/alpha-data/audited")
    assert status == 403

    def by_id() -> dict[str, dict[str, Any]]:
        return {x["request_id"]: x for x in _audit_lines(cluster)}
    def denied_lines(lines: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [x for x in lines.values() if x["tenant"] is None and x["key"] == "audited"]

    # All three lines: the audit file is written by a background thread, in no set order.
    wait_until(lambda: {put_id, get_id} <= set(lines := by_id()) and bool(denied_lines(lines)),
               "audit lines written")
    lines = by_id()
    assert lines[put_id] | {"time": "", "remote": "", "request_id": ""} == {
        "time": "", "remote": "", "request_id": "", "tenant": "alpha",
        "access_key": ka["access_key"], "op": "PutObject", "bucket": "alpha-data",
        "key": "audited", "status": 200, "error": None, "basis": "owner", "bytes_in": 5,
        "bytes_out": 0}
    assert (lines[get_id]["op"], lines[get_id]["bytes_out"]) == ("GetObject", 5)
    denied = denied_lines(lines)
    assert denied and denied[-1]["status"] == 403 and denied[-1]["error"] == "AccessDenied"
    text = "".join(p.read_text() for p in (cluster.root / "audit").glob("audit-*"))
    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    for secret in (ka["secret_key"], two["kb"]["secret_key"], cluster.key.secret_key,
                   signature):
        assert secret not in text


def test_grants_name_tenants_that_exist(cluster: Cluster, two: dict[str, Any]) -> None:
    """As on AWS: a grant to an id no account has is InvalidArgument, one to an e-mail
    address (Coffre's tenants have none) UnresolvableGrantByEmailAddress; neither changes
    anything."""
    alpha, beta = two["alpha"], two["beta"]
    alpha.create_bucket(Bucket="grants")
    alpha.put_bucket_acl(Bucket="grants", GrantRead='id="beta"')
    wait_until(lambda: works_list(beta, "grants"), "beta's grant in force")
    with pytest.raises(ClientError) as exc:
        alpha.put_bucket_acl(Bucket="grants", GrantRead='id="no-such-tenant"')
    assert code(exc) == "InvalidArgument"
    with pytest.raises(ClientError) as exc:
        alpha.put_bucket_acl(Bucket="grants", AccessControlPolicy={
            "Owner": {"ID": "alpha"}, "Grants": [{"Permission": "READ", "Grantee": {
                "Type": "AmazonCustomerByEmail", "EmailAddress": "who@example.org"}}]})
    assert code(exc) == "UnresolvableGrantByEmailAddress"
    grants = alpha.get_bucket_acl(Bucket="grants")["Grants"]
    assert {g["Grantee"].get("ID") for g in grants} == {"beta"}
    with pytest.raises(ClientError) as exc:
        alpha.put_object(Bucket="grants", Key="k", Body=b"x", GrantRead='id="ghost"')
    assert code(exc) == "InvalidArgument"
    assert "Contents" not in alpha.list_objects_v2(Bucket="grants")
