"""Bucket policies: parse and validate the JSON an S3 client sends, and evaluate it.

Pure: no I/O. The subset is what open data needs and what Coffre can enforce:
- Principal `*` (anyone, anonymous included), {"AWS": "*"}, or tenants named as
  {"AWS": "NAME"}, {"AWS": "arn:aws:iam::NAME:root"} or {"CanonicalUser": "NAME"};
- Effect Allow or Deny; Action `s3:...` names with `*`/`?` wildcards;
- Resource ARNs of this bucket (`arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key*`);
- Condition operators IpAddress/NotIpAddress (aws:SourceIp) and String(Not)Equals/
  String(Not)Like (s3:prefix, or any key the caller supplies in the context).
Anything else (NotPrincipal, NotAction, unknown operators, another bucket's ARN) is refused
with MalformedPolicy rather than half-enforced: a policy we accept means what it says.

Evaluation follows IAM's order: an explicit Deny wins over any Allow; no match is no answer
(the caller falls back to ownership and ACLs).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

from gateway import errors

# Limits (gateway/limits.py belongs to the lead; these move there when it is merged).
policy_bytes_max = 20 * 1024          # S3: a bucket policy is at most 20 KB
policy_statements_max = 100
policy_values_per_field_max = 100     # actions, resources, principals, condition values

ARN_PREFIX = "arn:aws:s3:::"
VERSIONS = ("2012-10-17", "2008-10-17")
_IAM_ROOT_RE = re.compile(r"arn:aws:iam::([^:]+):root\Z")


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


class Operator(Enum):
    IP_ADDRESS = "IpAddress"
    NOT_IP_ADDRESS = "NotIpAddress"
    STRING_EQUALS = "StringEquals"
    STRING_NOT_EQUALS = "StringNotEquals"
    STRING_LIKE = "StringLike"
    STRING_NOT_LIKE = "StringNotLike"

    @property
    def negated(self) -> bool:
        return self in (Operator.NOT_IP_ADDRESS, Operator.STRING_NOT_EQUALS,
                        Operator.STRING_NOT_LIKE)


@dataclass(frozen=True)
class Condition:
    operator: Operator
    key: str                      # lower-cased: IAM condition keys are case-insensitive
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: Effect
    principals: tuple[str, ...]   # "*" or tenant names
    actions: tuple[str, ...]      # lower-cased patterns
    resources: tuple[str, ...]    # ARN patterns
    conditions: tuple[Condition, ...] = ()


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


def _conditions(value: Any) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise _bad("Policy has an invalid condition block")
    out = []
    for op_name, block in value.items():
        try:
            op = Operator(op_name)
        except ValueError:
            raise _bad(f"Policy has an unsupported condition operator: {op_name}") from None
        if not isinstance(block, dict) or not block:
            raise _bad("Policy has an invalid condition block")
        for key, raw in block.items():
            if not isinstance(key, str) or not key:
                raise _bad("Policy has an invalid condition key")
            values = _strings(raw, "condition value", empty_ok=True)
            if op in (Operator.IP_ADDRESS, Operator.NOT_IP_ADDRESS):
                if key.lower() != "aws:sourceip":
                    raise _bad("IpAddress conditions apply only to aws:SourceIp")
                for v in values:
                    _network(v)
            out.append(Condition(op, key.lower(), values))
    return tuple(out)


_STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}


def _statement(raw: Any, bucket: str, index: int) -> Statement:
    if not isinstance(raw, dict):
        raise _bad("Policy statements must be objects")
    unknown = set(raw) - _STATEMENT_FIELDS
    if unknown:
        raise _bad(f"Policy has an unsupported element: {sorted(unknown)[0]}")
    for needed in ("Effect", "Principal", "Action", "Resource"):
        if needed not in raw:
            raise _bad(f"Missing required field {needed}")
    try:
        effect = Effect(raw["Effect"])
    except ValueError:
        raise _bad("Invalid effect: " + str(raw["Effect"])) from None
    sid = raw.get("Sid", str(index))
    if not isinstance(sid, str):
        raise _bad("Statement IDs (SID) must be strings")
    return Statement(
        sid, effect, _principals(raw["Principal"]), _actions(raw["Action"]),
        _resources(raw["Resource"], bucket), _conditions(raw.get("Condition", {})))


def parse(text: bytes | str, bucket: str) -> Policy:
    """Validate a bucket policy document for `bucket`; raise MalformedPolicy on any fault."""
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
    return Policy(version, tuple(_statement(s, bucket, i) for i, s in enumerate(raw_statements)))


@lru_cache(maxsize=1024)
def parse_cached(text: str, bucket: str) -> Policy:
    """Policies are evaluated on every request; a stored one was validated when put."""
    return parse(text, bucket)


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
    return "*" in stmt.principals or (principal is not None and principal in stmt.principals)


def _ip_in(values: tuple[str, ...], source_ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(addr in _network(v) for v in values)


def _condition_holds(cond: Condition, context: Mapping[str, str]) -> bool:
    value = context.get(cond.key)
    if value is None:
        # IAM: an absent key matches nothing, so only the negated operators hold.
        return cond.operator.negated
    op = cond.operator
    if op in (Operator.IP_ADDRESS, Operator.NOT_IP_ADDRESS):
        hit = _ip_in(cond.values, value)
    elif op in (Operator.STRING_EQUALS, Operator.STRING_NOT_EQUALS):
        hit = value in cond.values
    else:
        hit = any(_like(p, value) for p in cond.values)
    return hit != op.negated


def _matches(stmt: Statement, principal: str | None, action: str, resource: str,
             context: Mapping[str, str]) -> bool:
    return (
        _principal_matches(stmt, principal)
        and any(_like(p, action.lower()) for p in stmt.actions)
        and any(_like(p, resource) for p in stmt.resources)
        and all(_condition_holds(c, context) for c in stmt.conditions)
    )


def evaluate(policy: Policy, principal: str | None, action: str, resource: str,
             context: Mapping[str, str]) -> Verdict:
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
                     context: Mapping[str, str]) -> bool:
    """Could a Deny apply to `action` on some resource? For requests that touch keys the
    check cannot name one by one (DeleteObjects): any such Deny refuses the request."""
    return any(
        stmt.effect is Effect.DENY and _principal_matches(stmt, principal)
        and any(_like(p, action.lower()) for p in stmt.actions)
        and all(_condition_holds(c, context) for c in stmt.conditions)
        for stmt in policy.statements
    )


def is_public(policy: Policy) -> bool:
    """AWS's notion: some Allow reaches everyone without a restricting condition
    (an aws:SourceIp range makes a statement non-public)."""
    for stmt in policy.statements:
        restricted = any(c.key == "aws:sourceip" and not c.operator.negated
                         for c in stmt.conditions)
        if stmt.effect is Effect.ALLOW and "*" in stmt.principals and not restricted:
            return True
    return False
