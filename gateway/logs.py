"""Process logging: JSON lines on stderr by default, plain text for humans on request.

Rules: `setup` is called once per process, before any work (the `coffre` entry point calls
it for every subcommand, nodes included). Every record carries the request id of the task
that logged it (storage.metrics.REQUEST_ID: the gateway sets it per S3 request, the node
sets it from the header or RPC field), so `grep <id>` over all processes' logs gives one
request's whole story. Extra structured fields go through `extra={"fields": {...}}`.
Per-request lines (`log_request`) are DEBUG except server errors: a busy gateway must not
spend its CPU formatting a line per request unless the operator asks for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from enum import Enum
from typing import IO, Any

from storage.metrics import REQUEST_ID

ACCESS_LOGGER = "coffre.access"


class LogFormat(Enum):
    JSON = "json"
    TEXT = "text"


def _timestamp(record: logging.LogRecord) -> str:
    when = datetime.fromtimestamp(record.created, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname,
                               "logger": record.name, "msg": record.getMessage()}
        request_id = REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # default=str: a field that is not JSON (a Path, an exception) must not lose the line
        return json.dumps(out, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger [request id] message key=value ...` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name]
        request_id = REQUEST_ID.get()
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        parts.extend(f"{k}={v}" for k, v in _fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(fmt: LogFormat | str = LogFormat.JSON, level: str = "INFO",
          stream: IO[str] | None = None) -> logging.Handler:
    """Send every logger's records to `stream` (stderr) in `fmt`; replaces earlier setups."""
    handler = logging.StreamHandler(stream or sys.stderr)
    kind = LogFormat(fmt)
    handler.setFormatter(JsonFormatter() if kind is LogFormat.JSON else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--log-format {json,text}` and `--log-level LEVEL` on the top-level parser."""
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat],
                        default=LogFormat.JSON.value,
                        help="json lines (default) or text for humans; both on stderr")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def setup_from_args(args: argparse.Namespace) -> None:
    setup(getattr(args, "log_format", "json"), getattr(args, "log_level", "INFO"))


def set_request_id(request_id: str) -> None:
    """Tag this task's log lines (and, through NodeClient, its node calls) with the id."""
    REQUEST_ID.set(request_id)


def log_request(op: str, method: str, path: str, status: int, seconds: float,
                bytes_in: int, bytes_out: int, error_code: str | None = None) -> None:
    """One line per answered S3 request: WARNING for 5xx, DEBUG otherwise."""
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logging.WARNING if status >= 500 else logging.DEBUG
    if not logger.isEnabledFor(level):
        return
    fields = {"op": op, "method": method, "path": path, "status": status,
              "ms": round(seconds * 1000, 3), "in": bytes_in, "out": bytes_out}
    if error_code:
        fields["code"] = error_code
    logger.log(level, "%s %s %s", method, path, status, extra={"fields": fields})
