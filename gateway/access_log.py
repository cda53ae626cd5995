"""Server access logs: one line per request to a bucket that has logging on, in AWS's
format, buffered per destination until gateway/log_delivery.py writes it as an object.

The line (AWS's "Amazon S3 server access log format"): space-separated fields, "-" for
one that is empty or does not apply, in AWS's order — bucket owner, bucket, [time], remote
IP, requester, request id, operation, key, "request-URI", HTTP status, error code, bytes
sent, object size, total time, turn-around time, "referer", "user-agent", version id,
host id, signature version, cipher suite, authentication type, host header, TLS version,
access point ARN, aclRequired. Quoted fields escape '"', '\\' and control characters as
Apache's log does; a presigned URL's signature is left out of the request-URI (it would
let anyone who may read the log use the link). The gateway speaks HTTP, so the TLS fields
are "-"; a streamed answer's turn-around time is "-" too: its first byte left before the
line is made and nothing timestamps it.

The buffer holds lines by destination (source bucket, configuration, and the day of the
requests when objects are partitioned by event time) and is bounded in bytes: past the
bound a line is dropped and counted, as AWS's best-effort delivery may drop lines. A batch
that reaches the object size bound is set aside for delivery at once.

Pure but for `AccessLogs.note`, which reads the aiohttp request and response it is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from urllib.parse import quote

from aiohttp import web

from gateway import limits, request_ids, router
from gateway.access import Basis, Decision
from gateway.bucket_logging import LoggingConfig
from gateway.catalog import Catalog
from gateway.manifest import BucketRecord
from gateway.metering import payload_bytes_in
from gateway.metrics import response_bytes
from gateway.numbers import is_decimal
from gateway.sigv4 import AuthResult

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Query parameters that carry a presigned URL's signature.
_SIGNATURES = frozenset({"x-amz-signature", "signature"})
_READS = frozenset({"GetObject", "HeadObject"})
_WRITES = frozenset({"PutObject", "UploadPart"})


@dataclass(frozen=True)
class LogRecord:
    """One request, as its access log line tells it (None and "" are printed as "-")."""

    bucket_owner: str
    bucket: str
    time_s: float                   # when the request arrived (epoch seconds)
    remote_ip: str
    requester: str | None           # the signing tenant; None: anonymous
    request_id: str
    operation: str                  # REST.GET.OBJECT ...
    key: str | None
    request_uri: str                # the request line: GET /b/k?x HTTP/1.1
    status: int
    error_code: str | None
    bytes_sent: int
    object_size: int | None
    total_ms: int | None
    turnaround_ms: int | None
    referer: str | None
    user_agent: str | None
    version_id: str | None
    host_id: str
    signature_version: str | None   # SigV2, SigV4
    auth_type: str | None           # AuthHeader, QueryString
    host_header: str
    acl_required: bool


def clf_time(time_s: float) -> str:
    """[06/Feb/2019:00:00:38 +0000], in UTC (month names never depend on the locale)."""
    t = datetime.fromtimestamp(time_s, UTC)
    return f"[{t.day:02d}/{_MONTHS[t.month - 1]}/{t.year}:{t:%H:%M:%S} +0000]"


def _escape(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)


def _word(value: str | int | None) -> str:
    """An unquoted field: "-" when empty; a space would split it, so it is escaped too."""
    if value is None or value == "":
        return "-"
    return _escape(str(value)).replace(" ", "\\x20")


def _quoted(value: str | None) -> str:
    return f'"{_escape(value) if value else "-"}"'


def format_line(r: LogRecord) -> str:
    fields = [
        _word(r.bucket_owner), _word(r.bucket), clf_time(r.time_s), _word(r.remote_ip),
        _word(r.requester), _word(r.request_id), _word(r.operation),
        _word(quote(r.key, safe="/") if r.key else None), _quoted(r.request_uri),
        _word(r.status), _word(r.error_code), _word(r.bytes_sent or None),
        _word(r.object_size), _word(r.total_ms), _word(r.turnaround_ms), _quoted(r.referer),
        _quoted(r.user_agent), _word(r.version_id), _word(r.host_id),
        _word(r.signature_version), "-", _word(r.auth_type), _word(r.host_header), "-", "-",
        "Yes" if r.acl_required else "-",
    ]
    return " ".join(fields)


# AWS operation -> the resource type of its log name, REST.<METHOD>.<TYPE>. What is not
# here is OBJECT or BUCKET, by whether the request names a key.
_RESOURCES: Mapping[str, str] = {
    "ListObjects": "BUCKET", "ListObjectsV2": "BUCKET", "ListObjectVersions": "BUCKETVERSIONS",
    "ListMultipartUploads": "UPLOADS", "CreateMultipartUpload": "UPLOADS",
    "UploadPart": "PART", "UploadPartCopy": "PART", "CompleteMultipartUpload": "UPLOAD",
    "AbortMultipartUpload": "UPLOAD", "ListParts": "UPLOAD",
    "DeleteObjects": "MULTI_OBJECT_DELETE",
    "GetObjectTagging": "OBJECT_TAGGING", "PutObjectTagging": "OBJECT_TAGGING",
    "DeleteObjectTagging": "OBJECT_TAGGING",
    "GetObjectAcl": "ACL", "PutObjectAcl": "ACL", "GetBucketAcl": "ACL", "PutBucketAcl": "ACL",
    "GetBucketPolicy": "BUCKETPOLICY", "PutBucketPolicy": "BUCKETPOLICY",
    "DeleteBucketPolicy": "BUCKETPOLICY", "GetBucketPolicyStatus": "BUCKETPOLICYSTATUS",
    "GetBucketLogging": "LOGGING_STATUS", "PutBucketLogging": "LOGGING_STATUS",
    "GetBucketNotificationConfiguration": "NOTIFICATION",
    "GetBucketRequestPayment": "REQUEST_PAYMENT",
    "GetBucketAccelerateConfiguration": "ACCELERATE",
    "PutBucketAccelerateConfiguration": "ACCELERATE",
    "GetBucketLifecycleConfiguration": "LIFECYCLE", "GetObjectAttributes": "OBJECT_ATTRIBUTES",
    "PutBucketLifecycleConfiguration": "LIFECYCLE", "DeleteBucketLifecycle": "LIFECYCLE",
    "GetObjectLockConfiguration": "OBJECT_LOCK_CONFIGURATION",
    "PutObjectLockConfiguration": "OBJECT_LOCK_CONFIGURATION",
    "GetObjectLegalHold": "LEGAL_HOLD", "PutObjectLegalHold": "LEGAL_HOLD",
    "PreflightRequest": "PREFLIGHT", "PostObject": "OBJECT",
}
# Operations whose sub-resource is their name (GetBucketCors -> CORS, ...).
_SUBRESOURCE_OPS = ("Tagging", "Cors", "Website", "Encryption", "Versioning", "Location",
                    "Replication", "OwnershipControls", "PublicAccessBlock", "Retention")
_SUBRESOURCE_NAMES = {"OwnershipControls": "OWNERSHIP_CONTROLS",
                      "PublicAccessBlock": "PUBLIC_ACCESS_BLOCK"}


def operation(op: str, method: str, has_key: bool, website: bool = False) -> str:
    """AWS's log name of an operation: REST.GET.OBJECT, REST.COPY.PART, WEBSITE.GET.OBJECT."""
    if website:
        return f"WEBSITE.{method}.OBJECT"
    if op in ("CopyObject", "UploadPartCopy"):
        method = "COPY"
    resource = _RESOURCES.get(op)
    if resource is None:
        tail = next((s for s in _SUBRESOURCE_OPS if op.endswith(s)), None)
        resource = (_SUBRESOURCE_NAMES.get(tail, tail.upper()) if tail
                    else "OBJECT" if has_key else "BUCKET")
    return f"REST.{method}.{resource}"


def request_uri(method: str, raw_path: str, version: str) -> str:
    """The request line as logged: the query without a presigned URL's signature."""
    path, sep, query = raw_path.partition("?")
    if sep:
        kept = [p for p in query.split("&")
                if p.partition("=")[0].lower() not in _SIGNATURES]
        path = f"{path}?{'&'.join(kept)}" if kept else path
    return f"{method} {path} HTTP/{version}"


# ---- the buffer --------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where a line goes: lines of one destination make one log object."""

    owner: str                  # the source bucket's owner
    bucket: str                 # the source bucket
    config: LoggingConfig
    event_day: date | None      # the requests' day, when objects are partitioned by it


@dataclass
class Batch:
    destination: Destination
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    failures: int = 0           # failed deliveries so far
    key: str = ""               # chosen at its first delivery, kept for its retries


class Buffer:
    """Lines waiting for delivery. Bytes held (lines batched, set aside, being delivered or
    waiting for a retry) stay under `bytes_max`."""

    def __init__(self, bytes_max: int = limits.access_log_buffer_bytes_max,
                 batch_bytes_max: int = limits.access_log_object_bytes_max,
                 retries_max: int = limits.access_log_retries_max) -> None:
        self.bytes_max, self.batch_bytes_max, self.retries_max = (
            bytes_max, batch_bytes_max, retries_max)
        self.held_bytes = 0
        self.dropped_lines = 0              # refused for want of room, since the last report
        self._open: dict[Destination, Batch] = {}
        self._full: list[Batch] = []        # reached batch_bytes_max: deliver now
        self._retry: list[Batch] = []       # failed: deliver again at the next flush

    def add(self, dest: Destination, line: bytes) -> bool:
        """Buffer a line; False: dropped, the buffer is full."""
        if self.held_bytes + len(line) > self.bytes_max:
            self.dropped_lines += 1
            return False
        batch = self._open.get(dest)
        if batch is None:
            batch = self._open[dest] = Batch(dest)
        batch.lines.append(line)
        batch.size += len(line)
        self.held_bytes += len(line)
        if batch.size >= self.batch_bytes_max:
            self._full.append(self._open.pop(dest))
        return True

    @property
    def has_full(self) -> bool:
        return bool(self._full)

    def take(self, everything: bool) -> list[Batch]:
        """The batches to deliver now: the full ones, and with `everything` (a flush) the
        ones still filling and those waiting for a retry. They stay counted until done()."""
        out, self._full = self._full, []
        if everything:
            out += [*self._retry, *self._open.values()]
            self._retry, self._open = [], {}
        return out

    def done(self, batch: Batch) -> None:
        """A batch delivered or given up: its bytes are free."""
        self.held_bytes -= batch.size

    def failed(self, batch: Batch) -> bool:
        """A delivery failed: keep the batch for the next flush, unless it has been tried
        1 + retries_max times (False: dropped)."""
        batch.failures += 1
        if batch.failures > self.retries_max:
            self.done(batch)
            return False
        self._retry.append(batch)
        return True


class AccessLogs:
    """This gateway process's access log lines: made at the end of each request to a bucket
    with logging on, held until gateway/log_delivery.py delivers them."""

    def __init__(self, catalog: Catalog, website_domain: str = "",
                 buffer: Buffer | None = None) -> None:
        self.catalog, self.website_domain = catalog, website_domain
        self.buffer = buffer or Buffer()
        self.wake = asyncio.Event()         # set when a batch is full

    def logged_bucket(self, endpoint: router.Endpoint | None,
                      decision: Decision | None) -> BucketRecord | None:
        """The request's bucket if it has logging on. A request refused before its decision
        (a bad signature, AccessDenied) has the record the catalog holds in memory, if any:
        a line is never worth a metadata read."""
        bucket = decision.bucket if decision is not None else None
        if bucket is None and endpoint is not None and endpoint.bucket:
            bucket = self.catalog.cached(endpoint.bucket)
        return bucket if bucket is not None and bucket.logging is not None else None

    def note(self, request: web.Request, response: web.StreamResponse,
             endpoint: router.Endpoint | None, decision: Decision | None,
             auth: AuthResult | None, principal: str | None, code: str | None,
             started: float, request_id: str) -> None:
        """Log an answered request, if its bucket has logging on (`started`: monotonic)."""
        bucket = self.logged_bucket(endpoint, decision)
        if bucket is None or endpoint is None or bucket.logging is None:
            return
        now = time.monotonic()
        arrived_s = time.time() - (now - started)
        elapsed_ms = int((now - started) * 1000)
        website = bool(self.website_domain) and \
            router.split_host(request.host, self.website_domain) is not None
        record = LogRecord(
            bucket.owner, bucket.name, arrived_s, request.remote or "", principal, request_id,
            operation(endpoint.op, request.method, endpoint.key is not None, website),
            endpoint.key, request_uri(request.method, request.raw_path,
                                      f"{request.version.major}.{request.version.minor}"),
            response.status, code, response_bytes(request, response),
            _object_size(endpoint.op, request, response), elapsed_ms,
            None if response.prepared else elapsed_ms,
            request.headers.get("Referer"), request.headers.get("User-Agent"),
            request.query.get("versionId"), request_ids.host_id(request_id),
            None if auth is None else "SigV4" if auth.scope else "SigV2",
            None if auth is None else "QueryString" if auth.presigned else "AuthHeader",
            request.host, decision is not None and decision.basis is Basis.ACL)
        cfg = bucket.logging
        day = datetime.fromtimestamp(arrived_s, UTC).date() if cfg.by_event_day else None
        if self.buffer.add(Destination(bucket.owner, bucket.name, cfg, day),
                           (format_line(record) + "\n").encode()) and self.buffer.has_full:
            self.wake.set()


def _object_size(op: str, request: web.Request, response: web.StreamResponse) -> int | None:
    """The size of the object a successful read or write was about."""
    if response.status >= 300:
        return None
    if op in _READS:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        length = total or response.headers.get("Content-Length", "")
        return int(length) if is_decimal(length) else None
    return payload_bytes_in(request) if op in _WRITES else None
