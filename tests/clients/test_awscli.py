"""The AWS CLI (Debian's `awscli`, v2) against a real cluster: high-level `aws s3` commands,
low-level `aws s3api` calls, a multipart upload by `aws s3 cp`, and a presigned URL.

Each CLI run costs about a second of interpreter start-up on this machine, so the CLI does
the operations under test and boto3 (in process) checks what they left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients import tools
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.clients

MIB = 1024 * 1024
# The CLI's default multipart_threshold and multipart_chunksize are both 8 MiB: a 9 MiB file
# goes up as two parts, 8 MiB and 1 MiB.
MULTIPART_FILE_BYTES = 9 * MIB
SEED = 6
BUCKET = "cli-bucket"

AwsCli = Callable[..., Any]


def _write_tree(root: Path, rnd: random.Random) -> None:
    files = {
        "a.txt": b"alpha\n",
        "dir/b.bin": rnd.randbytes(3000),
        "dir/sub/c.csv": b"x,y\n1,2\n",
        "dir/sub/empty": b"",
        "name with spaces & signs+=.txt": b"odd names travel too\n",
        # Keys that need escaping in URLs, in XML, or both; non-ASCII UTF-8.
        "été/naïve ✓.txt": "naïve ✓".encode(),
        "per%cent;semi,comma'quote\"dq<lt>.txt": b"escapes\n",
        "tilde~/q?uestion#hash [1]{2}": b"reserved characters\n",
        "日本/語 😀.bin": rnd.randbytes(10),
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def _keys(s3: Any, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.fixture(scope="module")
def aws(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> AwsCli:
    """Runs `aws ARGS...`; returns parsed JSON when the command prints JSON, else text."""
    program = tools.require_program("aws", "awscli")
    home = tmp_path_factory.mktemp("aws-home")
    config = home / "config"
    # Path style, as a client of a local endpoint without wildcard DNS must use.
    config.write_text(f"[default]\nregion = {cluster.config.region}\noutput = json\n"
                      "s3 =\n  addressing_style = path\n")
    env = tools.base_env(home)
    env.update({
        "AWS_ACCESS_KEY_ID": cluster.key.access_key,
        "AWS_SECRET_ACCESS_KEY": cluster.key.secret_key,
        "AWS_DEFAULT_REGION": cluster.config.region,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
        "AWS_CLI_AUTO_PROMPT": "off",
        # A retried request would hide the first answer, the one under test.
        "AWS_MAX_ATTEMPTS": "1",
    })
    print(f"aws cli: {program}")

    def call(*args: str, expect_ok: bool = True) -> Any:
        argv = [program, "--endpoint-url", cluster.endpoint, *args]
        done = tools.run(cluster, argv, env, expect_ok=expect_ok)
        if not expect_ok:
            return done
        text = done.stdout.decode()
        return json.loads(text) if text.lstrip().startswith("{") else text

    call("s3", "mb", f"s3://{BUCKET}")
    return call


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Any:
    return tools.boto3_client(cluster)


def test_cp_ls_rm(aws: AwsCli, s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from the aws cli\n")
    aws("s3", "cp", str(src), f"s3://{BUCKET}/docs/hello.txt")
    # Without a trailing slash `ls` shows the common prefix.
    assert "PRE docs/" in aws("s3", "ls", f"s3://{BUCKET}")
    back = tmp_path / "back.txt"
    aws("s3", "cp", f"s3://{BUCKET}/docs/hello.txt", str(back))
    assert back.read_bytes() == src.read_bytes()
    aws("s3", "rm", f"s3://{BUCKET}/docs/hello.txt")
    assert _keys(s3, "docs/") == []


def test_sync_up_and_down(aws: AwsCli, s3: Any, tmp_path: Path) -> None:
    print(f"seed={SEED}")
    up, down = tmp_path / "up", tmp_path / "down"
    _write_tree(up, random.Random(SEED))
    aws("s3", "sync", str(up), f"s3://{BUCKET}/tree")
    assert sorted(_keys(s3, "tree/")) == sorted(f"tree/{k}" for k in _read_tree(up))
    # Change one file, delete another: sync --delete mirrors both and leaves the rest alone.
    (up / "a.txt").write_bytes(b"alpha, changed and longer\n")
    (up / "dir/b.bin").unlink()
    out = aws("s3", "sync", "--no-progress", "--delete", str(up), f"s3://{BUCKET}/tree")
    assert f"delete: s3://{BUCKET}/tree/dir/b.bin" in out
    # The CLI prints the local path relative to its working directory.
    uploads = [line for line in out.splitlines() if line.startswith("upload:")]
    assert len(uploads) == 1 and uploads[0].endswith(f"a.txt to s3://{BUCKET}/tree/a.txt")
    aws("s3", "sync", f"s3://{BUCKET}/tree", str(down))
    assert _read_tree(down) == _read_tree(up)


def test_multipart_cp(aws: AwsCli, s3: Any, tmp_path: Path) -> None:
    body = random.Random(SEED + 1).randbytes(MULTIPART_FILE_BYTES)
    src, back = tmp_path / "big.bin", tmp_path / "big.back"
    src.write_bytes(body)
    aws("s3", "cp", str(src), f"s3://{BUCKET}/big.bin")
    head = s3.head_object(Bucket=BUCKET, Key="big.bin")
    assert head["ContentLength"] == MULTIPART_FILE_BYTES
    # Two parts (8 MiB + 1 MiB): the multipart ETag is the md5 of the part md5s, "-2".
    md5s = b"".join(hashlib.md5(p).digest() for p in (body[: 8 * MIB], body[8 * MIB:]))
    assert head["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-2"'
    # Bucket to bucket above the threshold: UploadPartCopy with ranges, same part sizes.
    aws("s3", "cp", f"s3://{BUCKET}/big.bin", f"s3://{BUCKET}/copy/big.bin")
    assert s3.head_object(Bucket=BUCKET, Key="copy/big.bin")["ETag"] == head["ETag"]
    aws("s3", "cp", f"s3://{BUCKET}/copy/big.bin", str(back))
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(body).digest()


def test_copy_onto_itself_replaces_metadata(aws: AwsCli, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="meta/obj", Body=b"same bytes", ContentType="text/plain",
                  Metadata={"old": "1"})
    aws("s3", "cp", f"s3://{BUCKET}/meta/obj", f"s3://{BUCKET}/meta/obj",
        "--metadata-directive", "REPLACE", "--content-type", "text/csv",
        "--metadata", "new=2", "--cache-control", "max-age=60")
    got = s3.get_object(Bucket=BUCKET, Key="meta/obj")
    assert got["Body"].read() == b"same bytes"
    assert got["ContentType"] == "text/csv" and got["Metadata"] == {"new": "2"}
    assert got["CacheControl"] == "max-age=60"


def test_s3api_object_calls(aws: AwsCli, s3: Any, tmp_path: Path) -> None:
    body = tmp_path / "body"
    body.write_bytes(b"s3api body" * 100)
    put = aws("s3api", "put-object", "--bucket", BUCKET, "--key", "api/one",
              "--body", str(body), "--content-type", "text/plain", "--metadata", "origin=cli")
    assert put["ETag"] == f'"{hashlib.md5(body.read_bytes()).hexdigest()}"'
    for key in ("api/two/deep", "api/zz"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"filler")
    head = aws("s3api", "head-object", "--bucket", BUCKET, "--key", "api/one")
    assert head["ContentLength"] == 1000 and head["ETag"] == put["ETag"]
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"origin": "cli"}
    out = tmp_path / "out"
    got = aws("s3api", "get-object", "--bucket", BUCKET, "--key", "api/one", str(out))
    assert got["ETag"] == put["ETag"] and out.read_bytes() == body.read_bytes()
    # One key per page: the CLI follows continuation tokens across a common prefix.
    v2 = aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "api/",
             "--delimiter", "/", "--page-size", "1")
    assert [o["Key"] for o in v2["Contents"]] == ["api/one", "api/zz"]
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["api/two/"]
    # ListObjects V1 pages with markers.
    v1 = aws("s3api", "list-objects", "--bucket", BUCKET, "--prefix", "api/",
             "--page-size", "1")
    assert [o["Key"] for o in v1["Contents"]] == ["api/one", "api/two/deep", "api/zz"]
    missing = aws("s3api", "head-object", "--bucket", BUCKET, "--key", "api/nope",
                  expect_ok=False)
    assert missing.returncode != 0 and b"404" in missing.stderr


def test_s3api_checksum_round_trip(aws: AwsCli, tmp_path: Path) -> None:
    body = tmp_path / "body"
    body.write_bytes(random.Random(SEED + 2).randbytes(20_000))
    put = aws("s3api", "put-object", "--bucket", BUCKET, "--key", "sums/crc32c",
              "--body", str(body), "--checksum-algorithm", "CRC32C")
    assert put["ChecksumCRC32C"]
    # With checksum mode on, the CLI checks the body against the returned value itself.
    out = tmp_path / "out"
    got = aws("s3api", "get-object", "--bucket", BUCKET, "--key", "sums/crc32c",
              "--checksum-mode", "ENABLED", str(out))
    assert got["ChecksumCRC32C"] == put["ChecksumCRC32C"]
    assert out.read_bytes() == body.read_bytes()


def test_presigned_url(aws: AwsCli, s3: Any) -> None:
    body = b"fetched without credentials\n"
    # A key whose canonical URI needs percent-encoding of spaces and UTF-8.
    key = "shared/été 1+1.txt"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    url = aws("s3", "presign", f"s3://{BUCKET}/{key}", "--expires-in", "300").strip()
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200 and resp.read() == body
    # A tampered signature is refused, not served.
    bad = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=30)
    assert err.value.code == 403


def test_rb_force_empties_and_removes(aws: AwsCli, s3: Any) -> None:
    # Last in the module: removes the bucket the other tests filled.
    aws("s3", "rb", "--force", f"s3://{BUCKET}")
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_versioned_bucket(aws: AwsCli, s3: Any, tmp_path: Path) -> None:
    """s3api versioning calls as the CLI makes them: enable, overwrite, rm (a delete
    marker), list-object-versions paged one version at a time, get and delete by id."""
    bucket = "cli-versions"
    aws("s3", "mb", f"s3://{bucket}")
    aws("s3api", "put-bucket-versioning", "--bucket", bucket,
        "--versioning-configuration", "Status=Enabled")
    assert aws("s3api", "get-bucket-versioning", "--bucket", bucket)["Status"] == "Enabled"
    bodies = [tmp_path / "v1", tmp_path / "v2"]
    bodies[0].write_bytes(b"first version")
    bodies[1].write_bytes(os.urandom(300_000))                # erasure-coded, not inline
    ids = [aws("s3api", "put-object", "--bucket", bucket, "--key", "doc",
               "--body", str(b))["VersionId"] for b in bodies]
    aws("s3", "rm", f"s3://{bucket}/doc")
    assert aws("s3", "ls", f"s3://{bucket}/") == ""
    listed = aws("s3api", "list-object-versions", "--bucket", bucket, "--page-size", "1")
    assert [v["VersionId"] for v in listed["Versions"]] == list(reversed(ids))
    [marker] = listed["DeleteMarkers"]
    assert marker["IsLatest"] is True and marker["Key"] == "doc"
    out = tmp_path / "out"
    got = aws("s3api", "get-object", "--bucket", bucket, "--key", "doc", "--version-id",
              ids[0], str(out))
    assert got["VersionId"] == ids[0] and out.read_bytes() == b"first version"
    aws("s3api", "delete-object", "--bucket", bucket, "--key", "doc", "--version-id",
        marker["VersionId"])
    aws("s3", "cp", f"s3://{bucket}/doc", str(out))
    assert out.read_bytes() == bodies[1].read_bytes()
