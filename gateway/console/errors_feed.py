"""Recent errors for the web console: a bounded ring buffer of the last error responses and
warning/error log records of this gateway process.

Rules: memory is bounded (`errors_kept_max` events, each message cut at
`message_length_max_chars`), so a storm of errors costs a fixed amount. A response event
holds what an operator needs to find the request in the logs — time, request id, operation,
code, status — and never a header, a path or a body. A log event keeps the record's message
(cut), which is as safe as the logs themselves: no secret is ever logged (issue 12's tests).
The server records error responses with `note_response`; log records come through
`FeedHandler`, installed on the "coffre" logger while the console runs. Per-request access
lines are skipped there: their responses are already in the feed. Each gateway worker
process has its own feed: workers sharing the admin port each show their own errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from gateway.logs import ACCESS_LOGGER
from storage.metrics import REQUEST_ID

errors_kept_max = 200            # events the buffer holds; older ones fall off
message_length_max_chars = 300   # a log message longer than this is cut
status_error_min = 400           # responses below this status are not errors


class Source(Enum):
    RESPONSE = "response"   # an S3 error answered to a client
    LOG = "log"             # a warning or error logged by this process


@dataclass(frozen=True)
class ErrorEvent:
    seq: int                # 1, 2, 3... in this process: lets a page tell new from seen
    time_ms: int            # wall clock, epoch milliseconds
    source: Source
    request_id: str         # "" when the record was not logged on behalf of a request
    operation: str          # the S3 operation, or the logger's name for a log record
    code: str               # the S3 error code, or the log level
    status: int             # the HTTP status; 0 for a log record
    message: str            # "" for a response: its code says it


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ErrorFeed:
    """The last `capacity` error events; safe to feed from any thread (logging may be)."""

    def __init__(self, capacity: int = errors_kept_max,
                 wall_ms: Callable[[], int] = _wall_ms) -> None:
        assert capacity > 0
        self._events: deque[ErrorEvent] = deque(maxlen=capacity)
        self._wall_ms = wall_ms
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def total(self) -> int:
        """Events seen since the process started, including those that fell off."""
        return self._seq

    def _add(self, source: Source, request_id: str, operation: str, code: str, status: int,
             message: str) -> None:
        with self._lock:
            self._seq += 1
            self._events.append(ErrorEvent(self._seq, self._wall_ms(), source, request_id,
                                           operation, code, status,
                                           message[:message_length_max_chars]))

    def note_response(self, request_id: str, operation: str, code: str | None,
                      status: int) -> None:
        """Called for every answered S3 request; keeps only the error responses."""
        if status < status_error_min and code is None:
            return
        self._add(Source.RESPONSE, request_id, operation, code or f"HTTP{status}", status, "")

    def note_log(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:       # a bad format string must not hide that something happened
            message = str(record.msg)
        self._add(Source.LOG, REQUEST_ID.get() or "", record.name, record.levelname, 0,
                  message)

    def recent(self, limit: int = errors_kept_max, after_seq: int = 0) -> list[ErrorEvent]:
        """Newest first, at most `limit`, only those newer than `after_seq`."""
        with self._lock:
            events = [e for e in self._events if e.seq > after_seq]
        return events[::-1][:max(0, limit)]


class FeedHandler(logging.Handler):
    """Copies WARNING and worse records into a feed (access lines excepted, see above)."""

    def __init__(self, feed: ErrorFeed, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.feed = feed

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == ACCESS_LOGGER:
            return
        self.feed.note_log(record)


def install(feed: ErrorFeed, logger_name: str = "coffre") -> FeedHandler:
    """Attach a FeedHandler to `logger_name`; the caller removes it with `uninstall`."""
    handler = FeedHandler(feed)
    logging.getLogger(logger_name).addHandler(handler)
    return handler


def uninstall(handler: FeedHandler, logger_name: str = "coffre") -> None:
    logging.getLogger(logger_name).removeHandler(handler)


# The process's feed: the S3 server writes into it, the console on the admin port reads it
# (both run in the same process and share nothing else).
FEED = ErrorFeed()
