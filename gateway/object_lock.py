"""S3 Object Lock (write once, read many), pure: a bucket's configuration, a version's
retention and legal hold, and the rules that say who may remove or shorten them.

A bucket has Object Lock from its creation (x-amz-bucket-object-lock-enabled) or from a
PutObjectLockConfiguration on a versioning-enabled bucket; it is never turned off, and
versioning can no longer be suspended. Every new version may carry a retention (a mode and
a date) — its own, from the request's headers, or the bucket's default — and a legal hold.
While either holds, the version cannot be removed: COMPLIANCE by no one, GOVERNANCE only by
a request that says x-amz-bypass-governance-retention (from the bucket owner here), and a
legal hold until it is lifted. Overwrites and plain deletes still work: they add versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway import errors, s3xml

GOVERNANCE, COMPLIANCE = "GOVERNANCE", "COMPLIANCE"
MODES = (GOVERNANCE, COMPLIANCE)
_DAY_MS = 86_400_000
_YEAR_DAYS = 365
_PERIOD_MAX_DAYS = 36_500          # AWS allows up to 100 years


@dataclass(frozen=True)
class Retention:
    mode: str
    until_ms: int

    def active(self, now_ms: int) -> bool:
        return self.until_ms > now_ms


@dataclass(frozen=True)
class LockConfig:
    """A bucket's Object Lock: always enabled once there; an optional default retention."""

    mode: str = ""                  # the default rule's mode ("" = no default rule)
    days: int = 0
    years: int = 0

    def default_retention(self, now_ms: int) -> Retention | None:
        if not self.mode:
            return None
        days = self.days or self.years * _YEAR_DAYS
        return Retention(self.mode, now_ms + days * _DAY_MS)


def pack(cfg: LockConfig | None) -> list[Any] | None:
    return None if cfg is None else [cfg.mode, cfg.days, cfg.years]


def unpack(raw: Any) -> LockConfig | None:
    return None if raw is None else LockConfig(str(raw[0]), int(raw[1]), int(raw[2]))


# ---- documents ----------------------------------------------------------------------------


def parse_configuration(body: bytes) -> LockConfig:
    root = s3xml.parse(body, "ObjectLockConfiguration")
    if s3xml.child_text(root, "ObjectLockEnabled") != "Enabled":
        raise errors.MalformedXML()
    rules = s3xml.children(root, "Rule")
    if not rules:
        return LockConfig()
    retentions = s3xml.children(rules[0], "DefaultRetention")
    if len(rules) > 1 or len(retentions) != 1:
        raise errors.MalformedXML()
    el = retentions[0]
    mode = s3xml.child_text(el, "Mode") or ""
    days, years = s3xml.child_text(el, "Days"), s3xml.child_text(el, "Years")
    if mode not in MODES or (days is None) == (years is None):
        raise errors.MalformedXML()
    period = _period(days if days is not None else years or "")
    if period * (_YEAR_DAYS if years is not None else 1) > _PERIOD_MAX_DAYS:
        raise errors.InvalidArgument("Default retention period is too large.")
    return LockConfig(mode, period if days is not None else 0,
                      period if years is not None else 0)


def _period(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or int(value) <= 0:
        raise errors.InvalidArgument("Default retention period must be a positive integer value.")
    return int(value)


def render_configuration(cfg: LockConfig) -> bytes:
    rule = ""
    if cfg.mode:
        period = f"<Days>{cfg.days}</Days>" if cfg.days else f"<Years>{cfg.years}</Years>"
        rule = f"<Rule><DefaultRetention><Mode>{cfg.mode}</Mode>{period}</DefaultRetention></Rule>"
    return (f'{s3xml.HEAD}<ObjectLockConfiguration xmlns="{s3xml.NS}">'
            f"<ObjectLockEnabled>Enabled</ObjectLockEnabled>{rule}</ObjectLockConfiguration>"
            ).encode()


def parse_retention(body: bytes, now_ms: int) -> Retention | None:
    """A PutObjectRetention body; None when it sets none (removal, governance only)."""
    root = s3xml.parse(body, "Retention")
    mode, until = s3xml.child_text(root, "Mode"), s3xml.child_text(root, "RetainUntilDate")
    if mode is None and until is None:
        return None
    if mode not in MODES or until is None:
        raise errors.MalformedXML()
    return Retention(mode, _future_date(until, now_ms))


def render_retention(r: Retention) -> bytes:
    return (f'{s3xml.HEAD}<Retention xmlns="{s3xml.NS}"><Mode>{r.mode}</Mode>'
            f"<RetainUntilDate>{s3xml.iso8601(r.until_ms)}</RetainUntilDate></Retention>"
            ).encode()


def parse_legal_hold(body: bytes) -> bool:
    status = s3xml.child_text(s3xml.parse(body, "LegalHold"), "Status")
    if status not in ("ON", "OFF"):
        raise errors.MalformedXML()
    return status == "ON"


def render_legal_hold(on: bool) -> bytes:
    return (f'{s3xml.HEAD}<LegalHold xmlns="{s3xml.NS}"><Status>{"ON" if on else "OFF"}'
            "</Status></LegalHold>").encode()


def _future_date(text: str, now_ms: int) -> int:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.InvalidArgument("The retain until date is not a valid date.",
                                     ArgumentName="RetainUntilDate",
                                     ArgumentValue=text) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ms = int(when.timestamp() * 1000)
    if ms <= now_ms:
        raise errors.InvalidArgument("The retain until date must be in the future!",
                                     ArgumentName="RetainUntilDate", ArgumentValue=text)
    return ms


# ---- request headers and the rules ----------------------------------------------------------

MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
HOLD_HEADER = "x-amz-object-lock-legal-hold"
BYPASS_HEADER = "x-amz-bypass-governance-retention"


def from_headers(h: Mapping[str, str], now_ms: int) -> tuple[Retention | None, bool | None]:
    """The retention and legal hold a write asks for (None: not asked)."""
    mode, until, hold = h.get(MODE_HEADER), h.get(UNTIL_HEADER), h.get(HOLD_HEADER)
    retention = None
    if (mode is None) != (until is None):
        raise errors.InvalidArgument(
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be "
            "supplied")
    if mode is not None and until is not None:
        if mode not in MODES:
            raise errors.InvalidArgument("Unknown wormMode directive.",
                                         ArgumentName=MODE_HEADER, ArgumentValue=mode)
        retention = Retention(mode, _future_date(until, now_ms))
    if hold is not None and hold not in ("ON", "OFF"):
        raise errors.InvalidArgument("Legal Hold must be either of 'ON' or 'OFF'",
                                     ArgumentName=HOLD_HEADER, ArgumentValue=hold)
    return retention, None if hold is None else hold == "ON"


def asks_for_lock(h: Mapping[str, str]) -> bool:
    return any(name in h for name in (MODE_HEADER, UNTIL_HEADER, HOLD_HEADER))


# A new version's retention and legal hold (None: the write set none).
Lock = tuple[Retention | None, bool | None]


def for_write(cfg: LockConfig | None, h: Mapping[str, str], now_ms: int,
              asked_ms: int | None = None) -> Lock:
    """The retention and legal hold of a new version: the request's own, else the bucket's
    default retention. Lock headers on a bucket without Object Lock are refused. A date
    must be later than `asked_ms` (default: now; a multipart upload's Create time)."""
    if cfg is None:
        if asks_for_lock(h):
            raise errors.InvalidRequest("Bucket is missing Object Lock Configuration")
        return None, None
    retention, hold = from_headers(h, now_ms if asked_ms is None else asked_ms)
    return retention or cfg.default_retention(now_ms), hold


def lock_headers(h: Mapping[str, str]) -> dict[str, str]:
    """The lock headers of a request, as a multipart upload keeps them until Complete."""
    return {name: h[name] for name in (MODE_HEADER, UNTIL_HEADER, HOLD_HEADER) if name in h}


def bypasses(h: Mapping[str, str]) -> bool:
    return h.get(BYPASS_HEADER, "").strip().lower() == "true"


def _protected() -> errors.S3Error:
    # A lock's refusal is AWS's plain 403: its message says "Access Denied" and no more.
    return errors.AccessDenied()


def check_change(old: Retention | None, new: Retention | None, bypass: bool,
                 now_ms: int) -> None:
    """A retention may always be made longer in its mode; shortened, removed or its mode
    changed from GOVERNANCE only with a bypass; COMPLIANCE never, while it holds."""
    if old is None or not old.active(now_ms):
        return
    longer = new is not None and new.until_ms >= old.until_ms
    if old.mode == COMPLIANCE:
        if longer and new is not None and new.mode == COMPLIANCE:
            return
        raise _protected()
    # Governance may be lengthened freely; its mode changed (to compliance too, as AWS
    # answers), shortened or removed only with a bypass.
    if bypass or (longer and new is not None and new.mode == GOVERNANCE):
        return
    raise _protected()


def check_removal(retention: Retention | None, legal_hold: bool | None, bypass: bool,
                  now_ms: int) -> None:
    """Whether a version may be removed for good (not a delete marker: a plain DELETE)."""
    if legal_hold:
        raise _protected()
    if retention is None or not retention.active(now_ms):
        return
    if retention.mode == GOVERNANCE and bypass:
        return
    raise _protected()


def response_headers(retention: Retention | None, legal_hold: bool | None
                     ) -> dict[str, str]:
    """GET/HEAD's lock headers for a version that has any."""
    out = {}
    if retention is not None:
        out[MODE_HEADER] = retention.mode
        out[UNTIL_HEADER] = s3xml.iso8601(retention.until_ms)
    if legal_hold:
        out[HOLD_HEADER] = "ON"
    return out
