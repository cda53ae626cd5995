"""Server access logging's pure parts: the BucketLoggingStatus document as botocore writes
and reads it, the bucket record's new element, log object keys, the log line (AWS's
format: fields, quoting, "-", the time), operation names, and the bounded buffer."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime
from typing import Any

import msgpack
import pytest

from gateway import access, acl, errors, policy, router
from gateway.access_log import (
    Buffer,
    Destination,
    LogRecord,
    clf_time,
    format_line,
    operation,
    request_uri,
)
from gateway.bucket_logging import (
    DateSource,
    KeyFormat,
    LoggingConfig,
    check_key_room,
    object_key,
    parse,
    render,
)
from gateway.manifest import BucketRecord
from gateway.sse import BucketDefault
from tests.gateway.botocore_offline import offline_client

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def _put_body(status: dict[str, Any]) -> bytes:
    seen: list[bytes] = []
    offline_client("PutBucketLogging", b"", seen).put_bucket_logging(
        Bucket="src", BucketLoggingStatus=status)
    return seen[0]


# ---- the configuration document ----------------------------------------------------------


def test_configuration_as_botocore_writes_and_reads_it() -> None:
    status = {"LoggingEnabled": {
        "TargetBucket": "logs", "TargetPrefix": "src/",
        "TargetGrants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": "auditor"}, "Permission": "READ"},
            {"Grantee": {"Type": "Group",
                         "URI": "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"},
             "Permission": "FULL_CONTROL"}],
        "TargetObjectKeyFormat": {"PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}},
    }}
    cfg = parse(_put_body(status))
    assert cfg == LoggingConfig("logs", "src/", (
        acl.Grant(acl.GranteeKind.TENANT, "auditor", acl.Permission.READ),
        acl.Grant(acl.GranteeKind.GROUP, acl.AUTHENTICATED_URI, acl.Permission.FULL_CONTROL)),
        KeyFormat.PARTITIONED, DateSource.DELIVERY_TIME)
    got = offline_client("GetBucketLogging", render(cfg), []).get_bucket_logging(Bucket="src")
    enabled = got["LoggingEnabled"]
    assert (enabled["TargetBucket"], enabled["TargetPrefix"]) == ("logs", "src/")
    assert enabled["TargetObjectKeyFormat"] == {
        "PartitionedPrefix": {"PartitionDateSource": "DeliveryTime"}}
    assert [(g["Grantee"].get("ID"), g["Permission"]) for g in enabled["TargetGrants"]] == [
        ("auditor", "READ"), (None, "FULL_CONTROL")]
    assert parse(render(cfg)) == cfg


@pytest.mark.parametrize("key_format, expected", [
    (None, (KeyFormat.DEFAULT, DateSource.DEFAULT)),
    ({"SimplePrefix": {}}, (KeyFormat.SIMPLE, DateSource.DEFAULT)),
    ({"PartitionedPrefix": {}}, (KeyFormat.PARTITIONED, DateSource.DEFAULT)),
    ({"PartitionedPrefix": {"PartitionDateSource": "EventTime"}},
     (KeyFormat.PARTITIONED, DateSource.EVENT_TIME)),
])
def test_key_formats_round_trip(key_format: dict[str, Any] | None,
                                expected: tuple[KeyFormat, DateSource]) -> None:
    enabled: dict[str, Any] = {"TargetBucket": "logs", "TargetPrefix": ""}
    if key_format is not None:
        enabled["TargetObjectKeyFormat"] = key_format
    cfg = parse(_put_body({"LoggingEnabled": enabled}))
    assert cfg is not None and (cfg.key_format, cfg.date_source) == expected
    assert cfg.grants == () and cfg.target_prefix == ""
    assert parse(render(cfg)) == cfg
    got = offline_client("GetBucketLogging", render(cfg), []).get_bucket_logging(Bucket="s")
    assert got["LoggingEnabled"].get("TargetObjectKeyFormat") == key_format


def test_an_empty_status_turns_logging_off() -> None:
    assert parse(_put_body({})) is None
    assert parse(f"<BucketLoggingStatus {NS}/>".encode()) is None
    got = offline_client("GetBucketLogging", render(None), []).get_bucket_logging(Bucket="s")
    assert "LoggingEnabled" not in got


def _enabled(inner: str) -> bytes:
    return f"<BucketLoggingStatus {NS}><LoggingEnabled>{inner}</LoggingEnabled>" \
           "</BucketLoggingStatus>".encode()


_TARGET = "<TargetBucket>logs</TargetBucket><TargetPrefix>p/</TargetPrefix>"


@pytest.mark.parametrize("body", [
    b"not xml",
    b"<LoggingStatus/>",
    _enabled("<TargetBucket>logs</TargetBucket>"),                 # TargetPrefix required
    _enabled("<TargetPrefix>p/</TargetPrefix>"),                   # TargetBucket required
    _enabled(_TARGET + "<TargetPrefix>q/</TargetPrefix>"),
    _enabled(_TARGET + "<Colour>red</Colour>"),
    f"<BucketLoggingStatus {NS}><Other/></BucketLoggingStatus>".encode(),
    f"<BucketLoggingStatus {NS}><LoggingEnabled>{_TARGET}</LoggingEnabled>"
    f"<LoggingEnabled>{_TARGET}</LoggingEnabled></BucketLoggingStatus>".encode(),
    _enabled(_TARGET + "<TargetObjectKeyFormat/>"),
    _enabled(_TARGET + "<TargetObjectKeyFormat><SimplePrefix/><PartitionedPrefix/>"
             "</TargetObjectKeyFormat>"),
    _enabled(_TARGET + "<TargetObjectKeyFormat><PartitionedPrefix><PartitionDateSource>"
             "Yesterday</PartitionDateSource></PartitionedPrefix></TargetObjectKeyFormat>"),
    _enabled(_TARGET + "<TargetGrants><Grant><Grantee " + XSI + ' xsi:type="CanonicalUser">'
             "<ID>x</ID></Grantee><Permission>WRITE_ACP</Permission></Grant></TargetGrants>"),
    _enabled(_TARGET + "<TargetGrants><Grant><Permission>READ</Permission></Grant>"
             "</TargetGrants>"),
])
def test_malformed_documents(body: bytes) -> None:
    with pytest.raises(errors.S3Error) as exc:
        parse(body)
    assert (exc.value.code, exc.value.status) == ("MalformedXML", 400)


def test_grant_by_email_is_refused_as_for_acls() -> None:
    body = _enabled(_TARGET + "<TargetGrants><Grant><Grantee " + XSI
                    + ' xsi:type="AmazonCustomerByEmail"><EmailAddress>a@b.c</EmailAddress>'
                    "</Grantee><Permission>READ</Permission></Grant></TargetGrants>")
    with pytest.raises(errors.UnresolvableGrantByEmailAddress):
        parse(body)


# A bucket record with default encryption exactly as the gateway wrote it before [19].
BUCKET_BEFORE_LOGGING_HEX = ("dc001302a3737263c4083132333435363738a66167656e6379010402089090a0"
                             "90c090c0a0a0c0a6414553323536")


def test_bucket_record_keeps_logging_and_old_records_read() -> None:
    b = BucketRecord("src", b"12345678", "agency", 1, 4, 2, 8, encryption=BucketDefault("AES256"))
    old = bytes.fromhex(BUCKET_BEFORE_LOGGING_HEX)
    assert len(msgpack.unpackb(old)) == 19
    assert BucketRecord.decode(old) == b and b.logging is None
    cfg = LoggingConfig("logs", "x/", (acl.Grant(acl.GranteeKind.TENANT, "t",
                                                 acl.Permission.READ),),
                        KeyFormat.PARTITIONED, DateSource.EVENT_TIME)
    logged = dataclasses.replace(b, logging=cfg)
    assert BucketRecord.decode(logged.encode()) == logged
    assert BucketRecord.decode(dataclasses.replace(logged, logging=None).encode()) == b


def test_routed_owner_only_with_their_own_iam_actions() -> None:
    for method, op in (("GET", "GetBucketLogging"), ("PUT", "PutBucketLogging")):
        assert router.route(method, "/src", {"logging": ""}, {}).op == op
        rule = access.rule_of(op)
        assert rule.owner_only and rule.action == f"s3:{op}"
    owner = BucketRecord("src", b"12345678", "agency", 1, 4, 2, 8)
    put = access.AccessRequest("PutBucketLogging", "src", None, "agency")
    assert access.decide(put, owner) is access.Basis.OWNER
    with pytest.raises(errors.S3Error) as exc:
        access.decide(dataclasses.replace(put, principal="other"), owner)
    assert exc.value.code == "AccessDenied"
    deny = policy.bucket_arn("src")
    denied = dataclasses.replace(owner, policy=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*",'
        f'"Action":"s3:PutBucketLogging","Resource":"{deny}"}}]}}'))
    with pytest.raises(errors.S3Error):
        access.decide(put, denied)
    assert access.decide(dataclasses.replace(put, op="GetBucketLogging"), denied) is \
        access.Basis.OWNER


# ---- log object keys ---------------------------------------------------------------------


def test_object_keys_as_aws_names_them() -> None:
    at = datetime(2026, 3, 9, 14, 5, 7, tzinfo=UTC)
    simple = LoggingConfig("logs", "src/")
    assert object_key(simple, "agency", "eu-west-3", "src", at, None, "ABCDEF0123456789") == \
        "src/2026-03-09-14-05-07-ABCDEF0123456789"
    assert object_key(dataclasses.replace(simple, key_format=KeyFormat.SIMPLE), "agency",
                      "r", "src", at, None, "U") == "src/2026-03-09-14-05-07-U"
    by_delivery = dataclasses.replace(simple, key_format=KeyFormat.PARTITIONED,
                                      date_source=DateSource.DELIVERY_TIME)
    assert object_key(by_delivery, "agency", "eu-west-3", "src", at, None, "U") == \
        "src/agency/eu-west-3/src/2026/03/09/2026-03-09-14-05-07-U"
    by_event = dataclasses.replace(by_delivery, date_source=DateSource.DEFAULT)
    assert by_event.by_event_day and not by_delivery.by_event_day
    assert object_key(by_event, "agency", "eu-west-3", "src", at, date(2026, 3, 8), "U") == \
        "src/agency/eu-west-3/src/2026/03/08/2026-03-08-00-00-00-U"


def test_a_prefix_must_leave_room_for_the_name() -> None:
    check_key_room(LoggingConfig("logs", "p" * 988), "agency", "r", "src")
    with pytest.raises(errors.InvalidArgument):
        check_key_room(LoggingConfig("logs", "p" * 989), "agency", "r", "src")
    partitioned = LoggingConfig("logs", "p" * 900, key_format=KeyFormat.PARTITIONED)
    with pytest.raises(errors.InvalidArgument):
        check_key_room(partitioned, "a" * 40, "eu-west-3", "b" * 63)


# ---- the line ----------------------------------------------------------------------------


def _record(**kw: Any) -> LogRecord:
    base = LogRecord(
        "agency", "open-data", 1549411238.25, "192.0.2.3", "agency", "3E57427F3EXAMPLE",
        "REST.GET.VERSIONING", None, "GET /open-data?versioning HTTP/1.1", 200, None, 113,
        None, 7, None, None, "S3Console/0.4", None, "s9lzHYrFp76ZVxRcpX9", "SigV4",
        "AuthHeader", "open-data.s3.example", False)
    return dataclasses.replace(base, **kw)


def split_line(line: str) -> list[str]:
    """A log line's fields, as log tools read them: [time] and "quoted" fields are one."""
    return re.findall(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+', line)


def test_line_fields_in_aws_order() -> None:
    assert clf_time(1549411238.25) == "[06/Feb/2019:00:00:38 +0000]"
    assert format_line(_record()) == (
        'agency open-data [06/Feb/2019:00:00:38 +0000] 192.0.2.3 agency 3E57427F3EXAMPLE '
        'REST.GET.VERSIONING - "GET /open-data?versioning HTTP/1.1" 200 - 113 - 7 - "-" '
        '"S3Console/0.4" - s9lzHYrFp76ZVxRcpX9 SigV4 - AuthHeader open-data.s3.example - - -')


def test_line_dashes_quoting_and_keys() -> None:
    line = format_line(_record(
        requester=None, operation="REST.GET.OBJECT", key="census/2026 é.csv",
        request_uri='GET /open-data/census/2026%20%C3%A9.csv?x="y" HTTP/1.1', status=404,
        error_code="NoSuchKey", bytes_sent=0, object_size=None, total_ms=None,
        referer="https://portal.example/a b", user_agent='curl/8 "quoted" \\ \n',
        version_id="null", signature_version=None, auth_type=None, acl_required=True))
    fields = split_line(line)
    assert len(fields) == 26
    assert fields[4] == "-"             # anonymous
    assert fields[7] == "census/2026%20%C3%A9.csv"
    assert fields[8] == '"GET /open-data/census/2026%20%C3%A9.csv?x=\\"y\\" HTTP/1.1"'
    assert fields[9:15] == ["404", "NoSuchKey", "-", "-", "-", "-"]
    assert fields[15] == '"https://portal.example/a b"'
    assert fields[16] == '"curl/8 \\"quoted\\" \\\\ \\x0a"'
    assert fields[17] == "null" and fields[19:22] == ["-", "-", "-"] and fields[25] == "Yes"
    assert "\n" not in line
    spaced = format_line(_record(requester="tenant with space"))
    assert split_line(spaced)[4] == "tenant\\x20with\\x20space"


def test_presigned_signatures_are_left_out() -> None:
    assert request_uri("GET", "/b/k?X-Amz-Algorithm=A&X-Amz-Signature=abc&x=1", "1.1") == \
        "GET /b/k?X-Amz-Algorithm=A&x=1 HTTP/1.1"
    assert request_uri("GET", "/b/k?AWSAccessKeyId=K&Signature=s%2F&Expires=9", "1.0") == \
        "GET /b/k?AWSAccessKeyId=K&Expires=9 HTTP/1.0"
    assert request_uri("PUT", "/b/k", "1.1") == "PUT /b/k HTTP/1.1"


@pytest.mark.parametrize("op, method, has_key, name", [
    ("GetObject", "GET", True, "REST.GET.OBJECT"),
    ("PutObject", "PUT", True, "REST.PUT.OBJECT"),
    ("HeadObject", "HEAD", True, "REST.HEAD.OBJECT"),
    ("DeleteObject", "DELETE", True, "REST.DELETE.OBJECT"),
    ("ListObjectsV2", "GET", False, "REST.GET.BUCKET"),
    ("HeadBucket", "HEAD", False, "REST.HEAD.BUCKET"),
    ("CopyObject", "PUT", True, "REST.COPY.OBJECT"),
    ("UploadPartCopy", "PUT", True, "REST.COPY.PART"),
    ("CreateMultipartUpload", "POST", True, "REST.POST.UPLOADS"),
    ("CompleteMultipartUpload", "POST", True, "REST.POST.UPLOAD"),
    ("DeleteObjects", "POST", False, "REST.POST.MULTI_OBJECT_DELETE"),
    ("GetBucketVersioning", "GET", False, "REST.GET.VERSIONING"),
    ("GetBucketLogging", "GET", False, "REST.GET.LOGGING_STATUS"),
    ("GetBucketPolicy", "GET", False, "REST.GET.BUCKETPOLICY"),
    ("GetObjectTagging", "GET", True, "REST.GET.OBJECT_TAGGING"),
    ("PutBucketTagging", "PUT", False, "REST.PUT.TAGGING"),
    ("GetPublicAccessBlock", "GET", False, "REST.GET.PUBLIC_ACCESS_BLOCK"),
    ("PreflightRequest", "OPTIONS", True, "REST.OPTIONS.PREFLIGHT"),
])
def test_operation_names(op: str, method: str, has_key: bool, name: str) -> None:
    assert operation(op, method, has_key) == name


def test_website_requests_are_named_so() -> None:
    assert operation("GetObject", "GET", True, website=True) == "WEBSITE.GET.OBJECT"


# ---- the buffer --------------------------------------------------------------------------


def _dest(bucket: str = "src") -> Destination:
    return Destination("agency", bucket, LoggingConfig("logs", f"{bucket}/"), None)


def test_buffer_batches_by_destination_and_sets_full_ones_aside() -> None:
    buf = Buffer(bytes_max=1000, batch_bytes_max=30)
    assert buf.add(_dest(), b"a" * 10) and buf.add(_dest("other"), b"b" * 10)
    assert not buf.has_full
    assert buf.add(_dest(), b"c" * 25) and buf.has_full
    full = buf.take(everything=False)
    assert [(b.destination.bucket, b.lines) for b in full] == [("src", [b"a" * 10, b"c" * 25])]
    assert buf.held_bytes == 45                 # counted until delivered
    buf.done(full[0])
    rest = buf.take(everything=True)
    assert [(b.destination.bucket, b.size) for b in rest] == [("other", 10)]
    buf.done(rest[0])
    assert buf.held_bytes == 0 and buf.take(everything=True) == []


def test_buffer_is_bounded_and_retries_a_bounded_number_of_times() -> None:
    buf = Buffer(bytes_max=20, batch_bytes_max=100, retries_max=2)
    assert buf.add(_dest(), b"x" * 15)
    assert not buf.add(_dest(), b"y" * 6) and buf.dropped_lines == 1
    [batch] = buf.take(everything=True)
    assert buf.failed(batch) and buf.take(everything=False) == []   # waits for a flush
    assert buf.take(everything=True) == [batch]
    assert buf.failed(batch)
    assert buf.take(everything=True) == [batch]
    assert not buf.failed(batch)                # the third failure: dropped
    assert buf.held_bytes == 0 and buf.take(everything=True) == []
    assert buf.add(_dest(), b"y" * 6)           # room again
