"""Server access logging's configuration: a bucket's BucketLoggingStatus, and the keys of
the log objects it asks for.

Pure. `parse` validates a PutBucketLogging body, `render` is GetBucketLogging's answer
(element names and order from botocore's model: LoggingEnabled holds TargetBucket,
TargetGrants, TargetPrefix, TargetObjectKeyFormat). A status without LoggingEnabled turns
logging off (None). The target bucket's existence and owner are the handler's to check
(gateway/handlers/logging_ops.py): they are not in the document.

Log object keys, as AWS names them:
- SimplePrefix (and no TargetObjectKeyFormat): TargetPrefix + YYYY-mm-DD-HH-MM-SS-UNIQUE,
  the delivery time;
- PartitionedPrefix: TargetPrefix + owner/region/bucket/YYYY/MM/DD/ + the same name, dated by
  delivery (DeliveryTime) or, by default (EventTime), by the day its requests were made,
  with 00-00-00 for the time: an EventTime object holds one day's requests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any
from xml.etree.ElementTree import Element

from gateway import acl, errors, limits, s3xml

unique_chars = 16                       # the UNIQUE part of a log object's name (hex)
# A log object's key past its TargetPrefix, at most: the partitioned form's
# owner/region/bucket/ are added to it.
_NAME_CHARS = len("YYYY-mm-DD-HH-MM-SS-") + unique_chars
_DAY_DIRS_CHARS = len("YYYY/MM/DD/")
# What a target grant may give (BucketLogsPermission).
_LOG_PERMISSIONS = frozenset({acl.Permission.FULL_CONTROL, acl.Permission.READ,
                              acl.Permission.WRITE})
_ENABLED = frozenset({"TargetBucket", "TargetGrants", "TargetPrefix", "TargetObjectKeyFormat"})


class KeyFormat(Enum):
    DEFAULT = ""                        # no TargetObjectKeyFormat: SimplePrefix's keys
    SIMPLE = "SimplePrefix"
    PARTITIONED = "PartitionedPrefix"


class DateSource(Enum):
    DEFAULT = ""                        # PartitionedPrefix without one: EventTime's keys
    EVENT_TIME = "EventTime"
    DELIVERY_TIME = "DeliveryTime"


@dataclass(frozen=True)
class LoggingConfig:
    """LoggingEnabled: where a bucket's access log goes. Hashable: lines are batched by it."""

    target_bucket: str
    target_prefix: str
    grants: acl.Grants = ()             # TargetGrants: given on every log object
    key_format: KeyFormat = KeyFormat.DEFAULT
    date_source: DateSource = DateSource.DEFAULT    # PartitionedPrefix's only

    @property
    def by_event_day(self) -> bool:
        """Whether each log object holds one day's requests (PartitionedPrefix, EventTime)."""
        return self.key_format is KeyFormat.PARTITIONED and \
            self.date_source is not DateSource.DELIVERY_TIME


# ---- log object keys ---------------------------------------------------------------------


def object_key(cfg: LoggingConfig, owner: str, region: str, bucket: str, delivered: datetime,
               event_day: date | None, unique: str) -> str:
    """The key of a log object of `bucket` (owned by `owner`) delivered at `delivered`
    (UTC); `event_day` is the day of its requests (used by EventTime partitions only)."""
    if cfg.key_format is not KeyFormat.PARTITIONED:
        return f"{cfg.target_prefix}{delivered:%Y-%m-%d-%H-%M-%S}-{unique}"
    if cfg.by_event_day:
        assert event_day is not None
        day, name = event_day, f"{event_day:%Y-%m-%d}-00-00-00-{unique}"
    else:
        day, name = delivered.date(), f"{delivered:%Y-%m-%d-%H-%M-%S}-{unique}"
    return f"{cfg.target_prefix}{owner}/{region}/{bucket}/{day:%Y/%m/%d}/{name}"


def check_key_room(cfg: LoggingConfig, owner: str, region: str, bucket: str) -> None:
    """InvalidArgument when the TargetPrefix leaves no room in an object key for the
    rest of a log object's name."""
    rest = _NAME_CHARS
    if cfg.key_format is KeyFormat.PARTITIONED:
        rest += len(f"{owner}/{region}/{bucket}/".encode()) + _DAY_DIRS_CHARS
    if len(cfg.target_prefix.encode()) + rest > limits.key_bytes_max:
        raise errors.InvalidArgument("The TargetPrefix is too long",
                                     ArgumentName="TargetPrefix")


# ---- documents ---------------------------------------------------------------------------


def parse(body: bytes) -> LoggingConfig | None:
    """A PutBucketLogging body -> the configuration; None: logging off."""
    root = s3xml.parse(body, "BucketLoggingStatus")
    if any(s3xml.local_name(c.tag) != "LoggingEnabled" for c in root):
        raise errors.MalformedXML()
    enabled = s3xml.children(root, "LoggingEnabled")
    if not enabled:
        return None
    if len(enabled) > 1:
        raise errors.MalformedXML()
    elem = enabled[0]
    names = [s3xml.local_name(c.tag) for c in elem]
    if not set(names) <= _ENABLED or len(names) != len(set(names)):
        raise errors.MalformedXML()
    target, prefix = s3xml.child_text(elem, "TargetBucket"), s3xml.child_text(elem, "TargetPrefix")
    if target is None or prefix is None:      # both are required
        raise errors.MalformedXML()
    grants = s3xml.children(elem, "TargetGrants")
    formats = s3xml.children(elem, "TargetObjectKeyFormat")
    key_format, source = _key_format(formats[0]) if formats else (
        KeyFormat.DEFAULT, DateSource.DEFAULT)
    return LoggingConfig(target.strip(), prefix, _grants(grants[0]) if grants else (),
                         key_format, source)


def _grants(elem: Element) -> acl.Grants:
    out: list[acl.Grant] = []
    for child in elem:
        if s3xml.local_name(child.tag) != "Grant":
            raise errors.MalformedXML()
        try:
            grant = acl.parse_grant(child)
        except acl.MalformedACLError:
            raise errors.MalformedXML() from None
        if grant.permission not in _LOG_PERMISSIONS:
            raise errors.MalformedXML()
        out.append(grant)
    if len(out) > acl.grants_count_max:
        raise errors.MalformedXML()
    return tuple(dict.fromkeys(out))


def _key_format(elem: Element) -> tuple[KeyFormat, DateSource]:
    kinds = list(elem)
    if len(kinds) != 1:                 # exactly one of SimplePrefix, PartitionedPrefix
        raise errors.MalformedXML()
    kind = s3xml.local_name(kinds[0].tag)
    if kind == KeyFormat.SIMPLE.value and len(kinds[0]) == 0:
        return KeyFormat.SIMPLE, DateSource.DEFAULT
    if kind != KeyFormat.PARTITIONED.value:
        raise errors.MalformedXML()
    inner = list(kinds[0])
    if not inner:
        return KeyFormat.PARTITIONED, DateSource.DEFAULT
    if len(inner) != 1 or s3xml.local_name(inner[0].tag) != "PartitionDateSource":
        raise errors.MalformedXML()
    try:
        source = DateSource((inner[0].text or "").strip())
    except ValueError:
        raise errors.MalformedXML() from None
    if source is DateSource.DEFAULT:
        raise errors.MalformedXML()
    return KeyFormat.PARTITIONED, source


def render(cfg: LoggingConfig | None) -> bytes:
    """GetBucketLogging's BucketLoggingStatus: empty when logging is off."""
    if cfg is None:
        return s3xml.simple("BucketLoggingStatus", [])
    grants = "".join(acl.grant_xml(g) for g in cfg.grants)
    parts = [f"<TargetBucket>{s3xml.esc(cfg.target_bucket)}</TargetBucket>",
             f"<TargetGrants>{grants}</TargetGrants>" if cfg.grants else "",
             f"<TargetPrefix>{s3xml.esc(cfg.target_prefix)}</TargetPrefix>",
             _render_key_format(cfg)]
    return (f'{s3xml.HEAD}<BucketLoggingStatus xmlns="{s3xml.NS}"><LoggingEnabled>'
            f'{"".join(parts)}</LoggingEnabled></BucketLoggingStatus>').encode()


def _render_key_format(cfg: LoggingConfig) -> str:
    if cfg.key_format is KeyFormat.DEFAULT:
        return ""
    if cfg.key_format is KeyFormat.SIMPLE:
        return "<TargetObjectKeyFormat><SimplePrefix/></TargetObjectKeyFormat>"
    source = "" if cfg.date_source is DateSource.DEFAULT else (
        f"<PartitionDateSource>{cfg.date_source.value}</PartitionDateSource>")
    return (f"<TargetObjectKeyFormat><PartitionedPrefix>{source}</PartitionedPrefix>"
            "</TargetObjectKeyFormat>")


# ---- stored form (the bucket record is msgpack) ------------------------------------------


def pack(cfg: LoggingConfig | None) -> Any:
    if cfg is None:
        return None
    return [cfg.target_bucket, cfg.target_prefix, acl.pack(cfg.grants), cfg.key_format.value,
            cfg.date_source.value]


def unpack(raw: Any) -> LoggingConfig | None:
    if raw is None:
        return None
    return LoggingConfig(str(raw[0]), str(raw[1]), acl.unpack(raw[2]), KeyFormat(raw[3]),
                         DateSource(raw[4]))
