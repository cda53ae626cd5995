"""Conditional requests (If-Match, If-None-Match, If-(Un)Modified-Since) with S3's precedence.

Pure: headers, the object's ETag and modification time in; "proceed", 304 or 412 out.
S3 rules: a true If-Match overrides a false If-Unmodified-Since; a false If-None-Match
overrides a true If-Modified-Since... stated below as the order of the checks.
"""

from __future__ import annotations

import time
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


def in_future(value: str) -> bool:
    when = _date_s(value)
    return when is not None and when > time.time()


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


_UNSUPPORTED = "A header you provided implies functionality that is not implemented"


def _check_write_headers(if_none: str | None, if_match: str | None) -> None:
    """The conditions S3 takes on writes: If-None-Match: * or If-Match: ETag, one of them;
    anything else is NotImplemented naming the header, as AWS answers."""
    if if_none is not None and if_match is not None:
        raise errors.NotImplementedError_(
            _UNSUPPORTED, Header="If-Match,If-None-Match",
            additionalMessage="Multiple conditional request headers present in the request")
    if if_none is not None and if_none.strip() != "*":
        raise errors.NotImplementedError_(
            _UNSUPPORTED, Header="If-None-Match",
            additionalMessage="We don't accept the provided value of If-None-Match header "
                              "for this API")
    if if_match is not None and if_match.strip() == "*":
        raise errors.NotImplementedError_(
            _UNSUPPORTED, Header="If-Match",
            additionalMessage="We don't accept the provided value of If-Match header for "
                              "this API")


def check_write(headers: Mapping[str, str], current_etag: str | None, key: str) -> None:
    """Conditional PUT/Complete: If-None-Match: * and If-Match against the current object."""
    if_none, if_match = headers.get("If-None-Match"), headers.get("If-Match")
    _check_write_headers(if_none, if_match)
    if if_none is not None and current_etag is not None:
        raise errors.PreconditionFailed(Condition="If-None-Match")
    if if_match is not None:
        if current_etag is None:
            raise errors.NoSuchKey(Key=key)
        if not _matches(if_match, current_etag):
            raise errors.PreconditionFailed(Condition="If-Match")


def overtaken(headers: Mapping[str, str], winner_etag: str | None, key: str) -> errors.S3Error:
    """The answer to a conditional write whose check held but that another write beat to
    the commit (`winner_etag`: what won; None: a delete). AWS: the first write to finish
    wins, and a later one whose condition fails against it is 412; a delete that landed
    meanwhile, or a winner the condition still holds for, is 409 ConditionalRequestConflict
    (the client is to retry)."""
    if winner_etag is not None:
        try:
            check_write(headers, winner_etag, key)
        except errors.PreconditionFailed as failed:
            return failed
    return errors.ConditionalRequestConflict()


IF_MATCH_TIME = "x-amz-if-match-last-modified-time"
IF_MATCH_SIZE = "x-amz-if-match-size"
_DELETE_CONDITIONS = ("If-Match", IF_MATCH_TIME, IF_MATCH_SIZE)


def has_delete_conditions(headers: Mapping[str, str]) -> bool:
    return any(h in headers for h in _DELETE_CONDITIONS)


def check_delete(headers: Mapping[str, str], current: tuple[str, int, int] | None,
                 key: str) -> None:
    """Conditional DeleteObject: If-Match, x-amz-if-match-last-modified-time and
    x-amz-if-match-size against the object (`current`: its ETag, mtime in ms and size;
    None when there is none, which is NoSuchKey). A condition that fails is 412, and
    nothing is deleted."""
    if current is None:
        raise errors.NoSuchKey(Key=key)
    etag, mtime_ms, size = current
    if_match = headers.get("If-Match")
    if if_match is not None and not _matches(if_match, etag):
        raise errors.PreconditionFailed(Condition="If-Match")
    when_raw = headers.get(IF_MATCH_TIME)
    if when_raw is not None:
        when = _date_s(when_raw)
        if when is None or int(when) != mtime_ms // 1000:
            raise errors.PreconditionFailed(Condition=IF_MATCH_TIME)
    size_raw = headers.get(IF_MATCH_SIZE)
    if size_raw is not None and size_raw.strip() != str(size):
        raise errors.PreconditionFailed(Condition=IF_MATCH_SIZE)
