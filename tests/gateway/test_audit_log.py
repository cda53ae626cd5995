"""gateway.audit's writer: every recorded line lands once, in order, across rotations; the
oldest files beyond the kept count go; close() writes what is still queued."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.audit import AuditEntry, AuditLog


def entry(i: int) -> AuditEntry:
    return AuditEntry("2026-11-29T00:00:00.000Z", f"req{i}", "127.0.0.1", "t", "AK", "GetObject",
                      "b", f"k{i}", 200, None, "owner", 0, 10)


def test_lines_rotate_in_order_and_close_flushes(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, file_bytes_max=2000, files_kept=3)
    for i in range(60):
        log.record(entry(i))
    log.close()
    files = sorted(tmp_path.iterdir(), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit()
                   else 0)
    names = {p.name for p in files}
    assert log.path.name in names and f"{log.path.name}.3" in names
    assert f"{log.path.name}.4" not in names            # older ones were dropped
    lines = [json.loads(ln) for p in files for ln in p.read_text().splitlines()]
    ids = [int(line["request_id"][3:]) for line in lines]
    assert ids == sorted(ids) and ids[-1] == 59          # in order, the newest kept
    assert len(ids) == len(set(ids))
    assert all(p.stat().st_size <= 2000 for p in files)
    assert lines[-1]["key"] == "k59" and list(lines[-1])[:3] == ["time", "request_id", "remote"]
