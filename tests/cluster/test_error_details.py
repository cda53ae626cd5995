"""The Error that boto3 shows for common errors, compared whole with what AWS answers
(LocalStack's AWS-validated snapshots, tests/aws/services/s3/test_s3.snapshot.json): each
error's own elements and no others (Coffre added a Resource to every one)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster

BUCKET = "details"


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Any:
    client = cluster.s3()
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="eight", Body=b"12345678")
    return client


def _error(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    return dict(exc.value.response["Error"])


def test_lookups_and_conditions(s3: Any) -> None:
    """test_range_key_not_exists, test_get_object_no_such_bucket, test_invalid_range_error,
    test_precondition_failed_error."""
    assert _error(s3.get_object, Bucket=BUCKET, Key="my-key") == {
        "Code": "NoSuchKey", "Message": "The specified key does not exist.", "Key": "my-key"}
    assert _error(s3.get_object, Bucket="no-such-details", Key="k") == {
        "Code": "NoSuchBucket", "Message": "The specified bucket does not exist",
        "BucketName": "no-such-details"}
    assert _error(s3.get_object, Bucket=BUCKET, Key="eight", Range="bytes=1024-4096") == {
        "Code": "InvalidRange", "Message": "The requested range is not satisfiable",
        "RangeRequested": "bytes=1024-4096", "ActualObjectSize": "8"}
    assert _error(s3.get_object, Bucket=BUCKET, Key="eight", IfMatch='"nope"') == {
        "Code": "PreconditionFailed", "Condition": "If-Match",
        "Message": "At least one of the pre-conditions you specified did not hold"}


def test_bad_content_md5_is_named(s3: Any) -> None:
    """test_s3_invalid_content_md5: the value given comes back as a Content-MD5 element
    (Coffre sent none, and 'is not valid.'); nothing is stored."""
    for given in ("__invalid__", "000", "not base64 encoded checksum"):
        assert _error(s3.put_object, Bucket=BUCKET, Key="md5", Body=b"x",
                      ContentMD5=given) == {
            "Code": "InvalidDigest", "Message": "The Content-MD5 you specified was invalid.",
            "Content-MD5": given}
    assert _error(s3.head_object, Bucket=BUCKET, Key="md5")["Code"] == "404"


def test_multipart_errors_name_the_upload(s3: Any) -> None:
    """test_complete_multipart_parts_order, test_multipart_and_list_parts: InvalidPartOrder
    and InvalidPart carry the UploadId (they did not), NoSuchUpload too."""
    key = "mp/details"
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etags = [s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n,
                            Body=b"part")["ETag"] for n in (1, 2)]
    unordered = {"Parts": [{"PartNumber": 2, "ETag": etags[1]},
                           {"PartNumber": 1, "ETag": etags[0]}]}
    assert _error(s3.complete_multipart_upload, Bucket=BUCKET, Key=key, UploadId=uid,
                  MultipartUpload=unordered) == {
        "Code": "InvalidPartOrder", "UploadId": uid,
        "Message": "The list of parts was not in ascending order. Parts must be ordered by "
                   "part number."}
    wrong = '"' + "0" * 32 + '"'
    error = _error(s3.complete_multipart_upload, Bucket=BUCKET, Key=key, UploadId=uid,
                   MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": wrong}]})
    assert error.pop("Message").startswith("One or more of the specified parts could not")
    # The ETag without its quotes (OpenStack Swift's s3api tests, run against AWS).
    assert error == {"Code": "InvalidPart", "UploadId": uid, "PartNumber": "1",
                     "ETag": wrong.strip('"')}
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
    assert _error(s3.list_parts, Bucket=BUCKET, Key=key, UploadId=uid) == {
        "Code": "NoSuchUpload", "UploadId": uid,
        "Message": "The specified upload does not exist. The upload ID may be invalid, or the "
                   "upload may have been aborted or completed."}
    assert _error(s3.head_object, Bucket=BUCKET, Key=key)["Code"] == "404"
