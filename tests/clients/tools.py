"""Finding and running the real S3 clients that tests/clients/ drives against a cluster.

Rules: a client that is missing is installed once by `setup.sh` (Debian packages) and, if it
is still missing, the test is skipped with a message that says what to install; a client that
is there but fails makes the test fail with its command, its output and the tail of the
gateway's log, so that the failure can be read without running it again.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.cluster.harness import Cluster

SETUP_SCRIPT = Path(__file__).with_name("setup.sh")
# apt-get update + install of awscli and rclone took ~50 s on a fresh image here.
SETUP_TIMEOUT_S = 600.0
# One client command against a loopback cluster; a hang is a bug, not a slow machine.
COMMAND_TIMEOUT_S = 120.0
LOG_TAIL_BYTES = 4000
OUTPUT_TAIL_CHARS = 4000

# Debian installs its packages' programs here; other copies on PATH (pip's awscli v1 under
# pyenv, say) are different clients with different defaults, so the Debian one comes first.
_DEBIAN_BIN = Path("/usr/bin")
_setup_result: tuple[int, str] | None = None


def _run_setup_once() -> tuple[int, str]:
    """Runs setup.sh at most once per test session; returns (exit code, its stderr)."""
    global _setup_result
    if _setup_result is None:
        try:
            done = subprocess.run(["sh", str(SETUP_SCRIPT)], capture_output=True, text=True,
                                  timeout=SETUP_TIMEOUT_S, check=False)
            _setup_result = (done.returncode, done.stderr.strip())
        except (OSError, subprocess.TimeoutExpired) as exc:
            _setup_result = (-1, repr(exc))
    return _setup_result


def _find(program: str) -> str | None:
    debian = _DEBIAN_BIN / program
    if debian.is_file() and os.access(debian, os.X_OK):
        return str(debian)
    return shutil.which(program)


def require_program(program: str, package: str) -> str:
    """The path of a client program, installing it with setup.sh if needed, else skip."""
    found = _find(program)
    if found is None:
        code, err = _run_setup_once()
        found = _find(program)
        if found is None:
            pytest.skip(f"{program} unavailable: Debian package '{package}' is missing; "
                        f"tests/clients/setup.sh exited {code} without providing it "
                        f"({err or 'no message'})")
    return found


def require_module(name: str, pip_name: str) -> None:
    """Skip when a Python package the test drives is not installed in this environment."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"Python package '{pip_name}' is not installed "
                    f"(pip install -e '.[test]' should bring it)")


def gateway_log_tail(cluster: Cluster) -> str:
    path = cluster.root / "gateway.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no gateway log: {exc})"


def run(cluster: Cluster, argv: list[str], env: dict[str, str],
        stdin: bytes | None = None, expect_ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Runs a client command; when expect_ok, a non-zero exit fails the test verbosely."""
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, env=env,
                              timeout=COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        _fail(cluster, argv, f"no answer in {COMMAND_TIMEOUT_S:.0f} s", exc.stdout, exc.stderr)
    if expect_ok and done.returncode != 0:
        _fail(cluster, argv, f"exit {done.returncode}", done.stdout, done.stderr)
    return done


def _fail(cluster: Cluster, argv: list[str], why: str, stdout: bytes | None,
          stderr: bytes | None) -> NoReturn:
    out = (stdout or b"").decode("utf-8", "replace")[-OUTPUT_TAIL_CHARS:]
    err = (stderr or b"").decode("utf-8", "replace")[-OUTPUT_TAIL_CHARS:]
    pytest.fail(f"command failed ({why}): {' '.join(argv)}\n"
                f"--- stdout ---\n{out}\n--- stderr ---\n{err}\n"
                f"--- gateway.log (tail) ---\n{gateway_log_tail(cluster)}", pytrace=False)


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: the user's own AWS/rclone settings must not leak into a test."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["HOME"] = str(home)
    # No proxy for loopback, whatever the machine says.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def boto3_client(cluster: Cluster, **settings: str) -> Any:
    """A boto3 S3 client for the cluster; `settings` go to botocore's Config as they are."""
    return boto3.client(
        "s3", endpoint_url=cluster.endpoint, region_name=cluster.config.region,
        aws_access_key_id=cluster.key.access_key, aws_secret_access_key=cluster.key.secret_key,
        # One attempt: a retry would hide the first answer, the one under test.
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          **settings),
    )
