"""CORS: a bucket's CORSConfiguration rules, the OPTIONS preflight and actual-request headers.

Pure. A browser first asks OPTIONS with Origin, Access-Control-Request-Method and maybe
Access-Control-Request-Headers; the first rule whose origin, method and every requested
header match answers it. An actual request (any method with an Origin header) gets the
Access-Control-* headers of the first rule matching it as its preflight would (AWS reads
those two headers on it too, when present, where a browser never sends them), and none
when no rule does (the browser then refuses the response to the page, which is the point).
A refusal names, as AWS's does, the method asked for (OPTIONS when none) and whether the
resource was a bucket or an object.
Patterns may hold one `*` (origins and headers), as S3 allows; header names compare
case-insensitively, origins exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway import errors, s3xml
from gateway.numbers import is_decimal

cors_rules_max = 100                   # S3: at most 100 rules per bucket
cors_max_age_s_max = 2_147_483_647
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")


class NoSuchCORSConfiguration(errors.S3Error):
    code = "NoSuchCORSConfiguration"
    status = 404
    default_message = "The CORS configuration does not exist"


class AccessForbidden(errors.S3Error):
    code = "AccessForbidden"
    status = 403
    default_message = ("CORSResponse: This CORS request is not allowed. This is usually because "
                       "the evalution of Origin, request method / Access-Control-Request-Method"
                       " or Access-Control-Request-Headers are not whitelisted by the "
                       "resource's CORS spec.")


class BadPreflight(errors.S3Error):
    code = "BadRequest"
    status = 400
    default_message = "Insufficient information. Origin request header needed."


@dataclass(frozen=True)
class CorsRule:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_s: int | None = None
    rule_id: str = ""

    def pack(self) -> list[Any]:
        return [list(self.origins), list(self.methods), list(self.allowed_headers),
                list(self.expose_headers), self.max_age_s, self.rule_id]

    @classmethod
    def unpack(cls, raw: Any) -> CorsRule:
        return cls(tuple(raw[0]), tuple(raw[1]), tuple(raw[2]), tuple(raw[3]),
                   None if raw[4] is None else int(raw[4]), str(raw[5]))


Rules = tuple[CorsRule, ...]


def pack(rules: Rules) -> list[list[Any]]:
    return [r.pack() for r in rules]


def unpack(raw: Any) -> Rules:
    return tuple(CorsRule.unpack(r) for r in raw or ())


# ---- configuration documents ---------------------------------------------------------------


def _texts(elem: Any, name: str) -> tuple[str, ...]:
    return tuple((c.text or "").strip() for c in s3xml.children(elem, name))


def _rule(elem: Any) -> CorsRule:
    origins, methods = _texts(elem, "AllowedOrigin"), _texts(elem, "AllowedMethod")
    if not origins or not methods:
        raise errors.MalformedXML()
    for m in methods:
        if m not in METHODS:
            raise errors.InvalidRequest(f"Found unsupported HTTP method in CORS config. "
                                        f"Unsupported method is {m}")
    allowed = _texts(elem, "AllowedHeader")
    for pattern in (*origins, *allowed):
        if pattern.count("*") > 1:
            raise errors.InvalidRequest(f'AllowedOrigin/AllowedHeader "{pattern}" can not '
                                        "have more than one wildcard.")
    max_age = s3xml.child_text(elem, "MaxAgeSeconds")
    age = None
    if max_age is not None:
        if not is_decimal(max_age.strip()) or int(max_age) > cors_max_age_s_max:
            raise errors.MalformedXML()
        age = int(max_age)
    return CorsRule(origins, methods, allowed, _texts(elem, "ExposeHeader"), age,
                    (s3xml.child_text(elem, "ID") or "").strip())


def parse(body: bytes) -> Rules:
    root = s3xml.parse(body, "CORSConfiguration")
    rules = tuple(_rule(r) for r in s3xml.children(root, "CORSRule"))
    if not rules or len(rules) > cors_rules_max:
        raise errors.MalformedXML()
    return rules


def render(rules: Rules) -> bytes:
    out = []
    for r in rules:
        parts = [f"<ID>{s3xml.esc(r.rule_id)}</ID>" if r.rule_id else ""]
        parts += [f"<AllowedHeader>{s3xml.esc(h)}</AllowedHeader>" for h in r.allowed_headers]
        parts += [f"<AllowedMethod>{m}</AllowedMethod>" for m in r.methods]
        parts += [f"<AllowedOrigin>{s3xml.esc(o)}</AllowedOrigin>" for o in r.origins]
        parts += [f"<ExposeHeader>{s3xml.esc(h)}</ExposeHeader>" for h in r.expose_headers]
        if r.max_age_s is not None:
            parts.append(f"<MaxAgeSeconds>{r.max_age_s}</MaxAgeSeconds>")
        out.append("<CORSRule>" + "".join(parts) + "</CORSRule>")
    return (f'{s3xml.HEAD}<CORSConfiguration xmlns="{s3xml.NS}">' + "".join(out)
            + "</CORSConfiguration>").encode()


# ---- matching ----------------------------------------------------------------------------


def _wild(pattern: str, value: str) -> bool:
    if "*" not in pattern:
        return pattern == value
    head, _, tail = pattern.partition("*")
    return len(value) >= len(head) + len(tail) and value.startswith(head) and \
        value.endswith(tail)


def _origin_ok(rule: CorsRule, origin: str) -> bool:
    return any(_wild(o, origin) for o in rule.origins)


def _header_ok(rule: CorsRule, header: str) -> bool:
    return any(_wild(p.lower(), header.lower()) for p in rule.allowed_headers)


def _split_headers(raw: str | None) -> list[str]:
    return [h.strip() for h in (raw or "").split(",") if h.strip()]


def _common(rule: CorsRule, origin: str) -> dict[str, str]:
    wildcard = "*" in rule.origins
    out = {
        "Access-Control-Allow-Origin": "*" if wildcard else origin,
        "Access-Control-Allow-Methods": ", ".join(rule.methods),
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    if not wildcard:
        out["Access-Control-Allow-Credentials"] = "true"
    if rule.expose_headers:
        out["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    if rule.max_age_s is not None:
        out["Access-Control-Max-Age"] = str(rule.max_age_s)
    return out


def _refused(message: str | None, method: str | None, on_object: bool) -> AccessForbidden:
    return AccessForbidden(message, Method=method or "OPTIONS",
                           ResourceType="OBJECT" if on_object else "BUCKET")


def _first_match(rules: Rules, origin: str, method: str, wanted: list[str]
                 ) -> CorsRule | None:
    for rule in rules:
        if _origin_ok(rule, origin) and method in rule.methods and \
                all(_header_ok(rule, h) for h in wanted):
            return rule
    return None


def preflight(rules: Rules, headers: Mapping[str, str], on_object: bool = False
              ) -> dict[str, str]:
    """The headers of a successful OPTIONS answer, or AccessForbidden / BadRequest."""
    origin = headers.get("Origin")
    method = headers.get("Access-Control-Request-Method")
    if not origin:
        raise BadPreflight()
    if not rules:   # AWS: refused before the method is even looked at
        raise _refused("CORSResponse: CORS is not enabled for this bucket.", method, False)
    if not method:
        raise BadPreflight("Invalid Access-Control-Request-Method: null")
    wanted = _split_headers(headers.get("Access-Control-Request-Headers"))
    rule = _first_match(rules, origin, method, wanted)
    if rule is None:
        raise _refused(None, method, on_object)
    out = _common(rule, origin)
    if wanted:
        out["Access-Control-Allow-Headers"] = ", ".join(h.lower() for h in wanted)
    return out


def no_bucket(headers: Mapping[str, str]) -> errors.S3Error:
    """The refusal of a preflight to a bucket that does not exist."""
    if not headers.get("Origin"):
        return BadPreflight()
    return _refused("CORSResponse: Bucket not found",
                    headers.get("Access-Control-Request-Method"), False)


def actual(rules: Rules, headers: Mapping[str, str], method: str) -> dict[str, str]:
    """Access-Control-* headers for a request carrying Origin; empty when none apply."""
    origin = headers.get("Origin")
    if not origin or not rules:
        return {}
    asked = headers.get("Access-Control-Request-Method") or method
    wanted = _split_headers(headers.get("Access-Control-Request-Headers"))
    rule = _first_match(rules, origin, asked.upper(), wanted)
    return {} if rule is None else _common(rule, origin)
