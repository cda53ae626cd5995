"""SSE-KMS on a real cluster, through boto3: keys made with `coffre admin kms`, objects
written under a named key (by id, alias or ARN), the tenant's default key or the bucket's
default encryption, read back whole, in ranges, in parts and as copy sources with no
header; an unknown key, a disabled one and another tenant's refused as AWS refuses them;
and nothing of the plaintext on the nodes' disks."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster
from tests.cluster.test_sse import MIB, _on_disk, _pattern
from tests.cluster.test_tenants import _post_form, admin, client, new_tenant, wait_until

BUCKET = "kms-data"


@pytest.fixture(scope="module")
def alpha(cluster: Cluster) -> dict[str, Any]:
    """Tenant kms-alpha, its bucket and two keys of its own."""
    _, s3 = new_tenant(cluster, "kms-alpha")
    s3.create_bucket(Bucket=BUCKET)
    main = admin(cluster, "kms", "create-key", "--tenant", "kms-alpha", "--alias", "main")
    other = admin(cluster, "kms", "create-key", "--tenant", "kms-alpha")
    return {"s3": s3, "main": main, "other": other}


def _error(call: Any, **kw: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as exc:
        call(**kw)
    resp = exc.value.response
    return resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"]["Code"]


def _code(call: Any, **kw: Any) -> str:
    """The error code of a call ("" when it succeeds)."""
    try:
        call(**kw)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return ""


def _refuses(s3: Any) -> bool:
    return _code(s3.get_object, Bucket="kms-off", Key="small") == "KMS.DisabledException"


def _kms(resp: Any) -> str | None:
    """The key ARN of an SSE-KMS answer (None unless it says aws:kms)."""
    if resp.get("ServerSideEncryption") != "aws:kms":
        return None
    return str(resp["SSEKMSKeyId"])


def _keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_the_admin_cli_makes_and_lists_keys(cluster: Cluster, alpha: dict[str, Any]) -> None:
    main = alpha["main"]
    assert set(main) == {"key_id", "arn", "tenant", "alias", "state", "created"}
    assert (main["tenant"], main["alias"], main["state"]) == ("kms-alpha", "alias/main",
                                                             "Enabled")
    assert main["arn"].startswith("arn:aws:kms:") and \
        main["arn"].endswith(f":kms-alpha:key/{main['key_id']}")
    listed = admin(cluster, "kms", "list", "--tenant", "kms-alpha")
    assert {k["key_id"] for k in listed} >= {main["key_id"], alpha["other"]["key_id"]}
    assert "material" not in json.dumps(listed)
    for bad in (["--tenant", "kms-alpha", "--alias", "main"],       # taken
                ["--tenant", "kms-alpha", "--alias", "aws/s3"],     # reserved
                ["--tenant", "no-such-tenant"]):
        assert "coffre admin" in admin(cluster, "kms", "create-key", *bad, ok=False)
    assert "no KMS key" in admin(cluster, "kms", "disable", "nope", ok=False)


def test_a_named_key_seals_what_every_read_opens(cluster: Cluster,
                                                 alpha: dict[str, Any]) -> None:
    s3, main = alpha["s3"], alpha["main"]
    bodies = {"small": _pattern(b"KMS-INLINE", 2000), "big": _pattern(b"KMS-CODED", 600_000)}
    context = base64.b64encode(json.dumps({"project": "census"}).encode()).decode()
    names = {"small": main["key_id"], "big": "alias/main"}
    for key, body in bodies.items():
        put = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ServerSideEncryption="aws:kms",
                            SSEKMSKeyId=names[key], SSEKMSEncryptionContext=context,
                            BucketKeyEnabled=True)
        assert _kms(put) == main["arn"] and put["BucketKeyEnabled"] is True
        assert json.loads(base64.b64decode(put["SSEKMSEncryptionContext"])) == \
            {"project": "census"}
        # AWS: an SSE-KMS object's ETag is not the MD5 of its bytes.
        assert put["ETag"] != f'"{hashlib.md5(body).hexdigest()}"'
    by_arn = s3.put_object(Bucket=BUCKET, Key="by-arn", Body=b"arn", ServerSideEncryption=
                           "aws:kms", SSEKMSKeyId=main["arn"])
    assert _kms(by_arn) == main["arn"]
    assert not _on_disk(cluster, b"KMS-INLINE") and not _on_disk(cluster, b"KMS-CODED")
    for key, body in bodies.items():
        got = s3.get_object(Bucket=BUCKET, Key=key)      # no header: the record says it all
        assert got["Body"].read() == body and _kms(got) == main["arn"]
        assert got["BucketKeyEnabled"] is True
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert _kms(head) == main["arn"] and head["ContentLength"] == len(body)
    rnd = random.Random(11)
    for _ in range(16):
        key = rnd.choice(list(bodies))
        lo = rnd.randrange(len(bodies[key]))
        hi = rnd.randrange(lo, len(bodies[key]))
        got = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={lo}-{hi}")
        assert got["Body"].read() == bodies[key][lo:hi + 1], (key, lo, hi)
    # Reads name no encryption (AWS: 400), a customer key does not fit a KMS object.
    assert _error(s3.get_object, Bucket=BUCKET, Key="big", SSECustomerAlgorithm="AES256",
                  SSECustomerKey=os.urandom(32)) == (400, "InvalidRequest")


def test_multipart_and_copies_under_kms(cluster: Cluster, alpha: dict[str, Any]) -> None:
    s3, main, other = alpha["s3"], alpha["main"], alpha["other"]
    source = os.urandom(300_000)
    s3.put_object(Bucket=BUCKET, Key="src", Body=source, ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=other["key_id"])
    up = s3.create_multipart_upload(Bucket=BUCKET, Key="mp", ServerSideEncryption="aws:kms",
                                    SSEKMSKeyId="alias/main")
    assert _kms(up) == main["arn"]
    part = {"Bucket": BUCKET, "Key": "mp", "UploadId": up["UploadId"]}
    first = _pattern(b"KMS-PART", 5 * MIB)
    p1 = s3.upload_part(PartNumber=1, Body=first, **part)
    assert _kms(p1) == main["arn"]
    p2 = s3.upload_part_copy(PartNumber=2, CopySource={"Bucket": BUCKET, "Key": "src"},
                             CopySourceRange="bytes=1000-200999", **part)
    assert _kms(p2) == main["arn"]
    done = s3.complete_multipart_upload(**part, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]},
        {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert _kms(done) == main["arn"] and done["ETag"].endswith('-2"')
    whole = first + source[1000:201000]
    got = s3.get_object(Bucket=BUCKET, Key="mp")
    assert got["Body"].read() == whole and _kms(got) == main["arn"]
    across = s3.get_object(Bucket=BUCKET, Key="mp",
                           Range=f"bytes={5 * MIB - 10}-{5 * MIB + 9}")["Body"].read()
    assert across == whole[5 * MIB - 10:5 * MIB + 10]
    assert not _on_disk(cluster, b"KMS-PART")
    # Copies: KMS to KMS under another key, KMS to plain, plain to KMS (the default key).
    src = {"Bucket": BUCKET, "Key": "src"}
    moved = s3.copy_object(Bucket=BUCKET, Key="rekeyed", CopySource=src,
                           ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/main")
    assert _kms(moved) == main["arn"]
    assert s3.get_object(Bucket=BUCKET, Key="rekeyed")["Body"].read() == source
    clear = s3.copy_object(Bucket=BUCKET, Key="clear", CopySource=src)
    assert _kms(clear) is None
    assert s3.get_object(Bucket=BUCKET, Key="clear")["Body"].read() == source
    back = s3.copy_object(Bucket=BUCKET, Key="back", CopySource={"Bucket": BUCKET,
                          "Key": "clear"}, ServerSideEncryption="aws:kms")
    assert _kms(back) not in (None, main["arn"], other["arn"])     # the default key
    assert s3.get_object(Bucket=BUCKET, Key="back")["Body"].read() == source


def test_the_default_key_is_made_on_first_use(cluster: Cluster) -> None:
    _, s3 = new_tenant(cluster, "kms-fresh")
    s3.create_bucket(Bucket="kms-fresh")
    assert admin(cluster, "kms", "list", "--tenant", "kms-fresh") == []
    first = _kms(s3.put_object(Bucket="kms-fresh", Key="a", Body=b"a",
                               ServerSideEncryption="aws:kms"))
    second = _kms(s3.put_object(Bucket="kms-fresh", Key="b", Body=b"b",
                                ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/aws/s3"))
    assert first is not None and first == second
    listed = admin(cluster, "kms", "list", "--tenant", "kms-fresh")
    assert [(k["arn"], k["alias"]) for k in listed] == [(first, "alias/aws/s3")]
    assert s3.get_object(Bucket="kms-fresh", Key="a")["Body"].read() == b"a"


def test_the_bucket_default_applies_to_writes_that_name_none(cluster: Cluster,
                                                             alpha: dict[str, Any]) -> None:
    s3, main = alpha["s3"], alpha["main"]
    s3.create_bucket(Bucket="kms-default")
    s3.put_bucket_encryption(Bucket="kms-default", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/main"},
            "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket="kms-default")[
        "ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule == {"ApplyServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/main"}, "BucketKeyEnabled": True}
    body = _pattern(b"KMS-DEFAULT", 400_000)
    put = s3.put_object(Bucket="kms-default", Key="k", Body=body)
    assert _kms(put) == main["arn"] and put["BucketKeyEnabled"] is True
    assert s3.get_object(Bucket="kms-default", Key="k")["Body"].read() == body
    assert not _on_disk(cluster, b"KMS-DEFAULT")
    # A form posted with no encryption field gets the default too.
    post = s3.generate_presigned_post("kms-default", "form")
    status, answer = _post_form(post["url"], dict(post["fields"]), "f", b"KMS-FORM-BODY")
    assert status == 204, answer
    assert _kms(s3.head_object(Bucket="kms-default", Key="form")) == main["arn"]
    assert not _on_disk(cluster, b"KMS-FORM-BODY")
    s3.put_bucket_encryption(Bucket="kms-default", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    dflt = _kms(s3.put_object(Bucket="kms-default", Key="d", Body=b"d"))
    assert dflt not in (None, main["arn"])                          # the tenant's default


def test_unknown_keys_are_not_found(alpha: dict[str, Any]) -> None:
    s3, main = alpha["s3"], alpha["main"]
    put = {"Bucket": BUCKET, "Key": "unknown", "Body": b"x", "ServerSideEncryption": "aws:kms"}
    region_elsewhere = main["arn"].replace(main["arn"].split(":")[3], "mars-north-1")
    for name in ("0b1c2d3e-0000-4000-8000-000000000000", "alias/nothing", "key-1",
                 region_elsewhere):
        assert _error(s3.put_object, SSEKMSKeyId=name, **put) == (400, "KMS.NotFoundException")
        assert _error(s3.create_multipart_upload, Bucket=BUCKET, Key="unknown",
                      ServerSideEncryption="aws:kms", SSEKMSKeyId=name) == \
            (400, "KMS.NotFoundException")
    assert "unknown" not in _keys(s3, BUCKET)
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_a_disabled_key_refuses_writes_and_reads(cluster: Cluster) -> None:
    creds, s3 = new_tenant(cluster, "kms-off")
    second = cluster.add_gateway("gateway-kms")
    cluster.start("gateway-kms")
    other_gateway = client(second, creds)
    s3.create_bucket(Bucket="kms-off")
    key = admin(cluster, "kms", "create-key", "--tenant", "kms-off")
    kms_put = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key["key_id"]}
    s3.put_object(Bucket="kms-off", Key="small", Body=b"small secret", **kms_put)
    s3.put_object(Bucket="kms-off", Key="big", Body=os.urandom(300_000), **kms_put)
    up = s3.create_multipart_upload(Bucket="kms-off", Key="mp", **kms_put)["UploadId"]
    wait_until(lambda: _code(other_gateway.get_object, Bucket="kms-off", Key="small") == "",
               "the second gateway serving")
    admin(cluster, "kms", "disable", key["key_id"])
    for gateway in (s3, other_gateway):     # every gateway, within seconds
        wait_until(partial(_refuses, gateway), "the disabled key refused")
    for name in ("small", "big"):
        assert _error(s3.get_object, Bucket="kms-off", Key=name) == \
            (400, "KMS.DisabledException")
        assert _error(s3.get_object, Bucket="kms-off", Key=name, Range="bytes=0-3") == \
            (400, "KMS.DisabledException")
        assert _error(s3.copy_object, Bucket="kms-off", Key=f"{name}-copy",
                      CopySource={"Bucket": "kms-off", "Key": name}) == \
            (400, "KMS.DisabledException")
        # HEAD uses no key (AWS's HeadObject needs no kms:Decrypt).
        assert _kms(s3.head_object(Bucket="kms-off", Key=name)) == key["arn"]
    assert _error(s3.put_object, Bucket="kms-off", Key="new", Body=b"x", **kms_put) == \
        (400, "KMS.DisabledException")
    assert _error(s3.upload_part, Bucket="kms-off", Key="mp", UploadId=up, PartNumber=1,
                  Body=b"p") == (400, "KMS.DisabledException")
    assert _keys(s3, "kms-off") == {"small", "big"}
    admin(cluster, "kms", "enable", key["key_id"])
    wait_until(lambda: _code(s3.get_object, Bucket="kms-off", Key="small") == "",
               "the enabled key usable again")
    assert s3.get_object(Bucket="kms-off", Key="small")["Body"].read() == b"small secret"


def test_another_tenants_key_is_refused(cluster: Cluster, alpha: dict[str, Any]) -> None:
    s3, main = alpha["s3"], alpha["main"]
    _, beta = new_tenant(cluster, "kms-beta")
    beta.create_bucket(Bucket="kms-beta")
    put = {"Bucket": "kms-beta", "Key": "k", "Body": b"x", "ServerSideEncryption": "aws:kms"}
    # An id or alias is looked up in the requester's keyring; an ARN of another account
    # is not the requester's to use.
    assert _error(beta.put_object, SSEKMSKeyId=main["key_id"], **put) == \
        (400, "KMS.NotFoundException")
    assert _error(beta.put_object, SSEKMSKeyId="alias/main", **put) == \
        (400, "KMS.NotFoundException")
    assert _error(beta.put_object, SSEKMSKeyId=main["arn"], **put) == (403, "AccessDenied")
    assert "Contents" not in beta.list_objects_v2(Bucket="kms-beta")
    # Granted alpha's object, beta still cannot decrypt it: as on AWS, whoever reads an
    # SSE-KMS object must be allowed the key, and only alpha is.
    s3.put_object(Bucket=BUCKET, Key="shared", Body=b"for alpha only",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/main")
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "kms-beta"}, "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/shared"}]}))
    assert _error(beta.get_object, Bucket=BUCKET, Key="shared") == (403, "AccessDenied")
    assert _error(beta.copy_object, Bucket="kms-beta", Key="stolen",
                  CopySource={"Bucket": BUCKET, "Key": "shared"}) == (403, "AccessDenied")
    assert s3.get_object(Bucket=BUCKET, Key="shared")["Body"].read() == b"for alpha only"
    s3.delete_bucket_policy(Bucket=BUCKET)
