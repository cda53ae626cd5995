"""Conditional writes (If-None-Match: *, If-Match) decided at their commit, as AWS decides
them: a PutObject or CompleteMultipartUpload whose check held when it started, and that
another write of the key beat to the commit, answers 412 when its condition fails against
what won (AWS: the first write to finish wins) and 409 ConditionalRequestConflict after a
delete; what won stays. Before, the check was made once at the start and the write then
overwrote whatever had landed since.

The PutObject races are made deterministic by Expect: 100-continue: the gateway checks the
conditions, then asks for the body; the rival write lands before the body is sent."""

from __future__ import annotations

import concurrent.futures
import socket
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster
from tests.cluster.test_consistency import _agreed_record
from tests.cluster.test_multipart_races import _outcome
from tests.cluster.test_raw_http import expecting_put, gateway_socket

BUCKET = "conditional"
ROUNDS = 12
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Iterator[Any]:
    client = cluster.s3()
    client.create_bucket(Bucket=BUCKET)
    yield client


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """One whole response: its status and body (Content-Length framed)."""
    raw = b""
    while b"\r\n\r\n" not in raw and (data := sock.recv(4096)):
        raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length and (data := sock.recv(4096)):
        body += data
    return int(head.split(b" ", 2)[1]), body


def _put_overtaken(cluster: Cluster, key: str, headers: dict[str, str],
                   rival: Callable[[], object]) -> tuple[int, dict[str, str | None]]:
    """A conditional PUT whose check is made, then `rival` runs, then the body is sent:
    the PUT's status and error elements."""
    body = b"conditional body"
    with gateway_socket(cluster) as sock:
        sock.sendall(expecting_put(cluster, f"/{BUCKET}/{key}", len(body), headers))
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 100"), first      # the check held
        rival()
        sock.sendall(body)
        status, answer = _response(sock)
    return status, {c.tag: c.text for c in ElementTree.fromstring(answer)} if answer else {}


def _body(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def test_if_none_match_put_overtaken_by_a_put_is_412(cluster: Cluster, s3: Any) -> None:
    rival = partial(s3.put_object, Bucket=BUCKET, Key="inm", Body=b"rival")
    status, err = _put_overtaken(cluster, "inm", {"If-None-Match": "*"}, rival)
    assert (status, err.get("Code"), err.get("Condition")) == (
        412, "PreconditionFailed", "If-None-Match")
    assert _body(s3, "inm") == b"rival"


def test_if_match_put_overtaken_is_412_or_409_after_a_delete(cluster: Cluster,
                                                              s3: Any) -> None:
    etag = s3.put_object(Bucket=BUCKET, Key="im", Body=b"first")["ETag"]
    rival = partial(s3.put_object, Bucket=BUCKET, Key="im", Body=b"second")
    status, err = _put_overtaken(cluster, "im", {"If-Match": etag}, rival)
    assert (status, err.get("Code"), err.get("Condition")) == (
        412, "PreconditionFailed", "If-Match")
    assert _body(s3, "im") == b"second"
    etag = s3.put_object(Bucket=BUCKET, Key="im", Body=b"third")["ETag"]
    deleted = partial(s3.delete_object, Bucket=BUCKET, Key="im")
    status, err = _put_overtaken(cluster, "im", {"If-Match": etag}, deleted)
    assert (status, err.get("Code")) == (409, "ConditionalRequestConflict")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=BUCKET, Key="im")
    assert exc.value.response["Error"]["Code"] == "404"


def test_a_conditional_put_that_holds_is_written_once_everywhere(cluster: Cluster,
                                                                 s3: Any) -> None:
    etag = s3.put_object(Bucket=BUCKET, Key="held", Body=b"new", IfNoneMatch="*")["ETag"]
    s3.put_object(Bucket=BUCKET, Key="held", Body=b"newer", IfMatch=etag)
    assert _body(s3, "held") == b"newer"
    _agreed_record(cluster, BUCKET, "held")     # every replica holds the one record


def test_complete_with_if_none_match_racing_a_put(cluster: Cluster, s3: Any) -> None:
    """A Complete and a PutObject of a new key, both with If-None-Match: *, through two
    gateways: at most one is written (both may lose: two commits that meet each other on
    different replicas), a loser answers 412 or 409, and what was written reads back."""
    other = cluster.client_for(cluster.add_gateway("gateway2"))
    cluster.start("gateway2")
    part = b"p" * (5 * MIB)
    for i in range(ROUNDS):
        key = f"race/{i}"
        uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                              Body=part)["ETag"]
        complete = partial(s3.complete_multipart_upload, Bucket=BUCKET, Key=key,
                           UploadId=uid, IfNoneMatch="*",
                           MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        put = partial(other.put_object, Bucket=BUCKET, Key=key, Body=b"put", IfNoneMatch="*")
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            done, putted = (f.result() for f in (pool.submit(_outcome, complete),
                                                 pool.submit(_outcome, put)))
        results = (done, putted)
        assert results.count("ok") <= 1, results
        assert set(results) <= {"ok", "PreconditionFailed", "ConditionalRequestConflict"}, \
            results
        if done == "ok":
            assert _body(s3, key) == part
        elif putted == "ok":
            assert _body(s3, key) == b"put"


def test_copy_object_holds_if_none_match_and_if_match_on_the_destination(s3: Any) -> None:
    """CopyObject's If-None-Match / If-Match name the destination key (its
    x-amz-copy-source-if-* name the source), as AWS documents: a failed one is 412 and
    leaves the destination as it was."""
    src = {"Bucket": BUCKET, "Key": "copy/src"}
    s3.put_object(Body=b"source", **src)
    old_etag = s3.put_object(Bucket=BUCKET, Key="copy/dest", Body=b"dest")["ETag"]

    def refused(**kw: Any) -> tuple[int, str, str | None]:
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket=BUCKET, CopySource=src, **kw)
        err = exc.value.response
        return (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"],
                err["Error"].get("Condition"))

    assert refused(Key="copy/dest", IfNoneMatch="*") == (412, "PreconditionFailed",
                                                         "If-None-Match")
    assert refused(Key="copy/dest", IfMatch='"0123456789abcdef0123456789abcdef"') == (
        412, "PreconditionFailed", "If-Match")
    assert refused(Key="copy/absent", IfMatch=old_etag)[:2] == (404, "NoSuchKey")
    assert s3.get_object(Bucket=BUCKET, Key="copy/dest")["Body"].read() == b"dest"
    s3.copy_object(Bucket=BUCKET, Key="copy/new", CopySource=src, IfNoneMatch="*")
    s3.copy_object(Bucket=BUCKET, Key="copy/dest", CopySource=src, IfMatch=old_etag)
    for key in ("copy/new", "copy/dest"):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"source"
