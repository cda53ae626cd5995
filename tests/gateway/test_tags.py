"""gateway/tags.py: the tag rules AWS applies to bucket and object tag sets."""

from __future__ import annotations

import pytest

from gateway import errors, s3xml, tags


def _refused(pairs: list[tuple[str, str]], bucket: bool = False) -> errors.S3Error:
    with pytest.raises(errors.S3Error) as exc:
        tags.check(pairs, bucket=bucket)
    return exc.value


def test_what_aws_allows() -> None:
    ok = [("Theme", "santé publique"), ("a+b-c=d.e_f:g/h@i", ""), ("日本", "東京 2026")]
    assert tags.check(ok) == tuple(ok)
    assert len(tags.check([(f"k{i}", "v") for i in range(50)], bucket=True)) == 50


@pytest.mark.parametrize(("pairs", "bucket", "message", "extra"), [
    ([("Key1,Key2", "v")], False, "The TagKey you have provided is invalid",
     {"TagKey": "Key1,Key2"}),
    ([("k", "Val1,Val2")], True, "The TagValue you have provided is invalid",
     {"TagKey": "k", "TagValue": "Val1,Val2"}),
    ([("aws:x", "v")], False, "Your TagKey cannot be prefixed with aws:", {"TagKey": "aws:x"}),
    ([("AWS:x", "v")], True, "System tags cannot be added/updated by requester",
     {"TagKey": "AWS:x"}),
    ([("k", "1"), ("k", "2")], False, "Cannot provide multiple Tags with the same key",
     {"TagKey": "k"}),
    ([("", "v")], False, "The TagKey or TagValue you have provided is too long", {"TagKey": ""}),
    ([("k", "v" * 257)], False, "The TagKey or TagValue you have provided is too long",
     {"TagKey": "k"}),
])
def test_refusals_name_the_tag(pairs: list[tuple[str, str]], bucket: bool, message: str,
                               extra: dict[str, str]) -> None:
    err = _refused(pairs, bucket)
    assert err.code == "InvalidTag" and err.message == message
    assert {k: err.extra[k] for k in extra} == extra


def test_too_many() -> None:
    assert _refused([(f"k{i}", "v") for i in range(11)]).code == "InvalidTag"
    assert _refused([(f"k{i}", "v") for i in range(51)], bucket=True).code == "InvalidTag"


def test_the_header_form() -> None:
    assert tags.from_header("a=1&b=&c%20d=e%3Af") == (("a", "1"), ("b", ""), ("c d", "e:f"))
    assert tags.from_header(None) == () and tags.from_header("") == ()
    for bad in ("key1=val1&key1=val2", "key1=val1,key2=val2", "k=e%2Cf"):
        with pytest.raises(errors.S3Error) as exc:
            tags.from_header(bad)
        assert exc.value.code == "InvalidArgument"
        assert exc.value.extra["ArgumentName"] == "x-amz-tagging"


def test_a_tagging_document_without_a_tag_set_sets_none() -> None:
    assert s3xml.parse_tagging(b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>') == []
    with pytest.raises(errors.S3Error):
        s3xml.parse_tagging(b"<Tagging><TagSet/><TagSet/></Tagging>")
