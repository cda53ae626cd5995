"""The audit log: one JSON line per S3 request, in size-rotated files under <data root>/audit.

Each line says who (tenant, access key id, remote address), what (operation, bucket, key),
why it was allowed (owner, policy, acl, ...), how it ended (status, error code) and how many
bytes went in and out, with the request id that ties it to the process logs. It never holds
a secret, a signature or a query string (presigned URLs carry their signature there).
Each gateway process writes its own file (host and pid in the name), so processes never
interleave lines; writes go through a queue to a thread, so the event loop never waits on
the disk. The thread writes whatever lines are queued in one write and tracks the file's size
itself (rotating as logging's RotatingFileHandler names files: .1 the newest): going through
`logging` formatted every line three times and stat'ed the file twice per line, a quarter
of the gateway's CPU under small GETs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from gateway.access import Decision
from gateway.numbers import is_decimal
from gateway.router import Endpoint
from gateway.sigv4 import AuthResult

audit_file_bytes_max = 64 * 1024 * 1024   # rotate at this size
audit_files_kept = 20                      # rotated files kept per process
_LINES_PER_WRITE = 1000                    # queued lines written at most per write()

log = logging.getLogger("coffre.audit")


@dataclass(frozen=True)
class AuditEntry:
    time: str
    request_id: str
    remote: str
    tenant: str | None            # who signed; None: anonymous
    access_key: str | None
    op: str
    bucket: str | None
    key: str | None
    status: int
    error: str | None
    basis: str | None             # why it was allowed (gateway.access.Basis)
    bytes_in: int
    bytes_out: int

    def to_json(self) -> str:
        # vars(): the fields in order, without asdict's deep copy of each value.
        return json.dumps(vars(self), separators=(",", ":"), ensure_ascii=False)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bytes_in(request: web.Request) -> int:
    decoded = request.headers.get("x-amz-decoded-content-length", "")
    return int(decoded) if is_decimal(decoded) else request.content_length or 0


def entry_for(request: web.Request, response: web.StreamResponse, request_id: str,
              endpoint: Endpoint | None, auth: AuthResult | None, principal: str | None,
              decision: Decision | None, error: str | None) -> AuditEntry:
    """The line for one answered request (any of the parts may be missing when the
    request failed early: an unroutable path has no endpoint, a bad signature no tenant)."""
    return AuditEntry(
        now_iso(), request_id, request.remote or "", principal,
        auth.access_key if auth is not None else None,
        endpoint.op if endpoint is not None else request.method,
        endpoint.bucket if endpoint is not None else None,
        endpoint.key if endpoint is not None else None,
        response.status, error, decision.basis.value if decision is not None else None,
        _bytes_in(request), _bytes_out(request, response))


def _bytes_out(request: web.Request, response: web.StreamResponse) -> int:
    # body_length would count the status line and headers too; the body is what is billed.
    if request.method == "HEAD":
        return 0
    declared = response.headers.get("Content-Length", "")
    return int(declared) if is_decimal(declared) else response.content_length or 0


class AuditLog:
    def __init__(self, directory: Path, file_bytes_max: int = audit_file_bytes_max,
                 files_kept: int = audit_files_kept) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"audit-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._max, self._kept = file_bytes_max, files_kept
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._file = open(self.path, "ab")  # noqa: SIM115 - the writer thread owns it
        self._thread = threading.Thread(target=self._write_loop, name="audit-writer",
                                        daemon=True)
        self._thread.start()

    def record(self, entry: AuditEntry) -> None:
        self._queue.put(entry.to_json())

    def close(self) -> None:
        """Write what is queued and close the file."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _write_loop(self) -> None:
        try:
            while True:
                lines = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    while len(lines) < _LINES_PER_WRITE:
                        lines.append(self._queue.get_nowait())
                try:
                    self._write([f"{ln}\n".encode() for ln in lines if ln is not None])
                except OSError:
                    log.exception("audit log: could not write to %s", self.path)
                if None in lines:
                    return
        finally:
            self._file.close()

    def _write(self, lines: list[bytes]) -> None:
        """Append the lines, as few writes as the rotation allows (a file is cut between
        lines, never inside one)."""
        size = self._file.tell()
        start = 0
        for i, line in enumerate(lines):
            if size and size + len(line) > self._max:
                self._file.write(b"".join(lines[start:i]))
                self._rotate()
                size, start = 0, i
            size += len(line)
        self._file.write(b"".join(lines[start:]))
        self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self._kept - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self._kept:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = open(self.path, "ab")  # noqa: SIM115
