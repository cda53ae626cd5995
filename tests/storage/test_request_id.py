"""A real node process: the caller's request id reaches the node's log lines over every
transport (RPC frames, a body streamed on the RPC channel, HTTP headers), and RPC calls and
group commits show in /metrics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.up import stop_all, wait_port
from storage import limits
from storage.client import NodeClient
from storage.metrics import REQUEST_ID, bound_request_id, request_id_chars_max
from tests.cluster.harness import free_ports


@pytest.fixture
def node(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_ports(1)[0]
    log_path = tmp_path / "node.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--log-level", "DEBUG", "--log-format", "json",
             "node", "serve", "--listen", f"127.0.0.1:{port}", "--device",
             f"0={tmp_path / 'dev0'}", "--no-background"],
            stdout=log, stderr=log, start_new_session=True)
    try:
        wait_port(port, 30.0, proc)
        yield f"127.0.0.1:{port}", log_path
    finally:
        stop_all([proc])


def _lines_with(log_path: Path, request_id: str) -> list[dict[str, object]]:
    out = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("request_id") == request_id:
                out.append(rec)
    return out


async def _calls(addr: str) -> None:
    client, http = NodeClient(), NodeClient(transport="http")
    try:
        REQUEST_ID.set("RPC-ID-1")
        await client.put_meta(addr, 0, 3, b"k", 1 << 40, b"v")       # RPC
        big = limits.rpc_put_body_bytes_max + 1                        # too big for a frame
        REQUEST_ID.set("STREAM-ID-3")
        await client.put_fragment(addr, 0, 3, b"frag", big, _body(big))   # streamed RPC
        REQUEST_ID.set("HTTP-ID-2")
        await http.put_fragment(addr, 0, 3, b"frag2", big, _body(big))    # HTTP
        REQUEST_ID.set("")
    finally:
        await client.close()
        await http.close()


async def _body(n: int):  # type: ignore[no-untyped-def]
    yield b"x" * n


def test_request_id_reaches_node_logs_and_metrics(node: tuple[str, Path]) -> None:
    addr, log_path = node
    asyncio.run(_calls(addr))
    metrics = urllib.request.urlopen(f"http://{addr}/metrics", timeout=10).read().decode()
    rpc_lines = _lines_with(log_path, "RPC-ID-1")
    http_lines = _lines_with(log_path, "HTTP-ID-2")
    assert any("rpc mput 200" in str(r["msg"]) for r in rpc_lines), rpc_lines
    assert any("PUT /v1/frag" in str(r["msg"]) for r in http_lines), http_lines
    stream_lines = _lines_with(log_path, "STREAM-ID-3")
    assert any("rpc fputs 204" in str(r["msg"]) for r in stream_lines), stream_lines
    assert 'coffre_node_requests_total{endpoint="rpc/mput",status="200"} 1.0' in metrics
    # Both writes went through the group committer of device 0: two commits at least.
    count = next(line for line in metrics.splitlines()
                 if line.startswith('coffre_node_fsync_seconds_count{device="0"}'))
    assert float(count.split()[-1]) >= 2
    assert 'coffre_node_commit_batch_ops_count{device="0"}' in metrics


@given(st.one_of(st.text(max_size=80),
                 st.text(alphabet="ABCDEF0123456789-_.", min_size=1, max_size=80)))
def test_bound_request_id_keeps_the_first_safe_characters(text: str) -> None:
    """The fast path for ids with nothing to drop gives what the character filter gives."""
    want = "".join(c for c in text[:request_id_chars_max] if c.isalnum() or c in "-_.")
    assert bound_request_id(text) == want
