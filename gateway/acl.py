"""Access control lists: canned ACLs, x-amz-grant-* headers, AccessControlPolicy XML.

Pure. A grant gives one permission to one grantee: a tenant (S3's CanonicalUser, whose ID is
the tenant name) or one of two groups, AllUsers (anyone, anonymous included) and
AuthenticatedUsers (any tenant). An empty grant list means the owner alone (S3's `private`),
which is also what records written before ACLs existed read as.

Rules:
- grants by e-mail address are refused (Coffre has no such directory);
- an ACL may not name an owner other than the resource's (AWS answers AccessDenied);
- the owner keeps FULL_CONTROL whatever the ACL says: ownership is checked before ACLs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway import errors, s3xml

ALL_USERS_URI = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_URI = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
grants_count_max = 100               # S3: at most 100 grants per ACL


class MalformedACLError(errors.S3Error):
    code = "MalformedACLError"
    status = 400
    default_message = ("The XML you provided was not well-formed or did not validate "
                       "against our published schema")


class Permission(Enum):
    FULL_CONTROL = "FULL_CONTROL"
    READ = "READ"
    WRITE = "WRITE"
    READ_ACP = "READ_ACP"
    WRITE_ACP = "WRITE_ACP"


class GranteeKind(Enum):
    TENANT = "CanonicalUser"
    GROUP = "Group"


@dataclass(frozen=True)
class Grant:
    kind: GranteeKind
    grantee: str            # tenant name, or a group URI
    permission: Permission

    def pack(self) -> list[str]:
        return [self.kind.value, self.grantee, self.permission.value]

    @classmethod
    def unpack(cls, raw: Any) -> Grant:
        return cls(GranteeKind(raw[0]), str(raw[1]), Permission(raw[2]))


Grants = tuple[Grant, ...]

_GROUPS = (ALL_USERS_URI, AUTHENTICATED_URI)


def _owner_full(owner: str) -> Grant:
    return Grant(GranteeKind.TENANT, owner, Permission.FULL_CONTROL)


def _group(uri: str, perm: Permission) -> Grant:
    return Grant(GranteeKind.GROUP, uri, perm)


def canned(name: str, owner: str) -> Grants:
    """The grants a canned ACL name stands for; InvalidArgument for an unknown name."""
    base = (_owner_full(owner),)
    if name in ("private", "bucket-owner-read", "bucket-owner-full-control"):
        # Objects belong to their bucket's owner here, so the bucket-owner ones are private.
        return base
    if name == "public-read":
        return (*base, _group(ALL_USERS_URI, Permission.READ))
    if name == "public-read-write":
        return (*base, _group(ALL_USERS_URI, Permission.READ),
                _group(ALL_USERS_URI, Permission.WRITE))
    if name == "authenticated-read":
        return (*base, _group(AUTHENTICATED_URI, Permission.READ))
    raise errors.InvalidArgument(f"Invalid canned ACL: {name}", ArgumentName="x-amz-acl",
                                 ArgumentValue=name)


_GRANT_HEADERS = {
    "x-amz-grant-full-control": Permission.FULL_CONTROL,
    "x-amz-grant-read": Permission.READ,
    "x-amz-grant-write": Permission.WRITE,
    "x-amz-grant-read-acp": Permission.READ_ACP,
    "x-amz-grant-write-acp": Permission.WRITE_ACP,
}


def _header_grantees(value: str, perm: Permission) -> list[Grant]:
    """`id="tenant", uri="http://acs.../AllUsers"`: comma-separated type=value pairs."""
    out = []
    for item in value.split(","):
        kind, sep, raw = item.strip().partition("=")
        name = raw.strip().strip('"')
        kind = kind.strip().lower()
        if not sep or not name:
            raise errors.InvalidArgument("Invalid grant header", ArgumentValue=value)
        if kind == "id":
            out.append(Grant(GranteeKind.TENANT, name, perm))
        elif kind == "uri" and name in _GROUPS:
            out.append(_group(name, perm))
        elif kind == "emailaddress":
            raise errors.UnresolvableGrantByEmailAddress()     # tenants have no address
        else:
            raise errors.InvalidArgument("Invalid grant header", ArgumentValue=value)
    return out


def from_headers(headers: Mapping[str, str], owner: str) -> Grants | None:
    """The ACL a request sets with x-amz-acl or x-amz-grant-*, or None if it sets none."""
    canned_name = headers.get("x-amz-acl")
    explicit = [(h, p) for h, p in _GRANT_HEADERS.items() if h in headers]
    if canned_name is not None and explicit:
        raise errors.InvalidRequest("Specifying both Canned ACLs and Header Grants is not "
                                    "allowed")
    if canned_name is not None:
        return canned(canned_name.strip(), owner)
    if not explicit:
        return None
    grants: list[Grant] = []
    for header, perm in explicit:
        grants.extend(_header_grantees(headers[header], perm))
    return _checked(grants)


def _checked(grants: list[Grant]) -> Grants:
    if len(grants) > grants_count_max:
        raise MalformedACLError("Too many grants in the ACL")
    return tuple(dict.fromkeys(grants))    # drop repeats, keep order


# ---- rendering and parsing ---------------------------------------------------------------


def effective(grants: Grants, owner: str) -> Grants:
    return grants if grants else (_owner_full(owner),)


def grant_xml(g: Grant) -> str:
    """A <Grant> element (of an ACL, or of a logging configuration's TargetGrants)."""
    return f"<Grant>{_grantee_xml(g)}<Permission>{g.permission.value}</Permission></Grant>"


def _grantee_xml(g: Grant) -> str:
    head = f'<Grantee xmlns:xsi="{XSI}" xsi:type="{g.kind.value}">'
    if g.kind is GranteeKind.GROUP:
        return f"{head}<URI>{s3xml.esc(g.grantee)}</URI></Grantee>"
    name = s3xml.esc(g.grantee)
    return f"{head}<ID>{name}</ID><DisplayName>{name}</DisplayName></Grantee>"


def render(grants: Grants, owner: str) -> bytes:
    """GetBucketAcl / GetObjectAcl's AccessControlPolicy document."""
    body = "".join(grant_xml(g) for g in effective(grants, owner))
    name = s3xml.esc(owner)
    return (
        f'{s3xml.HEAD}<AccessControlPolicy xmlns="{s3xml.NS}"><Owner><ID>{name}</ID>'
        f"<DisplayName>{name}</DisplayName></Owner><AccessControlList>{body}"
        "</AccessControlList></AccessControlPolicy>"
    ).encode()


def parse_grant(elem: Any) -> Grant:
    """One <Grant> element (of an ACL, or of a logging configuration's TargetGrants)."""
    grantees = s3xml.children(elem, "Grantee")
    perm_text = s3xml.child_text(elem, "Permission")
    if len(grantees) != 1 or perm_text is None:
        raise MalformedACLError()
    try:
        perm = Permission(perm_text.strip())
    except ValueError:
        raise MalformedACLError() from None
    grantee = grantees[0]
    kind = grantee.get(f"{{{XSI}}}type", "")
    uri, ident = s3xml.child_text(grantee, "URI"), s3xml.child_text(grantee, "ID")
    if s3xml.child_text(grantee, "EmailAddress") is not None or kind == "AmazonCustomerByEmail":
        raise errors.UnresolvableGrantByEmailAddress()     # tenants have no address
    if uri is not None and kind in ("Group", ""):
        if uri.strip() not in _GROUPS:
            raise errors.InvalidArgument("Invalid group uri", ArgumentName="uri",
                                         ArgumentValue=uri)
        return _group(uri.strip(), perm)
    if ident is not None and ident.strip() and kind in ("CanonicalUser", ""):
        return Grant(GranteeKind.TENANT, ident.strip(), perm)
    raise MalformedACLError()


def parse(body: bytes, owner: str) -> Grants:
    """PutBucketAcl / PutObjectAcl's body -> grants; the Owner, if given, must be `owner`."""
    try:
        root = s3xml.parse(body, "AccessControlPolicy")
    except errors.S3Error:
        raise MalformedACLError() from None
    owners = s3xml.children(root, "Owner")
    if owners:
        owner_id = s3xml.child_text(owners[0], "ID")
        if owner_id is not None and owner_id.strip() != owner:
            raise errors.AccessDenied()
    lists = s3xml.children(root, "AccessControlList")
    if len(lists) != 1:
        raise MalformedACLError()
    return _checked([parse_grant(g) for g in s3xml.children(lists[0], "Grant")])


# ---- checks ------------------------------------------------------------------------------


def _grantee_matches(g: Grant, principal: str | None, ignore_public: bool) -> bool:
    if g.kind is GranteeKind.TENANT:
        return principal is not None and g.grantee == principal
    if ignore_public:
        return False
    if g.grantee == ALL_USERS_URI:
        return True
    return g.grantee == AUTHENTICATED_URI and principal is not None


def allows(grants: Grants, principal: str | None, wanted: Permission,
           ignore_public: bool = False) -> bool:
    """Does some grant give `principal` (None: anonymous) the `wanted` permission?"""
    return any(
        (g.permission is wanted or g.permission is Permission.FULL_CONTROL)
        and _grantee_matches(g, principal, ignore_public)
        for g in grants
    )


def is_public(grants: Iterable[Grant]) -> bool:
    return any(g.kind is GranteeKind.GROUP for g in grants)


def pack(grants: Grants) -> list[list[str]]:
    return [g.pack() for g in grants]


def unpack(raw: Any) -> Grants:
    return tuple(Grant.unpack(g) for g in raw or ())


def tenant_grantees(grants: Grants) -> set[str]:
    return {g.grantee for g in grants if g.kind is GranteeKind.TENANT}
