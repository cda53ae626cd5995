"""Unit tests of gateway.website: parsing and validating website configurations as S3 does,
rendering them back, the stored form, and the routing decisions of the website endpoint."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors, website
from gateway.website import Redirect, RoutingRule, Website
from tests.gateway.botocore_offline import offline_client

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
INDEX = "<IndexDocument><Suffix>index.html</Suffix></IndexDocument>"
TO_HOST = "<Redirect><HostName>example.com</HostName></Redirect>"


def doc(*parts: str) -> bytes:
    return (f'<WebsiteConfiguration xmlns="{NS}">' + "".join(parts)
            + "</WebsiteConfiguration>").encode()


def rule(redirect: str = TO_HOST, condition: str | None = None) -> str:
    return f"<RoutingRule>{condition or ''}{redirect}</RoutingRule>"


def with_rules(*rules: str) -> bytes:
    return doc(INDEX, "<RoutingRules>" + "".join(rules) + "</RoutingRules>")


def one_rule(redirect: str = TO_HOST, condition: str | None = None) -> RoutingRule:
    (parsed,) = website.parse(with_rules(rule(redirect, condition))).rules
    return parsed


def refused(body: bytes, kind: type[errors.S3Error], message: str | None = None) -> None:
    with pytest.raises(kind) as exc:
        website.parse(body)
    assert exc.value.status == 400
    if message is not None:
        assert exc.value.message == message


# ---- parsing -------------------------------------------------------------------------------

FULL = doc(
    INDEX,
    "<ErrorDocument><Key>errors/404.html</Key></ErrorDocument>",
    "<RoutingRules>",
    rule("<Redirect><ReplaceKeyPrefixWith>documents/</ReplaceKeyPrefixWith></Redirect>",
         "<Condition><KeyPrefixEquals>docs/</KeyPrefixEquals></Condition>"),
    rule("<Redirect><HostName>example.com</HostName><Protocol>https</Protocol>"
         "<HttpRedirectCode>302</HttpRedirectCode><ReplaceKeyWith>missing.html</ReplaceKeyWith>"
         "</Redirect>",
         "<Condition><HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals>"
         "</Condition>"),
    rule("<Redirect><Protocol>http</Protocol></Redirect>",
         "<Condition><KeyPrefixEquals>old/</KeyPrefixEquals>"
         "<HttpErrorCodeReturnedEquals>503</HttpErrorCodeReturnedEquals></Condition>"),
    rule("<Redirect><HttpRedirectCode>307</HttpRedirectCode></Redirect>"),
    "</RoutingRules>",
)

FULL_SITE = Website("index.html", "errors/404.html", None, (
    RoutingRule("docs/", None, Redirect(replace_key_prefix="documents/")),
    RoutingRule(None, 404, Redirect("example.com", "https", None, "missing.html", 302)),
    RoutingRule("old/", 503, Redirect(protocol="http")),
    RoutingRule(None, None, Redirect(code=307)),
))


def test_parse_every_form() -> None:
    assert website.parse(FULL) == FULL_SITE


def test_parse_index_only() -> None:
    assert website.parse(doc(INDEX)) == Website("index.html")


@pytest.mark.parametrize(("inner", "expected"), [
    ("<HostName>example.com</HostName>", Redirect("example.com")),
    ("<Protocol>https</Protocol><HostName>a.b:8080</HostName>", Redirect("a.b:8080", "https")),
])
def test_parse_redirect_all(inner: str, expected: Redirect) -> None:
    body = doc(f"<RedirectAllRequestsTo>{inner}</RedirectAllRequestsTo>")
    assert website.parse(body) == Website(redirect_all=expected)


def test_parse_without_namespace_and_pretty_printed() -> None:
    body = (b"<WebsiteConfiguration>\n  <IndexDocument>\n    <Suffix>i.html</Suffix>\n"
            b"  </IndexDocument>\n  <RoutingRules>\n    <RoutingRule>\n      <Condition>\n"
            b"        <HttpErrorCodeReturnedEquals> 404 </HttpErrorCodeReturnedEquals>\n"
            b"      </Condition>\n      <Redirect>\n"
            b"        <HttpRedirectCode>\n302\n</HttpRedirectCode>\n      </Redirect>\n"
            b"    </RoutingRule>\n  </RoutingRules>\n</WebsiteConfiguration>\n")
    assert website.parse(body) == Website(
        "i.html", rules=(RoutingRule(error_code=404, redirect=Redirect(code=302)),))


def test_empty_strings_that_mean_something() -> None:
    # A prefix of "" matches every key; replacing with "" strips the prefix or sends to "/".
    assert one_rule("<Redirect><ReplaceKeyPrefixWith></ReplaceKeyPrefixWith></Redirect>",
                    "<Condition><KeyPrefixEquals/></Condition>") == \
        RoutingRule("", None, Redirect(replace_key_prefix=""))
    assert one_rule("<Redirect><ReplaceKeyWith/></Redirect>").redirect == \
        Redirect(replace_key="")


def test_keys_keep_their_spaces() -> None:
    body = doc("<IndexDocument><Suffix> i .html</Suffix></IndexDocument>",
               "<ErrorDocument><Key> e </Key></ErrorDocument>")
    assert website.parse(body) == Website(" i .html", " e ")


def test_not_a_website_configuration() -> None:
    refused(b"not xml", errors.MalformedXML)
    refused(b"<CORSConfiguration>" + INDEX.encode() + b"</CORSConfiguration>",
            errors.MalformedXML)


_MSG_CONJUNCTION = ("RedirectAllRequestsTo cannot be provided in conjunction with other "
                    "Routing Rules.")


@pytest.mark.parametrize("other", [
    INDEX,
    "<ErrorDocument><Key>e.html</Key></ErrorDocument>",
    "<RoutingRules>" + rule() + "</RoutingRules>",
])
def test_redirect_all_stands_alone(other: str) -> None:
    everything = "<RedirectAllRequestsTo><HostName>h</HostName></RedirectAllRequestsTo>"
    refused(doc(everything, other), errors.InvalidRequest, _MSG_CONJUNCTION)
    refused(doc(other, everything), errors.InvalidRequest, _MSG_CONJUNCTION)


@pytest.mark.parametrize("parts", [
    (),
    ("<ErrorDocument><Key>e.html</Key></ErrorDocument>",),
    ("<RoutingRules>" + rule() + "</RoutingRules>",),
])
def test_index_document_is_required(parts: tuple[str, ...]) -> None:
    refused(doc(*parts), errors.InvalidArgument,
            "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is "
            "empty")


@pytest.mark.parametrize("index", [
    "<IndexDocument/>",
    "<IndexDocument><Suffix></Suffix></IndexDocument>",
    "<IndexDocument><Suffix>a/index.html</Suffix></IndexDocument>",
    "<IndexDocument><Suffix>/</Suffix></IndexDocument>",
])
def test_bad_index_suffix(index: str) -> None:
    refused(doc(index), errors.InvalidArgument, "The IndexDocument Suffix is not well formed")


@pytest.mark.parametrize("error", ["<ErrorDocument/>", "<ErrorDocument><Key/></ErrorDocument>"])
def test_bad_error_key(error: str) -> None:
    refused(doc(INDEX, error), errors.InvalidArgument, "The ErrorDocument Key is not well formed")


def test_error_key_may_hold_slashes() -> None:
    body = doc("<ErrorDocument><Key>a/b/c.html</Key></ErrorDocument>", INDEX)
    assert website.parse(body).error_key == "a/b/c.html"


_MSG_PROTOCOL = ("Invalid protocol, protocol can be http or https. If not defined the protocol "
                 "will be selected automatically.")


@pytest.mark.parametrize("protocol", ["", "ftp", "HTTP", "Https", " http", "http "])
def test_bad_protocol(protocol: str) -> None:
    everything = (f"<RedirectAllRequestsTo><HostName>h</HostName><Protocol>{protocol}</Protocol>"
                  "</RedirectAllRequestsTo>")
    refused(doc(everything), errors.InvalidRequest, _MSG_PROTOCOL)
    refused(with_rules(rule(f"<Redirect><Protocol>{protocol}</Protocol></Redirect>")),
            errors.InvalidRequest, _MSG_PROTOCOL)


def test_host_name() -> None:
    blank = ("The HostName cannot be blank. To redirect within the same domain, the element "
             "should not be present.")
    refused(with_rules(rule("<Redirect><HostName/></Redirect>")), errors.InvalidRequest, blank)
    refused(doc("<RedirectAllRequestsTo><HostName></HostName></RedirectAllRequestsTo>"),
            errors.InvalidRequest, blank)
    refused(doc("<RedirectAllRequestsTo><Protocol>https</Protocol></RedirectAllRequestsTo>"),
            errors.MalformedXML)
    refused(doc("<RedirectAllRequestsTo/>"), errors.MalformedXML)


def test_routing_rule_count() -> None:
    refused(doc(INDEX, "<RoutingRules></RoutingRules>"), errors.MalformedXML)
    refused(doc(INDEX, "<RoutingRules/>"), errors.MalformedXML)       # botocore's for []
    assert len(website.parse(with_rules(*[rule()] * 50)).rules) == website.routing_rules_max
    refused(with_rules(*[rule()] * 51), errors.InvalidRequest,
            "51 routing rules provided, the number of routing rules in a website "
            "configuration is limited to 50.")


def test_condition_cannot_be_empty() -> None:
    refused(with_rules(rule(condition="<Condition></Condition>")), errors.InvalidRequest,
            "Condition cannot be empty. To redirect all requests without a condition, the "
            "condition element shouldn't be present.")


def test_redirect_is_required_and_not_empty() -> None:
    refused(with_rules("<RoutingRule><Condition><KeyPrefixEquals>a</KeyPrefixEquals>"
                       "</Condition></RoutingRule>"), errors.MalformedXML)
    refused(with_rules(rule("<Redirect></Redirect>")), errors.InvalidRequest)
    refused(with_rules(rule("<Redirect/>")), errors.InvalidRequest)


def test_replace_key_and_prefix_exclude_each_other() -> None:
    both = "<Redirect><ReplaceKeyWith>a</ReplaceKeyWith><ReplaceKeyPrefixWith>b/" \
           "</ReplaceKeyPrefixWith></Redirect>"
    refused(with_rules(rule(both)), errors.InvalidRequest,
            "You can only define ReplaceKeyPrefix or ReplaceKey but not both.")


def _redirect_code(text: str) -> str:
    return f"<Redirect><HttpRedirectCode>{text}</HttpRedirectCode></Redirect>"


@pytest.mark.parametrize(("text", "code"), [
    ("301", 301), ("302", 302), ("303", 303), ("304", 304), ("305", 305), ("307", 307),
    ("308", 308), (" 302\n", 302), ("0302", 302),
])
def test_redirect_codes(text: str, code: int) -> None:
    assert one_rule(_redirect_code(text)).redirect == Redirect(code=code)


@pytest.mark.parametrize("text", ["300", "306", "309", "399", "200", "404", "3", "",
                                  "abc", "-301", "+301", "3.0e2", "٣٠١", "³⁰¹"])
def test_bad_redirect_codes(text: str) -> None:
    refused(with_rules(rule(_redirect_code(text))), errors.InvalidRequest,
            f"The provided HTTP redirect code ({text.strip()}) is not valid. Valid codes are "
            "3XX except 300.")


def _error_code(text: str) -> str:
    return f"<Condition><HttpErrorCodeReturnedEquals>{text}</HttpErrorCodeReturnedEquals>" \
           "</Condition>"


@pytest.mark.parametrize("code", [400, 403, 404, 418, 499, 500, 503, 599])
def test_error_codes(code: int) -> None:
    assert one_rule(condition=_error_code(str(code))).error_code == code


@pytest.mark.parametrize("text", ["399", "600", "302", "200", "4", "", "abc", "-404", "٤٠٤"])
def test_bad_error_codes(text: str) -> None:
    refused(with_rules(rule(condition=_error_code(text))), errors.InvalidRequest,
            f"The provided HTTP error code ({text}) is not valid. Valid codes are 4XX or 5XX.")


def test_absurdly_long_numbers() -> None:
    # Longer than int() converts: refused like any other bad code, with a short message.
    digits = "3" * 5000
    for body in (with_rules(rule(_redirect_code(digits))),
                 with_rules(rule(condition=_error_code(digits)))):
        with pytest.raises(errors.InvalidRequest) as exc:
            website.parse(body)
        assert f"({'3' * 20}...)" in exc.value.message
        assert len(exc.value.message) < 120
    # Leading zeros are no part of the value, however many.
    assert one_rule(_redirect_code("0" * 5000 + "301")).redirect.code == 301
    assert one_rule(condition=_error_code("0" * 5000 + "404")).error_code == 404


@pytest.mark.parametrize("body", [
    doc(INDEX, "<Other/>"),
    doc(INDEX, INDEX),
    doc(INDEX, "<ErrorDocument><Key>a</Key></ErrorDocument>" * 2),
    doc(INDEX, "<RoutingRules>" + rule() + "</RoutingRules>" * 2),
    doc("<IndexDocument><Suffix>a</Suffix><Suffix>b</Suffix></IndexDocument>"),
    doc("<IndexDocument><Suffix>a</Suffix><Key>b</Key></IndexDocument>"),
    doc(INDEX, "<ErrorDocument><Key>a</Key><Suffix>b</Suffix></ErrorDocument>"),
    doc(INDEX, "<RoutingRules>" + rule() + "<Rule/></RoutingRules>"),
    with_rules("<RoutingRule><Other/>" + TO_HOST + "</RoutingRule>"),
    with_rules("<RoutingRule>" + TO_HOST + TO_HOST + "</RoutingRule>"),
    with_rules(rule(condition="<Condition><KeyPrefixEquals>a</KeyPrefixEquals></Condition>" * 2)),
    with_rules(rule(condition="<Condition><Prefix>a</Prefix></Condition>")),
    with_rules(rule(condition="<Condition><KeyPrefixEquals>a</KeyPrefixEquals>"
                              "<KeyPrefixEquals>b</KeyPrefixEquals></Condition>")),
    with_rules(rule("<Redirect><HostName>a</HostName><HostName>b</HostName></Redirect>")),
    with_rules(rule("<Redirect><Host>a</Host></Redirect>")),
    doc("<RedirectAllRequestsTo><HostName>h</HostName><ReplaceKeyWith>k</ReplaceKeyWith>"
        "</RedirectAllRequestsTo>"),
    doc("<RedirectAllRequestsTo><HostName>h</HostName><HostName>i</HostName>"
        "</RedirectAllRequestsTo>"),
    doc("<RedirectAllRequestsTo><HostName>h</HostName></RedirectAllRequestsTo>" * 2),
    doc("<IndexDocument><Suffix>a<b/></Suffix></IndexDocument>"),
    with_rules(rule("<Redirect><HostName><b>h</b></HostName></Redirect>")),
])
def test_unknown_or_repeated_elements(body: bytes) -> None:
    refused(body, errors.MalformedXML)


# ---- rendering and the stored form ---------------------------------------------------------


def test_render() -> None:
    assert website.render(FULL_SITE).decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<WebsiteConfiguration xmlns="{NS}">'
        "<IndexDocument><Suffix>index.html</Suffix></IndexDocument>"
        "<ErrorDocument><Key>errors/404.html</Key></ErrorDocument>"
        "<RoutingRules>"
        "<RoutingRule><Condition><KeyPrefixEquals>docs/</KeyPrefixEquals></Condition>"
        "<Redirect><ReplaceKeyPrefixWith>documents/</ReplaceKeyPrefixWith></Redirect>"
        "</RoutingRule>"
        "<RoutingRule><Condition><HttpErrorCodeReturnedEquals>404"
        "</HttpErrorCodeReturnedEquals></Condition>"
        "<Redirect><HostName>example.com</HostName><HttpRedirectCode>302</HttpRedirectCode>"
        "<Protocol>https</Protocol><ReplaceKeyWith>missing.html</ReplaceKeyWith></Redirect>"
        "</RoutingRule>"
        "<RoutingRule><Condition><HttpErrorCodeReturnedEquals>503"
        "</HttpErrorCodeReturnedEquals><KeyPrefixEquals>old/</KeyPrefixEquals></Condition>"
        "<Redirect><Protocol>http</Protocol></Redirect></RoutingRule>"
        "<RoutingRule><Redirect><HttpRedirectCode>307</HttpRedirectCode></Redirect>"
        "</RoutingRule>"
        "</RoutingRules></WebsiteConfiguration>")
    assert website.parse(website.render(FULL_SITE)) == FULL_SITE


def test_render_redirect_all_and_escapes() -> None:
    w = Website(redirect_all=Redirect("a&b<c>", "https"))
    assert website.render(w).decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<WebsiteConfiguration xmlns="{NS}"><RedirectAllRequestsTo>'
        "<HostName>a&amp;b&lt;c&gt;</HostName><Protocol>https</Protocol>"
        "</RedirectAllRequestsTo></WebsiteConfiguration>")
    assert website.parse(website.render(w)) == w
    assert b"<Suffix>a&#xD;&#xA;b</Suffix>" in website.render(Website("a\r\nb"))


def test_pack_unpack() -> None:
    assert website.pack(None) is None
    assert website.unpack(None) is None
    for w in (FULL_SITE, Website(redirect_all=Redirect("h", "http")), Website("i")):
        stored = msgpack.unpackb(msgpack.packb(website.pack(w)))
        assert website.unpack(stored) == w
        assert website.pack(website.unpack(stored)) == website.pack(w)


# ---- routing -------------------------------------------------------------------------------


def test_index_key() -> None:
    w = Website("index.html")
    assert website.index_key(w, "") == "index.html"
    assert website.index_key(w, "docs/") == "docs/index.html"
    assert website.index_key(w, "a/b/") == "a/b/index.html"
    assert website.index_key(w, "docs") == "docs"
    assert website.index_key(w, "page.html") == "page.html"


ROUTED = Website("index.html", rules=(
    RoutingRule(None, 404, Redirect("errors.example")),             # 0: error code only
    RoutingRule("docs/", None, Redirect(replace_key_prefix="documents/")),    # 1
    RoutingRule("docs/old/", None, Redirect(replace_key="gone.html")),        # 2: shadowed by 1
    RoutingRule("img/", 403, Redirect(replace_key="private.html")),           # 3: both
    RoutingRule("img/", 404, Redirect(replace_key="noimage.png")),            # 4: shadowed by 0
    RoutingRule(None, 403, Redirect(replace_key="denied.html")),              # 5
    RoutingRule(None, None, Redirect(protocol="https")),                      # 6: everything
))


def test_rule_before() -> None:
    assert website.rule_before(ROUTED, "docs/a.html") == ROUTED.rules[1]
    assert website.rule_before(ROUTED, "docs/old/x") == ROUTED.rules[1]
    assert website.rule_before(ROUTED, "img/a.png") == ROUTED.rules[6]
    assert website.rule_before(ROUTED, "") == ROUTED.rules[6]
    assert website.rule_before(Website("i", rules=ROUTED.rules[:6]), "other") is None
    assert website.rule_before(Website("i"), "docs/") is None
    only_prefix = Website("i", rules=(RoutingRule("", None, Redirect(code=302)),))
    assert website.rule_before(only_prefix, "anything") == only_prefix.rules[0]


def test_rule_after() -> None:
    assert website.rule_after(ROUTED, "a.html", 404) == ROUTED.rules[0]
    assert website.rule_after(ROUTED, "img/a.png", 404) == ROUTED.rules[0]
    assert website.rule_after(ROUTED, "img/a.png", 403) == ROUTED.rules[3]
    assert website.rule_after(ROUTED, "docs/x", 403) == ROUTED.rules[5]
    assert website.rule_after(ROUTED, "a.html", 500) is None       # no rule without a code
    assert website.rule_after(Website("i", rules=ROUTED.rules[3:5]), "x/y", 404) is None


def test_location() -> None:
    loc = website.location
    prefix = Redirect(replace_key_prefix="documents/")
    assert loc(prefix, "docs/a.html", "docs/", "site.test", "http") == \
        "http://site.test/documents/a.html"
    assert loc(prefix, "a.html", "", "site.test", "http") == "http://site.test/documents/a.html"
    assert loc(prefix, "a.html", None, "site.test", "http") == "http://site.test/a.html"
    assert loc(Redirect(replace_key_prefix=""), "docs/a", "docs/", "h", "http") == "http://h/a"
    assert loc(Redirect(replace_key="gone.html"), "docs/a", "docs/", "h", "http") == \
        "http://h/gone.html"
    assert loc(Redirect(replace_key=""), "docs/a", "docs/", "h:8080", "https") == \
        "https://h:8080/"
    assert loc(Redirect("other.example", "https"), "a/b.html", None, "h", "http") == \
        "https://other.example/a/b.html"
    assert loc(Redirect(protocol="http"), "k", None, "h", "https") == "http://h/k"
    assert loc(Redirect(), "", None, "h", "http") == "http://h/"


def test_location_quotes_the_path() -> None:
    got = website.location(Redirect("h"), "a b/é~%?#&+.html", None, "x", "http")
    assert got == "http://h/a%20b/%C3%A9~%25%3F%23%26%2B.html"


def test_redirect_code() -> None:
    assert website.redirect_code(Redirect()) == 301
    assert website.redirect_code(Redirect(code=302)) == 302
    assert website.redirect_code(Redirect(code=308)) == 308


# ---- render -> parse, for any valid configuration ------------------------------------------


def _in_xml_1_0(c: str) -> bool:
    # XML 1.0 has no way to write the other C0 controls, the surrogates, U+FFFE or U+FFFF.
    n = ord(c)
    return c in "\t\n\r" or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000


_chars = st.one_of(st.sampled_from("<&>\"' \t\r\n]]>/é漢🙂"),
                   st.characters(codec="utf-8").filter(_in_xml_1_0))
texts = st.text(_chars, max_size=16)
nonempty = st.text(_chars, min_size=1, max_size=16)
protocols = st.sampled_from(["", "http", "https"])


@st.composite
def redirects(draw: st.DrawFn) -> Redirect:
    replace = draw(st.sampled_from(["none", "prefix", "key"]))
    r = Redirect(draw(st.just("") | nonempty), draw(protocols),
                 draw(texts) if replace == "prefix" else None,
                 draw(texts) if replace == "key" else None,
                 draw(st.none() | st.sampled_from([301, 302, 303, 304, 305, 307, 308])))
    # A Redirect must say something: give the empty ones a code.
    return r if r != Redirect() else Redirect(code=302)


@st.composite
def routing_rules(draw: st.DrawFn) -> RoutingRule:
    return RoutingRule(draw(st.none() | texts), draw(st.none() | st.integers(400, 599)),
                       draw(redirects()))


@st.composite
def websites(draw: st.DrawFn) -> Website:
    if draw(st.booleans()):
        return Website(redirect_all=Redirect(draw(nonempty), draw(protocols)))
    suffix = draw(st.text(_chars.filter(lambda c: c != "/"), min_size=1, max_size=16))
    rules = draw(st.lists(routing_rules(), max_size=website.routing_rules_max))
    return Website(suffix, draw(texts), None, tuple(rules))


@settings(max_examples=300, deadline=None)
@given(websites())
def test_render_parse_round_trip(w: Website) -> None:
    assert website.parse(website.render(w)) == w
    assert website.unpack(msgpack.unpackb(msgpack.packb(website.pack(w)))) == w


# ---- botocore on both sides ----------------------------------------------------------------


BOTO_SITES: list[tuple[dict[str, Any], Website]] = [
    ({"IndexDocument": {"Suffix": "index.html"},
      "ErrorDocument": {"Key": "errors/é&<404>.html"},
      "RoutingRules": [
          {"Condition": {"KeyPrefixEquals": "docs/"},
           "Redirect": {"ReplaceKeyPrefixWith": "documents/"}},
          {"Condition": {"HttpErrorCodeReturnedEquals": "404", "KeyPrefixEquals": "img/"},
           "Redirect": {"HostName": "images.example", "Protocol": "https",
                        "HttpRedirectCode": "307", "ReplaceKeyWith": "missing.png"}},
          {"Redirect": {"Protocol": "http"}},
      ]},
     Website("index.html", "errors/é&<404>.html", None, (
         RoutingRule("docs/", None, Redirect(replace_key_prefix="documents/")),
         RoutingRule("img/", 404, Redirect("images.example", "https", None, "missing.png", 307)),
         RoutingRule(None, None, Redirect(protocol="http")),
     ))),
    ({"RedirectAllRequestsTo": {"HostName": "www.example.com", "Protocol": "https"}},
     Website(redirect_all=Redirect("www.example.com", "https"))),
    ({"RedirectAllRequestsTo": {"HostName": "www.example.com"}},
     Website(redirect_all=Redirect("www.example.com"))),
]


@pytest.mark.parametrize(("sent", "parsed"), BOTO_SITES)
def test_botocore_request_parses(sent: dict[str, Any], parsed: Website) -> None:
    seen: list[bytes] = []
    client = offline_client("PutBucketWebsite", b"", seen)
    client.put_bucket_website(Bucket="b", WebsiteConfiguration=sent)
    assert website.parse(seen[0]) == parsed


@pytest.mark.parametrize(("sent", "parsed"), BOTO_SITES)
def test_botocore_reads_render(sent: dict[str, Any], parsed: Website) -> None:
    seen: list[bytes] = []
    client = offline_client("GetBucketWebsite", website.render(parsed), seen)
    got = client.get_bucket_website(Bucket="b")
    got.pop("ResponseMetadata")
    assert got == sent
