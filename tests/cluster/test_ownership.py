"""S3 Object Ownership on a real gateway: BucketOwnerEnforced turns ACLs off (they stop
granting, setting one is refused) while bucket policies keep working; removing the
controls brings the old ACLs back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster, running_cluster

ENFORCED = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        yield c


def _anonymous(c: Cluster) -> Any:
    return boto3.client("s3", endpoint_url=c.endpoint, region_name=c.config.region,
                        config=BotoConfig(signature_version=UNSIGNED))


def _code(call: Any, **kw: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(**kw)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_enforced_ownership_disables_acls_not_policies(cluster: Cluster) -> None:
    s3, anon = cluster.s3(), _anonymous(cluster)
    s3.create_bucket(Bucket="owned")
    assert _code(s3.get_bucket_ownership_controls, Bucket="owned") == \
        ("OwnershipControlsNotFoundError", 404)
    s3.put_object(Bucket="owned", Key="pub", Body=b"open", ACL="public-read")
    assert anon.get_object(Bucket="owned", Key="pub")["Body"].read() == b"open"

    s3.put_bucket_ownership_controls(Bucket="owned", OwnershipControls=ENFORCED)
    assert s3.get_bucket_ownership_controls(Bucket="owned")["OwnershipControls"] == ENFORCED
    assert _code(anon.get_object, Bucket="owned", Key="pub") == ("AccessDenied", 403)
    grants = s3.get_object_acl(Bucket="owned", Key="pub")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert _code(s3.put_object, Bucket="owned", Key="x", Body=b"", ACL="public-read") == \
        ("AccessControlListNotSupported", 400)
    assert _code(s3.put_object_acl, Bucket="owned", Key="pub", ACL="public-read") == \
        ("AccessControlListNotSupported", 400)
    assert _code(s3.put_bucket_acl, Bucket="owned", ACL="public-read") == \
        ("AccessControlListNotSupported", 400)
    s3.put_object(Bucket="owned", Key="y", Body=b"y", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError):
        anon.head_object(Bucket="owned", Key="x")      # the refused PUT stored nothing
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::owned/y"}]}
    s3.put_bucket_policy(Bucket="owned", Policy=json.dumps(policy))
    assert anon.get_object(Bucket="owned", Key="y")["Body"].read() == b"y"

    s3.delete_bucket_ownership_controls(Bucket="owned")
    assert _code(s3.get_bucket_ownership_controls, Bucket="owned")[1] == 404
    assert anon.get_object(Bucket="owned", Key="pub")["Body"].read() == b"open"


def test_ownership_at_creation_and_bad_values(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="owned-from-birth", ObjectOwnership="BucketOwnerEnforced")
    assert s3.get_bucket_ownership_controls(Bucket="owned-from-birth")[
        "OwnershipControls"] == ENFORCED
    assert _code(s3.create_bucket, Bucket="owned-acl", ACL="public-read",
                 ObjectOwnership="BucketOwnerEnforced") == \
        ("InvalidBucketAclWithObjectOwnership", 400)
    assert _code(s3.head_bucket, Bucket="owned-acl")[1] == 404
    assert _code(s3.create_bucket, Bucket="owned-bad", ObjectOwnership="Nobody")[0] == \
        "InvalidArgument"
    assert _code(s3.put_bucket_ownership_controls, Bucket="owned-from-birth",
                 OwnershipControls={"Rules": [{"ObjectOwnership": "Everyone"}]}) == \
        ("MalformedXML", 400)
    s3.put_bucket_ownership_controls(Bucket="owned-from-birth", OwnershipControls={
        "Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    assert s3.get_bucket_ownership_controls(Bucket="owned-from-birth")["OwnershipControls"][
        "Rules"] == [{"ObjectOwnership": "ObjectWriter"}]


def test_a_multipart_upload_carries_its_acl_to_the_object(cluster: Cluster) -> None:
    """`aws s3 cp --acl public-read` of a big file is a multipart upload: the ACL given at
    CreateMultipartUpload is the completed object's."""
    s3, anon = cluster.s3(), _anonymous(cluster)
    s3.create_bucket(Bucket="mp-acl")
    up = s3.create_multipart_upload(Bucket="mp-acl", Key="big", ACL="public-read")
    etag = s3.upload_part(Bucket="mp-acl", Key="big", UploadId=up["UploadId"],
                          PartNumber=1, Body=b"z" * 1000)["ETag"]
    assert _code(anon.get_object, Bucket="mp-acl", Key="big")[1] == 403   # not yet there
    s3.complete_multipart_upload(Bucket="mp-acl", Key="big", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert anon.get_object(Bucket="mp-acl", Key="big")["Body"].read() == b"z" * 1000
    private = s3.create_multipart_upload(Bucket="mp-acl", Key="closed")["UploadId"]
    etag = s3.upload_part(Bucket="mp-acl", Key="closed", UploadId=private, PartNumber=1,
                          Body=b"c")["ETag"]
    s3.complete_multipart_upload(Bucket="mp-acl", Key="closed", UploadId=private,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert _code(anon.get_object, Bucket="mp-acl", Key="closed") == ("AccessDenied", 403)
    s3.put_bucket_ownership_controls(Bucket="mp-acl", OwnershipControls=ENFORCED)
    assert _code(s3.create_multipart_upload, Bucket="mp-acl", Key="again",
                 ACL="public-read") == ("AccessControlListNotSupported", 400)
