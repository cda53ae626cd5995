"""gateway.body on aiohttp's mocked requests: how big a body is said to be, and what the
answer does to the connection when a body cannot be delimited."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway import body, errors


def _put(headers: dict[str, str]) -> web.Request:
    return make_mocked_request("PUT", "/b/k", headers=headers)


def test_object_size_needs_a_framed_body() -> None:
    assert body.object_size(_put({"Content-Length": "3"}), None) == 3
    assert body.object_size(_put({"Content-Length": "0"}), None) == 0
    chunked = {"Transfer-Encoding": "chunked", "Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": "5"}
    assert body.object_size(_put(chunked), None) == 5
    with pytest.raises(errors.MissingContentLength):
        body.object_size(_put({"Transfer-Encoding": "chunked"}), None)
    # A bucket-level body (CreateBucket, PutObjectAcl) may be absent: it is empty.
    assert body.declared_size(_put({}), None) == 0


async def test_unframed_object_body_is_411_and_closes_the_connection() -> None:
    request = _put({})
    with pytest.raises(errors.MissingContentLength) as caught:
        body.object_size(request, None)
    assert caught.value.status == 411
    response = web.Response(status=411)
    await body.finish_body(request, response)
    assert response.keep_alive is False and response.headers["Connection"] == "close"


@pytest.mark.parametrize("expect", ["200", "", "garbage", "100-continue-please"])
async def test_unknown_expectation_is_ignored(expect: str) -> None:
    # S3 ignores it ("garbage, but S3 succeeds!" in s3-tests); aiohttp's 417 is not sent.
    request = _put({"Expect": expect, "Content-Length": "3"})
    await body.expect_later(request)        # no 417 raised
    assert not request.get(body._CONTINUE_OWED)


async def test_100_continue_is_owed_until_the_body_is_read() -> None:
    request = _put({"Expect": " 100-Continue", "Content-Length": "3"})
    await body.expect_later(request)        # no 417 raised
    assert request.get(body._CONTINUE_OWED)
