"""Server access logging on a real cluster, through boto3: Put/GetBucketLogging and their
refusals, lines delivered as objects into the target bucket (GET, PUT, a 404, an anonymous
403, each with its operation, key, status and error code), partitioned keys and target
grants, a bucket logging into itself (its log objects make no lines), disabling, and the
last flush of a gateway stopped with SIGTERM. The gateway flushes every second, and stores
objects above 512 bytes erasure-coded, as most log objects here are."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.up import ProcessSpec
from tests.cluster.harness import Cluster, free_ports, running_cluster
from tests.cluster.test_tenants import client, new_tenant
from tests.gateway.test_access_log import split_line

DELIVERY_WAIT_S = 30.0          # far above the 1 s flush period
INLINE = 512                    # inline_max_bytes: a line is ~300 bytes
SIMPLE_KEY = re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-F]{16}")
# The fields of a line (tests.gateway.test_access_log.split_line), by name.
OWNER, BUCKET, REQUESTER, REQUEST_ID, OPERATION, KEY, STATUS, ERROR = 0, 1, 4, 5, 6, 7, 9, 10
BYTES_SENT, OBJECT_SIZE = 11, 12


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(gateway_extra=f"access_log_flush_s = 1\ninline_max_bytes = {INLINE}"
                         ) as c:
        yield c


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Any:
    return cluster.s3()


@pytest.fixture(scope="module")
def owner(s3: Any) -> str:
    return str(s3.list_buckets()["Owner"]["ID"])


def _enable(s3: Any, bucket: str, target: str, prefix: str, **extra: Any) -> None:
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": target, "TargetPrefix": prefix, **extra}})


def _log_objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    got = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in got.get("Contents", [])]


def _lines(s3: Any, bucket: str, prefix: str) -> list[list[str]]:
    out = []
    for key in _log_objects(s3, bucket, prefix):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        out += [split_line(line) for line in body.splitlines()]
    return out


def _delivered(s3: Any, bucket: str, prefix: str, ids: list[str]) -> dict[str, list[str]]:
    """The lines of the requests `ids`, once all of them are in the target, by request id."""
    deadline = time.monotonic() + DELIVERY_WAIT_S
    while True:
        by_id = {f[REQUEST_ID]: f for f in _lines(s3, bucket, prefix)}
        if all(i in by_id for i in ids):
            return by_id
        if time.monotonic() > deadline:
            missing = [i for i in ids if i not in by_id]
            raise AssertionError(f"lines of {missing} not delivered in {DELIVERY_WAIT_S} s")
        time.sleep(0.5)


def _rid(answer: Any) -> str:
    return str(answer["ResponseMetadata"]["RequestId"])


def _failed(call: Any, **kw: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call(**kw)
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], _rid(err)


def test_requests_are_delivered_as_aws_lines(cluster: Cluster, s3: Any, owner: str) -> None:
    s3.create_bucket(Bucket="portal")
    s3.create_bucket(Bucket="portal-logs")
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket="portal")
    _enable(s3, "portal", "portal-logs", "access/")
    got = s3.get_bucket_logging(Bucket="portal")["LoggingEnabled"]
    assert (got["TargetBucket"], got["TargetPrefix"]) == ("portal-logs", "access/")
    put = s3.put_object(Bucket="portal", Key="census/2026 région.csv", Body=b"a,b\n1,2\n")
    get = s3.get_object(Bucket="portal", Key="census/2026 région.csv")
    assert get["Body"].read() == b"a,b\n1,2\n"
    missing = _failed(s3.get_object, Bucket="portal", Key="census/none.csv")
    anonymous = _failed(client(cluster.endpoint, None).get_object, Bucket="portal",
                        Key="census/2026 région.csv")
    listed = s3.list_objects_v2(Bucket="portal", Prefix="census/")
    assert missing[:2] == ("NoSuchKey", 404) and anonymous[:2] == ("AccessDenied", 403)
    lines = _delivered(s3, "portal-logs", "access/", [
        _rid(put), _rid(get), missing[2], anonymous[2], _rid(listed)])
    key = "census/2026%20r%C3%A9gion.csv"
    expected = {
        _rid(put): ("REST.PUT.OBJECT", key, "200", "-", owner),
        _rid(get): ("REST.GET.OBJECT", key, "200", "-", owner),
        missing[2]: ("REST.GET.OBJECT", "census/none.csv", "404", "NoSuchKey", owner),
        anonymous[2]: ("REST.GET.OBJECT", key, "403", "AccessDenied", "-"),
        _rid(listed): ("REST.GET.BUCKET", "-", "200", "-", owner),
    }
    for rid, (op, k, status, error, requester) in expected.items():
        f = lines[rid]
        assert len(f) == 26
        assert (f[OPERATION], f[KEY], f[STATUS], f[ERROR], f[REQUESTER]) == (
            op, k, status, error, requester)
        assert (f[OWNER], f[BUCKET]) == (owner, "portal")
    assert (lines[_rid(get)][BYTES_SENT], lines[_rid(get)][OBJECT_SIZE]) == ("8", "8")
    assert (lines[_rid(put)][BYTES_SENT], lines[_rid(put)][OBJECT_SIZE]) == ("-", "8")
    assert lines[_rid(put)][8].startswith('"PUT /portal/census/2026%20r%C3%A9gion.csv')
    for log_key in _log_objects(s3, "portal-logs", "access/"):
        assert SIMPLE_KEY.fullmatch(log_key.removeprefix("access/")), log_key
        head = s3.head_object(Bucket="portal-logs", Key=log_key)
        assert head["ContentType"] == "text/plain"


def test_log_objects_are_written_as_the_target_bucket_writes(s3: Any) -> None:
    """Its default encryption, its versioning, its storage policy: the data path of a PUT."""
    s3.create_bucket(Bucket="busy")
    s3.create_bucket(Bucket="busy-logs")
    s3.put_bucket_encryption(Bucket="busy-logs", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_versioning(Bucket="busy-logs", VersioningConfiguration={"Status": "Enabled"})
    _enable(s3, "busy", "busy-logs", "")
    s3.put_object(Bucket="busy", Key="k", Body=b"x")
    ids = [_rid(s3.get_object(Bucket="busy", Key="k")) for _ in range(20)]
    _delivered(s3, "busy-logs", "", ids)
    sizes = []
    for log_key in _log_objects(s3, "busy-logs", ""):
        head = s3.head_object(Bucket="busy-logs", Key=log_key)
        assert head["ServerSideEncryption"] == "AES256" and head["VersionId"] != "null"
        sizes.append(head["ContentLength"])
    assert max(sizes) > INLINE


def test_validation(cluster: Cluster, s3: Any) -> None:
    s3.create_bucket(Bucket="checked")
    s3.create_bucket(Bucket="checked-logs")
    _enable(s3, "checked", "checked-logs", "a/")
    _, alt = new_tenant(cluster, "logging-alt")
    alt.create_bucket(Bucket="alt-logs")
    refusals = [
        (dict(Bucket="checked", BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": "no-such-target", "TargetPrefix": "x/"}}),
         ("InvalidTargetBucketForLogging", 400)),
        (dict(Bucket="checked", BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": "alt-logs", "TargetPrefix": "x/"}}),
         ("InvalidTargetBucketForLogging", 400)),
        (dict(Bucket="checked", BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": "checked-logs", "TargetPrefix": "x" * 1000}}),
         ("InvalidArgument", 400)),
        (dict(Bucket="no-such-source", BucketLoggingStatus={}), ("NoSuchBucket", 404)),
    ]
    for kw, expected in refusals:
        assert _failed(s3.put_bucket_logging, **kw)[:2] == expected, kw
    # Not the owner's: refused, for configuration and status alike.
    assert _failed(alt.put_bucket_logging, Bucket="checked", BucketLoggingStatus={})[:2] == (
        "AccessDenied", 403)
    assert _failed(alt.get_bucket_logging, Bucket="checked")[:2] == ("AccessDenied", 403)
    # Target grants where the target's Object Ownership turns ACLs off.
    s3.create_bucket(Bucket="checked-enforced", ObjectOwnership="BucketOwnerEnforced")
    assert _failed(s3.put_bucket_logging, Bucket="checked", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "checked-enforced", "TargetPrefix": "x/",
                           "TargetGrants": [{"Grantee": {"Type": "CanonicalUser",
                                                         "ID": "logging-alt"},
                                             "Permission": "READ"}]}})[:2] == (
        "AccessControlListNotSupported", 400)
    # A document that does not parse.
    def malformed(request: Any, **_: Any) -> None:
        request.data = b"<BucketLoggingStatus><LoggingEnabled><TargetBucket>checked-logs" \
                       b"</TargetBucket></LoggingEnabled></BucketLoggingStatus>"
    s3.meta.events.register_first("before-sign.s3.PutBucketLogging", malformed)
    try:
        assert _failed(s3.put_bucket_logging, Bucket="checked", BucketLoggingStatus={})[:2] \
            == ("MalformedXML", 400)
    finally:
        s3.meta.events.unregister("before-sign.s3.PutBucketLogging", malformed)
    # Nothing changed.
    got = s3.get_bucket_logging(Bucket="checked")["LoggingEnabled"]
    assert (got["TargetBucket"], got["TargetPrefix"]) == ("checked-logs", "a/")


def test_partitioned_keys_and_target_grants(cluster: Cluster, s3: Any, owner: str) -> None:
    reader_key, reader = new_tenant(cluster, "log-reader")
    s3.create_bucket(Bucket="parted")
    s3.create_bucket(Bucket="parted-logs")
    _enable(s3, "parted", "parted-logs", "p/",
            TargetGrants=[{"Grantee": {"Type": "CanonicalUser", "ID": reader_key["tenant"]},
                           "Permission": "READ"}],
            TargetObjectKeyFormat={"PartitionedPrefix": {"PartitionDateSource": "EventTime"}})
    got = s3.get_bucket_logging(Bucket="parted")["LoggingEnabled"]
    assert got["TargetObjectKeyFormat"] == {
        "PartitionedPrefix": {"PartitionDateSource": "EventTime"}}
    assert got["TargetGrants"][0]["Permission"] == "READ"
    put = s3.put_object(Bucket="parted", Key="k", Body=b"x")
    _delivered(s3, "parted-logs", "p/", [_rid(put)])
    region = cluster.config.region
    shape = re.compile(rf"p/{owner}/{region}/parted/(\d{{4}})/(\d{{2}})/(\d{{2}})/"
                       r"(\d{4})-(\d{2})-(\d{2})-00-00-00-[0-9A-F]{16}")
    for log_key in _log_objects(s3, "parted-logs", "p/"):
        match = shape.fullmatch(log_key)
        assert match and match.group(1, 2, 3) == match.group(4, 5, 6), log_key
        # The grantee reads the log object; nothing else of the bucket.
        assert b"REST.PUT.OBJECT" in reader.get_object(Bucket="parted-logs",
                                                       Key=log_key)["Body"].read()
    assert _failed(reader.list_objects_v2, Bucket="parted-logs")[:2] == ("AccessDenied", 403)


def test_a_bucket_logging_into_itself_does_not_log_its_logs(s3: Any) -> None:
    s3.create_bucket(Bucket="selfie")
    _enable(s3, "selfie", "selfie", "logs/")
    put = s3.put_object(Bucket="selfie", Key="data", Body=b"1")
    _delivered(s3, "selfie", "logs/", [_rid(put)])
    time.sleep(3)                       # three flushes with nothing asked meanwhile
    lines = _lines(s3, "selfie", "logs/")
    # Only what the test asked: its PUT, its listings and reads of the logs; no PUT of a
    # log object.
    assert {f[OPERATION] for f in lines} <= {"REST.PUT.OBJECT", "REST.GET.BUCKET",
                                            "REST.GET.OBJECT"}
    assert [f[KEY] for f in lines if f[OPERATION] == "REST.PUT.OBJECT"] == ["data"]


def test_disabling_stops_new_lines(s3: Any) -> None:
    s3.create_bucket(Bucket="switched")
    s3.create_bucket(Bucket="switched-logs")
    _enable(s3, "switched", "switched-logs", "s/")
    before = s3.put_object(Bucket="switched", Key="before", Body=b"1")
    _delivered(s3, "switched-logs", "s/", [_rid(before)])
    s3.put_bucket_logging(Bucket="switched", BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket="switched")
    after = [_rid(s3.put_object(Bucket="switched", Key="after", Body=b"2")),
             _rid(s3.get_object(Bucket="switched", Key="after"))]
    time.sleep(3)
    ids = {f[REQUEST_ID] for f in _lines(s3, "switched-logs", "s/")}
    assert _rid(before) in ids and not ids & set(after)


def test_a_stopped_gateway_delivers_what_it_holds(cluster: Cluster, s3: Any) -> None:
    """A gateway that flushes hourly still delivers its lines when it stops cleanly."""
    config = cluster.root / "hourly.toml"
    text = cluster.config_path.read_text().replace("access_log_flush_s = 1",
                                                   "access_log_flush_s = 3600")
    config.write_text(re.sub(r'(?m)^\[admin\]\nlisten = .*$', '[admin]\nlisten = "off"', text))
    port = free_ports(1, cluster.promised_ports())[0]
    argv = [a if a != str(cluster.config_path) else str(config)
            for a in cluster.specs["gateway"].argv]
    cluster.specs["hourly"] = ProcessSpec("hourly", [*argv[:-1], f"127.0.0.1:{port}"], port)
    cluster.start("hourly")
    s3.create_bucket(Bucket="hourly")
    s3.create_bucket(Bucket="hourly-logs")
    _enable(s3, "hourly", "hourly-logs", "h/")
    hourly = cluster.client_for(f"http://127.0.0.1:{port}")
    ids = [_rid(hourly.put_object(Bucket="hourly", Key="k", Body=b"1")),
           _rid(hourly.get_object(Bucket="hourly", Key="k"))]
    time.sleep(2)
    assert _log_objects(s3, "hourly-logs", "h/") == []     # held, not delivered yet
    proc = cluster.procs.pop("hourly")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    lines = _delivered(s3, "hourly-logs", "h/", ids)
    assert [lines[i][OPERATION] for i in ids] == ["REST.PUT.OBJECT", "REST.GET.OBJECT"]
