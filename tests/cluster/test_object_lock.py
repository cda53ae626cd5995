"""S3 Object Lock on a real cluster, through boto3: retention modes, legal holds, default
retention, and the removals they refuse; overwrites and plain deletes still add versions."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster

MIB = 1024 * 1024


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _locked_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)


def test_lock_enabled_at_creation(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _locked_bucket(s3, "lock-new")
    assert s3.get_bucket_versioning(Bucket="lock-new")["Status"] == "Enabled"
    cfg = s3.get_object_lock_configuration(Bucket="lock-new")["ObjectLockConfiguration"]
    assert cfg == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket="lock-new",
                                 VersioningConfiguration={"Status": "Suspended"})
    assert _code(exc) == "InvalidBucketState"
    s3.create_bucket(Bucket="lock-none")
    with pytest.raises(ClientError) as exc:
        s3.get_object_lock_configuration(Bucket="lock-none")
    assert _code(exc) == "ObjectLockConfigurationNotFoundError"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="lock-none", Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=_later(60))
    assert _code(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:      # not versioned: no Object Lock
        s3.put_object_lock_configuration(Bucket="lock-none", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled"})
    assert _code(exc) == "InvalidBucketState"
    assert "Contents" not in s3.list_objects_v2(Bucket="lock-none")


def test_compliance_retention(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _locked_bucket(s3, "lock-comp")
    until = _later(3600).replace(microsecond=0)
    vid = s3.put_object(Bucket="lock-comp", Key="rec", Body=b"record" * 50_000,
                        ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=until)["VersionId"]
    head = s3.head_object(Bucket="lock-comp", Key="rec")
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"] == until
    got = s3.get_object_retention(Bucket="lock-comp", Key="rec", VersionId=vid)["Retention"]
    assert got == {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    for bypass in (False, True):
        with pytest.raises(ClientError) as exc:
            s3.delete_object(Bucket="lock-comp", Key="rec", VersionId=vid,
                             BypassGovernanceRetention=bypass)
        assert _code(exc) == "AccessDenied"
    # Shorter or weaker: refused; longer: fine.
    for change in ({"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(minutes=1)},
                   {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)}):
        with pytest.raises(ClientError) as exc:
            s3.put_object_retention(Bucket="lock-comp", Key="rec", VersionId=vid,
                                    Retention=change, BypassGovernanceRetention=True)
        assert _code(exc) == "AccessDenied"
    longer = until + timedelta(days=1)
    s3.put_object_retention(Bucket="lock-comp", Key="rec", VersionId=vid,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    assert s3.head_object(Bucket="lock-comp", Key="rec")["ObjectLockRetainUntilDate"] == longer
    # A plain DELETE only adds a marker; the locked version stays readable.
    assert s3.delete_object(Bucket="lock-comp", Key="rec")["DeleteMarker"] is True
    assert s3.get_object(Bucket="lock-comp", Key="rec", VersionId=vid)["Body"].read() == \
        b"record" * 50_000
    got = s3.delete_objects(Bucket="lock-comp", Delete={"Objects": [
        {"Key": "rec", "VersionId": vid}]})
    assert [e["Code"] for e in got["Errors"]] == ["AccessDenied"]


def test_governance_bypass_and_expiry(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _locked_bucket(s3, "lock-gov")
    vid = s3.put_object(Bucket="lock-gov", Key="g", Body=b"g", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=_later(3600))["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket="lock-gov", Key="g", VersionId=vid)
    assert _code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:     # removing it needs the bypass too
        s3.put_object_retention(Bucket="lock-gov", Key="g", VersionId=vid, Retention={})
    assert _code(exc) == "AccessDenied"
    stricter = {"Mode": "COMPLIANCE", "RetainUntilDate": _later(3600)}
    with pytest.raises(ClientError) as exc:     # so does changing its mode, as on AWS
        s3.put_object_retention(Bucket="lock-gov", Key="g", VersionId=vid, Retention=stricter)
    assert _code(exc) == "AccessDenied"
    s3.delete_object(Bucket="lock-gov", Key="g", VersionId=vid, BypassGovernanceRetention=True)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="lock-gov", Key="g", VersionId=vid)
    assert _code(exc) == "NoSuchVersion"
    # A retention that has run out protects nothing.
    short = s3.put_object(Bucket="lock-gov", Key="s", Body=b"s", ObjectLockMode="COMPLIANCE",
                          ObjectLockRetainUntilDate=_later(2))["VersionId"]
    with pytest.raises(ClientError):
        s3.delete_object(Bucket="lock-gov", Key="s", VersionId=short)
    time.sleep(2.5)
    s3.delete_object(Bucket="lock-gov", Key="s", VersionId=short)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="lock-gov", Key="p", Body=b"p", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=datetime(2001, 1, 1, tzinfo=UTC))
    assert _code(exc) == "InvalidArgument"


def test_legal_hold(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _locked_bucket(s3, "lock-hold")
    vid = s3.put_object(Bucket="lock-hold", Key="h", Body=b"h",
                        ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket="lock-hold", Key="h")["LegalHold"] == \
        {"Status": "ON"}
    assert s3.head_object(Bucket="lock-hold", Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as exc:
        s3.get_object_retention(Bucket="lock-hold", Key="h")
    assert _code(exc) == "NoSuchObjectLockConfiguration"
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket="lock-hold", Key="h", VersionId=vid,
                         BypassGovernanceRetention=True)
    assert _code(exc) == "AccessDenied"
    s3.put_object_legal_hold(Bucket="lock-hold", Key="h", VersionId=vid,
                             LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket="lock-hold", Key="h", VersionId=vid)
    assert "Versions" not in s3.list_object_versions(Bucket="lock-hold")


def test_default_retention_applies_to_every_new_version(cluster: Cluster) -> None:
    """A bucket versioned first and locked after; its default rule dates plain PUTs,
    multipart uploads and copies; a request's own retention wins over it."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="lock-default")
    s3.put_bucket_versioning(Bucket="lock-default",
                             VersioningConfiguration={"Status": "Enabled"})
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}
    s3.put_object_lock_configuration(Bucket="lock-default", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": rule})
    cfg = s3.get_object_lock_configuration(Bucket="lock-default")["ObjectLockConfiguration"]
    assert cfg == {"ObjectLockEnabled": "Enabled", "Rule": rule}
    before = datetime.now(UTC)
    s3.put_object(Bucket="lock-default", Key="plain", Body=b"p")
    uid = s3.create_multipart_upload(Bucket="lock-default", Key="multi")["UploadId"]
    etag = s3.upload_part(Bucket="lock-default", Key="multi", UploadId=uid, PartNumber=1,
                          Body=b"m" * MIB)["ETag"]
    s3.complete_multipart_upload(Bucket="lock-default", Key="multi", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    s3.copy_object(Bucket="lock-default", Key="copied",
                   CopySource={"Bucket": "lock-default", "Key": "plain"})
    after = datetime.now(UTC)
    for key in ("plain", "multi", "copied"):
        r = s3.get_object_retention(Bucket="lock-default", Key=key)["Retention"]
        assert r["Mode"] == "GOVERNANCE", key
        assert before + timedelta(days=2) - timedelta(seconds=1) <= r["RetainUntilDate"] <= \
            after + timedelta(days=2), key
    own = _later(600).replace(microsecond=0)
    uid = s3.create_multipart_upload(Bucket="lock-default", Key="own",
                                     ObjectLockMode="COMPLIANCE",
                                     ObjectLockRetainUntilDate=own)["UploadId"]
    etag = s3.upload_part(Bucket="lock-default", Key="own", UploadId=uid, PartNumber=1,
                          Body=b"o")["ETag"]
    s3.complete_multipart_upload(Bucket="lock-default", Key="own", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object_retention(Bucket="lock-default", Key="own")["Retention"] == {
        "Mode": "COMPLIANCE", "RetainUntilDate": own}
    with pytest.raises(ClientError) as exc:
        s3.put_object_lock_configuration(Bucket="lock-default", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}})
    assert _code(exc) == "MalformedXML"


def test_unset_hold_and_refusals_answer_as_aws(cluster: Cluster) -> None:
    """A version whose legal hold was never set has none to show (404, as its retention),
    one put OFF shows OFF; a lock's refusal says "Access Denied" and no more (AWS's
    answers, as LocalStack's and S3Mock's AWS-validated tests record them)."""
    s3 = cluster.s3()
    _locked_bucket(s3, "lock-aws")
    s3.put_object(Bucket="lock-aws", Key="plain", Body=b"p")
    for call in (s3.get_object_legal_hold, s3.get_object_retention):
        with pytest.raises(ClientError) as exc:
            call(Bucket="lock-aws", Key="plain")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert exc.value.response["Error"]["Message"] == \
            "The specified object does not have a ObjectLock configuration"
        assert _code(exc) == "NoSuchObjectLockConfiguration"
    s3.put_object_legal_hold(Bucket="lock-aws", Key="plain", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket="lock-aws", Key="plain")["LegalHold"] == \
        {"Status": "OFF"}
    s3.put_object(Bucket="lock-aws", Key="off", Body=b"o", ObjectLockLegalHoldStatus="OFF")
    assert s3.get_object_legal_hold(Bucket="lock-aws", Key="off")["LegalHold"] == \
        {"Status": "OFF"}
    vid = s3.put_object(Bucket="lock-aws", Key="gov", Body=b"g", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=_later(3600))["VersionId"]
    refusals: list[Callable[[], object]] = [
        lambda: s3.delete_object(Bucket="lock-aws", Key="gov", VersionId=vid),
        lambda: s3.put_object_retention(Bucket="lock-aws", Key="gov", VersionId=vid,
                                        Retention={"Mode": "GOVERNANCE",
                                                   "RetainUntilDate": _later(60)})]
    for refused in refusals:
        with pytest.raises(ClientError) as exc:
            refused()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert (_code(exc), exc.value.response["Error"]["Message"]) == \
            ("AccessDenied", "Access Denied")
    got = s3.delete_objects(Bucket="lock-aws", Delete={"Objects": [
        {"Key": "gov", "VersionId": vid}]})
    assert [(e["Code"], e["Message"]) for e in got["Errors"]] == \
        [("AccessDenied", "Access Denied")]
    assert s3.get_object(Bucket="lock-aws", Key="gov", VersionId=vid)["Body"].read() == b"g"
