"""gateway.expiry's pure parts: which prefixes a scan lists, and the response headers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway import expiry, lifecycle
from gateway.manifest import BucketRecord, Manifest


def test_scan_prefixes_drop_the_covered_ones() -> None:
    assert expiry.scan_prefixes(["logs/2026/", "logs/", "tmp/", "tmp/", "t"]) == \
        ["logs/", "t"]
    assert expiry.scan_prefixes(["a/", ""]) == [""]
    assert expiry.scan_prefixes([]) == []


@given(st.lists(st.text("ab/", max_size=4), max_size=8))
def test_every_prefix_is_listed_by_exactly_one_scan(prefixes: list[str]) -> None:
    out = expiry.scan_prefixes(prefixes)
    for p in prefixes:      # each key under p is under exactly one listed prefix
        assert sum(p.startswith(q) for q in out) == 1
    assert set(out) <= set(prefixes)


def _bucket(rules: lifecycle.Rules) -> BucketRecord:
    return BucketRecord("b", b"id", "owner", 0, 4, 2, 8, lifecycle=rules)


def _rule(rule_id: str, prefix: str, days: int | None = None, abort: int | None = None
          ) -> lifecycle.Rule:
    return lifecycle.Rule(rule_id, True, lifecycle.Filter(prefix=prefix),
                          expiration_days=days, abort_days=abort)


def test_expiration_header_names_the_earliest_rule() -> None:
    day = expiry.day_ms
    rules = (_rule("late", "", days=30), _rule("soon", "logs/", days=1))
    m = Manifest(size=3, etag='"e"', mtime_ms=0)
    assert expiry.expiration_headers(_bucket(rules), b"logs/x", m) == {
        "x-amz-expiration": lifecycle.expiration_header(day, "soon")}
    assert expiry.expiration_headers(_bucket(rules), b"data/x", m) == {
        "x-amz-expiration": lifecycle.expiration_header(30 * day, "late")}
    assert expiry.expiration_headers(_bucket(()), b"logs/x", m) == {}


def test_abort_headers_only_under_an_abort_rule() -> None:
    rules = (_rule("mpu", "up/", abort=2),)
    hdrs = expiry.abort_headers(_bucket(rules), "up/big", 5)
    assert hdrs["x-amz-abort-rule-id"] == "mpu"
    assert hdrs["x-amz-abort-date"].endswith(" GMT")
    assert expiry.abort_headers(_bucket(rules), "down/big", 5) == {}
