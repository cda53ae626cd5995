"""Bucket policies: validation (MalformedPolicy) and evaluation (Deny over Allow, wildcards,
principals and NotPrincipal, IAM's condition operators with IfExists and the set
qualifiers, Null); POST policies of browser uploads."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors, policy, postpolicy, sigv4
from gateway.policy import MalformedPolicy, Verdict, evaluate, parse

BUCKET = "open-data"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def stmt(effect: str = "Allow", principal: Any = "*", action: Any = "s3:GetObject",
         resource: Any = f"arn:aws:s3:::{BUCKET}/*", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource,
            **extra}


def obj(key: str) -> str:
    return policy.object_arn(BUCKET, key)


NO_CTX: dict[str, str] = {}


# ---- validation --------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "not json",
    "[]",
    json.dumps({"Version": "2012-10-17"}),
    json.dumps({"Version": "1999-01-01", "Statement": [stmt()]}),
    json.dumps({"Version": "2012-10-17", "Statement": []}),
    doc(stmt(effect="Maybe")),
    doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}),   # no Resource
    doc(stmt(action="ec2:RunInstances")),
    doc(stmt(action=[])),
    doc(stmt(resource="arn:aws:s3:::another-bucket/*")),
    doc(stmt(resource="open-data/*")),
    doc(stmt(principal={"Service": "lambda.amazonaws.com"})),
    doc(stmt(principal={"AWS": "arn:aws:iam::tenant:user/bob"})),
    doc(stmt(Condition={"DateGreaterThan": {"aws:CurrentTime": "yesterday"}})),
    doc(stmt(Condition={"NumericLessThan": {"s3:max-keys": "ten"}})),
    doc(stmt(Condition={"Bool": {"aws:SecureTransport": "yes"}})),
    doc(stmt(Condition={"Null": {"s3:x-amz-acl": "maybe"}})),
    doc(stmt(Condition={"NullIfExists": {"s3:x-amz-acl": "true"}})),
    doc(stmt(Condition={"ForAnyValue:Null": {"s3:x-amz-acl": "true"}})),
    doc(stmt(Condition={"ForSomeValues:StringEquals": {"s3:x-amz-acl": "private"}})),
    doc(stmt(Condition={"BinaryEquals": {"s3:x-amz-acl": "cHJpdmF0ZQ=="}})),
    doc(stmt(Condition={"StringEquals": {"s3:x-amz-acl": {"nested": "object"}}})),
    doc(stmt(Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}})),    # never filled
    doc(stmt(Condition={"StringEquals": {"s3:ExistingObjectTag/": "x"}})),
    doc(stmt(Condition={"StringEquals": {"aws:username": "alice"}})),     # no IAM users
    doc({**stmt(), "NotPrincipal": {"AWS": "agency-a"}}),                 # both
    doc({k: v for k, v in stmt().items() if k != "Principal"}),           # neither
    doc(stmt(Condition={"IpAddress": {"aws:SourceIp": "not-an-ip"}})),
    doc(stmt(Condition={"IpAddress": {"s3:prefix": "10.0.0.0/8"}})),
    doc({**stmt(), "NotAction": "s3:PutObject"}),
    json.dumps({"Version": "2012-10-17", "Statement": [stmt()], "Extra": 1}),
    "{" + '"a":' * 0 + "}",
])
def test_malformed_policies_are_refused(text: str) -> None:
    with pytest.raises(MalformedPolicy) as exc:
        parse(text, BUCKET)
    assert exc.value.status == 400 and exc.value.code == "MalformedPolicy"


def test_oversized_policy_is_refused() -> None:
    big = doc(*[stmt(Sid=f"s{i}", resource=[obj(f"k{i}-{'x' * 150}")]) for i in range(150)])
    assert len(big) > policy.policy_bytes_max
    with pytest.raises(MalformedPolicy):
        parse(big, BUCKET)


def test_valid_policy_shapes() -> None:
    p = parse(json.dumps({
        "Version": "2012-10-17", "Id": "open",
        "Statement": {"Sid": "read", "Effect": "Allow", "Principal": {"AWS": ["*"]},
                      "Action": ["s3:GetObject", "s3:ListBucket"],
                      "Resource": [f"arn:aws:s3:::{BUCKET}", obj("*")]},
    }), BUCKET)
    assert len(p.statements) == 1
    s = p.statements[0]
    assert s.sid == "read" and s.principals == ("*",)
    assert s.actions == ("s3:getobject", "s3:listbucket")
    named = parse(doc(stmt(principal={"AWS": ["arn:aws:iam::agency-a:root", "agency-b"]})),
                  BUCKET)
    assert named.statements[0].principals == ("agency-a", "agency-b")


# ---- evaluation --------------------------------------------------------------------------


def test_anonymous_read_allowed_by_public_policy() -> None:
    p = parse(doc(stmt()), BUCKET)
    assert evaluate(p, None, "s3:GetObject", obj("a/b.csv"), NO_CTX) is Verdict.ALLOW
    assert evaluate(p, "agency-a", "s3:GetObject", obj("x"), NO_CTX) is Verdict.ALLOW
    assert evaluate(p, None, "s3:PutObject", obj("x"), NO_CTX) is Verdict.NONE
    assert evaluate(p, None, "s3:ListBucket", policy.bucket_arn(BUCKET), NO_CTX) is \
        Verdict.NONE


def test_deny_overrides_allow_in_any_order() -> None:
    allow = stmt(action="s3:*")
    deny = stmt(effect="Deny", action="s3:GetObject", resource=obj("secret/*"))
    for order in ((allow, deny), (deny, allow)):
        p = parse(doc(*order), BUCKET)
        assert evaluate(p, None, "s3:GetObject", obj("secret/x"), NO_CTX) is Verdict.DENY
        assert evaluate(p, None, "s3:GetObject", obj("public/x"), NO_CTX) is Verdict.ALLOW


def test_named_principal_only() -> None:
    p = parse(doc(stmt(principal={"AWS": "agency-a"}, action="s3:PutObject")), BUCKET)
    assert evaluate(p, "agency-a", "s3:PutObject", obj("k"), NO_CTX) is Verdict.ALLOW
    assert evaluate(p, "agency-b", "s3:PutObject", obj("k"), NO_CTX) is Verdict.NONE
    assert evaluate(p, None, "s3:PutObject", obj("k"), NO_CTX) is Verdict.NONE


def test_action_and_resource_wildcards() -> None:
    p = parse(doc(stmt(action="s3:Get*", resource=obj("data/202?/*.csv"))), BUCKET)
    assert evaluate(p, None, "s3:GetObject", obj("data/2024/a.csv"), NO_CTX) is Verdict.ALLOW
    assert evaluate(p, None, "s3:GetObjectTagging", obj("data/2024/a.csv"), NO_CTX) is \
        Verdict.ALLOW
    assert evaluate(p, None, "s3:GetObject", obj("data/2024/a.json"), NO_CTX) is Verdict.NONE
    assert evaluate(p, None, "s3:GetObject", obj("data/20245/a.csv"), NO_CTX) is Verdict.NONE
    # Regex metacharacters in keys are plain characters.
    p2 = parse(doc(stmt(resource=obj("a.b/(x)+*"))), BUCKET)
    assert evaluate(p2, None, "s3:GetObject", obj("a.b/(x)+1"), NO_CTX) is Verdict.ALLOW
    assert evaluate(p2, None, "s3:GetObject", obj("aXb/(x)+1"), NO_CTX) is Verdict.NONE


def test_source_ip_condition() -> None:
    p = parse(doc(stmt(Condition={"IpAddress": {"aws:SourceIp": ["10.1.0.0/16",
                                                                   "::1/128"]}})), BUCKET)
    inside, outside = {"aws:sourceip": "10.1.2.3"}, {"aws:sourceip": "192.168.1.1"}
    assert evaluate(p, None, "s3:GetObject", obj("k"), inside) is Verdict.ALLOW
    assert evaluate(p, None, "s3:GetObject", obj("k"), {"aws:sourceip": "::1"}) is \
        Verdict.ALLOW
    assert evaluate(p, None, "s3:GetObject", obj("k"), outside) is Verdict.NONE
    assert evaluate(p, None, "s3:GetObject", obj("k"), NO_CTX) is Verdict.NONE
    assert not policy.is_public(p)
    blocked = parse(doc(stmt(action="s3:*"), stmt(
        effect="Deny", action="s3:*", Condition={"NotIpAddress": {"aws:SourceIp":
                                                                 "127.0.0.0/8"}})), BUCKET)
    assert evaluate(blocked, None, "s3:GetObject", obj("k"), outside) is Verdict.DENY
    assert evaluate(blocked, None, "s3:GetObject", obj("k"),
                    {"aws:sourceip": "127.0.0.1"}) is Verdict.ALLOW


def test_prefix_condition_on_listing() -> None:
    p = parse(doc(stmt(action="s3:ListBucket", resource=policy.bucket_arn(BUCKET),
                       Condition={"StringLike": {"s3:prefix": ["public/*", ""]}})), BUCKET)
    arn = policy.bucket_arn(BUCKET)
    assert evaluate(p, None, "s3:ListBucket", arn, {"s3:prefix": "public/2024"}) is \
        Verdict.ALLOW
    assert evaluate(p, None, "s3:ListBucket", arn, {"s3:prefix": ""}) is Verdict.ALLOW
    assert evaluate(p, None, "s3:ListBucket", arn, {"s3:prefix": "private/"}) is Verdict.NONE
    eq = parse(doc(stmt(action="s3:ListBucket", resource=arn,
                        Condition={"StringNotEquals": {"s3:prefix": "private/"}})), BUCKET)
    assert evaluate(eq, None, "s3:ListBucket", arn, {"s3:prefix": "private/"}) is Verdict.NONE
    assert evaluate(eq, None, "s3:ListBucket", arn, {"s3:prefix": "x"}) is Verdict.ALLOW


def test_is_public_and_denies_somewhere() -> None:
    assert policy.is_public(parse(doc(stmt()), BUCKET))
    assert not policy.is_public(parse(doc(stmt(principal={"AWS": "agency-a"})), BUCKET))
    assert not policy.is_public(parse(doc(stmt(effect="Deny")), BUCKET))
    p = parse(doc(stmt(action="s3:*"), stmt(effect="Deny", action="s3:DeleteObject",
                                            resource=obj("keep/*"))), BUCKET)
    assert policy.denies_somewhere(p, None, "s3:DeleteObject", NO_CTX)
    assert not policy.denies_somewhere(p, None, "s3:PutObject", NO_CTX)


def cond(condition: dict[str, Any], action: str = "s3:PutObject",
         effect: str = "Allow", **kw: Any) -> policy.Policy:
    return parse(doc(stmt(effect=effect, action=action, Condition=condition, **kw)), BUCKET)


def put(p: policy.Policy, ctx: dict[str, Any], who: str | None = "agency-b") -> Verdict:
    return evaluate(p, who, "s3:PutObject", obj("k"), ctx)


def test_missing_keys_positive_false_negated_true_if_exists_true() -> None:
    # s3-tests' put_obj_acl: a Deny on public ACLs must not fire for a request without one.
    deny_public = cond({"StringLike": {"s3:x-amz-acl": "public*"}}, effect="Deny")
    assert put(deny_public, {"s3:x-amz-acl": "public-read"}) is Verdict.DENY
    assert put(deny_public, {"s3:x-amz-acl": "private"}) is Verdict.NONE
    assert put(deny_public, NO_CTX) is Verdict.NONE
    not_aes = cond({"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
                   effect="Deny")
    assert put(not_aes, NO_CTX) is Verdict.DENY
    assert put(not_aes, {"s3:x-amz-server-side-encryption": "AES256"}) is Verdict.NONE
    assert put(not_aes, {"s3:x-amz-server-side-encryption": "aws:kms"}) is Verdict.DENY
    if_exists = cond({"StringEqualsIfExists": {"s3:x-amz-acl": "private"}})
    assert put(if_exists, NO_CTX) is Verdict.ALLOW
    assert put(if_exists, {"s3:x-amz-acl": "private"}) is Verdict.ALLOW
    assert put(if_exists, {"s3:x-amz-acl": "public-read"}) is Verdict.NONE
    not_if_exists = cond({"StringNotLikeIfExists": {"s3:x-amz-acl": "public*"}})
    assert put(not_if_exists, NO_CTX) is Verdict.ALLOW
    assert put(not_if_exists, {"s3:x-amz-acl": "public-read"}) is Verdict.NONE


def test_null_operator() -> None:
    # s3-tests' put_obj_s3_noenc: deny what asks for no encryption at all.
    unencrypted = cond({"Null": {"s3:x-amz-server-side-encryption": "true"}}, effect="Deny")
    assert put(unencrypted, NO_CTX) is Verdict.DENY
    assert put(unencrypted, {"s3:x-amz-server-side-encryption": "AES256"}) is Verdict.NONE
    present = cond({"Null": {"s3:x-amz-acl": False}})      # a JSON boolean, as IAM takes
    assert put(present, {"s3:x-amz-acl": ""}) is Verdict.ALLOW
    assert put(present, NO_CTX) is Verdict.NONE
    tagged = cond({"Null": {"s3:RequestObjectTagKeys": "false"}})
    assert put(tagged, {"s3:requestobjecttagkeys": ("a",)}) is Verdict.ALLOW
    assert put(tagged, {"s3:requestobjecttagkeys": ()}) is Verdict.NONE     # no tags: null


def test_set_qualifiers_on_a_multivalued_key() -> None:
    keys = "s3:RequestObjectTagKeys"
    only = cond({"ForAllValues:StringEquals": {keys: ["Owner", "Project"]}})
    some = cond({"ForAnyValue:StringEquals": {keys: ["Owner", "Project"]}})
    plain = cond({"StringEquals": {keys: ["Owner", "Project"]}})
    for tags, all_, any_ in ((("Owner",), True, True), (("Owner", "Project"), True, True),
                             (("Owner", "Secret"), False, True), (("Secret",), False, False),
                             ((), True, False)):
        ctx = {"s3:requestobjecttagkeys": tags}
        assert (put(only, ctx) is Verdict.ALLOW) is all_, tags
        assert (put(some, ctx) is Verdict.ALLOW) is any_, tags
        assert (put(plain, ctx) is Verdict.ALLOW) is any_, tags
    assert put(only, NO_CTX) is Verdict.ALLOW       # IAM: no values, all of them match
    assert put(some, NO_CTX) is Verdict.NONE
    none_secret = cond({"ForAllValues:StringNotEquals": {keys: "Secret"}})
    assert put(none_secret, {"s3:requestobjecttagkeys": ("a", "b")}) is Verdict.ALLOW
    assert put(none_secret, {"s3:requestobjecttagkeys": ("a", "Secret")}) is Verdict.NONE
    one_not_secret = cond({"ForAnyValue:StringNotEquals": {keys: "Secret"}})
    assert put(one_not_secret, {"s3:requestobjecttagkeys": ("a", "Secret")}) is Verdict.ALLOW
    assert put(one_not_secret, {"s3:requestobjecttagkeys": ("Secret",)}) is Verdict.NONE


def test_numeric_date_bool_and_case_operators() -> None:
    listing = {"Version": "2012-10-17", "Statement": [stmt(
        action="s3:ListBucket", resource=policy.bucket_arn(BUCKET),
        Condition={"NumericLessThanEquals": {"s3:max-keys": 10}})]}
    p = parse(json.dumps(listing), BUCKET)
    arn = policy.bucket_arn(BUCKET)
    assert evaluate(p, None, "s3:ListBucket", arn, {"s3:max-keys": "10"}) is Verdict.ALLOW
    assert evaluate(p, None, "s3:ListBucket", arn, {"s3:max-keys": "11"}) is Verdict.NONE
    assert evaluate(p, None, "s3:ListBucket", arn, {"s3:max-keys": "x"}) is Verdict.NONE
    before = cond({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})
    assert put(before, {"aws:currenttime": "2029-12-31T23:59:59Z"}) is Verdict.ALLOW
    assert put(before, {"aws:currenttime": "2030-01-01T00:00:00Z"}) is Verdict.NONE
    epoch = cond({"NumericGreaterThan": {"aws:EpochTime": 1_700_000_000}})
    assert put(epoch, {"aws:epochtime": "1700000001"}) is Verdict.ALLOW
    assert put(epoch, {"aws:epochtime": "1700000000"}) is Verdict.NONE
    on_date = cond({"DateEquals": {"aws:EpochTime": "2023-11-14T22:13:20Z"}})
    assert put(on_date, {"aws:epochtime": "1700000000"}) is Verdict.ALLOW
    tls = cond({"Bool": {"aws:SecureTransport": "false"}}, effect="Deny")
    assert put(tls, {"aws:securetransport": "false"}) is Verdict.DENY
    assert put(tls, {"aws:securetransport": "true"}) is Verdict.NONE
    ic = cond({"StringEqualsIgnoreCase": {"s3:x-amz-storage-class": "standard_ia"}})
    assert put(ic, {"s3:x-amz-storage-class": "STANDARD_IA"}) is Verdict.ALLOW
    assert put(cond({"StringEquals": {"s3:x-amz-storage-class": "standard_ia"}}),
               {"s3:x-amz-storage-class": "STANDARD_IA"}) is Verdict.NONE
    arn_like = cond({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::agency-*:root"}})
    assert put(arn_like, {"aws:principalarn": "arn:aws:iam::agency-b:root"}) is Verdict.ALLOW
    # A wildcard stays within its part of the ARN.
    assert put(arn_like, {"aws:principalarn": "arn:aws:iam::agency:x:root"}) is Verdict.NONE


def test_condition_keys_are_case_insensitive_values_are_not() -> None:
    p = cond({"StringEquals": {"S3:X-AMZ-ACL": "private"}})
    assert p.statements[0].conditions[0].key == "s3:x-amz-acl"
    assert put(p, {"s3:x-amz-acl": "private"}) is Verdict.ALLOW
    assert put(p, {"s3:x-amz-acl": "PRIVATE"}) is Verdict.NONE


def test_unknown_keys_refused_when_put_but_read_when_stored() -> None:
    text = doc(stmt(action="s3:PutObject", Condition={"StringEquals": {"my:key": "x"}}))
    with pytest.raises(MalformedPolicy) as exc:
        parse(text, BUCKET)
    assert str(exc.value) == "Policy has an invalid condition key"
    stored = policy.parse_cached(text, BUCKET)      # accepted before keys were checked
    assert put(stored, NO_CTX) is Verdict.NONE


def test_not_principal() -> None:
    # Allow: everyone but those named, anonymous included.
    allow = parse(doc({"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::agency-a:root"},
                       "Action": "s3:GetObject", "Resource": obj("*")}), BUCKET)
    assert evaluate(allow, "agency-a", "s3:GetObject", obj("k"), NO_CTX) is Verdict.NONE
    assert evaluate(allow, "agency-b", "s3:GetObject", obj("k"), NO_CTX) is Verdict.ALLOW
    assert evaluate(allow, None, "s3:GetObject", obj("k"), NO_CTX) is Verdict.ALLOW
    assert policy.is_public(allow)
    # Deny: everyone but those named is refused.
    deny = parse(doc(stmt(action="s3:*"), {
        "Effect": "Deny", "NotPrincipal": {"AWS": ["agency-a"]}, "Action": "s3:*",
        "Resource": obj("*")}), BUCKET)
    assert evaluate(deny, "agency-a", "s3:GetObject", obj("k"), NO_CTX) is Verdict.ALLOW
    assert evaluate(deny, "agency-b", "s3:GetObject", obj("k"), NO_CTX) is Verdict.DENY
    assert evaluate(deny, None, "s3:GetObject", obj("k"), NO_CTX) is Verdict.DENY
    nobody = parse(doc({"Effect": "Deny", "NotPrincipal": "*", "Action": "s3:*",
                        "Resource": obj("*")}), BUCKET)
    assert evaluate(nobody, None, "s3:GetObject", obj("k"), NO_CTX) is Verdict.NONE


def test_is_public_with_pinning_conditions() -> None:
    assert not policy.is_public(cond({"StringEquals": {"aws:PrincipalAccount": "agency-b"}}))
    assert policy.is_public(cond({"StringLike": {"aws:PrincipalAccount": "agency-*"}}))
    assert policy.is_public(cond({"StringNotEquals": {"aws:userid": "agency-b"}}))
    assert policy.is_public(cond({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}))
    assert policy.is_public(cond({"StringEquals": {"s3:x-amz-acl": "private"}}))


def test_references_only_statements_that_apply() -> None:
    p = parse(doc(stmt(action="s3:GetObject", resource=obj("tagged/*"), Condition={
        "StringEquals": {"s3:ExistingObjectTag/security": "public"}})), BUCKET)

    def tag(key: str) -> bool:
        return key.startswith("s3:existingobjecttag/")

    assert policy.references(p, "agency-b", "s3:GetObject", obj("tagged/x"), tag)
    assert not policy.references(p, "agency-b", "s3:GetObject", obj("other/x"), tag)
    assert not policy.references(p, "agency-b", "s3:PutObject", obj("tagged/x"), tag)
    assert not policy.references(p, "agency-b", "s3:GetObject", obj("tagged/x"),
                                 lambda k: k == "s3:x-amz-acl")


_names = st.sampled_from(["a", "b/c", "secret/x", "data/2024.csv", "x*y"])
_actions = st.sampled_from(["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                            "s3:ListBucket"])
_principals = st.sampled_from([None, "agency-a", "agency-b"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["*", "agency-a"]),
                          st.sampled_from(["s3:*", "s3:GetObject", "s3:Put*"]),
                          st.sampled_from(["*", "secret/*", "a"])), min_size=1, max_size=6),
       _principals, _actions, _names)
def test_any_matching_deny_wins(raw: list[tuple[bool, str, str, str]], who: str | None,
                                action: str, key: str) -> None:
    statements = [stmt(effect="Deny" if deny else "Allow",
                       principal="*" if p == "*" else {"AWS": p}, action=a,
                       resource=obj(r)) for deny, p, a, r in raw]
    p = parse(doc(*statements), BUCKET)
    verdict = evaluate(p, who, action, obj(key), NO_CTX)
    one_by_one = [evaluate(parse(doc(s), BUCKET), who, action, obj(key), NO_CTX)
                  for s in statements]
    if Verdict.DENY in one_by_one:
        assert verdict is Verdict.DENY
    elif Verdict.ALLOW in one_by_one:
        assert verdict is Verdict.ALLOW
    else:
        assert verdict is Verdict.NONE


# ---- POST policies (browser uploads) -----------------------------------------------------


def _signed_form(policy_doc: dict[str, Any], secret: str = "sekrit",
                 **extra: str) -> dict[str, str]:
    b64 = base64.b64encode(json.dumps(policy_doc).encode()).decode()
    sig = sigv4.hmac_hex(sigv4.signing_key(secret, "20260101", "us-east-1"), b64)
    return {"policy": b64, "x-amz-signature": sig, "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": "AK/20260101/us-east-1/s3/aws4_request",
            "x-amz-date": "20260101T000000Z", **extra}


def test_post_policy_signature_and_conditions() -> None:
    doc_ = {"expiration": "2026-01-01T01:00:00.000Z", "conditions": [
        {"bucket": BUCKET}, ["starts-with", "$key", "up/"], {"acl": "public-read"},
        ["content-length-range", 1, 10], {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": "AK/20260101/us-east-1/s3/aws4_request"},
        {"x-amz-date": "20260101T000000Z"}]}
    form = _signed_form(doc_, key="up/a", acl="public-read")
    secrets = {"AK": "sekrit"}.get
    assert postpolicy.verify_signature(form, secrets, "us-east-1") == "AK"
    with pytest.raises(errors.S3Error, match="signature"):
        postpolicy.verify_signature({**form, "policy": form["policy"][:-4] + "AAA="},
                                    secrets, "us-east-1")
    no_secrets: dict[str, str] = {}
    with pytest.raises(errors.S3Error):
        postpolicy.verify_signature(form, no_secrets.get, "us-east-1")
    assert postpolicy.verify_signature({"key": "k"}, secrets, "us-east-1") is None
    policy_ = postpolicy.parse_policy(form["policy"])
    now = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    fields = {**form, "bucket": BUCKET}
    postpolicy.check_policy(policy_, fields, 5, now)
    for bad_fields, size, when in (
            ({**fields, "key": "down/a"}, 5, now),             # key outside the prefix
            ({**fields, "acl": "private"}, 5, now),             # a field changed
            ({**fields, "x-amz-meta-extra": "1"}, 5, now),      # a field no condition names
            (fields, 5, datetime(2026, 1, 1, 2, 0, tzinfo=UTC))):    # expired
        with pytest.raises(errors.S3Error) as exc:
            postpolicy.check_policy(policy_, bad_fields, size, when)
        assert exc.value.code == "AccessDenied"
    with pytest.raises(errors.S3Error) as exc:
        postpolicy.check_policy(policy_, fields, 11, now)
    assert exc.value.code == "EntityTooLarge"
    assert exc.value.extra == {"ProposedSize": "11", "MaxSizeAllowed": "10"}
    with pytest.raises(errors.S3Error) as exc:
        postpolicy.check_policy(policy_, fields, 0, now)
    assert exc.value.code == "EntityTooSmall"
    assert exc.value.extra == {"ProposedSize": "0", "MinSizeAllowed": "1"}
    postpolicy.check_policy(policy_, {**fields, "x-ignore-me": "1"}, 5, now)
    with pytest.raises(errors.S3Error):
        postpolicy.parse_policy("not base64!")


@pytest.mark.parametrize(("dropped", "named"), [
    (("x-amz-signature",), "X-Amz-Signature"),
    (("x-amz-algorithm", "x-amz-credential"), "X-Amz-Algorithm"),
    (("x-amz-date",), "X-Amz-Date"),
    (("policy",), "Policy"),
])
def test_post_form_missing_signature_fields(dropped: tuple[str, ...], named: str) -> None:
    """AWS's answer names the first field missing, as AWS spells it (LocalStack's
    validated test_post_request_missing_signature / _missing_fields snapshots)."""
    form = {k: v for k, v in _signed_form({}).items() if k not in dropped}
    with pytest.raises(errors.S3Error) as exc:
        postpolicy.verify_signature(form, {"AK": "sekrit"}.get, "us-east-1")
    assert (exc.value.code, exc.value.extra) == (
        "InvalidArgument", {"ArgumentName": named, "ArgumentValue": ""})
    assert exc.value.message == (f"Bucket POST must contain a field named '{named}'.  If it "
                                 "is specified, please check the order of the fields.")


def test_post_form_v2_fields_and_no_signature_at_all() -> None:
    v2 = {"policy": "cG9saWN5", "signature": "c2ln", "awsaccesskeyid": "AK"}
    for drop, named in (("signature", "Signature"), ("awsaccesskeyid", "AWSAccessKeyId")):
        with pytest.raises(errors.S3Error) as exc:
            postpolicy.verify_signature({k: v for k, v in v2.items() if k != drop},
                                        {"AK": "sekrit"}.get, "us-east-1")
        assert exc.value.extra["ArgumentName"] == named
    with pytest.raises(errors.S3Error) as exc:        # a policy no signature goes with
        postpolicy.verify_signature({"policy": "cG9saWN5"}, {"AK": "x"}.get, "us-east-1")
    assert (exc.value.code, exc.value.message) == ("AccessDenied", "Access Denied")
    with pytest.raises(errors.S3Error) as exc:        # what was signed, shown back
        postpolicy.verify_signature(v2, {"AK": "sekrit"}.get, "us-east-1")
    assert exc.value.code == "SignatureDoesNotMatch" and list(exc.value.extra.items()) == [
        ("AWSAccessKeyId", "AK"), ("StringToSign", "cG9saWN5"), ("SignatureProvided", "c2ln"),
        ("StringToSignBytes", "63 47 39 73 61 57 4e 35")]
