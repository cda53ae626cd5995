"""Bucket policies: parse and validate the JSON an S3 client sends, and evaluate it.

Pure: no I/O. The subset is what Coffre can enforce:
- Principal or NotPrincipal: `*` (anyone, anonymous included), {"AWS": "*"}, or tenants
  named as {"AWS": "NAME"}, {"AWS": "arn:aws:iam::NAME:root"} or {"CanonicalUser": "NAME"};
  NotPrincipal is everyone but those named (anonymous included), with Allow as with Deny;
- Effect Allow or Deny; Action `s3:...` names with `*`/`?` wildcards;
- Resource ARNs of this bucket (`arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key*`);
- Condition: IAM's String, Numeric, Date, Bool, IpAddress, Arn and Null operators, with
  the `...IfExists` suffix and the `ForAnyValue:`/`ForAllValues:` set qualifiers, on the
  condition keys gateway/condition_keys.py fills.
Anything else (NotAction, NotResource, unknown operators, a condition key Coffre never
fills, another bucket's ARN) is refused with MalformedPolicy rather than half-enforced: a
policy we accept means what it says.

Evaluation follows IAM's order: an explicit Deny wins over any Allow; no match is no answer
(the caller falls back to ownership and ACLs). A condition's keys are ANDed, each key's
values ORed; a key the request does not have makes a positive operator false and a negated
one true, except under IfExists (true) and Null (which tests just that) (IAM User Guide,
"IAM JSON policy elements: Condition operators").
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from gateway import condition_keys, errors

# Limits (gateway/limits.py belongs to the lead; these move there when it is merged).
policy_bytes_max = 20 * 1024          # S3: a bucket policy is at most 20 KB
policy_statements_max = 100
policy_values_per_field_max = 100     # actions, resources, principals, condition values

ARN_PREFIX = "arn:aws:s3:::"
VERSIONS = ("2012-10-17", "2008-10-17")
_IAM_ROOT_RE = re.compile(r"arn:aws:iam::([^:]+):root\Z")
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_IF_EXISTS = "IfExists"

# What a request context may hold for one key: a value, or a tuple of them (none, one, or
# several for a multivalued key); condition_keys.context builds the tuples.
ContextValue = str | tuple[str, ...]


class MalformedPolicy(errors.S3Error):
    code = "MalformedPolicy"
    status = 400
    default_message = "Policies must be valid JSON and the first byte must be '{'"


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class Verdict(Enum):
    """What a policy says about one request."""

    ALLOW = "allow"
    DENY = "deny"
    NONE = "none"       # no statement matched: the policy neither grants nor refuses


class Family(Enum):
    """How an operator reads values (and so which policy values it accepts)."""

    STRING = "string"
    NUMERIC = "numeric"
    DATE = "date"
    BOOL = "bool"
    IP = "ip"
    ARN = "arn"
    NULL = "null"


class Operator(Enum):
    STRING_EQUALS = "StringEquals"
    STRING_NOT_EQUALS = "StringNotEquals"
    STRING_EQUALS_IGNORE_CASE = "StringEqualsIgnoreCase"
    STRING_NOT_EQUALS_IGNORE_CASE = "StringNotEqualsIgnoreCase"
    STRING_LIKE = "StringLike"
    STRING_NOT_LIKE = "StringNotLike"
    NUMERIC_EQUALS = "NumericEquals"
    NUMERIC_NOT_EQUALS = "NumericNotEquals"
    NUMERIC_LESS_THAN = "NumericLessThan"
    NUMERIC_LESS_THAN_EQUALS = "NumericLessThanEquals"
    NUMERIC_GREATER_THAN = "NumericGreaterThan"
    NUMERIC_GREATER_THAN_EQUALS = "NumericGreaterThanEquals"
    DATE_EQUALS = "DateEquals"
    DATE_NOT_EQUALS = "DateNotEquals"
    DATE_LESS_THAN = "DateLessThan"
    DATE_LESS_THAN_EQUALS = "DateLessThanEquals"
    DATE_GREATER_THAN = "DateGreaterThan"
    DATE_GREATER_THAN_EQUALS = "DateGreaterThanEquals"
    BOOL = "Bool"
    IP_ADDRESS = "IpAddress"
    NOT_IP_ADDRESS = "NotIpAddress"
    ARN_EQUALS = "ArnEquals"
    ARN_NOT_EQUALS = "ArnNotEquals"
    ARN_LIKE = "ArnLike"
    ARN_NOT_LIKE = "ArnNotLike"
    NULL = "Null"

    @property
    def negated(self) -> bool:
        return self in _POSITIVE_OF

    @property
    def positive(self) -> Operator:
        """The operator this one negates (itself when it negates none)."""
        return _POSITIVE_OF.get(self, self)

    @property
    def family(self) -> Family:
        name = self.value
        for prefix, family in _FAMILY_PREFIXES:
            if name.startswith(prefix):
                return family
        return Family.IP


_POSITIVE_OF = {
    Operator.STRING_NOT_EQUALS: Operator.STRING_EQUALS,
    Operator.STRING_NOT_EQUALS_IGNORE_CASE: Operator.STRING_EQUALS_IGNORE_CASE,
    Operator.STRING_NOT_LIKE: Operator.STRING_LIKE,
    Operator.NUMERIC_NOT_EQUALS: Operator.NUMERIC_EQUALS,
    Operator.DATE_NOT_EQUALS: Operator.DATE_EQUALS,
    Operator.NOT_IP_ADDRESS: Operator.IP_ADDRESS,
    Operator.ARN_NOT_EQUALS: Operator.ARN_EQUALS,
    Operator.ARN_NOT_LIKE: Operator.ARN_LIKE,
}
_FAMILY_PREFIXES = (("String", Family.STRING), ("Numeric", Family.NUMERIC),
                    ("Date", Family.DATE), ("Bool", Family.BOOL), ("Arn", Family.ARN),
                    ("Null", Family.NULL))


class SetQualifier(Enum):
    """How a condition reads a key with several values in the request."""

    FOR_ANY_VALUE = "ForAnyValue"     # some value matches; none in the request: false
    FOR_ALL_VALUES = "ForAllValues"   # every value matches; none in the request: true


@dataclass(frozen=True)
class Condition:
    operator: Operator
    key: str                      # lower-cased: IAM condition keys are case-insensitive
    values: tuple[str, ...]
    if_exists: bool = False       # ...IfExists: a key the request lacks satisfies it
    qualifier: SetQualifier | None = None


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: Effect
    principals: tuple[str, ...]   # "*" or tenant names
    actions: tuple[str, ...]      # lower-cased patterns
    resources: tuple[str, ...]    # ARN patterns
    conditions: tuple[Condition, ...] = ()
    not_principal: bool = False   # NotPrincipal: everyone but `principals`


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]


# ---- parsing -----------------------------------------------------------------------------


def _bad(message: str) -> MalformedPolicy:
    return MalformedPolicy(message)


def _strings(value: Any, what: str, empty_ok: bool = False) -> tuple[str, ...]:
    """A JSON string or a non-empty list of strings, as IAM allows for most fields
    (condition values may be "": s3:prefix "" is the bucket's top level)."""
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > policy_values_per_field_max:
        raise _bad(f"Policy has an invalid {what}")
    if not all(isinstance(v, str) and (v or empty_ok) for v in items):
        raise _bad(f"Policy has an invalid {what}")
    return tuple(items)


def _principals(value: Any) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, dict) or not value:
        raise _bad("Invalid principal in policy")
    out: list[str] = []
    for kind, names in value.items():
        if kind not in ("AWS", "CanonicalUser"):
            raise _bad("Invalid principal in policy")
        for name in _strings(names, "principal"):
            match = _IAM_ROOT_RE.match(name)
            out.append(match.group(1) if match else name)
    if any(":" in p or "/" in p for p in out if p != "*"):
        raise _bad("Invalid principal in policy")
    return tuple(out)


def _actions(value: Any) -> tuple[str, ...]:
    out = []
    for action in _strings(value, "action"):
        lowered = action.lower()
        if lowered != "*" and not re.fullmatch(r"s3:[a-z0-9*?]+", lowered):
            raise _bad("Policy has invalid action")
        out.append(lowered)
    return tuple(out)


def _resources(value: Any, bucket: str) -> tuple[str, ...]:
    out = []
    for arn in _strings(value, "resource"):
        if not arn.startswith(ARN_PREFIX):
            raise _bad("Policy has invalid resource")
        target = arn[len(ARN_PREFIX):]
        # A policy speaks only for its own bucket (AWS refuses the others too).
        name = target.split("/", 1)[0]
        if name == "" or not _like(name, bucket):
            raise _bad("Policy has invalid resource")
        out.append(arn)
    return tuple(out)


@lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _bad(f"Invalid IP address or range in condition: {text}") from None


def _number(text: str) -> float | None:
    return float(text) if _NUMBER_RE.match(text.strip()) else None


@lru_cache(maxsize=4096)
def _date(text: str) -> float | None:
    """IAM's dates: ISO 8601 (a date alone, or with a time; UTC unless it says otherwise)
    or epoch seconds."""
    if _NUMBER_RE.match(text):
        return float(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _condition_values(raw: Any) -> tuple[str, ...]:
    """A condition's values: JSON strings, and the booleans and numbers IAM also takes
    ("Bool": {"aws:SecureTransport": false}, "NumericLessThan": {"s3:max-keys": 10})."""
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for v in items:
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, int | float) and math.isfinite(v):
            out.append(str(v))
        else:
            out.append(v)
    return _strings(out, "condition value", empty_ok=True)


def _check_values(op: Operator, key: str, values: tuple[str, ...]) -> None:
    family = op.family
    if family is Family.IP:
        if key != "aws:sourceip":
            raise _bad("IpAddress conditions apply only to aws:SourceIp")
        for v in values:
            _network(v)
    elif family is Family.NUMERIC and any(_number(v) is None for v in values):
        raise _bad(f"Policy has an invalid numeric value in condition {op.value}")
    elif family is Family.DATE and any(_date(v) is None for v in values):
        raise _bad(f"Policy has an invalid date value in condition {op.value}")
    elif family in (Family.BOOL, Family.NULL) and \
            any(v.lower() not in ("true", "false") for v in values):
        raise _bad(f"Policy has an invalid value in condition {op.value}: true or false")


def _operator(name: Any) -> tuple[Operator, bool, SetQualifier | None]:
    """An operator's name as IAM writes it: [ForAnyValue:|ForAllValues:]Base[IfExists]."""
    if not isinstance(name, str):
        raise _bad("Policy has an invalid condition block")
    qualifier = None
    base = name
    if ":" in name:
        prefix, _, base = name.partition(":")
        try:
            qualifier = SetQualifier(prefix)
        except ValueError:
            raise _bad(f"Policy has an unsupported condition operator: {name}") from None
    if_exists = base.endswith(_IF_EXISTS) and base != _IF_EXISTS
    if if_exists:
        base = base[:-len(_IF_EXISTS)]
    try:
        op = Operator(base)
    except ValueError:
        raise _bad(f"Policy has an unsupported condition operator: {name}") from None
    if op is Operator.NULL and (if_exists or qualifier is not None):
        raise _bad(f"Policy has an unsupported condition operator: {name}")
    return op, if_exists, qualifier


def _conditions(value: Any, strict_keys: bool) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise _bad("Policy has an invalid condition block")
    out = []
    for op_name, block in value.items():
        op, if_exists, qualifier = _operator(op_name)
        if not isinstance(block, dict) or not block:
            raise _bad("Policy has an invalid condition block")
        for key, raw in block.items():
            if not isinstance(key, str) or not key:
                raise _bad("Policy has an invalid condition key")
            lowered = key.lower()
            # AWS's own words; a key nothing fills would make the statement silently
            # never (or, negated, always) apply.
            if strict_keys and not condition_keys.known(lowered):
                raise _bad("Policy has an invalid condition key")
            values = _condition_values(raw)
            _check_values(op, lowered, values)
            out.append(Condition(op, lowered, values, if_exists, qualifier))
    return tuple(out)


_STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "Resource",
                     "Condition"}


def _statement(raw: Any, bucket: str, index: int, strict_keys: bool) -> Statement:
    if not isinstance(raw, dict):
        raise _bad("Policy statements must be objects")
    unknown = set(raw) - _STATEMENT_FIELDS
    if unknown:
        raise _bad(f"Policy has an unsupported element: {sorted(unknown)[0]}")
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        # IAM: one or the other (a bucket policy must say whom it speaks of).
        raise _bad("Missing required field Principal" if "Principal" not in raw else
                   "Policy has both Principal and NotPrincipal")
    for needed in ("Effect", "Action", "Resource"):
        if needed not in raw:
            raise _bad(f"Missing required field {needed}")
    try:
        effect = Effect(raw["Effect"])
    except ValueError:
        raise _bad("Invalid effect: " + str(raw["Effect"])) from None
    sid = raw.get("Sid", str(index))
    if not isinstance(sid, str):
        raise _bad("Statement IDs (SID) must be strings")
    negated = "NotPrincipal" in raw
    return Statement(
        sid, effect, _principals(raw["NotPrincipal" if negated else "Principal"]),
        _actions(raw["Action"]), _resources(raw["Resource"], bucket),
        _conditions(raw.get("Condition", {}), strict_keys), negated)


def parse(text: bytes | str, bucket: str, strict_keys: bool = True) -> Policy:
    """Validate a bucket policy document for `bucket`; raise MalformedPolicy on any fault.
    `strict_keys` False lets through condition keys Coffre does not know (a policy stored
    before they were refused must still be read: they stay absent from every request)."""
    raw_bytes = text.encode() if isinstance(text, str) else text
    if len(raw_bytes) > policy_bytes_max:
        raise _bad("Policy exceeds the maximum allowed document size.")
    try:
        doc = json.loads(raw_bytes)
    except (UnicodeDecodeError, ValueError):
        raise _bad("Policies must be valid JSON and the first byte must be '{'") from None
    if not isinstance(doc, dict):
        raise _bad("Policies must be valid JSON and the first byte must be '{'")
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise _bad("The policy must contain a valid version string")
    raw_statements = doc.get("Statement")
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise _bad("Missing required field Statement")
    if len(raw_statements) > policy_statements_max:
        raise _bad("Policy has too many statements")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise _bad(f"Policy has an unsupported element: {sorted(unknown)[0]}")
    return Policy(version, tuple(_statement(s, bucket, i, strict_keys)
                                 for i, s in enumerate(raw_statements)))


@lru_cache(maxsize=1024)
def parse_cached(text: str, bucket: str) -> Policy:
    """Policies are evaluated on every request; a stored one was validated when put."""
    return parse(text, bucket, strict_keys=False)


# ---- evaluation --------------------------------------------------------------------------


def bucket_arn(bucket: str) -> str:
    return ARN_PREFIX + bucket


def object_arn(bucket: str, key: str) -> str:
    return f"{ARN_PREFIX}{bucket}/{key}"


@lru_cache(maxsize=4096)
def _wildcard(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL)


def _like(pattern: str, value: str) -> bool:
    """IAM wildcards: `*` any run, `?` one character; nothing else is special."""
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return _wildcard(pattern).fullmatch(value) is not None


def _principal_matches(stmt: Statement, principal: str | None) -> bool:
    named = "*" in stmt.principals or (principal is not None and principal in stmt.principals)
    return named != stmt.not_principal


def _ip_in(pattern: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in _network(pattern)
    except ValueError:
        return False


def _arn_like(pattern: str, value: str) -> bool:
    """IAM matches an ARN's six colon-separated parts one by one (a wildcard stays
    within its part; the last part, the resource, may hold colons itself)."""
    want, have = pattern.split(":", 5), value.split(":", 5)
    return len(want) == len(have) == 6 and all(map(_like, want, have))


def _compare(op: Operator, pattern: str, value: str) -> bool:
    number, date = _NUMERIC_TESTS.get(op), _DATE_TESTS.get(op)
    if number is not None:
        v, p = _number(value), _number(pattern)
        return v is not None and p is not None and number(v, p)
    if date is not None:
        dv, dp = _date(value), _date(pattern)
        return dv is not None and dp is not None and date(dv, dp)
    if op is Operator.STRING_EQUALS:
        return value == pattern
    if op is Operator.STRING_EQUALS_IGNORE_CASE:
        return value.casefold() == pattern.casefold()
    if op is Operator.STRING_LIKE:
        return _like(pattern, value)
    if op is Operator.BOOL:
        return value.lower() == pattern.lower()
    if op is Operator.IP_ADDRESS:
        return _ip_in(pattern, value)
    return _arn_like(pattern, value)     # ArnEquals and ArnLike both take wildcards


_Test = Callable[[float, float], bool]
_ORDER_TESTS: tuple[tuple[str, _Test], ...] = (
    ("Equals", lambda v, p: v == p), ("LessThan", lambda v, p: v < p),
    ("LessThanEquals", lambda v, p: v <= p), ("GreaterThan", lambda v, p: v > p),
    ("GreaterThanEquals", lambda v, p: v >= p))
_NUMERIC_TESTS = {Operator("Numeric" + n): t for n, t in _ORDER_TESTS}
_DATE_TESTS = {Operator("Date" + n): t for n, t in _ORDER_TESTS}


def _values(context: Mapping[str, ContextValue], key: str) -> tuple[str, ...]:
    value = context.get(key, ())
    return (value,) if isinstance(value, str) else value


def _condition_holds(cond: Condition, context: Mapping[str, ContextValue]) -> bool:
    values = _values(context, cond.key)
    op = cond.operator
    if op is Operator.NULL:
        return any((v.lower() == "true") == (not values) for v in cond.values)
    if not values:
        if cond.if_exists:
            return True
        # IAM: a missing key matches nothing; only negations hold, and ForAllValues
        # (every one of no values matches).
        if cond.qualifier is not None:
            return cond.qualifier is SetQualifier.FOR_ALL_VALUES
        return op.negated

    def hit(value: str) -> bool:
        return any(_compare(op.positive, p, value) for p in cond.values)

    if cond.qualifier is SetQualifier.FOR_ALL_VALUES:
        return all(hit(v) != op.negated for v in values)
    if cond.qualifier is SetQualifier.FOR_ANY_VALUE:
        return any(hit(v) != op.negated for v in values)
    return any(hit(v) for v in values) != op.negated


def _applies(stmt: Statement, principal: str | None, action: str,
             resource: str | None) -> bool:
    """Principal, action and resource match (conditions aside); resource None: any."""
    return (
        _principal_matches(stmt, principal)
        and any(_like(p, action.lower()) for p in stmt.actions)
        and (resource is None or any(_like(p, resource) for p in stmt.resources))
    )


def _matches(stmt: Statement, principal: str | None, action: str, resource: str | None,
             context: Mapping[str, ContextValue]) -> bool:
    return _applies(stmt, principal, action, resource) and \
        all(_condition_holds(c, context) for c in stmt.conditions)


def evaluate(policy: Policy, principal: str | None, action: str, resource: str,
             context: Mapping[str, ContextValue]) -> Verdict:
    """Deny over Allow over nothing. `principal` None is an anonymous request; `context`
    keys are lower-cased condition keys (aws:sourceip, s3:prefix)."""
    verdict = Verdict.NONE
    for stmt in policy.statements:
        if _matches(stmt, principal, action, resource, context):
            if stmt.effect is Effect.DENY:
                return Verdict.DENY
            verdict = Verdict.ALLOW
    return verdict


def denies_somewhere(policy: Policy, principal: str | None, action: str,
                     context: Mapping[str, ContextValue]) -> bool:
    """Could a Deny apply to `action` on some resource? For requests that touch keys the
    check cannot name one by one (DeleteObjects): any such Deny refuses the request."""
    return any(stmt.effect is Effect.DENY and _matches(stmt, principal, action, None, context)
               for stmt in policy.statements)


def references(policy: Policy, principal: str | None, action: str, resource: str | None,
               wanted: Callable[[str], bool]) -> bool:
    """Does a statement that applies to this request have a condition on a `wanted` key?
    So that keys which cost a lookup (an object's tags) are fetched only for the policies
    that read them."""
    return any(_applies(stmt, principal, action, resource)
               and any(wanted(c.key) for c in stmt.conditions)
               for stmt in policy.statements)


# AWS's "The meaning of 'public'": a grant to everyone is not public when a condition pins
# it to fixed values of one of these keys.
_RESTRICTING_KEYS = frozenset({
    "aws:sourceip", "aws:userid", "aws:principalaccount", "aws:principalarn",
    "s3:resourceaccount", "s3:x-amz-server-side-encryption-aws-kms-key-id"})


def _restricts(cond: Condition) -> bool:
    if cond.key not in _RESTRICTING_KEYS or cond.operator.negated or cond.if_exists or \
            cond.qualifier is not None or cond.operator is Operator.NULL:
        return False
    if cond.operator.family is Family.IP:
        return all(_network(v).prefixlen > 0 for v in cond.values)
    return not any("*" in v or "?" in v for v in cond.values)


def is_public(policy: Policy) -> bool:
    """AWS's notion: some Allow reaches everyone (Principal "*", or NotPrincipal: all but
    a few) without a condition that pins it down (an aws:SourceIp range, an account)."""
    for stmt in policy.statements:
        everyone = stmt.not_principal or "*" in stmt.principals
        if stmt.effect is Effect.ALLOW and everyone and \
                not any(_restricts(c) for c in stmt.conditions):
            return True
    return False
