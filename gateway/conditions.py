"""Conditional requests (If-Match, If-None-Match, If-(Un)Modified-Since) with S3's precedence.

Pure: headers, the object's ETag and modification time in; "proceed", 304 or 412 out.
S3 rules: a true If-Match overrides a false If-Unmodified-Since; a false If-None-Match
overrides a true If-Modified-Since... stated below as the order of the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from enum import Enum

from gateway import errors


class Outcome(Enum):
    PROCEED = 0
    NOT_MODIFIED = 304


def _etags(value: str) -> list[str]:
    return [v.strip().removeprefix("W/").strip('"') for v in value.split(",") if v.strip()]


def _matches(value: str, etag: str) -> bool:
    tags = _etags(value)
    return "*" in tags or etag.strip('"') in tags


def _date_s(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None     # S3 ignores an unparsable date


def evaluate(headers: Mapping[str, str], etag: str, mtime_ms: int) -> Outcome:
    """For GET and HEAD: raise PreconditionFailed, or say whether to answer 304."""
    mtime_s = mtime_ms // 1000      # HTTP dates have second resolution
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _matches(if_match, etag):
            raise errors.PreconditionFailed(Condition="If-Match")
    else:
        since = headers.get("If-Unmodified-Since")
        when = _date_s(since) if since else None
        if when is not None and mtime_s > when:
            raise errors.PreconditionFailed(Condition="If-Unmodified-Since")
    if_none = headers.get("If-None-Match")
    if if_none is not None:
        return Outcome.NOT_MODIFIED if _matches(if_none, etag) else Outcome.PROCEED
    since = headers.get("If-Modified-Since")
    when = _date_s(since) if since else None
    if when is not None and mtime_s <= when:
        return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def has_write_conditions(headers: Mapping[str, str]) -> bool:
    """Whether check_write needs the current object (a PUT without them skips the read)."""
    return "If-None-Match" in headers or "If-Match" in headers


def check_write(headers: Mapping[str, str], current_etag: str | None) -> None:
    """Conditional PUT/Complete: If-None-Match: * and If-Match against the current object."""
    if_none = headers.get("If-None-Match")
    if if_none is not None:
        if if_none.strip() != "*":
            raise errors.NotImplementedError_("If-None-Match only supports '*' on writes")
        if current_etag is not None:
            raise errors.PreconditionFailed(Condition="If-None-Match")
    if_match = headers.get("If-Match")
    if if_match is not None:
        if current_etag is None:
            raise errors.NoSuchKey()
        if not _matches(if_match, current_etag):
            raise errors.PreconditionFailed(Condition="If-Match")
