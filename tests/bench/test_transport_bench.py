"""bench/transport_bench.py runs end to end (small numbers): both transports answer every
call and carry every byte (the bench asserts the byte counts itself)."""

from __future__ import annotations

import subprocess
import sys


def test_transport_bench_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "bench.transport_bench", "--calls", "300",
                          "--mib", "4"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 6
    assert sum("calls/s" in ln for ln in lines) == 4 and sum("MB/s" in ln for ln in lines) == 2
