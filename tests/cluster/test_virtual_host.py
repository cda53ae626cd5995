"""Virtual-hosted-style addressing (bucket.<domain>) beside path style, on a real gateway,
and boto3 with request_checksum_calculation='when_required' for the core operations."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config as BotoConfig

from gateway import sigv4_client
from tests.cluster.harness import Cluster, running_cluster

DOMAIN = "s3.coffre.test"


@pytest.fixture(scope="module")
def vcluster() -> Iterator[Cluster]:
    with running_cluster(gateway_extra=f'virtual_host_domain = "{DOMAIN}"') as c:
        yield c


def _request(c: Cluster, method: str, host: str, path: str,
             body: bytes = b"") -> tuple[int, bytes]:
    port = c.config.listen.rsplit(":", 1)[1]
    hdrs = sigv4_client.sign_request(method, f"http://{host}:{port}{path}",
                                     {"host": f"{host}:{port}"},
                                     c.key.access_key, c.key.secret_key, c.config.region,
                                     datetime.now(UTC))
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_virtual_hosted_and_path_style_agree(vcluster: Cluster) -> None:
    assert _request(vcluster, "PUT", f"vhosted.{DOMAIN}", "/")[0] == 200
    assert _request(vcluster, "PUT", f"vhosted.{DOMAIN}", "/dir/obj.txt", b"hello")[0] == 200
    status, body = _request(vcluster, "GET", "127.0.0.1", "/vhosted/dir/obj.txt")
    assert (status, body) == (200, b"hello")
    status, body = _request(vcluster, "GET", f"vhosted.{DOMAIN}", "/?list-type=2")
    assert status == 200 and b"<Key>dir/obj.txt</Key>" in body
    status, _ = _request(vcluster, "GET", f"missing.{DOMAIN}", "/x")
    assert status == 404


def test_core_operations_with_checksums_when_required(vcluster: Cluster) -> None:
    s3 = boto3.client(
        "s3", endpoint_url=vcluster.endpoint, region_name=vcluster.config.region,
        aws_access_key_id=vcluster.key.access_key,
        aws_secret_access_key=vcluster.key.secret_key,
        config=BotoConfig(s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
    s3.create_bucket(Bucket="when-required")
    s3.put_object(Bucket="when-required", Key="a", Body=b"x" * 100_000)
    assert s3.get_object(Bucket="when-required", Key="a")["Body"].read() == b"x" * 100_000
    s3.copy_object(Bucket="when-required", Key="b",
                   CopySource={"Bucket": "when-required", "Key": "a"})
    out = s3.delete_objects(Bucket="when-required",
                            Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["a", "b"]
    uid = s3.create_multipart_upload(Bucket="when-required", Key="m")["UploadId"]
    etag = s3.upload_part(Bucket="when-required", Key="m", UploadId=uid, PartNumber=1,
                          Body=b"y" * 10)["ETag"]
    s3.complete_multipart_upload(Bucket="when-required", Key="m", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket="when-required", Key="m")["Body"].read() == b"y" * 10
