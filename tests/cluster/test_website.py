"""Static websites on a real gateway: the configuration through boto3, then the website
endpoint (bucket.<website domain>) over raw HTTP as a browser meets it — index and error
documents, redirects, anonymous access only, HTML errors."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster, running_cluster

DOMAIN = "s3-website.coffre.test"

CONFIG: dict[str, Any] = {
    "ErrorDocument": {"Key": "error.html"},
    "IndexDocument": {"Suffix": "index.html"},
    "RoutingRules": [
        {"Condition": {"KeyPrefixEquals": "old/"},
         "Redirect": {"ReplaceKeyPrefixWith": "new/"}},
        {"Condition": {"HttpErrorCodeReturnedEquals": "404", "KeyPrefixEquals": "gone/"},
         "Redirect": {"HostName": "archive.example.org", "HttpRedirectCode": "302",
                      "Protocol": "https"}},
    ],
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(gateway_extra=f'website_domain = "{DOMAIN}"') as c:
        yield c


def _get(c: Cluster, bucket: str, path: str, method: str = "GET"
         ) -> tuple[int, dict[str, str], bytes]:
    port = int(c.config.listen.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers={"Host": f"{bucket}.{DOMAIN}:{port}"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def _public_site(s3: Any, bucket: str) -> None:
    """A bucket anyone may read and list (without listing, a missing page is 403)."""
    s3.create_bucket(Bucket=bucket)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def test_configuration_round_trip(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="site-config")
    with pytest.raises(ClientError) as info:
        s3.get_bucket_website(Bucket="site-config")
    assert info.value.response["Error"]["Code"] == "NoSuchWebsiteConfiguration"
    s3.put_bucket_website(Bucket="site-config", WebsiteConfiguration=CONFIG)
    got = s3.get_bucket_website(Bucket="site-config")
    assert {k: got[k] for k in CONFIG} == CONFIG
    with pytest.raises(ClientError) as info:
        s3.put_bucket_website(Bucket="site-config", WebsiteConfiguration={
            "IndexDocument": {"Suffix": "a/index.html"}})
    assert info.value.response["Error"]["Code"] == "InvalidArgument"
    assert s3.get_bucket_website(Bucket="site-config")["IndexDocument"] == \
        CONFIG["IndexDocument"]
    with pytest.raises(ClientError) as info:       # a redirect must be a path or a URL
        s3.put_object(Bucket="site-config", Key="r", Body=b"", WebsiteRedirectLocation="x")
    assert info.value.response["Error"]["Code"] == "InvalidRedirectLocation"
    s3.put_object(Bucket="site-config", Key="r", Body=b"", WebsiteRedirectLocation="/y")
    assert s3.head_object(Bucket="site-config", Key="r")["WebsiteRedirectLocation"] == "/y"
    s3.delete_bucket_website(Bucket="site-config")
    with pytest.raises(ClientError):
        s3.get_bucket_website(Bucket="site-config")


def test_a_public_site_serves_index_error_documents_and_redirects(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _public_site(s3, "portal")
    s3.put_bucket_website(Bucket="portal", WebsiteConfiguration=CONFIG)
    html = {"ContentType": "text/html"}
    s3.put_object(Bucket="portal", Key="index.html", Body=b"<h1>home</h1>", **html)
    s3.put_object(Bucket="portal", Key="data/index.html", Body=b"<h1>data</h1>", **html)
    s3.put_object(Bucket="portal", Key="error.html", Body=b"<h1>oops</h1>", **html)
    s3.put_object(Bucket="portal", Key="data/census 2026.csv", Body=b"a,b\n")
    s3.put_object(Bucket="portal", Key="moved", Body=b"",
                  WebsiteRedirectLocation="/data/")

    assert _get(cluster, "portal", "/")[::2] == (200, b"<h1>home</h1>")
    status, hdrs, body = _get(cluster, "portal", "/data/")
    assert (status, body) == (200, b"<h1>data</h1>") and hdrs["content-type"] == "text/html"
    assert _get(cluster, "portal", "/data/census%202026.csv")[::2] == (200, b"a,b\n")
    status, hdrs, _ = _get(cluster, "portal", "/data")
    assert (status, hdrs["location"]) == (302, "/data/")
    status, hdrs, _ = _get(cluster, "portal", "/moved")
    assert (status, hdrs["location"]) == (301, "/data/")
    status, hdrs, _ = _get(cluster, "portal", "/old/page.html")
    port = cluster.config.listen.rsplit(":", 1)[1]
    assert (status, hdrs["location"]) == (301, f"http://portal.{DOMAIN}:{port}/new/page.html")
    status, hdrs, _ = _get(cluster, "portal", "/gone/report.pdf")
    assert (status, hdrs["location"]) == (302, "https://archive.example.org/gone/report.pdf")
    # A missing page gets the error document, with the error's status.
    assert _get(cluster, "portal", "/nowhere.html")[::2] == (404, b"<h1>oops</h1>")
    status, hdrs, body = _get(cluster, "portal", "/", "HEAD")
    assert (status, body) == (200, b"") and hdrs["content-length"] == "13"
    status, _, body = _get(cluster, "portal", "/index.html", "PUT")
    assert status == 405 and b"MethodNotAllowed" in body


def test_only_public_objects_are_served_and_errors_are_html(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="halfpublic")
    s3.put_bucket_website(Bucket="halfpublic", WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}})
    s3.put_object(Bucket="halfpublic", Key="index.html", Body=b"home", ACL="public-read")
    s3.put_object(Bucket="halfpublic", Key="docs/index.html", Body=b"d", ACL="public-read")
    s3.put_object(Bucket="halfpublic", Key="secret.txt", Body=b"TOP-SECRET")
    s3.put_object(Bucket="halfpublic", Key="error.html", Body=b"private error page")
    assert _get(cluster, "halfpublic", "/")[::2] == (200, b"home")
    status, hdrs, body = _get(cluster, "halfpublic", "/secret.txt")
    assert status == 403 and b"TOP-SECRET" not in body and b"private error" not in body
    assert hdrs["content-type"].startswith("text/html") and b"AccessDenied" in body
    assert b"Custom Error Document" in body      # the error page is not public either
    # Unlistable, yet a folder without its slash still finds its index document.
    status, hdrs, _ = _get(cluster, "halfpublic", "/docs")
    assert (status, hdrs["location"]) == (302, "/docs/")
    # Nothing public says whether a key exists: a missing one is refused, not "not found".
    status, _, body = _get(cluster, "halfpublic", "/missing")
    assert status == 403 and b"AccessDenied" in body and b"<html>" in body
    s3.create_bucket(Bucket="nosite")
    status, _, body = _get(cluster, "nosite", "/")
    assert status == 404 and b"NoSuchWebsiteConfiguration" in body
    status, _, body = _get(cluster, "no-such-bucket", "/")
    assert status == 404 and b"NoSuchBucket" in body
    # The S3 API beside it is unchanged: the owner still reads the private object.
    assert s3.get_object(Bucket="halfpublic", Key="secret.txt")["Body"].read() == b"TOP-SECRET"


def test_redirect_all_requests(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="www-portal")
    s3.put_bucket_website(Bucket="www-portal", WebsiteConfiguration={
        "RedirectAllRequestsTo": {"HostName": "portal.example.org", "Protocol": "https"}})
    status, hdrs, _ = _get(cluster, "www-portal", "/a/b.html")
    assert (status, hdrs["location"]) == (301, "https://portal.example.org/a/b.html")


def _lists(body: bytes) -> list[list[str]]:
    """The items of each list of an HTML error page, ids cut to their names."""
    out = []
    for ul in re.findall(rb"<ul>\n(.*?)</ul>", body, re.S):
        items = [i.decode() for i in re.findall(rb"<li>(.*?)</li>", ul)]
        out.append([i.split(":")[0] if i.startswith(("RequestId:", "HostId:")) else i
                    for i in items])
    return out


_IDS = ["RequestId", "HostId"]
_NO_KEY = ["Code: NoSuchKey", "Message: The specified key does not exist."]


def test_error_pages_list_what_aws_lists(cluster: Cluster) -> None:
    """AWS's website error pages list the code, the message and the error's own element
    (the Key looked up, which for a folder is its index document; the BucketName), then
    the ids; a 403 names no key. When the error document is missing too, a second list
    says why, without ids."""
    s3 = cluster.s3()
    _public_site(s3, "pages")
    s3.put_bucket_website(Bucket="pages", WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}})
    s3.put_object(Bucket="pages", Key="sub/page.html", Body=b"p")
    for path, key in (("/", "index.html"), ("/sub/", "sub/index.html"),
                      ("/nowhere.html", "nowhere.html")):
        status, _, body = _get(cluster, "pages", path)
        assert (status, _lists(body)) == (404, [[*_NO_KEY, f"Key: {key}", *_IDS]]), path
    status, _, body = _get(cluster, "no-such-site", "/some/page")
    assert (status, _lists(body)) == (404, [[
        "Code: NoSuchBucket", "Message: The specified bucket does not exist",
        "BucketName: no-such-site", *_IDS]])
    s3.create_bucket(Bucket="pages-plain")
    status, _, body = _get(cluster, "pages-plain", "/")
    assert (status, _lists(body)) == (404, [[
        "Code: NoSuchWebsiteConfiguration",
        "Message: The specified bucket does not have a website configuration",
        "BucketName: pages-plain", *_IDS]])
    s3.create_bucket(Bucket="pages-private")
    s3.put_bucket_website(Bucket="pages-private", WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}})
    status, _, body = _get(cluster, "pages-private", "/secret.txt")
    assert (status, _lists(body)) == (403, [["Code: AccessDenied", "Message: Access Denied",
                                             *_IDS]])
    s3.put_bucket_website(Bucket="pages", WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}})
    status, _, body = _get(cluster, "pages", "/nowhere.html")
    assert (status, _lists(body)) == (404, [[*_NO_KEY, "Key: nowhere.html", *_IDS],
                                            [*_NO_KEY, "Key: error.html"]])
    assert b"<h3>An Error Occurred While Attempting to Retrieve a Custom Error Document" \
        b"</h3>\n<ul>" in body
