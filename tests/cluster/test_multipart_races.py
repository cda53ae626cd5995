"""CompleteMultipartUpload racing an Abort or another Complete of the same upload, through
two gateways: at most one of them wins, a loser answers 409 ConditionalRequestConflict
(AWS: "if a conflicting operation occurs during the upload") or NoSuchUpload, and a
completed object always reads back whole. Both may lose (two claims that meet each other
on different replicas), and then nothing is written. Before the upload was claimed, both
sides could succeed, and the Abort (or the other Complete) freed the data the object was
made of."""

from __future__ import annotations

import concurrent.futures
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster

BUCKET = "races"
ROUNDS = 12
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def two(cluster: Cluster) -> tuple[Any, Any]:
    endpoint = cluster.add_gateway("gateway2")
    cluster.start("gateway2")
    first = cluster.s3()
    first.create_bucket(Bucket=BUCKET)
    return first, cluster.client_for(endpoint)


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def _race(a: Callable[[], object], b: Callable[[], object]) -> tuple[str, str]:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        fa, fb = pool.submit(_outcome, a), pool.submit(_outcome, b)
        return fa.result(), fb.result()


def _check(s3: Any, key: str, results: tuple[str, str], body: bytes | None) -> None:
    """At most one side won; the object is the winning Complete's, whole, or absent."""
    assert results.count("ok") <= 1, results
    assert set(results) <= {"ok", "ConditionalRequestConflict", "NoSuchUpload"}, results
    if body is not None:
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    else:
        assert _outcome(lambda: s3.head_object(Bucket=BUCKET, Key=key)) == "404"


def _upload(s3: Any, key: str, bodies: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid,
                                                      PartNumber=n, Body=b)["ETag"]}
             for n, b in enumerate(bodies, start=1)]
    return uid, parts


def test_complete_racing_abort(two: tuple[Any, Any]) -> None:
    s3, other = two
    rnd = random.Random(11)
    for i in range(ROUNDS):
        key, body = f"abort/{i}", rnd.randbytes(200_000)
        uid, parts = _upload(s3, key, [body])
        done, aborted = _race(
            partial(s3.complete_multipart_upload, Bucket=BUCKET, Key=key, UploadId=uid,
                    MultipartUpload={"Parts": parts}),
            partial(other.abort_multipart_upload, Bucket=BUCKET, Key=key, UploadId=uid))
        _check(s3, key, (done, aborted), body if done == "ok" else None)


def test_two_completes_naming_different_parts(two: tuple[Any, Any]) -> None:
    s3, other = two
    rnd = random.Random(12)
    for i in range(ROUNDS // 2):
        key = f"twice/{i}"
        bodies = [rnd.randbytes(5 * MIB), rnd.randbytes(100_000)]
        uid, parts = _upload(s3, key, bodies)
        results = _race(
            partial(s3.complete_multipart_upload, Bucket=BUCKET, Key=key, UploadId=uid,
                    MultipartUpload={"Parts": parts}),
            partial(other.complete_multipart_upload, Bucket=BUCKET, Key=key, UploadId=uid,
                    MultipartUpload={"Parts": parts[:1]}))
        winner = {0: b"".join(bodies), 1: bodies[0]}.get(results.index("ok")) \
            if "ok" in results else None
        _check(s3, key, results, winner)
