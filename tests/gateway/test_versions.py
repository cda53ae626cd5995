"""gateway/versions.py: version record keys sort each key's versions newest first, right
after the key; version ids round-trip; PutBucketVersioning bodies validated as AWS does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import errors, versions

stamps = st.integers(min_value=1, max_value=(1 << 96) - 1)
keys = st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
               min_size=1, max_size=20).map(lambda t: t.encode())


@given(stamps, stamps)
def test_suffix_reverses_the_order_of_stamps(a: int, b: int) -> None:
    assert (versions.suffix(a) < versions.suffix(b)) == (a > b)
    assert versions.stamp_of_suffix(versions.suffix(a)) == a


@given(keys, keys, stamps, stamps)
def test_records_sort_by_key_then_newest_first(k1: bytes, k2: bytes, s1: int, s2: int) -> None:
    r1, r2 = (versions.record_key(b"B" * 8, k, s) for k, s in ((k1, s1), (k2, s2)))
    if k1 != k2:
        assert (r1 < r2) == (k1 < k2)
    else:
        assert (r1 < r2) == (s1 > s2)
    assert versions.split_row_key(r1[len(versions.PREFIX) + 8:]) == (k1, s1)
    assert r1.startswith(versions.key_prefix(b"B" * 8, k1))


@given(stamps, st.text(min_size=1, max_size=3))
def test_no_utf8_delimiter_occurs_in_a_suffix(stamp: int, delimiter: str) -> None:
    """A node rolls listings up at the delimiter: it must never cut a version suffix."""
    if "\x00" not in delimiter:
        assert delimiter.encode("utf-8", "surrogatepass") not in \
            versions.SEPARATOR + versions.suffix(stamp)


@given(stamps)
def test_version_ids_round_trip(stamp: int) -> None:
    text = versions.version_id(stamp, null=False)
    assert versions.parse_version_id(text) == stamp
    assert versions.version_id(stamp, null=True) == "null"


def test_bad_version_ids() -> None:
    assert versions.parse_version_id("null") is None
    assert versions.version_id(0, null=False) == "null"     # never versioned
    for bad in ("", "nul", "0" * 24, "A" * 24, "1" * 23, "1" * 25, "g" * 24):
        with pytest.raises(errors.InvalidArgument):
            versions.parse_version_id(bad)


def _body(inner: str) -> bytes:
    return (f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{inner}</VersioningConfiguration>").encode()


def test_parse_status() -> None:
    assert versions.parse_status(_body("<Status>Enabled</Status>")) == ("Enabled", "")
    assert versions.parse_status(_body("<Status>Suspended</Status><MfaDelete>Disabled"
                                       "</MfaDelete>")) == ("Suspended", "Disabled")
    with pytest.raises(versions.IllegalVersioningConfiguration):    # AWS: says nothing
        versions.parse_status(_body(""))
    for bad in (_body("<Status>enabled</Status>"), _body("<MfaDelete>On</MfaDelete>"),
                b"<Versioning/>", b"not xml"):
        with pytest.raises(errors.MalformedXML):
            versions.parse_status(bad)
