"""gateway.ownership: the OwnershipControls document and which headers set an ACL."""

from __future__ import annotations

import pytest

from gateway import errors, ownership


def _doc(inner: str) -> bytes:
    return f'<OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}' \
           "</OwnershipControls>".encode()


@pytest.mark.parametrize("value", ownership.VALUES)
def test_every_value_round_trips(value: str) -> None:
    assert ownership.parse(ownership.render(value)) == value


@pytest.mark.parametrize("inner", [
    "",                                                                  # no rule
    "<Rule><ObjectOwnership>Nobody</ObjectOwnership></Rule>",           # no such value
    "<Rule></Rule>",
    "<Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>" * 2,  # two rules
    "<Rule><ObjectOwnership>ObjectWriter</ObjectOwnership><X/></Rule>",  # unknown element
])
def test_malformed_documents(inner: str) -> None:
    with pytest.raises(errors.S3Error) as info:
        ownership.parse(_doc(inner))
    assert info.value.code == "MalformedXML"


def test_which_headers_set_an_acl() -> None:
    assert not ownership.sets_acl({})
    assert not ownership.sets_acl({"x-amz-acl": "bucket-owner-full-control"})
    assert ownership.sets_acl({"x-amz-acl": "public-read"})
    assert ownership.sets_acl({"X-Amz-Grant-Read": 'uri="http://acs.amazonaws.com/x"'})


def test_creation_header() -> None:
    assert ownership.from_header({}) == ""
    assert ownership.from_header({ownership.HEADER: "ObjectWriter"}) == "ObjectWriter"
    with pytest.raises(errors.S3Error) as info:
        ownership.from_header({ownership.HEADER: "objectwriter"})
    assert info.value.code == "InvalidArgument"
