"""Lifecycle: a bucket's LifecycleConfiguration rules, and when they expire objects or abort
multipart uploads.

Pure. `parse` validates a PutBucketLifecycleConfiguration body the way S3 does, `render`
gives back the GetBucketLifecycleConfiguration body, and `expiry` / `abort_due` say when
the rules are due for one object or upload; the scanner that acts on them lives elsewhere.

A rule's filter keeps the form the client wrote it in (the legacy <Prefix> of the rule,
<Filter> with at most one condition, or <Filter><And>), because clients compare what they
read back with what they sent. The "day" is a parameter so that tests can shrink it to a
second, as Ceph RGW's lc debug interval does; in production it is 24 hours and a due time
is always a midnight UTC, as in S3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element

from gateway import errors, s3xml
from gateway.numbers import is_decimal

day_ms_default = 86_400_000
rules_max = 1000                       # S3: at most 1000 rules per configuration
rule_id_max = 255
_newer_noncurrent_max = 100
_days_max = 2**31 - 1                  # Days is an xsd:int in S3's schema
_size_max = 2**63 - 1                  # object sizes are xsd:long (and msgpack's int64)
_saturated = 10**19                    # what _int makes of a longer number
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MSG_ID_LONG = "ID length should not exceed allowed limit of 255"
_MSG_ID_DUP = "Rule ID must be unique. Found same ID for more than one rule"
_MSG_NO_ACTION = "At least one action needs to be specified in a rule"
_MSG_DUP_TAG = "Duplicate Tag Keys are not allowed"
_MSG_SIZES = "ObjectSizeGreaterThan must be less than ObjectSizeLessThan"
_MSG_DAYS = "'Days' for Expiration action must be a positive integer"
_MSG_MIDNIGHT = "'Date' must be at midnight GMT"
_MSG_MARKER_TAGS = "ExpiredObjectDeleteMarker cannot be specified with Tags."
_MSG_ABORT = ("'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a "
              "positive integer")
_MSG_ABORT_TAGS = "AbortIncompleteMultipartUpload cannot be specified with Tags."
_MSG_NONCURRENT = ("'NoncurrentDays' for NoncurrentVersionExpiration action must be a "
                   "positive integer")
_MSG_NEWER = ("'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a "
              f"positive integer up to {_newer_noncurrent_max}")


@dataclass(frozen=True)
class Filter:
    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_gt: int | None = None          # ObjectSizeGreaterThan (bytes, strict)
    size_lt: int | None = None          # ObjectSizeLessThan (bytes, strict)
    form: str = "filter"                # "prefix", "filter" or "and": see the module doc
    # An empty <Prefix></Prefix> was written in the <Filter> (or its <And>): AWS gives it
    # back, as it gives back what was sent, apart from a filter that had none.
    empty_prefix: bool = False


@dataclass(frozen=True)
class Rule:
    rule_id: str
    enabled: bool
    filter: Filter
    expiration_days: int | None = None
    expiration_date_ms: int | None = None      # epoch ms, always a UTC midnight
    expired_object_delete_marker: bool | None = None
    abort_days: int | None = None              # AbortIncompleteMultipartUpload/DaysAfterInitiation
    # NoncurrentVersionExpiration (versioned buckets): a noncurrent version goes this many
    # days after it became noncurrent, unless it is one of the newest `newer_noncurrent`.
    noncurrent_days: int | None = None
    newer_noncurrent: int | None = None


Rules = tuple[Rule, ...]


def _sized(f: Filter) -> bool:
    return f.size_gt is not None or f.size_lt is not None


# ---- stored form: plain lists, in a fixed order (the bucket record is msgpack) --------------


def _opt_int(raw: Any) -> int | None:
    return None if raw is None else int(raw)


def _pack_rule(r: Rule) -> list[Any]:
    f = r.filter
    return [r.rule_id, r.enabled, [f.prefix, [list(t) for t in f.tags], f.size_gt, f.size_lt,
                                   f.form, f.empty_prefix],
            r.expiration_days, r.expiration_date_ms, r.expired_object_delete_marker,
            r.abort_days, r.noncurrent_days, r.newer_noncurrent]


def _unpack_filter(raw: Any) -> Filter:
    # [5] came later: a filter stored before it kept no empty <Prefix>.
    return Filter(str(raw[0]), tuple((str(k), str(v)) for k, v in raw[1]), _opt_int(raw[2]),
                  _opt_int(raw[3]), str(raw[4]), len(raw) > 5 and bool(raw[5]))


def _unpack_rule(raw: Any) -> Rule:
    marker = None if raw[5] is None else bool(raw[5])
    return Rule(str(raw[0]), bool(raw[1]), _unpack_filter(raw[2]), _opt_int(raw[3]),
                _opt_int(raw[4]), marker, _opt_int(raw[6]), _opt_int(raw[7]), _opt_int(raw[8]))


def pack(rules: Rules) -> list[Any]:
    return [_pack_rule(r) for r in rules]


def unpack(raw: Any) -> Rules:
    return tuple(_unpack_rule(r) for r in raw or ())


# ---- configuration documents: parsing ------------------------------------------------------

_Members = Mapping[str, list[Element]]

_ROOT = frozenset({"Rule"})
_RULE = frozenset({"Expiration", "ID", "Prefix", "Filter", "Status", "Transition",
                   "NoncurrentVersionTransition", "NoncurrentVersionExpiration",
                   "AbortIncompleteMultipartUpload"})
_RULE_LISTS = frozenset({"Transition", "NoncurrentVersionTransition"})
_FILTER = frozenset({"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And"})
_AND = frozenset({"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})
_TAG = frozenset({"Key", "Value"})
_EXPIRATION = frozenset({"Date", "Days", "ExpiredObjectDeleteMarker"})
_ABORT = frozenset({"DaysAfterInitiation"})
_NONCURRENT = frozenset({"NoncurrentDays", "NewerNoncurrentVersions"})
_ACTIONS = ("Expiration", "AbortIncompleteMultipartUpload", "NoncurrentVersionExpiration")


def _members(elem: Element, allowed: frozenset[str],
             repeated: frozenset[str] = frozenset()) -> _Members:
    """elem's children by local name. S3 validates against its schema, so an unknown child,
    or a second one where the schema allows one, is MalformedXML rather than ignored."""
    out: dict[str, list[Element]] = {}
    for child in elem:
        name = child.tag.rsplit("}", 1)[-1]
        if name not in allowed or (name in out and name not in repeated):
            raise errors.MalformedXML()
        out.setdefault(name, []).append(child)
    return out


def _text(members: _Members, name: str) -> str | None:
    found = members.get(name)
    return (found[0].text or "") if found else None


def _int(text: str) -> int | None:
    """A signed decimal integer, or None: '-1' is a number (only not a positive one).

    Past 19 digits the value saturates at 10**19, above every bound checked here: int()
    refuses strings of over 4300 digits, and a 2 MiB body can hold far longer ones.
    """
    text = text.strip()
    sign = -1 if text[:1] == "-" else 1
    digits = text[1:] if text[:1] in ("-", "+") else text
    if not is_decimal(digits):
        return None
    digits = digits.lstrip("0") or "0"
    return sign * (int(digits) if len(digits) <= 19 else _saturated)


def _positive(text: str | None, high: int, message: str) -> int:
    value = None if text is None else _int(text)
    if value is None or not 1 <= value <= high:
        raise errors.InvalidArgument(message)
    return value


def _size(members: _Members, name: str) -> int | None:
    text = _text(members, name)
    if text is None:
        return None
    value = _int(text) if is_decimal(text.strip()) else None     # no sign allowed
    if value is None or value > _size_max:
        raise errors.InvalidArgument(f"'{name}' must be a non-negative integer")
    return value


def _tag(elem: Element) -> tuple[str, str]:
    members = _members(elem, _TAG)
    key, value = _text(members, "Key"), _text(members, "Value")
    if key is None or value is None:
        raise errors.MalformedXML()
    return key, value


def _conditions(members: _Members, form: str) -> Filter:
    """The conditions of a <Filter> or of its <And> (a <Filter> holds at most one)."""
    tags = tuple(_tag(t) for t in members.get("Tag", ()))
    if len({k for k, _ in tags}) != len(tags):
        raise errors.InvalidArgument(_MSG_DUP_TAG)
    size_gt = _size(members, "ObjectSizeGreaterThan")
    size_lt = _size(members, "ObjectSizeLessThan")
    if size_gt is not None and size_lt is not None and size_gt >= size_lt:
        raise errors.InvalidArgument(_MSG_SIZES)
    prefix = _text(members, "Prefix")
    return Filter(prefix or "", tags, size_gt, size_lt, form, empty_prefix=prefix == "")


def _filter(rule: _Members) -> Filter:
    legacy, found = _text(rule, "Prefix"), rule.get("Filter")
    if legacy is not None and not found:
        return Filter(prefix=legacy, form="prefix")
    if legacy is not None or not found:             # both, or neither
        raise errors.MalformedXML()
    members = _members(found[0], _FILTER)
    if len(members) > 1:
        raise errors.MalformedXML()
    if "And" in members:
        return _conditions(_members(members["And"][0], _AND, frozenset({"Tag"})), "and")
    return _conditions(members, "filter")


def _date_ms(text: str) -> int:
    """An ISO 8601 date or time (no zone means UTC) as epoch ms; S3 wants a UTC midnight."""
    try:
        when = datetime.fromisoformat(text.strip())
        # astimezone overflows for an offset that moves year 1 or 9999 out of range.
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise errors.MalformedXML() from None
    if when.time() != datetime.min.time():
        raise errors.InvalidArgument(_MSG_MIDNIGHT)
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _days(text: str) -> int:
    value = _int(text)
    if value is None or abs(value) > _days_max:        # not an xsd:int: a schema error
        raise errors.MalformedXML()
    if value < 1:
        raise errors.InvalidArgument(_MSG_DAYS)
    return value


def _marker(text: str, filt: Filter) -> bool:
    value = text.strip()
    if value not in ("true", "false"):
        raise errors.MalformedXML()
    # A delete marker carries no tags, so such a rule could never match one.
    if filt.tags:
        raise errors.InvalidRequest(_MSG_MARKER_TAGS)
    return value == "true"


def _expiration(rule: _Members, filt: Filter) -> tuple[int | None, int | None, bool | None]:
    """(Days, Date in ms, ExpiredObjectDeleteMarker): exactly one of them is set."""
    found = rule.get("Expiration")
    if not found:
        return None, None, None
    members = _members(found[0], _EXPIRATION)
    if len(members) != 1:
        raise errors.MalformedXML()
    days, date = _text(members, "Days"), _text(members, "Date")
    if days is not None:
        return _days(days), None, None
    if date is not None:
        return None, _date_ms(date), None
    return None, None, _marker(_text(members, "ExpiredObjectDeleteMarker") or "", filt)


def _abort(rule: _Members, filt: Filter) -> int | None:
    found = rule.get("AbortIncompleteMultipartUpload")
    if not found:
        return None
    members = _members(found[0], _ABORT)
    days = _positive(_text(members, "DaysAfterInitiation"), _days_max, _MSG_ABORT)
    # An upload has neither tags nor a size yet, so only a prefix can select it.
    if filt.tags or _sized(filt):
        raise errors.InvalidRequest(_MSG_ABORT_TAGS)
    return days


def _noncurrent(rule: _Members) -> tuple[int | None, int | None]:
    found = rule.get("NoncurrentVersionExpiration")
    if not found:
        return None, None
    members = _members(found[0], _NONCURRENT)
    days = _positive(_text(members, "NoncurrentDays"), _days_max, _MSG_NONCURRENT)
    newer = _text(members, "NewerNoncurrentVersions")
    if newer is None:
        return days, None
    return days, _positive(newer, _newer_noncurrent_max, _MSG_NEWER)


def _status(rule: _Members) -> bool:
    status = (_text(rule, "Status") or "").strip()
    if status not in ("Enabled", "Disabled"):
        raise errors.MalformedXML()
    return status == "Enabled"


def _rule_id(rule: _Members, new_id: Callable[[], str]) -> str:
    rule_id = _text(rule, "ID") or new_id()
    if len(rule_id) > rule_id_max:
        raise errors.InvalidArgument(_MSG_ID_LONG)
    return rule_id


def _rule(elem: Element, new_id: Callable[[], str]) -> Rule:
    rule = _members(elem, _RULE, _RULE_LISTS)
    if _RULE_LISTS & rule.keys():
        # Coffre keeps every object in its one storage class, STANDARD: there is nowhere to
        # move an object to, and accepting the rule would promise a move that never happens.
        raise errors.InvalidStorageClass()
    rule_id, enabled, filt = _rule_id(rule, new_id), _status(rule), _filter(rule)
    if not any(a in rule for a in _ACTIONS):
        raise errors.InvalidRequest(_MSG_NO_ACTION)
    days, date_ms, marker = _expiration(rule, filt)
    noncurrent_days, newer = _noncurrent(rule)
    return Rule(rule_id, enabled, filt, days, date_ms, marker, _abort(rule, filt),
                noncurrent_days, newer)


def parse(body: bytes, new_id: Callable[[], str]) -> Rules:
    """Validate a PutBucketLifecycleConfiguration body; new_id() names a rule without an ID."""
    root = s3xml.parse(body, "LifecycleConfiguration")
    elems = _members(root, _ROOT, _ROOT).get("Rule", [])
    if not 1 <= len(elems) <= rules_max:
        raise errors.MalformedXML()
    rules = tuple(_rule(e, new_id) for e in elems)
    if len({r.rule_id for r in rules}) != len(rules):
        raise errors.InvalidArgument(_MSG_ID_DUP)
    return rules


# ---- configuration documents: rendering ----------------------------------------------------


def _el(name: str, value: str) -> str:
    return f"<{name}>{s3xml.esc(value)}</{name}>"


def _iso_date(ms: int) -> str:
    # Not s3xml.iso8601: its strftime does not pad years below 1000 (which S3 accepts), and
    # fromtimestamp refuses dates long before 1970 on some platforms.
    when = _EPOCH + timedelta(milliseconds=ms)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _condition_parts(f: Filter) -> list[str]:
    parts = [_el("Prefix", f.prefix)] if f.prefix or f.empty_prefix else []
    parts += [f"<Tag>{_el('Key', k)}{_el('Value', v)}</Tag>" for k, v in f.tags]
    if f.size_gt is not None:
        parts.append(_el("ObjectSizeGreaterThan", str(f.size_gt)))
    if f.size_lt is not None:
        parts.append(_el("ObjectSizeLessThan", str(f.size_lt)))
    return parts


def _filter_xml(f: Filter) -> str:
    if f.form == "prefix" and not (f.tags or _sized(f)):
        return _el("Prefix", f.prefix)
    parts = _condition_parts(f)
    # A filter built with several conditions but not as "and" still has to say them all.
    inner = "".join(parts)
    if f.form == "and" or len(parts) > 1:
        inner = f"<And>{inner}</And>"
    return f"<Filter>{inner}</Filter>"


def _expiration_xml(r: Rule) -> str:
    parts = []
    if r.expiration_date_ms is not None:
        parts.append(_el("Date", _iso_date(r.expiration_date_ms)))
    if r.expiration_days is not None:
        parts.append(_el("Days", str(r.expiration_days)))
    if r.expired_object_delete_marker is not None:
        parts.append(_el("ExpiredObjectDeleteMarker",
                         "true" if r.expired_object_delete_marker else "false"))
    return f"<Expiration>{''.join(parts)}</Expiration>" if parts else ""


def _noncurrent_xml(r: Rule) -> str:
    if r.noncurrent_days is None:
        return ""
    newer = "" if r.newer_noncurrent is None else \
        _el("NewerNoncurrentVersions", str(r.newer_noncurrent))
    return (f"<NoncurrentVersionExpiration>{_el('NoncurrentDays', str(r.noncurrent_days))}"
            f"{newer}</NoncurrentVersionExpiration>")


def _abort_xml(r: Rule) -> str:
    if r.abort_days is None:
        return ""
    return (f"<AbortIncompleteMultipartUpload>{_el('DaysAfterInitiation', str(r.abort_days))}"
            "</AbortIncompleteMultipartUpload>")


def _rule_xml(r: Rule) -> str:
    # Members in the order of botocore's LifecycleRule shape.
    parts = [_expiration_xml(r), _el("ID", r.rule_id) if r.rule_id else "",
             _filter_xml(r.filter), _el("Status", "Enabled" if r.enabled else "Disabled"),
             _noncurrent_xml(r), _abort_xml(r)]
    return "<Rule>" + "".join(parts) + "</Rule>"


def render(rules: Rules) -> bytes:
    """The GetBucketLifecycleConfiguration body."""
    return (f'{s3xml.HEAD}<LifecycleConfiguration xmlns="{s3xml.NS}">'
            + "".join(_rule_xml(r) for r in rules) + "</LifecycleConfiguration>").encode()


# ---- matching and due times ----------------------------------------------------------------


def matches(f: Filter, key: str, size: int, tags: Sequence[tuple[str, str]]) -> bool:
    """Whether an object falls under a filter: every condition holds (bounds are strict)."""
    if not key.startswith(f.prefix):
        return False
    if f.size_gt is not None and not size > f.size_gt:
        return False
    if f.size_lt is not None and not size < f.size_lt:
        return False
    have = set(tags)
    return all(t in have for t in f.tags)


def _round_up(ms: int, day_ms: int) -> int:
    """The next day boundary at or after ms (S3 rounds to the following midnight UTC)."""
    return -(-ms // day_ms) * day_ms


def _expires_at(r: Rule, last_modified_ms: int, day_ms: int) -> int | None:
    if r.expiration_days is not None:
        return _round_up(last_modified_ms + r.expiration_days * day_ms, day_ms)
    return r.expiration_date_ms


def _earliest(found: Sequence[tuple[int, str]]) -> tuple[int, str] | None:
    # min() keeps the first of equal times: the rule written first wins a tie.
    return min(found, key=lambda hit: hit[0]) if found else None


def expiry(rules: Rules, key: str, size: int, tags: Sequence[tuple[str, str]],
           last_modified_ms: int, day_ms: int = day_ms_default) -> tuple[int, str] | None:
    """When an object expires and by which rule: the earliest of the enabled rules that
    match it, or None. An ExpiredObjectDeleteMarker-only rule never applies here (it acts
    on delete markers: removes_lone_markers)."""
    found: list[tuple[int, str]] = []
    for r in rules:
        due = _expires_at(r, last_modified_ms, day_ms) if r.enabled else None
        if due is not None and matches(r.filter, key, size, tags):
            found.append((due, r.rule_id))
    return _earliest(found)


def abort_due(rules: Rules, key: str, initiated_ms: int,
              day_ms: int = day_ms_default) -> tuple[int, str] | None:
    """When a multipart upload is to be aborted and by which rule, or None. Only prefix
    filters apply: an upload has no tags and no size to compare."""
    found = [(_round_up(initiated_ms + r.abort_days * day_ms, day_ms), r.rule_id)
             for r in rules
             if r.enabled and r.abort_days is not None and not r.filter.tags
             and not _sized(r.filter) and key.startswith(r.filter.prefix)]
    return _earliest(found)


def noncurrent_due(rules: Rules, key: str, size: int, tags: Sequence[tuple[str, str]],
                   noncurrent_since_ms: int, newer_noncurrent: int,
                   day_ms: int = day_ms_default) -> tuple[int, str] | None:
    """When a noncurrent version expires and by which rule, or None. `noncurrent_since_ms`
    is when the version after it was made; `newer_noncurrent` how many noncurrent versions
    of the key are newer than it (a rule's NewerNoncurrentVersions keeps that many)."""
    found: list[tuple[int, str]] = []
    for r in rules:
        if not r.enabled or r.noncurrent_days is None:
            continue
        if r.newer_noncurrent is not None and newer_noncurrent < r.newer_noncurrent:
            continue
        if matches(r.filter, key, size, tags):
            found.append((_round_up(noncurrent_since_ms + r.noncurrent_days * day_ms,
                                    day_ms), r.rule_id))
    return _earliest(found)


def removes_lone_markers(rules: Rules, key: str) -> bool:
    """Whether a rule removes the key's delete marker once it is the key's only version
    (ExpiredObjectDeleteMarker). A marker has no tags and no size: only prefixes match."""
    return any(r.enabled and r.expired_object_delete_marker and not r.filter.tags
               and not _sized(r.filter) and key.startswith(r.filter.prefix) for r in rules)


def has_version_rules(rules: Rules) -> bool:
    return any(r.enabled and (r.noncurrent_days is not None or r.expired_object_delete_marker)
               for r in rules)


def expiration_header(due_ms: int, rule_id: str) -> str:
    """The value of the x-amz-expiration response header."""
    return f'expiry-date="{s3xml.http_date(due_ms)}", rule-id="{quote(rule_id, safe="")}"'


def has_expiration(rules: Rules) -> bool:
    return any(r.enabled and (r.expiration_days is not None or r.expiration_date_ms is not None)
               for r in rules)


def has_abort(rules: Rules) -> bool:
    return any(r.enabled and r.abort_days is not None for r in rules)
