"""gateway/object_lock.py: who may shorten, remove or outlive a retention; the documents
as botocore writes and reads them; the lock headers of a write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway import errors
from gateway import object_lock as ol
from gateway.object_lock import COMPLIANCE, GOVERNANCE, LockConfig, Retention
from tests.gateway.botocore_offline import offline_client

NOW = 1_800_000_000_000
HOUR = 3_600_000


@pytest.mark.parametrize(("old", "new", "bypass", "allowed"), [
    (None, Retention(GOVERNANCE, NOW + HOUR), False, True),
    (Retention(COMPLIANCE, NOW - 1), None, False, True),             # ran out
    (Retention(COMPLIANCE, NOW + HOUR), Retention(COMPLIANCE, NOW + 2 * HOUR), False, True),
    (Retention(COMPLIANCE, NOW + HOUR), Retention(COMPLIANCE, NOW + HOUR - 1), True, False),
    (Retention(COMPLIANCE, NOW + HOUR), Retention(GOVERNANCE, NOW + 2 * HOUR), True, False),
    (Retention(COMPLIANCE, NOW + HOUR), None, True, False),
    (Retention(GOVERNANCE, NOW + HOUR), Retention(GOVERNANCE, NOW + 2 * HOUR), False, True),
    (Retention(GOVERNANCE, NOW + HOUR), Retention(COMPLIANCE, NOW + HOUR), False, False),
    (Retention(GOVERNANCE, NOW + HOUR), Retention(COMPLIANCE, NOW + HOUR), True, True),
    (Retention(GOVERNANCE, NOW + HOUR), Retention(GOVERNANCE, NOW + 1), False, False),
    (Retention(GOVERNANCE, NOW + HOUR), Retention(GOVERNANCE, NOW + 1), True, True),
    (Retention(GOVERNANCE, NOW + HOUR), None, False, False),
    (Retention(GOVERNANCE, NOW + HOUR), None, True, True),
])
def test_check_change(old: Retention | None, new: Retention | None, bypass: bool,
                      allowed: bool) -> None:
    _verdict(allowed, lambda: ol.check_change(old, new, bypass, NOW))


def _verdict(allowed: bool, check: Callable[[], None]) -> None:
    if allowed:
        check()
        return
    with pytest.raises(errors.AccessDenied):
        check()


@pytest.mark.parametrize(("retention", "hold", "bypass", "allowed"), [
    (None, False, False, True),
    (None, True, True, False),
    (Retention(GOVERNANCE, NOW + HOUR), False, False, False),
    (Retention(GOVERNANCE, NOW + HOUR), False, True, True),
    (Retention(GOVERNANCE, NOW + HOUR), True, True, False),
    (Retention(COMPLIANCE, NOW + HOUR), False, True, False),
    (Retention(COMPLIANCE, NOW), False, False, True),             # until now: over
])
def test_check_removal(retention: Retention | None, hold: bool, bypass: bool,
                       allowed: bool) -> None:
    _verdict(allowed, lambda: ol.check_removal(retention, hold, bypass, NOW))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def test_headers_of_a_write() -> None:
    until = NOW + HOUR
    h = {ol.MODE_HEADER: COMPLIANCE, ol.UNTIL_HEADER: _iso(until), ol.HOLD_HEADER: "ON"}
    assert ol.from_headers(h, NOW) == (Retention(COMPLIANCE, until), True)
    assert ol.from_headers({}, NOW) == (None, None)
    for bad in ({ol.MODE_HEADER: COMPLIANCE}, {ol.UNTIL_HEADER: _iso(until)},
                {ol.MODE_HEADER: "STRICT", ol.UNTIL_HEADER: _iso(until)},
                {ol.MODE_HEADER: GOVERNANCE, ol.UNTIL_HEADER: _iso(NOW - 1)},
                {ol.MODE_HEADER: GOVERNANCE, ol.UNTIL_HEADER: "tomorrow"},
                {ol.HOLD_HEADER: "on"}):
        with pytest.raises(errors.InvalidArgument):
            ol.from_headers(bad, NOW)
    with pytest.raises(errors.InvalidRequest):
        ol.for_write(None, {ol.HOLD_HEADER: "OFF"}, NOW)
    assert ol.for_write(None, {}, NOW) == (None, None)
    days = LockConfig(GOVERNANCE, days=3)
    # No hold asked for: none set (None), which GetObjectLegalHold tells from one put OFF.
    assert ol.for_write(days, {}, NOW) == (Retention(GOVERNANCE, NOW + 3 * 24 * HOUR), None)
    assert ol.for_write(days, {ol.HOLD_HEADER: "OFF"}, NOW)[1] is False
    assert ol.for_write(days, h, NOW)[0] == Retention(COMPLIANCE, until)
    # A multipart upload's date is checked against its Create time, not Complete's.
    assert ol.for_write(days, h, until + 1, asked_ms=NOW)[0] == Retention(COMPLIANCE, until)
    years = LockConfig(COMPLIANCE, years=1)
    assert years.default_retention(NOW) == Retention(COMPLIANCE, NOW + 365 * 24 * HOUR)


def _sent(op: str, **kw: Any) -> bytes:
    seen: list[bytes] = []
    getattr(offline_client(op, b"", seen), _snake(op))(**kw)
    return seen[0]


def _snake(op: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")


def test_documents_as_botocore_writes_them() -> None:
    body = _sent("PutObjectLockConfiguration", Bucket="b", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 2}}})
    cfg = ol.parse_configuration(body)
    assert cfg == LockConfig(COMPLIANCE, years=2)
    assert ol.parse_configuration(ol.render_configuration(cfg)) == cfg
    plain = _sent("PutObjectLockConfiguration", Bucket="b", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled"})
    assert ol.parse_configuration(plain) == LockConfig()
    until = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    body = _sent("PutObjectRetention", Bucket="b", Key="k",
                 Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    r = ol.parse_retention(body, NOW)
    assert r == Retention(GOVERNANCE, int(until.timestamp() * 1000))
    assert ol.parse_retention(ol.render_retention(r), NOW) == r
    assert ol.parse_retention(_sent("PutObjectRetention", Bucket="b", Key="k",
                                    Retention={}), NOW) is None
    hold = _sent("PutObjectLegalHold", Bucket="b", Key="k", LegalHold={"Status": "ON"})
    assert ol.parse_legal_hold(hold) is True
    assert ol.parse_legal_hold(ol.render_legal_hold(False)) is False


def test_bad_configurations() -> None:
    def doc(inner: str) -> bytes:
        return f"<ObjectLockConfiguration>{inner}</ObjectLockConfiguration>".encode()
    enabled = "<ObjectLockEnabled>Enabled</ObjectLockEnabled>"
    for bad in (doc(""), doc("<ObjectLockEnabled>Disabled</ObjectLockEnabled>"),
                doc(enabled + "<Rule><DefaultRetention><Mode>GOVERNANCE</Mode>"
                    "</DefaultRetention></Rule>"),
                doc(enabled + "<Rule><DefaultRetention><Mode>SOFT</Mode><Days>1</Days>"
                    "</DefaultRetention></Rule>")):
        with pytest.raises(errors.MalformedXML):
            ol.parse_configuration(bad)
    for period in ("<Days>0</Days>", "<Days>-1</Days>", "<Years>101</Years>"):
        with pytest.raises(errors.InvalidArgument):
            ol.parse_configuration(doc(enabled + "<Rule><DefaultRetention><Mode>GOVERNANCE"
                                       f"</Mode>{period}</DefaultRetention></Rule>"))
