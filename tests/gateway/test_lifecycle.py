"""Unit tests of gateway.lifecycle: parsing and validating lifecycle configurations as S3
does, rendering them back, the stored form, and the due times of expiry and abort."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors, lifecycle
from gateway.lifecycle import Filter, Rule
from tests.gateway.botocore_offline import offline_client

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
DAY = lifecycle.day_ms_default
MS_2027 = 1_798_761_600_000            # 2027-01-01T00:00:00Z


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"gen-{next(counter)}"


def doc(*rules: str) -> bytes:
    return (f'<LifecycleConfiguration xmlns="{NS}">' + "".join(rules)
            + "</LifecycleConfiguration>").encode()


def rule(inner: str, status: str = "Enabled", filt: str = "<Filter/>",
         action: str = "<Expiration><Days>1</Days></Expiration>") -> str:
    return f"<Rule>{inner}<Status>{status}</Status>{filt}{action}</Rule>"


def one(xml: str) -> Rule:
    (parsed,) = lifecycle.parse(doc(xml), ids())
    return parsed


def refused(body: bytes, kind: type[errors.S3Error], message: str | None = None) -> None:
    with pytest.raises(kind) as exc:
        lifecycle.parse(body, ids())
    assert exc.value.status == 400
    if message is not None:
        assert exc.value.message == message


# ---- parsing -------------------------------------------------------------------------------

FULL = doc(
    "<Rule><ID>legacy</ID><Prefix>logs/</Prefix><Status>Enabled</Status>"
    "<Expiration><Days>30</Days></Expiration></Rule>",
    "<Rule><ID>all</ID><Filter></Filter><Status>Disabled</Status>"
    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation>"
    "</AbortIncompleteMultipartUpload></Rule>",
    "<Rule><ID>tagged</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
    "<Status>Enabled</Status><Expiration><Date>2027-01-01T00:00:00.000Z</Date></Expiration>"
    "</Rule>",
    "<Rule><ID>big</ID><Filter><ObjectSizeGreaterThan>1024</ObjectSizeGreaterThan></Filter>"
    "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
    "<Rule><ID>and</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k1</Key><Value>1</Value>"
    "</Tag><Tag><Key>k2</Key><Value></Value></Tag><ObjectSizeGreaterThan>0"
    "</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter>"
    "<Status>Enabled</Status><Expiration><Days>2</Days></Expiration>"
    "<NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays>"
    "<NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>",
    "<Rule><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status>"
    "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
    "</Rule>",
)

FULL_RULES = (
    Rule("legacy", True, Filter("logs/", form="prefix"), expiration_days=30),
    Rule("all", False, Filter(), abort_days=7),
    Rule("tagged", True, Filter(tags=(("k", "v"),)), expiration_date_ms=MS_2027),
    Rule("big", True, Filter(size_gt=1024), expiration_days=1),
    Rule("and", True, Filter("a/", (("k1", "1"), ("k2", "")), 0, 100, "and"),
         expiration_days=2, noncurrent_days=5, newer_noncurrent=3),
    Rule("gen-1", True, Filter("tmp/"), expired_object_delete_marker=True),
)


def test_parse_every_form() -> None:
    assert lifecycle.parse(FULL, ids()) == FULL_RULES


def test_parse_without_namespace_and_with_whitespace() -> None:
    body = (b"<LifecycleConfiguration>\n  <Rule>\n    <ID>r</ID>\n    <Filter/>\n"
            b"    <Status> Enabled </Status>\n    <Expiration><Days> 3 </Days></Expiration>\n"
            b"  </Rule>\n</LifecycleConfiguration>")
    assert lifecycle.parse(body, ids()) == (Rule("r", True, Filter(), expiration_days=3),)


def test_root_and_rule_count() -> None:
    refused(b"<CORSConfiguration><Rule/></CORSConfiguration>", errors.MalformedXML)
    refused(b"not xml", errors.MalformedXML)
    refused(doc(), errors.MalformedXML)
    refused(doc(*(rule(f"<ID>{i}</ID>") for i in range(1001))), errors.MalformedXML)
    assert len(lifecycle.parse(doc(*(rule(f"<ID>{i}</ID>") for i in range(1000))), ids())) \
        == lifecycle.rules_max
    stray = doc(rule("")).replace(b"</LifecycleConfiguration>",
                                  b"<Other/></LifecycleConfiguration>")
    refused(stray, errors.MalformedXML)


def test_ids() -> None:
    new_id = ids()
    rules = lifecycle.parse(doc(rule(""), rule("<ID></ID>"), rule("<ID>x</ID>")), new_id)
    assert [r.rule_id for r in rules] == ["gen-1", "gen-2", "x"]
    assert one(rule(f"<ID>{'i' * 255}</ID>")).rule_id == "i" * lifecycle.rule_id_max
    refused(doc(rule(f"<ID>{'i' * 256}</ID>")), errors.InvalidArgument,
            "ID length should not exceed allowed limit of 255")
    refused(doc(rule("<ID>same</ID>"), rule("<ID>same</ID>")), errors.InvalidArgument,
            "Rule ID must be unique. Found same ID for more than one rule")


@pytest.mark.parametrize("status", ["", "enabled", "ENABLED", "On"])
def test_status_must_be_enabled_or_disabled(status: str) -> None:
    refused(doc(rule("", status=status)), errors.MalformedXML)


def test_status_is_required() -> None:
    refused(doc("<Rule><Filter/><Expiration><Days>1</Days></Expiration></Rule>"),
            errors.MalformedXML)


@pytest.mark.parametrize("filt", [
    "",                                                         # neither Prefix nor Filter
    "<Prefix>a</Prefix><Filter/>",                              # both
    "<Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter>",
    "<Filter><Tag><Key>a</Key><Value>b</Value></Tag><Tag><Key>c</Key><Value>d</Value></Tag>"
    "</Filter>",
    "<Filter><Prefix>a</Prefix><And><Prefix>b</Prefix></And></Filter>",
    "<Filter><Suffix>a</Suffix></Filter>",
    "<Filter><And><Suffix>a</Suffix></And></Filter>",
    "<Filter><And><Prefix>a</Prefix><Prefix>b</Prefix></And></Filter>",
    "<Filter><Tag><Key>a</Key></Tag></Filter>",                 # a Tag needs Key and Value
    "<Filter><Tag><Value>a</Value></Tag></Filter>",
    "<Filter/><Filter/>",
])
def test_malformed_filters(filt: str) -> None:
    refused(doc(rule("<ID>r</ID>", filt=filt)), errors.MalformedXML)


def test_filter_forms() -> None:
    assert one(rule("", filt="<Prefix></Prefix>")).filter == Filter(form="prefix")
    assert one(rule("", filt="<Filter><Prefix>p</Prefix></Filter>")).filter == Filter("p")
    assert one(rule("", filt="<Filter><ObjectSizeLessThan>9</ObjectSizeLessThan></Filter>")) \
        .filter == Filter(size_lt=9)
    assert one(rule("", filt="<Filter><And></And></Filter>")).filter == Filter(form="and")
    # An empty Prefix is kept, and given back as AWS gives it back: <Filter><Prefix/>.
    empty = one(rule("", filt="<Filter><Prefix></Prefix></Filter>"))
    assert empty.filter == Filter(empty_prefix=True)
    assert b"<Filter><Prefix></Prefix></Filter>" in lifecycle.render((empty,))
    assert b"<Filter></Filter>" in lifecycle.render((one(rule("", filt="<Filter/>")),))
    anded = one(rule("", filt="<Filter><And><Prefix/><Tag><Key>k</Key><Value>v</Value></Tag>"
                         "</And></Filter>"))
    assert b"<And><Prefix></Prefix><Tag>" in lifecycle.render((anded,))


def test_duplicate_tag_keys() -> None:
    filt = ("<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag>"
            "<Tag><Key>k</Key><Value>2</Value></Tag></And></Filter>")
    refused(doc(rule("", filt=filt)), errors.InvalidArgument, "Duplicate Tag Keys are not allowed")


@pytest.mark.parametrize("value", ["-1", "+1", "abc", "1.5", "", "²", str(2**63), "9" * 5000])
@pytest.mark.parametrize("name", ["ObjectSizeGreaterThan", "ObjectSizeLessThan"])
def test_bad_sizes(name: str, value: str) -> None:
    refused(doc(rule("", filt=f"<Filter><{name}>{value}</{name}></Filter>")),
            errors.InvalidArgument)


@pytest.mark.parametrize(("gt", "lt"), [(10, 10), (11, 10)])
def test_size_bounds_must_leave_room(gt: int, lt: int) -> None:
    filt = (f"<Filter><And><ObjectSizeGreaterThan>{gt}</ObjectSizeGreaterThan>"
            f"<ObjectSizeLessThan>{lt}</ObjectSizeLessThan></And></Filter>")
    refused(doc(rule("", filt=filt)), errors.InvalidArgument,
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan")


def test_at_least_one_action() -> None:
    refused(doc(rule("<ID>r</ID>", action="")), errors.InvalidRequest,
            "At least one action needs to be specified in a rule")


def test_unknown_or_repeated_rule_children() -> None:
    refused(doc(rule("<Owner>me</Owner>")), errors.MalformedXML)
    refused(doc(rule("<ID>a</ID><ID>b</ID>")), errors.MalformedXML)
    refused(doc(rule("", action="<Expiration><Days>1</Days></Expiration>" * 2)),
            errors.MalformedXML)


@pytest.mark.parametrize("action", [
    "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>",
    "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
    "<StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>",
])
def test_transitions_are_refused(action: str) -> None:
    refused(doc(rule("", action=action)), errors.InvalidStorageClass)
    refused(doc(rule("", action=action + "<Expiration><Days>9</Days></Expiration>")),
            errors.InvalidStorageClass)


# ---- Expiration ----------------------------------------------------------------------------


def expiration(inner: str, filt: str = "<Filter/>") -> Rule:
    return one(rule("<ID>r</ID>", filt=filt, action=f"<Expiration>{inner}</Expiration>"))


@pytest.mark.parametrize("inner", [
    "",
    "<Days>1</Days><Date>2027-01-01T00:00:00Z</Date>",
    "<Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>",
    "<Days>1</Days><Days>2</Days>",
    "<Years>1</Years>",
    "<Days>abc</Days>",
    "<Days></Days>",
    "<Days>1.0</Days>",
    "<Days>99999999999</Days>",
    "<Days>" + "9" * 5000 + "</Days>",
    "<Date>tomorrow</Date>",
    "<Date>2027-13-01</Date>",
    "<Date>0001-01-01T00:00:00+01:00</Date>",
    "<Date>\uff12\uff10\uff12\uff17-01-01</Date>",      # full-width digits
    "<Date></Date>",
    "<ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker>",
    "<ExpiredObjectDeleteMarker>True</ExpiredObjectDeleteMarker>",
])
def test_malformed_expiration(inner: str) -> None:
    with pytest.raises(errors.MalformedXML):
        expiration(inner)


@pytest.mark.parametrize("days", ["0", "-1", "-0"])
def test_expiration_days_must_be_positive(days: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        expiration(f"<Days>{days}</Days>")
    assert exc.value.message == "'Days' for Expiration action must be a positive integer"


@pytest.mark.parametrize("text", [
    "2027-01-01T00:00:00Z", "2027-01-01T00:00:00.000Z", "2027-01-01", "2027-01-01T00:00:00",
    "2027-01-01T00:00:00+00:00", "2027-01-01T01:00:00+01:00", "2026-12-31T19:00:00-05:00",
])
def test_expiration_dates(text: str) -> None:
    assert expiration(f"<Date>{text}</Date>").expiration_date_ms == MS_2027


@pytest.mark.parametrize("text", [
    "2027-01-01T00:00:01Z", "2027-01-01T00:00:00.001Z", "2027-01-01T12:00:00Z",
    "2027-01-01T00:00:00+01:00",
])
def test_expiration_date_must_be_midnight_utc(text: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        expiration(f"<Date>{text}</Date>")
    assert exc.value.message == "'Date' must be at midnight GMT"


def test_expired_object_delete_marker() -> None:
    marker = "<ExpiredObjectDeleteMarker>{}</ExpiredObjectDeleteMarker>"
    assert expiration(marker.format("true")).expired_object_delete_marker is True
    assert expiration(marker.format("false")).expired_object_delete_marker is False
    sized = "<Filter><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></Filter>"
    assert expiration(marker.format("true"), sized).expired_object_delete_marker is True
    for filt in ("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                 "<Filter><And><Prefix>p</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
                 "</And></Filter>"):
        with pytest.raises(errors.InvalidRequest) as exc:
            expiration(marker.format("true"), filt)
        assert exc.value.message == "ExpiredObjectDeleteMarker cannot be specified with Tags."


# ---- AbortIncompleteMultipartUpload and NoncurrentVersionExpiration ------------------------


def abort(days: str, filt: str = "<Filter/>") -> Rule:
    return one(rule("<ID>r</ID>", filt=filt, action="<AbortIncompleteMultipartUpload>"
                    f"{days}</AbortIncompleteMultipartUpload>"))


@pytest.mark.parametrize("inner", [
    "<DaysAfterInitiation>0</DaysAfterInitiation>",
    "<DaysAfterInitiation>-2</DaysAfterInitiation>",
    "<DaysAfterInitiation>x</DaysAfterInitiation>",
    "",
])
def test_abort_days_must_be_positive(inner: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        abort(inner)
    assert exc.value.message == ("'DaysAfterInitiation' for AbortIncompleteMultipartUpload "
                                 "action must be a positive integer")


@pytest.mark.parametrize("filt", [
    "<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
    "<Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter>",
    "<Filter><And><Prefix>p</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter>",
])
def test_abort_takes_only_a_prefix(filt: str) -> None:
    with pytest.raises(errors.InvalidRequest) as exc:
        abort("<DaysAfterInitiation>1</DaysAfterInitiation>", filt)
    assert exc.value.message == "AbortIncompleteMultipartUpload cannot be specified with Tags."
    ok = abort("<DaysAfterInitiation>3</DaysAfterInitiation>", "<Prefix>p/</Prefix>")
    assert (ok.abort_days, ok.filter) == (3, Filter("p/", form="prefix"))


def noncurrent(inner: str) -> Rule:
    return one(rule("<ID>r</ID>", action=f"<NoncurrentVersionExpiration>{inner}"
                    "</NoncurrentVersionExpiration>"))


def test_noncurrent_expiration() -> None:
    r = noncurrent("<NoncurrentDays>4</NoncurrentDays>")
    assert (r.noncurrent_days, r.newer_noncurrent) == (4, None)
    r = noncurrent("<NoncurrentDays>4</NoncurrentDays>"
                   "<NewerNoncurrentVersions>100</NewerNoncurrentVersions>")
    assert (r.noncurrent_days, r.newer_noncurrent) == (4, 100)
    r = noncurrent("<NoncurrentDays>" + "0" * 5000 + "7</NoncurrentDays>")
    assert r.noncurrent_days == 7
    for days in ("0", "-1", "n", ""):
        with pytest.raises(errors.InvalidArgument) as exc:
            noncurrent(f"<NoncurrentDays>{days}</NoncurrentDays>")
        assert exc.value.message == ("'NoncurrentDays' for NoncurrentVersionExpiration action "
                                     "must be a positive integer")
    for newer in ("0", "101", "x", "1" * 5000):
        with pytest.raises(errors.InvalidArgument):
            noncurrent("<NoncurrentDays>4</NoncurrentDays>"
                       f"<NewerNoncurrentVersions>{newer}</NewerNoncurrentVersions>")


# ---- rendering and the stored form ---------------------------------------------------------


def test_render_order() -> None:
    rules = (
        Rule("a&b", True, Filter("<logs>/", form="prefix"), expiration_days=30,
             abort_days=2),
        Rule("t", False, Filter("p", (("k", "v"),), 1, 9, "and"), expiration_date_ms=MS_2027,
             noncurrent_days=5, newer_noncurrent=2),
        Rule("e", True, Filter(), expired_object_delete_marker=False),
        Rule("s", True, Filter(size_lt=7), expiration_days=1),
    )
    assert lifecycle.render(rules).decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<LifecycleConfiguration xmlns="{NS}">'
        "<Rule><Expiration><Days>30</Days></Expiration><ID>a&amp;b</ID>"
        "<Prefix>&lt;logs&gt;/</Prefix><Status>Enabled</Status>"
        "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
        "</AbortIncompleteMultipartUpload></Rule>"
        "<Rule><Expiration><Date>2027-01-01T00:00:00.000Z</Date></Expiration><ID>t</ID>"
        "<Filter><And><Prefix>p</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
        "<ObjectSizeGreaterThan>1</ObjectSizeGreaterThan>"
        "<ObjectSizeLessThan>9</ObjectSizeLessThan></And></Filter><Status>Disabled</Status>"
        "<NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays>"
        "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
        "</Rule>"
        "<Rule><Expiration><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker>"
        "</Expiration><ID>e</ID><Filter></Filter><Status>Enabled</Status></Rule>"
        "<Rule><Expiration><Days>1</Days></Expiration><ID>s</ID>"
        "<Filter><ObjectSizeLessThan>7</ObjectSizeLessThan></Filter><Status>Enabled</Status>"
        "</Rule></LifecycleConfiguration>")
    assert lifecycle.parse(lifecycle.render(rules), ids()) == rules


def test_render_filter_with_several_conditions_uses_and() -> None:
    loose = Rule("r", True, Filter("p", (("k", "v"),)), expiration_days=1)
    assert b"<Filter><And><Prefix>p</Prefix><Tag>" in lifecycle.render((loose,))


def test_render_years_before_1000() -> None:
    early = Rule("r", True, Filter(), expiration_date_ms=-62135596800000)   # 0001-01-01
    assert b"<Date>0001-01-01T00:00:00.000Z</Date>" in lifecycle.render((early,))
    assert lifecycle.parse(lifecycle.render((early,)), ids()) == (early,)


def test_pack_unpack() -> None:
    assert lifecycle.unpack(None) == ()
    assert lifecycle.pack(()) == []
    stored = msgpack.unpackb(msgpack.packb(lifecycle.pack(FULL_RULES)))
    assert lifecycle.unpack(stored) == FULL_RULES
    assert lifecycle.pack(FULL_RULES) == lifecycle.pack(lifecycle.unpack(stored))
    # A filter stored before empty_prefix (five members) reads as one without it.
    before = [[*r[:2], r[2][:5], *r[3:]] for r in stored]
    assert lifecycle.unpack(before) == FULL_RULES


# ---- matching and due times ----------------------------------------------------------------


def test_matches() -> None:
    f = Filter("a/", (("k", "v"), ("x", "")), 10, 20, "and")
    tags = [("x", ""), ("k", "v"), ("other", "1")]
    assert lifecycle.matches(f, "a/b", 15, tags)
    assert not lifecycle.matches(f, "b/a", 15, tags)
    assert not lifecycle.matches(f, "a/b", 10, tags)            # bounds are strict
    assert not lifecycle.matches(f, "a/b", 20, tags)
    assert not lifecycle.matches(f, "a/b", 15, [("k", "v")])
    assert not lifecycle.matches(f, "a/b", 15, [("k", "w"), ("x", "")])
    assert lifecycle.matches(Filter(), "", 0, ())
    assert lifecycle.matches(Filter(size_gt=0), "k", 1, ())
    assert not lifecycle.matches(Filter(size_gt=0), "k", 0, ())


def test_expiry_rounds_up_to_the_next_day() -> None:
    rules = (Rule("d", True, Filter(), expiration_days=2),)
    assert lifecycle.expiry(rules, "k", 1, (), 0, 1000) == (2000, "d")
    assert lifecycle.expiry(rules, "k", 1, (), 1, 1000) == (3000, "d")
    assert lifecycle.expiry(rules, "k", 1, (), 999, 1000) == (3000, "d")
    assert lifecycle.expiry(rules, "k", 1, (), 1000, 1000) == (3000, "d")
    # 2012-12-21 11:30 UTC plus one day is due at midnight starting 2012-12-23.
    created = 1_356_089_400_000
    one_day = (Rule("d", True, Filter(), expiration_days=1),)
    assert lifecycle.expiry(one_day, "k", 1, (), created) == (1_356_220_800_000, "d")


def test_expiry_earliest_of_the_enabled_matching_rules() -> None:
    rules = (
        Rule("off", False, Filter(), expiration_days=1),
        Rule("late", True, Filter(), expiration_days=10),
        Rule("tagged", True, Filter(tags=(("t", "1"),)), expiration_days=2),
        Rule("dated", True, Filter("a/"), expiration_date_ms=5 * DAY),
        Rule("marker", True, Filter(), expired_object_delete_marker=True),
        Rule("abort", True, Filter(), abort_days=1),
        Rule("late-too", True, Filter(), expiration_days=10),
    )
    assert lifecycle.expiry(rules, "b", 1, (), 0) == (10 * DAY, "late")
    assert lifecycle.expiry(rules, "a/x", 1, (), 0) == (5 * DAY, "dated")
    assert lifecycle.expiry(rules, "a/x", 1, [("t", "1")], 0) == (2 * DAY, "tagged")
    assert lifecycle.expiry(rules[:1] + rules[4:6], "a", 1, (), 0) is None
    assert lifecycle.expiry((), "a", 1, (), 0) is None


def test_abort_due() -> None:
    rules = (
        Rule("tags", True, Filter(tags=(("k", "v"),)), abort_days=1),
        Rule("size", True, Filter(size_lt=100), abort_days=1),
        Rule("off", False, Filter(), abort_days=1),
        Rule("logs", True, Filter("logs/", form="prefix"), abort_days=3),
        Rule("all", True, Filter(), abort_days=7),
        Rule("exp", True, Filter(), expiration_days=1),
    )
    assert lifecycle.abort_due(rules, "logs/a", 500, 1000) == (4000, "logs")
    assert lifecycle.abort_due(rules, "data/a", 500, 1000) == (8000, "all")
    assert lifecycle.abort_due(rules[:3], "a", 0) is None


def test_expiration_header() -> None:
    due = 1_356_220_800_000            # 2012-12-23T00:00:00Z
    assert lifecycle.expiration_header(due, "a rule/ü&x") == (
        'expiry-date="Sun, 23 Dec 2012 00:00:00 GMT", rule-id="a%20rule%2F%C3%BC%26x"')


def test_has_expiration_and_abort() -> None:
    days = Rule("d", True, Filter(), expiration_days=1)
    date = Rule("t", True, Filter(), expiration_date_ms=0)
    marker = Rule("m", True, Filter(), expired_object_delete_marker=True)
    noncurrent = Rule("n", True, Filter(), noncurrent_days=1)
    abort = Rule("a", True, Filter(), abort_days=1)
    off = Rule("o", False, Filter(), expiration_days=1, abort_days=1)
    assert lifecycle.has_expiration((days,)) and lifecycle.has_expiration((marker, date))
    assert not lifecycle.has_expiration((marker, noncurrent, abort, off))
    assert lifecycle.has_abort((days, abort))
    assert not lifecycle.has_abort((days, date, marker, noncurrent, off))


# ---- render -> parse, for any valid configuration ------------------------------------------


def _xml_char(c: str) -> bool:
    # XML 1.0 carries tab, newline, return and everything from space up, bar the surrogates
    # and U+FFFE / U+FFFF.
    n = ord(c)
    return c in "\t\n\r" or (0x20 <= n <= 0xD7FF) or (0xE000 <= n <= 0xFFFD) or n >= 0x10000


_chars = st.one_of(st.sampled_from("<&>\"'\t\r\n ]/é漢🙂"),
                   st.characters(codec="utf-8").filter(_xml_char))
texts = st.text(_chars, max_size=20)
sizes = st.integers(0, 2**63 - 1)


@st.composite
def filters(draw: st.DrawFn, untagged: bool, unsized: bool) -> Filter:
    form = draw(st.sampled_from(["prefix", "filter", "and"]))
    if form == "prefix":
        return Filter(draw(texts), form="prefix")
    tags = () if untagged else tuple(draw(st.dictionaries(texts, texts, max_size=4)).items())
    bounds = (None, None) if unsized else draw(st.tuples(st.none() | sizes, st.none() | sizes))
    if bounds[0] is not None and bounds[1] is not None and bounds[0] >= bounds[1]:
        bounds = (None, bounds[1])
    prefix = draw(texts)
    empty_prefix = not prefix and draw(st.booleans())
    if form == "and":
        return Filter(prefix, tags, bounds[0], bounds[1], "and", empty_prefix)
    choice = draw(st.sampled_from(["none", "prefix", "tag", "gt", "lt"]))
    if choice == "prefix":
        return Filter(prefix, empty_prefix=empty_prefix)
    if choice == "tag" and tags:
        return Filter(tags=tags[:1])
    if choice == "gt" and bounds[0] is not None:
        return Filter(size_gt=bounds[0])
    if choice == "lt" and bounds[1] is not None:
        return Filter(size_lt=bounds[1])
    return Filter()


_days = st.integers(1, 2**31 - 1)
_midnights = st.integers(-719_162, 2_932_896).map(lambda d: d * DAY)    # years 1 to 9999


@st.composite
def rules_for(draw: st.DrawFn, rule_id: str) -> Rule:
    kinds = draw(st.sets(st.sampled_from(["days", "date", "marker", "abort", "noncurrent"]),
                         min_size=1, max_size=3))
    expiring = [k for k in ("days", "date", "marker") if k in kinds][:1]
    f = draw(filters(untagged="marker" in expiring or "abort" in kinds,
                     unsized="abort" in kinds))
    noncurrent = "noncurrent" in kinds
    return Rule(
        rule_id, draw(st.booleans()), f,
        expiration_days=draw(_days) if expiring == ["days"] else None,
        expiration_date_ms=draw(_midnights) if expiring == ["date"] else None,
        expired_object_delete_marker=draw(st.booleans()) if expiring == ["marker"] else None,
        abort_days=draw(_days) if "abort" in kinds else None,
        noncurrent_days=draw(_days) if noncurrent else None,
        newer_noncurrent=draw(st.none() | st.integers(1, 100)) if noncurrent else None,
    )


@st.composite
def configurations(draw: st.DrawFn) -> lifecycle.Rules:
    names = draw(st.lists(st.text(_chars, min_size=1, max_size=255), min_size=1, max_size=5,
                          unique=True))
    return tuple(draw(rules_for(n)) for n in names)


def _no_new_id() -> str:
    raise AssertionError("every rendered rule has an ID")


@settings(max_examples=300, deadline=None)
@given(configurations())
def test_render_parse_round_trip(rules: lifecycle.Rules) -> None:
    assert lifecycle.parse(lifecycle.render(rules), _no_new_id) == rules
    assert lifecycle.unpack(msgpack.unpackb(msgpack.packb(lifecycle.pack(rules)))) == rules


# ---- botocore on both sides ----------------------------------------------------------------


BOTO_RULES: list[dict[str, Any]] = [
    {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
     "Expiration": {"Days": 30}},
    {"ID": "tagged", "Status": "Enabled",
     "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "k", "Value": "v&<>"},
                                                    {"Key": "é", "Value": ""}]}},
     "Expiration": {"Date": dt.datetime(2027, 1, 1, tzinfo=dt.UTC)}},
    {"ID": "uploads", "Status": "Disabled", "Filter": {},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
]

BOTO_PARSED = (
    Rule("logs", True, Filter("logs/"), expiration_days=30),
    Rule("tagged", True, Filter("tmp/", (("k", "v&<>"), ("é", "")), form="and"),
         expiration_date_ms=MS_2027),
    Rule("uploads", False, Filter(), abort_days=7),
)


def test_botocore_request_parses() -> None:
    seen: list[bytes] = []
    client = offline_client("PutBucketLifecycleConfiguration", b"", seen)
    client.put_bucket_lifecycle_configuration(
        Bucket="b", LifecycleConfiguration={"Rules": BOTO_RULES})
    assert lifecycle.parse(seen[0], ids()) == BOTO_PARSED


def test_botocore_reads_render() -> None:
    seen: list[bytes] = []
    client = offline_client("GetBucketLifecycleConfiguration", lifecycle.render(BOTO_PARSED), seen)
    got = client.get_bucket_lifecycle_configuration(Bucket="b")["Rules"]
    assert got == BOTO_RULES


# ---- versioned buckets: noncurrent versions and lone delete markers -------------------------


def test_noncurrent_due_counts_days_from_when_a_version_became_noncurrent() -> None:
    rule = Rule("nc", True, Filter(prefix="logs/"), noncurrent_days=2)
    since = 5 * DAY + 123      # the next version was made then
    assert lifecycle.noncurrent_due((rule,), "logs/a", 1, (), since, 0) == (8 * DAY, "nc")
    assert lifecycle.noncurrent_due((rule,), "other", 1, (), since, 0) is None
    off = Rule("nc", False, Filter(prefix="logs/"), noncurrent_days=2)
    assert lifecycle.noncurrent_due((off,), "logs/a", 1, (), since, 0) is None
    current_only = Rule("cur", True, Filter(), expiration_days=1)
    assert lifecycle.noncurrent_due((current_only,), "logs/a", 1, (), since, 0) is None


def test_newer_noncurrent_versions_are_kept() -> None:
    rule = Rule("nc", True, Filter(), noncurrent_days=1, newer_noncurrent=2)
    assert lifecycle.noncurrent_due((rule,), "k", 1, (), 0, 0) is None
    assert lifecycle.noncurrent_due((rule,), "k", 1, (), 0, 1) is None
    assert lifecycle.noncurrent_due((rule,), "k", 1, (), 0, 2) == (DAY, "nc")


def test_tags_and_sizes_filter_noncurrent_versions() -> None:
    rule = Rule("nc", True, Filter(tags=(("t", "1"),), size_gt=10), noncurrent_days=1)
    assert lifecycle.noncurrent_due((rule,), "k", 11, (("t", "1"),), 0, 0) == (DAY, "nc")
    assert lifecycle.noncurrent_due((rule,), "k", 11, (), 0, 0) is None
    assert lifecycle.noncurrent_due((rule,), "k", 10, (("t", "1"),), 0, 0) is None


def test_lone_marker_rules_match_by_prefix_only() -> None:
    rule = Rule("m", True, Filter(prefix="a/"), expired_object_delete_marker=True)
    assert lifecycle.removes_lone_markers((rule,), "a/x")
    assert not lifecycle.removes_lone_markers((rule,), "b/x")
    tagged = Rule("m", True, Filter(tags=(("t", "1"),)), expired_object_delete_marker=True)
    assert not lifecycle.removes_lone_markers((tagged,), "a/x")
    assert lifecycle.has_version_rules((rule,))
    assert not lifecycle.has_version_rules((Rule("c", True, Filter(), expiration_days=1),))
