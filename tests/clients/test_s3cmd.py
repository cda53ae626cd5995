"""s3cmd (PyPI's `s3cmd`, the command-line client many data portals script) against a real
cluster, SigV4 and path style: mb, put (single and multipart), sync, ls/la/du, info, get,
cp/mv, modify, setacl --acl-public, signurl (its SigV2 query URL), tagging, versioning,
website and lifecycle configuration, recursive del and rb."""

from __future__ import annotations

import hashlib
import random
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clients import tools
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.clients

MIB = 1024 * 1024
BUCKET = "s3cmd-bucket"
SEED = 23
# s3cmd uploads in parts of --multipart-chunk-size-mb (15 MiB unless told; 5 here): a
# 12 MiB file goes up as three parts.
BIG_FILE_BYTES = 12 * MIB

S3cmd = Callable[..., str]


@pytest.fixture(scope="module")
def s3cmd(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> S3cmd:
    tools.require_module("S3", "s3cmd")
    program = str(Path(sys.executable).with_name("s3cmd"))
    home = tmp_path_factory.mktemp("s3cmd-home")
    host = cluster.config.listen
    conf = home / ".s3cfg"
    conf.write_text(
        f"[default]\naccess_key = {cluster.key.access_key}\n"
        f"secret_key = {cluster.key.secret_key}\nhost_base = {host}\nhost_bucket = {host}\n"
        f"bucket_location = {cluster.config.region}\nuse_https = False\n"
        "signature_v2 = False\n")
    env = tools.base_env(home)

    def call(*args: str) -> str:
        argv = [sys.executable, program, "-c", str(conf), "--multipart-chunk-size-mb=5",
                *args]
        return tools.run(cluster, argv, env).stdout.decode()

    call("mb", f"s3://{BUCKET}")
    return call


def test_put_get_sync_and_listings(s3cmd: S3cmd, cluster: Cluster, tmp_path: Path) -> None:
    rnd = random.Random(SEED)
    big, small = rnd.randbytes(BIG_FILE_BYTES), b"open data\n"
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.txt").write_bytes(small)
    s3cmd("put", str(tmp_path / "big.bin"), f"s3://{BUCKET}/big.bin")
    s3cmd("put", str(tmp_path / "small.txt"), f"s3://{BUCKET}/docs/small.txt")
    s3 = tools.boto3_client(cluster)
    assert s3.head_object(Bucket=BUCKET, Key="big.bin")["ETag"].endswith('-3"')
    tree = tmp_path / "tree"
    for rel, data in {"a/one.csv": b"1\n", "a/b/two.csv": b"2\n", "three": b""}.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    s3cmd("sync", f"{tree}/", f"s3://{BUCKET}/tree/")
    listed = s3cmd("ls", "--recursive", f"s3://{BUCKET}/tree/")
    assert sorted(line.split()[-1] for line in listed.splitlines()) == [
        f"s3://{BUCKET}/tree/a/b/two.csv", f"s3://{BUCKET}/tree/a/one.csv",
        f"s3://{BUCKET}/tree/three"]
    assert f"DIR  s3://{BUCKET}/tree/a/" in s3cmd("ls", f"s3://{BUCKET}/tree/")
    assert s3cmd("du", f"s3://{BUCKET}").split()[:2] == [
        str(len(big) + len(small) + 4), "5"]
    info = s3cmd("info", f"s3://{BUCKET}/big.bin")
    assert f"File size: {len(big)}" in info
    s3cmd("get", "--force", f"s3://{BUCKET}/big.bin", str(tmp_path / "back.bin"))
    assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).digest() == \
        hashlib.sha256(big).digest()
    # A second sync of an unchanged tree uploads nothing.
    assert "upload:" not in s3cmd("sync", f"{tree}/", f"s3://{BUCKET}/tree/")


def test_copy_move_modify_public_and_signed(s3cmd: S3cmd, cluster: Cluster) -> None:
    s3 = tools.boto3_client(cluster)
    s3.put_object(Bucket=BUCKET, Key="cm/src.txt", Body=b"source\n")
    s3cmd("cp", f"s3://{BUCKET}/cm/src.txt", f"s3://{BUCKET}/cm/copy.txt")
    s3cmd("mv", f"s3://{BUCKET}/cm/copy.txt", f"s3://{BUCKET}/cm/moved.txt")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="cm/")["Contents"]]
    assert keys == ["cm/moved.txt", "cm/src.txt"]
    s3cmd("modify", "--add-header=Cache-Control:max-age=60", f"s3://{BUCKET}/cm/moved.txt")
    assert s3.head_object(Bucket=BUCKET, Key="cm/moved.txt")["CacheControl"] == "max-age=60"
    url = f"{cluster.endpoint}/{BUCKET}/cm/src.txt"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=10)
    s3cmd("setacl", "--acl-public", f"s3://{BUCKET}/cm/src.txt")
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"source\n"
    signed = s3cmd("signurl", f"s3://{BUCKET}/cm/moved.txt", "+600").strip()
    with urllib.request.urlopen(signed, timeout=10) as r:
        assert r.read() == b"source\n"


def test_tags_versioning_website_lifecycle_and_removal(s3cmd: S3cmd, cluster: Cluster) -> None:
    s3 = tools.boto3_client(cluster)
    s3.put_object(Bucket=BUCKET, Key="t/obj", Body=b"t")
    s3cmd("settagging", f"s3://{BUCKET}/t/obj", "theme=health&year=2026")
    assert "theme:\thealth" in s3cmd("gettagging", f"s3://{BUCKET}/t/obj")
    s3cmd("setversioning", f"s3://{BUCKET}", "enable")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    s3cmd("ws-create", "--ws-index=index.html", "--ws-error=404.html", f"s3://{BUCKET}")
    assert "Index document:   index.html" in s3cmd("ws-info", f"s3://{BUCKET}")
    s3cmd("expire", f"s3://{BUCKET}", "--expiry-days=30", "--expiry-prefix=tmp/")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rules[0]["Expiration"]["Days"] == 30
    s3cmd("dellifecycle", f"s3://{BUCKET}")
    s3cmd("setversioning", f"s3://{BUCKET}", "disable")
    s3cmd("del", "--recursive", "--force", f"s3://{BUCKET}/t/")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="t/")
