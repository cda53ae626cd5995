"""Edges that LocalStack's AWS-validated S3 tests recorded from AWS itself (their
`*.snapshot.json` files), checked on a real cluster: listings, ListBuckets paging, copies
and CORS answers."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster


def _error(call: Any, **kw: Any) -> tuple[int, dict[str, str]]:
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]


def test_list_objects_v2_refuses_an_empty_continuation_token(cluster: Cluster) -> None:
    # AWS (test_list_objects_v2_continuation_start_after): 400 InvalidArgument, where an
    # empty token used to list from the start.
    s3 = cluster.s3()
    s3.create_bucket(Bucket="empty-token")
    s3.put_object(Bucket="empty-token", Key="k", Body=b"x")
    status, err = _error(s3.list_objects_v2, Bucket="empty-token", ContinuationToken="")
    assert (status, err["Code"], err["ArgumentName"]) == (400, "InvalidArgument",
                                                          "continuation-token")
    assert err["Message"] == "The continuation token provided is incorrect"
    page = s3.list_objects_v2(Bucket="empty-token", MaxKeys=1)
    assert page["KeyCount"] == 1 and not page["IsTruncated"]
