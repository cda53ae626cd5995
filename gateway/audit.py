"""The audit log: one JSON line per S3 request, in size-rotated files under <data root>/audit.

Each line says who (tenant, access key id, remote address), what (operation, bucket, key),
why it was allowed (owner, policy, acl, ...), how it ended (status, error code) and how many
bytes went in and out, with the request id that ties it to the process logs. It never holds
a secret, a signature or a query string (presigned URLs carry their signature there).
Each gateway process writes its own file (host and pid in the name), so processes never
interleave lines; writes go through a queue to a thread, so the event loop never waits on
the disk.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from gateway.access import Decision
from gateway.numbers import is_decimal
from gateway.router import Endpoint
from gateway.sigv4 import AuthResult

audit_file_bytes_max = 64 * 1024 * 1024   # rotate at this size
audit_files_kept = 20                      # rotated files kept per process


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
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)


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
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"audit-{socket.gethostname()}-{os.getpid()}.jsonl"
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=audit_file_bytes_max, backupCount=audit_files_kept,
            encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self.path = path
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._logger = logging.getLogger(f"coffre.audit.{id(self)}")
        self._logger.propagate = False      # audit lines never reach the process log
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(logging.handlers.QueueHandler(self._queue))
        self._listener.start()

    def record(self, entry: AuditEntry) -> None:
        self._logger.info(entry.to_json())

    def close(self) -> None:
        """Flush what is queued and close the file."""
        self._listener.stop()
        for h in list(self._logger.handlers):
            self._logger.removeHandler(h)
