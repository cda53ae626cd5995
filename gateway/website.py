"""Static website hosting: a bucket's WebsiteConfiguration, and the routing decisions of its
website endpoint.

Pure. `parse` validates a PutBucketWebsite body the way S3 does, `render` gives back the
GetBucketWebsite body, and the functions at the end say which object a website GET serves
and where a routing rule sends it; the endpoint that acts on them is gateway.website_serve.

A configuration is either RedirectAllRequestsTo alone (every request goes to another host)
or an IndexDocument with an optional ErrorDocument and up to 50 RoutingRules. A rule whose
condition is a key prefix applies before the object is looked up; one with an error code
applies only once the request would answer that status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element

from gateway import errors, s3xml
from gateway.numbers import is_decimal

routing_rules_max = 50                 # S3: at most 50 routing rules per configuration
_redirect_code_default = 301
_PROTOCOLS = ("http", "https")
# "3XX except 300", S3's message says; in practice it takes only the redirects HTTP defines
# (306 is reserved and 309 and up are unassigned, so no browser would follow them).
_REDIRECT_CODES = frozenset({301, 302, 303, 304, 305, 307, 308})
_shown_max = 20                        # of a bad number quoted back in an error message

_MSG_CONJUNCTION = ("RedirectAllRequestsTo cannot be provided in conjunction with other "
                    "Routing Rules.")
_MSG_NO_INDEX = ("A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo "
                 "is empty")
_MSG_SUFFIX = "The IndexDocument Suffix is not well formed"
_MSG_ERROR_KEY = "The ErrorDocument Key is not well formed"
_MSG_PROTOCOL = ("Invalid protocol, protocol can be http or https. If not defined the protocol "
                 "will be selected automatically.")
_MSG_BLANK_HOST = ("The HostName cannot be blank. To redirect within the same domain, the "
                   "element should not be present.")
_MSG_EMPTY_CONDITION = ("Condition cannot be empty. To redirect all requests without a "
                        "condition, the condition element shouldn't be present.")
_MSG_EMPTY_REDIRECT = ("Redirect must contain at least one of HostName, Protocol, "
                       "ReplaceKeyPrefixWith, ReplaceKeyWith or HttpRedirectCode.")
_MSG_REPLACE_BOTH = "You can only define ReplaceKeyPrefix or ReplaceKey but not both."


@dataclass(frozen=True)
class Redirect:
    """A RoutingRule's <Redirect>, or RedirectAllRequestsTo (host and protocol only)."""

    host: str = ""                           # HostName ("" = the request's host)
    protocol: str = ""                       # "http" | "https" | "" (the request's)
    replace_key_prefix: str | None = None    # ReplaceKeyPrefixWith
    replace_key: str | None = None           # ReplaceKeyWith
    code: int | None = None                  # HttpRedirectCode (default 301 when used)


@dataclass(frozen=True)
class RoutingRule:
    key_prefix: str | None = None            # Condition/KeyPrefixEquals
    error_code: int | None = None            # Condition/HttpErrorCodeReturnedEquals
    redirect: Redirect = Redirect()


@dataclass(frozen=True)
class Website:
    index_suffix: str = ""                   # IndexDocument/Suffix
    error_key: str = ""                      # ErrorDocument/Key ("" = none)
    redirect_all: Redirect | None = None     # RedirectAllRequestsTo (HostName, Protocol only)
    rules: tuple[RoutingRule, ...] = ()


# ---- stored form: plain lists, in a fixed order (the bucket record is msgpack) --------------


def _opt_str(raw: Any) -> str | None:
    return None if raw is None else str(raw)


def _opt_int(raw: Any) -> int | None:
    return None if raw is None else int(raw)


def _pack_redirect(r: Redirect) -> list[Any]:
    return [r.host, r.protocol, r.replace_key_prefix, r.replace_key, r.code]


def _unpack_redirect(raw: Any) -> Redirect:
    return Redirect(str(raw[0]), str(raw[1]), _opt_str(raw[2]), _opt_str(raw[3]),
                    _opt_int(raw[4]))


def pack(w: Website | None) -> Any:
    if w is None:
        return None
    everything = None if w.redirect_all is None else _pack_redirect(w.redirect_all)
    return [w.index_suffix, w.error_key, everything,
            [[r.key_prefix, r.error_code, _pack_redirect(r.redirect)] for r in w.rules]]


def unpack(raw: Any) -> Website | None:
    if raw is None:
        return None
    everything = None if raw[2] is None else _unpack_redirect(raw[2])
    rules = tuple(RoutingRule(_opt_str(r[0]), _opt_int(r[1]), _unpack_redirect(r[2]))
                  for r in raw[3])
    return Website(str(raw[0]), str(raw[1]), everything, rules)


# ---- configuration documents: parsing ------------------------------------------------------

_ROOT = frozenset({"ErrorDocument", "IndexDocument", "RedirectAllRequestsTo", "RoutingRules"})
_INDEX = frozenset({"Suffix"})
_ERROR = frozenset({"Key"})
_EVERYTHING = frozenset({"HostName", "Protocol"})
_RULE = frozenset({"Condition", "Redirect"})
_CONDITION = frozenset({"HttpErrorCodeReturnedEquals", "KeyPrefixEquals"})
_REDIRECT = frozenset({"HostName", "HttpRedirectCode", "Protocol", "ReplaceKeyPrefixWith",
                       "ReplaceKeyWith"})

_Members = dict[str, Element]


def _members(elem: Element, allowed: frozenset[str]) -> _Members:
    """elem's children by local name. S3 validates against its schema, so an unknown child,
    or a second one of any, is MalformedXML rather than ignored (RoutingRule, the only one
    that repeats, is read by _rules instead)."""
    out: _Members = {}
    for child in elem:
        name = child.tag.rsplit("}", 1)[-1]
        if name not in allowed or name in out:
            raise errors.MalformedXML()
        out[name] = child
    return out


def _text(members: _Members, name: str) -> str | None:
    found = members.get(name)
    if found is None:
        return None
    if len(found):                     # a string in the schema: no elements inside
        raise errors.MalformedXML()
    return found.text or ""


def _number(text: str) -> int | None:
    """A decimal status code, or None. Past three digits (leading zeros aside) it cannot be
    one, and int() refuses strings of over 4300 digits, which a body can hold: those are None
    without converting."""
    digits = text.strip()
    if not is_decimal(digits):
        return None
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 3 else None


def _shown(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _shown_max else text[:_shown_max] + "..."


def _http_redirect_code(text: str) -> int:
    code = _number(text)
    if code is None or code not in _REDIRECT_CODES:
        raise errors.InvalidRequest(f"The provided HTTP redirect code ({_shown(text)}) is not "
                                    "valid. Valid codes are 3XX except 300.")
    return code


def _error_code(text: str) -> int:
    code = _number(text)
    if code is None or not 400 <= code <= 599:
        raise errors.InvalidRequest(f"The provided HTTP error code ({_shown(text)}) is not "
                                    "valid. Valid codes are 4XX or 5XX.")
    return code


def _protocol(members: _Members) -> str:
    protocol = _text(members, "Protocol")
    if protocol is None:
        return ""
    if protocol not in _PROTOCOLS:
        raise errors.InvalidRequest(_MSG_PROTOCOL)
    return protocol


def _host(members: _Members) -> str:
    host = _text(members, "HostName")
    # "" already means "the request's host", so an empty HostName could not be given back.
    if host == "":
        raise errors.InvalidRequest(_MSG_BLANK_HOST)
    return host or ""


def _redirect_all(elem: Element) -> Redirect:
    members = _members(elem, _EVERYTHING)
    if "HostName" not in members:      # required by the schema
        raise errors.MalformedXML()
    return Redirect(host=_host(members), protocol=_protocol(members))


def _redirect(elem: Element) -> Redirect:
    members = _members(elem, _REDIRECT)
    if not members:
        raise errors.InvalidRequest(_MSG_EMPTY_REDIRECT)
    prefix, key = _text(members, "ReplaceKeyPrefixWith"), _text(members, "ReplaceKeyWith")
    if prefix is not None and key is not None:
        raise errors.InvalidRequest(_MSG_REPLACE_BOTH)
    code = _text(members, "HttpRedirectCode")
    return Redirect(_host(members), _protocol(members), prefix, key,
                    None if code is None else _http_redirect_code(code))


def _rule(elem: Element) -> RoutingRule:
    members = _members(elem, _RULE)
    if "Redirect" not in members:      # required by the schema
        raise errors.MalformedXML()
    redirect = _redirect(members["Redirect"])
    if "Condition" not in members:
        return RoutingRule(redirect=redirect)
    condition = _members(members["Condition"], _CONDITION)
    if not condition:
        raise errors.InvalidRequest(_MSG_EMPTY_CONDITION)
    code = _text(condition, "HttpErrorCodeReturnedEquals")
    return RoutingRule(_text(condition, "KeyPrefixEquals"),
                       None if code is None else _error_code(code), redirect)


def _rules(elem: Element) -> tuple[RoutingRule, ...]:
    found = s3xml.children(elem, "RoutingRule")
    if len(found) != len(elem) or not found:   # the schema wants one RoutingRule or more
        raise errors.MalformedXML()
    if len(found) > routing_rules_max:
        raise errors.InvalidRequest(f"{len(found)} routing rules provided, the number of "
                                    "routing rules in a website configuration is limited "
                                    f"to {routing_rules_max}.")
    return tuple(_rule(r) for r in found)


def _suffix(elem: Element) -> str:
    suffix = _text(_members(elem, _INDEX), "Suffix")
    # The suffix is appended to a "folder" key: a slash in it would name another folder.
    if not suffix or "/" in suffix:
        raise errors.InvalidArgument(_MSG_SUFFIX)
    return suffix


def _error_key(root: _Members) -> str:
    if "ErrorDocument" not in root:
        return ""
    key = _text(_members(root["ErrorDocument"], _ERROR), "Key")
    if not key:
        raise errors.InvalidArgument(_MSG_ERROR_KEY)
    return key


def parse(body: bytes) -> Website:
    """Validate a PutBucketWebsite body."""
    root = _members(s3xml.parse(body, "WebsiteConfiguration"), _ROOT)
    if "RedirectAllRequestsTo" in root:
        if len(root) > 1:
            raise errors.InvalidRequest(_MSG_CONJUNCTION)
        return Website(redirect_all=_redirect_all(root["RedirectAllRequestsTo"]))
    if "IndexDocument" not in root:
        raise errors.InvalidArgument(_MSG_NO_INDEX)
    suffix, error_key = _suffix(root["IndexDocument"]), _error_key(root)
    rules = _rules(root["RoutingRules"]) if "RoutingRules" in root else ()
    return Website(suffix, error_key, None, rules)


# ---- configuration documents: rendering ----------------------------------------------------


def _el(name: str, value: str | int | None) -> str:
    return "" if value is None else f"<{name}>{s3xml.esc(str(value))}</{name}>"


def _render_redirect(r: Redirect) -> str:
    return (_el("HostName", r.host or None) + _el("HttpRedirectCode", r.code)
            + _el("Protocol", r.protocol or None)
            + _el("ReplaceKeyPrefixWith", r.replace_key_prefix)
            + _el("ReplaceKeyWith", r.replace_key))


def _render_rule(r: RoutingRule) -> str:
    condition = ""
    if r.key_prefix is not None or r.error_code is not None:
        condition = ("<Condition>" + _el("HttpErrorCodeReturnedEquals", r.error_code)
                     + _el("KeyPrefixEquals", r.key_prefix) + "</Condition>")
    return f"<RoutingRule>{condition}<Redirect>{_render_redirect(r.redirect)}</Redirect>" \
        "</RoutingRule>"


def render(w: Website) -> bytes:
    """The GetBucketWebsite body. Members come in the order of botocore's
    GetBucketWebsiteOutput (and of S3's own answers), which puts IndexDocument before
    ErrorDocument, unlike the WebsiteConfiguration shape of the request."""
    parts = []
    if w.redirect_all is not None:
        parts.append("<RedirectAllRequestsTo>" + _el("HostName", w.redirect_all.host)
                     + _el("Protocol", w.redirect_all.protocol or None)
                     + "</RedirectAllRequestsTo>")
    if w.index_suffix:
        parts.append(f"<IndexDocument>{_el('Suffix', w.index_suffix)}</IndexDocument>")
    if w.error_key:
        parts.append(f"<ErrorDocument>{_el('Key', w.error_key)}</ErrorDocument>")
    if w.rules:
        parts.append("<RoutingRules>" + "".join(_render_rule(r) for r in w.rules)
                     + "</RoutingRules>")
    return (f'{s3xml.HEAD}<WebsiteConfiguration xmlns="{s3xml.NS}">' + "".join(parts)
            + "</WebsiteConfiguration>").encode()


# ---- routing -------------------------------------------------------------------------------


def index_key(w: Website, key: str) -> str:
    """The object key a website GET of `key` (without its leading "/") serves: the root and
    every "folder" serve their index document."""
    if key == "" or key.endswith("/"):
        return key + w.index_suffix
    return key


def rule_before(w: Website, key: str) -> RoutingRule | None:
    """The first rule to apply before the object is looked up: one whose condition is a key
    prefix only, or one without a condition (which matches every request)."""
    for r in w.rules:
        if r.error_code is None and key.startswith(r.key_prefix or ""):
            return r
    return None


def rule_after(w: Website, key: str, status: int) -> RoutingRule | None:
    """The first rule to apply once the request would answer `status`: its error code
    condition equals it, and its key prefix, if any, matches too."""
    for r in w.rules:
        if r.error_code == status and key.startswith(r.key_prefix or ""):
            return r
    return None


def location(r: Redirect, key: str, matched_prefix: str | None, req_host: str,
             req_scheme: str) -> str:
    """The Location URL of a redirect for `key`. `matched_prefix` is the prefix that
    ReplaceKeyPrefixWith replaces: a routing rule's KeyPrefixEquals, or "" for a rule
    without one (the replacement is then prepended, as S3 does for an error-code rule);
    None keeps the key as requested (RedirectAllRequestsTo)."""
    if r.replace_key is not None:
        path = r.replace_key
    elif r.replace_key_prefix is not None and matched_prefix is not None:
        path = r.replace_key_prefix + key[len(matched_prefix):]
    else:
        path = key
    return f"{r.protocol or req_scheme}://{r.host or req_host}/{quote(path, safe='/~')}"


def redirect_code(r: Redirect) -> int:
    return _redirect_code_default if r.code is None else r.code
