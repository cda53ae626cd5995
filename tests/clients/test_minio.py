"""The MinIO Python SDK (PyPI's `minio`, used by many data pipelines) against a real
cluster, at its defaults: streamed uploads of unknown length (multipart), ranged reads,
stat, listings (V2, V1, versions), server-side copy and compose (UploadPartCopy with
ranges), tags, presigned GET/PUT, versioning, bucket policy, DeleteObjects, fput/fget."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.clients import tools
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.clients

MIB = 1024 * 1024
BUCKET = "minio-bucket"
SEED = 29


@pytest.fixture(scope="module")
def mc(cluster: Cluster) -> Any:
    tools.require_module("minio", "minio")
    from minio import Minio
    client = Minio(cluster.config.listen, access_key=cluster.key.access_key,
                   secret_key=cluster.key.secret_key, secure=False)
    client.make_bucket(BUCKET)
    return client


def test_streams_ranges_listings_and_files(mc: Any, tmp_path: Path) -> None:
    data = random.Random(SEED).randbytes(11 * MIB)
    # Length unknown (-1): the SDK cuts the stream into 5 MiB parts, a multipart upload.
    put = mc.put_object(BUCKET, "data/big.bin", io.BytesIO(data), -1, part_size=5 * MIB)
    assert put.etag.endswith("-3")
    mc.put_object(BUCKET, "data/small.csv", io.BytesIO(b"a,b\n"), 4, content_type="text/csv")
    with mc.get_object(BUCKET, "data/big.bin") as r:
        assert hashlib.sha256(r.read()).digest() == hashlib.sha256(data).digest()
    with mc.get_object(BUCKET, "data/big.bin", offset=5 * MIB - 10, length=20) as r:
        assert r.read() == data[5 * MIB - 10: 5 * MIB + 10]
    stat = mc.stat_object(BUCKET, "data/small.csv")
    assert (stat.size, stat.content_type) == (4, "text/csv")
    assert [o.object_name for o in mc.list_objects(BUCKET)] == ["data/"]
    for v1 in (False, True):
        assert [o.object_name for o in mc.list_objects(BUCKET, recursive=True,
                                                      use_api_v1=v1)] == [
            "data/big.bin", "data/small.csv"]
    src = tmp_path / "file.bin"
    src.write_bytes(data[: 7 * MIB])
    mc.fput_object(BUCKET, "files/file.bin", str(src))
    mc.fget_object(BUCKET, "files/file.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data[: 7 * MIB]


def test_copy_compose_tags_and_presigned(mc: Any) -> None:
    from minio.commonconfig import ComposeSource, CopySource, Tags
    data = random.Random(SEED + 1).randbytes(6 * MIB)
    mc.put_object(BUCKET, "cc/src.bin", io.BytesIO(data), len(data))
    mc.copy_object(BUCKET, "cc/copy.bin", CopySource(BUCKET, "cc/src.bin"))
    # compose: UploadPartCopy of the whole source and of a 5 MiB range of it.
    mc.compose_object(BUCKET, "cc/composed.bin", [
        ComposeSource(BUCKET, "cc/src.bin"),
        ComposeSource(BUCKET, "cc/copy.bin", offset=MIB, length=5 * MIB)])
    with mc.get_object(BUCKET, "cc/composed.bin") as r:
        assert r.read() == data + data[MIB: 6 * MIB]
    tags = Tags.new_object_tags()
    tags["theme"] = "transport"
    mc.set_object_tags(BUCKET, "cc/src.bin", tags)
    assert dict(mc.get_object_tags(BUCKET, "cc/src.bin")) == {"theme": "transport"}
    url = mc.presigned_get_object(BUCKET, "cc/copy.bin", expires=dt.timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == data
    put_url = mc.presigned_put_object(BUCKET, "cc/uploaded.txt")
    req = urllib.request.Request(put_url, data=b"from a browser", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    with mc.get_object(BUCKET, "cc/uploaded.txt") as r:
        assert r.read() == b"from a browser"


def test_versions_policy_and_batch_delete(mc: Any, cluster: Cluster) -> None:
    from minio.commonconfig import ENABLED
    from minio.deleteobjects import DeleteObject
    from minio.versioningconfig import VersioningConfig
    bucket = "minio-versions"
    mc.make_bucket(bucket)
    mc.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    assert mc.get_bucket_versioning(bucket).status == "Enabled"
    first = mc.put_object(bucket, "k", io.BytesIO(b"one"), 3).version_id
    second = mc.put_object(bucket, "k", io.BytesIO(b"two"), 3).version_id
    listed = [(o.object_name, o.version_id, o.is_latest)
              for o in mc.list_objects(bucket, include_version=True)]
    assert listed == [("k", second, "true"), ("k", first, "false")]
    with mc.get_object(bucket, "k", version_id=first) as r:
        assert r.read() == b"one"
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{BUCKET}/public/*"]}]}
    mc.set_bucket_policy(BUCKET, json.dumps(policy))
    assert json.loads(mc.get_bucket_policy(BUCKET))["Statement"][0]["Action"] in (
        "s3:GetObject", ["s3:GetObject"])
    mc.put_object(BUCKET, "public/open.txt", io.BytesIO(b"open"), 4)
    # One gateway: its own write of the policy is in force at once.
    assert _anonymous(f"{cluster.endpoint}/{BUCKET}/public/open.txt") == 200
    assert _anonymous(f"{cluster.endpoint}/{BUCKET}/cc/src.bin") == 403
    errors = list(mc.remove_objects(BUCKET, [DeleteObject("cc/copy.bin"),
                                             DeleteObject("public/open.txt")]))
    assert errors == []
    names = [o.object_name for o in mc.list_objects(BUCKET, prefix="cc/", recursive=True)]
    assert "cc/copy.bin" not in names and "cc/src.bin" in names


def _anonymous(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
