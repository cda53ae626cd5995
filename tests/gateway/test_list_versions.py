"""gateway/list_versions.py's page merge (pure): never-versioned current rows before the
key's version records, common prefixes once, rows past a listing's stop left for the next
page, IsLatest and the markers a client resumes from."""

from __future__ import annotations

from typing import Any

from gateway import versions
from gateway.list_versions import _LEGACY, _page, _Row


def _v(key: str, stamp: int, marker: bool = False, null: bool = False) -> _Row:
    raw = (key.encode() + versions.SEPARATOR + versions.suffix(stamp))
    row: list[Any] = [raw, 2, 3, '"e"', 1000 + stamp, None, stamp.to_bytes(12, "big"), null,
                      marker]
    return _Row(raw, row, False)


def _legacy(key: str) -> _Row:
    return _Row(key.encode() + _LEGACY, [key.encode(), 2, 5, '"l"', 10, None, None], True)


def _prefix(p: str) -> _Row:
    return _Row(p.encode(), p.encode(), False)


def _ids(page: Any) -> list[tuple[str, str, bool, bool]]:
    return [(e.key, e.version_id, e.latest, e.marker) for e in page.entries]


def test_merge_order_latest_and_markers() -> None:
    rows = [_v("b", 5), _v("a", 3), _v("b", 9, marker=True), _legacy("a"), _v("c", 1, null=True)]
    page = _page(rows, None, 10, None)
    assert _ids(page) == [("a", "null", True, False), ("a", f"{3:024x}", False, False),
                          ("b", f"{9:024x}", True, True), ("b", f"{5:024x}", False, False),
                          ("c", "null", True, False)]
    assert not page.truncated and page.next_key is None
    assert page.entries[0].size == 5 and page.entries[1].mtime_ms == 1003


def test_max_keys_cut_and_resume_markers() -> None:
    rows = [_v("a", 3), _v("a", 2), _v("b", 1)]
    page = _page(rows, None, 2, None)
    assert page.truncated and (page.next_key, page.next_version_id) == ("a", f"{2:024x}")
    # The next page continues a's versions: its first row there is not the latest...
    rest = _page([_v("a", 1), _v("b", 1)], None, 2, ("a", f"{3:024x}"))
    assert _ids(rest) == [("a", f"{1:024x}", False, False), ("b", f"{1:024x}", True, False)]
    # ...unless every newer one was removed since the marker was handed out.
    alone = _page([_v("a", 1), _v("b", 1)], None, 2, ("a", f"{1:024x}"))
    assert _ids(alone)[0] == ("a", f"{1:024x}", True, False)


def test_rows_past_a_listing_stop_wait_for_the_next_page() -> None:
    bound = b"b" + versions.SEPARATOR + versions.suffix(5)
    page = _page([_v("a", 1), _v("b", 5), _v("b", 4), _v("c", 1)], bound, 10, None)
    assert [(e.key, e.version_id) for e in page.entries] == [("a", f"{1:024x}"),
                                                             ("b", f"{5:024x}")]
    assert page.truncated and page.next_version_id == f"{5:024x}"


def test_common_prefixes_once_and_as_markers() -> None:
    page = _page([_prefix("d/"), _v("a", 1), _prefix("d/"), _prefix("e/")], None, 2, None)
    assert page.prefixes == ["d/"] and _ids(page) == [("a", f"{1:024x}", True, False)]
    assert page.truncated and (page.next_key, page.next_version_id) == ("d/", None)
