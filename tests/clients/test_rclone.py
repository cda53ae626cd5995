"""rclone (Debian's `rclone`) against a real cluster, through an S3 remote of provider Other
with path-style addressing: copy, sync, ls, lsd, cat, check and delete of a small tree that
holds a file large enough to go up as a multipart upload."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients import tools
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.clients

MIB = 1024 * 1024
# rclone switches to multipart above --s3-upload-cutoff; at 5 MiB cutoff and chunk size a
# 6 MiB file goes up as two parts, 5 MiB and 1 MiB (AWS's smallest allowed part is 5 MiB).
BIG_FILE_BYTES = 6 * MIB
SEED = 11
BUCKET = "rclone-bucket"
REMOTE = "coffre"

Rclone = Callable[..., str]


def _tree(rnd: random.Random) -> dict[str, bytes]:
    return {
        "readme.txt": b"a small tree for rclone\n",
        "data/big.bin": rnd.randbytes(BIG_FILE_BYTES),
        "data/small.bin": rnd.randbytes(1234),
        "data/nested/deeper/leaf.json": b'{"leaf": true}\n',
        "other/empty": b"",
        # Keys that need escaping in URLs, in XML, or both; non-ASCII UTF-8.
        "été/naïve ✓.txt": "naïve ✓".encode(),
        "per%cent;semi,comma'quote\"dq<lt>.txt": b"escapes\n",
        "tilde~/q?uestion#hash [1]{2}": b"reserved characters\n",
        "日本/語 😀.bin": rnd.randbytes(10),
    }


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _read(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def _ls_sizes(out: str) -> dict[str, int]:
    """`rclone ls` prints `<size> <path>` lines, the size right-aligned."""
    sizes = {}
    for line in out.splitlines():
        size, _, name = line.strip().partition(" ")
        sizes[name] = int(size)
    return sizes


@pytest.fixture(scope="module")
def rclone(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Rclone:
    program = tools.require_program("rclone", "rclone")
    home = tmp_path_factory.mktemp("rclone-home")
    conf = home / "rclone.conf"
    conf.write_text(
        f"[{REMOTE}]\ntype = s3\nprovider = Other\nenv_auth = false\n"
        f"access_key_id = {cluster.key.access_key}\n"
        f"secret_access_key = {cluster.key.secret_key}\n"
        f"region = {cluster.config.region}\nendpoint = {cluster.endpoint}\n"
        "force_path_style = true\n")
    env = tools.base_env(home)
    env["RCLONE_CONFIG"] = str(conf)
    print(f"rclone: {program}")

    def call(*args: str) -> str:
        # One try each: a retry would hide the first failure, the one under test.
        argv = [program, "--retries", "1", "--low-level-retries", "1",
                "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", *args]
        return tools.run(cluster, argv, env).stdout.decode()

    call("mkdir", f"{REMOTE}:{BUCKET}")
    return call


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Any:
    return tools.boto3_client(cluster)


def test_copy_list_cat_check(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    print(f"seed={SEED}")
    files = _tree(random.Random(SEED))
    _write(tmp_path / "src", files)
    rclone("copy", str(tmp_path / "src"), f"{REMOTE}:{BUCKET}/copied")
    sizes = _ls_sizes(rclone("ls", f"{REMOTE}:{BUCKET}/copied"))
    assert sizes == {k: len(v) for k, v in files.items()}
    # The big file went up in two parts: its ETag says so.
    head = s3.head_object(Bucket=BUCKET, Key="copied/data/big.bin")
    assert head["ETag"].endswith('-2"')
    assert "data" in rclone("lsd", f"{REMOTE}:{BUCKET}/copied")
    assert rclone("cat", f"{REMOTE}:{BUCKET}/copied/readme.txt").encode() == files["readme.txt"]
    # check compares sizes and hashes (MD5 from the ETag, or from metadata for multipart).
    rclone("check", str(tmp_path / "src"), f"{REMOTE}:{BUCKET}/copied")
    rclone("copy", f"{REMOTE}:{BUCKET}/copied", str(tmp_path / "back"))
    assert _read(tmp_path / "back") == files


def test_sync_and_delete(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    rnd = random.Random(SEED + 1)
    files = _tree(rnd)
    src = tmp_path / "src"
    _write(src, files)
    rclone("sync", str(src), f"{REMOTE}:{BUCKET}/mirror")
    # Change, add and remove one file each: sync makes the remote equal to the source again.
    (src / "readme.txt").write_bytes(b"changed\n")
    (src / "data/new.bin").write_bytes(rnd.randbytes(777))
    (src / "data/small.bin").unlink()
    rclone("sync", str(src), f"{REMOTE}:{BUCKET}/mirror")
    rclone("check", str(src), f"{REMOTE}:{BUCKET}/mirror")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="mirror/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(
        f"mirror/{k}" for k in _read(src))
    big = s3.get_object(Bucket=BUCKET, Key="mirror/data/big.bin")["Body"].read()
    assert hashlib.sha256(big).digest() == hashlib.sha256(files["data/big.bin"]).digest()
    rclone("delete", f"{REMOTE}:{BUCKET}/mirror", "--include", "*.bin")
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix="mirror/")
    assert sorted(o["Key"] for o in left["Contents"]) == sorted(
        f"mirror/{k}" for k in _read(src) if not k.endswith(".bin"))


def test_server_side_copy_move_and_purge(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    files = _tree(random.Random(SEED + 2))
    _write(tmp_path / "src", files)
    rclone("copy", str(tmp_path / "src"), f"{REMOTE}:{BUCKET}/origin")
    other = "rclone-other"
    rclone("mkdir", f"{REMOTE}:{other}")
    assert other in rclone("lsd", f"{REMOTE}:")
    # Remote to remote on one endpoint: rclone copies server-side (CopyObject).
    rclone("copy", f"{REMOTE}:{BUCKET}/origin", f"{REMOTE}:{other}/copy")
    rclone("check", str(tmp_path / "src"), f"{REMOTE}:{other}/copy")
    rclone("moveto", f"{REMOTE}:{other}/copy/data/big.bin", f"{REMOTE}:{other}/moved.bin")
    moved = s3.get_object(Bucket=other, Key="moved.bin")["Body"].read()
    assert moved == files["data/big.bin"]
    assert "data/big.bin" not in rclone("ls", f"{REMOTE}:{other}/copy")
    # purge deletes every object (DeleteObjects) and then the bucket itself.
    rclone("purge", f"{REMOTE}:{other}")
    assert other not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_versions(rclone: Rclone, s3: Any, tmp_path: Path) -> None:
    """rclone's own versioning commands: turn it on, see old versions beside the current
    ones (--s3-versions), read the tree as it was (--s3-version-at), and remove the old
    versions (cleanup-hidden)."""
    bucket = f"{REMOTE}:rclone-versions"
    rclone("mkdir", bucket)
    assert rclone("backend", "versioning", bucket, "Enabled").strip() == "Enabled"
    src = tmp_path / "f.txt"
    src.write_bytes(b"one\n")
    rclone("copyto", str(src), f"{bucket}/f.txt")
    # (the listing's time has milliseconds, a HEAD's Last-Modified only seconds)
    first = s3.list_object_versions(Bucket="rclone-versions")["Versions"][0]["LastModified"]
    time.sleep(1.1)                 # rclone names versions by their time, to the second
    src.write_bytes(b"two, longer\n")
    rclone("copyto", str(src), f"{bucket}/f.txt")
    names = _ls_sizes(rclone("ls", "--s3-versions", bucket))
    assert len(names) == 2 and names.pop("f.txt") == 12
    [(old, size)] = names.items()
    assert old.startswith("f-v") and old.endswith(".txt") and size == 4
    when = (first + dt.timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert rclone("cat", "--s3-version-at", when, f"{bucket}/f.txt") == "one\n"
    assert rclone("cat", f"{bucket}/f.txt") == "two, longer\n"
    rclone("backend", "cleanup-hidden", bucket)
    assert list(_ls_sizes(rclone("ls", "--s3-versions", bucket))) == ["f.txt"]
    versions = s3.list_object_versions(Bucket="rclone-versions")
    assert len(versions["Versions"]) == 1 and "DeleteMarkers" not in versions
