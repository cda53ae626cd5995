"""Runs each atheris harness (tests/fuzz/harnesses.py) for a bounded number of runs, each in
its own process (atheris.Fuzz ends its process). Skipped, with the reason, where atheris does
not import. COFFRE_ATHERIS_RUNS sets the runs per harness; the seed is printed and
COFFRE_ATHERIS_SEED replays it."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

RUNS = int(os.environ.get("COFFRE_ATHERIS_RUNS", "5000"))   # 20,000+ in long runs
SEED = int(os.environ.get("COFFRE_ATHERIS_SEED", random.randrange(1, 1 << 30)))
TARGETS = ["sigv4_header", "sigv4_query", "aws_chunked", "range_header",
           "conditional_headers", "xml_body", "bucket_and_key"]
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                                reason="atheris is not installed (pip install atheris)")


@pytest.mark.parametrize("target", TARGETS)
def test_atheris_harness(target: str, tmp_path: Path) -> None:
    print(f"atheris {target}: seed {SEED}, {RUNS} runs")
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.harnesses", target, f"-runs={RUNS}",
         f"-seed={SEED}", f"-artifact_prefix={tmp_path}/", "-max_len=4096"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    tail = "\n".join(done.stderr.splitlines()[-25:])
    print(tail)
    assert done.returncode == 0, f"{target} crashed (seed {SEED}):\n{tail}"
